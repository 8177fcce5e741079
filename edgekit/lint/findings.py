"""What `edgekit lint` returns: findings (severity, ops, tensors, cost, PyTorch module, fix).

Severities: ``error`` means the artifact is unusable on the chosen target (an op its
kernels lack, a tensor rank a kernel refuses, int8 concat inputs TFLite-Micro would mix up);
``warning`` costs time, memory or accuracy; ``info`` is worth knowing. ``LintResult.unusable``
is true when there is at least one error (the CLI exits 1 then).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SEVERITIES = ("error", "warning", "info")
_ORDER = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass
class Cost:
    """What a finding costs at inference.

    ``extra_ops``: operators that a better export would not have; ``bytes``: activation bytes
    those operators read and write per inference; ``est_us``: an estimate of their time on the
    target (``how`` says which model gave it), None when there is no target to estimate for.
    """

    extra_ops: int = 0
    bytes: int = 0
    est_us: float | None = None
    how: str = ""

    def __add__(self, other: Cost) -> Cost:
        est = None if self.est_us is None and other.est_us is None else (self.est_us or 0.0) + (other.est_us or 0.0)
        return Cost(self.extra_ops + other.extra_ops, self.bytes + other.bytes, est, self.how or other.how)

    def describe(self) -> str:
        parts = []
        if self.extra_ops:
            parts.append(f"{self.extra_ops} extra op{'s' if self.extra_ops != 1 else ''}")
        if self.bytes:
            parts.append(f"{self.bytes:,} B moved")
        if self.est_us is not None and (self.extra_ops or self.bytes):
            parts.append(f"~{_fmt_us(self.est_us)} on target")
        return ", ".join(parts)


def _fmt_us(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.1f} us"


@dataclass
class Finding:
    code: str
    severity: str
    message: str
    fix: str = ""
    ops: list[int] = field(default_factory=list)  # op indices in the artifact
    op_names: list[str] = field(default_factory=list)  # e.g. "MUL_7"
    tensors: list[str] = field(default_factory=list)  # tensor names as stored in the artifact
    module: str | None = None  # PyTorch module path it came from ("features.3.conv"), "" = the model itself
    modules: list[str] = field(default_factory=list)  # every module path involved
    module_type: str | None = None  # qualified class name of ``module`` where known
    cost: Cost = field(default_factory=Cost)
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        assert self.severity in SEVERITIES, self.severity

    @property
    def where(self) -> str:
        if self.module:
            return self.module
        if self.module == "":
            return "<model forward>"
        return ", ".join(self.op_names[:3]) + ("..." if len(self.op_names) > 3 else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cost"] = asdict(self.cost)
        return d


@dataclass
class LintResult:
    artifact: str
    format: str  # "tflite" | "pte"
    target: str | None
    runtime: str | None  # "tflite-micro" | "litert" | "executorch"
    findings: list[Finding] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)  # which runtime checks ran, and how ({"tflite-micro": "interpreter"})

    @property
    def unusable(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def sort(self) -> LintResult:
        self.findings.sort(key=lambda f: (_ORDER[f.severity], min(f.ops) if f.ops else 1 << 30, f.code))
        return self

    def to_dict(self) -> dict:
        counts = {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}
        return {"artifact": self.artifact, "format": self.format, "target": self.target, "runtime": self.runtime,
                "unusable": self.unusable, "counts": counts, "summary": self.summary, "checks": self.checks,
                "findings": [f.to_dict() for f in self.findings]}
