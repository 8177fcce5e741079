"""Which ops each runtime can run (placeholder until the table of kernel facts lands)."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.graph.ir import Graph


@dataclass
class Unrunnable:
    """Ops a runtime cannot run, grouped: "DEQUANTIZE with float16 input (74 ops)"."""

    runtime: str
    opcode: str
    why: str
    count: int
    modules: list[str] = field(default_factory=list)
    source: str = ""

    def text(self) -> str:
        where = f" at {', '.join(self.modules[:3])}{' ...' if len(self.modules) > 3 else ''}" if self.modules else ""
        return f"{self.opcode} {self.why} ({self.count} op{'s' if self.count != 1 else ''}){where}"


def unrunnable(graph: Graph, runtime: str, *, kernels: str = "reference") -> list[Unrunnable]:
    return []
