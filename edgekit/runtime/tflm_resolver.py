"""The generated op resolver checked against what the TFLite-Micro interpreter itself reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.export.op_resolver import resolver_for
from edgekit.runtime.tflm import tflm_ops


@dataclass
class ResolverCheck:
    ok: bool
    registered: list[str]  # opcodes the header registers
    interpreter: dict[str, bool]  # what TFLite-Micro reported: {opcode: has a kernel}
    problems: list[str] = field(default_factory=list)


def check_resolver(path, *, timeout_s: float = 120.0) -> ResolverCheck:
    """The header's registrations against the op list the TFLite-Micro interpreter reports."""
    r = resolver_for(path)
    reported = tflm_ops(path, timeout_s=timeout_s)
    registered = [op for op in r.ops if op not in r.missing and not op.startswith("CUSTOM:")]
    problems = []
    for op in sorted(set(reported) - set(registered) - set(r.missing)):
        if not op.startswith("CUSTOM:"):
            problems.append(f"the interpreter uses {op} but the header does not register it")
    for op in sorted(set(registered) - set(reported)):
        problems.append(f"the header registers {op} but the interpreter does not list it")
    for op in r.missing:
        if reported.get(op, False):
            problems.append(f"the interpreter has a kernel for {op} but edgekit knows no Add method for it")
    for op, ok in reported.items():
        if not ok and op in registered:
            problems.append(f"the header registers {op} but this TFLite-Micro build has no kernel for it")
    return ResolverCheck(ok=not problems, registered=registered, interpreter=reported, problems=problems)
