"""What a sweep returns: one ``Row`` per candidate × target (the analytic phase), one ``Verified``
per candidate built for a target (the verify phase), the Pareto fronts, and the failures.

Plain data with ``to_dict``/``from_dict`` (the per-candidate result files and ``sweep.json`` are
these dicts). Wall-clock seconds are kept apart (``seconds`` fields, ``SweepResult.timings``) so
that ``to_dict(timings=False)`` is identical for identical work, whatever ran it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

SCHEMA = "edgekit.sweep/1"


def _known_fields(cls, d: dict):
    """``cls`` from a saved dict, ignoring keys it does not have (a result file of another version)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Row:
    """The analytic answer for one candidate on one target (the pre-export model: what
    ``edgekit check`` and ``edgekit profile --emulate`` say)."""

    candidate: str  # Candidate.id
    target: str
    status: str  # "ok" | "n/a" (the candidate's dtype/plan does not apply to this target) | "error"
    runtime: str | None = None
    dtype: str | None = None
    memory_plan: str | None = None
    params: int | None = None
    macs: int | None = None
    model_bytes: int | None = None  # flash: the weights in the model's dtype
    arena_bytes: int | None = None  # the runtime's arena, predicted before export
    peak_activation_bytes: int | None = None
    latency_ms: float | None = None  # an estimate (the target's cost model), never a measurement
    latency_model: str | None = None
    sram_bytes: int | None = None
    flash_bytes: int | None = None
    fits: bool | None = None
    reasons: list[str] = field(default_factory=list)  # why it does not fit or cannot run
    accuracy: float | None = None  # from the sweep's evaluator (--eval), when one is given
    error: str | None = None

    @property
    def eligible(self) -> bool:
        """On the front only if it ran and fits (fits is False also for ops the runtime lacks)."""
        return self.status == "ok" and bool(self.fits)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Row:
        return _known_fields(cls, d)


@dataclass
class Verified:
    """One candidate built for one target with ``edgekit.build`` and checked in its runtime."""

    candidate: str
    target: str
    status: str  # "ok" (built and verified) | "over budget" (measured) | "error"
    predicted_arena_bytes: int | None = None  # the analytic phase's figure
    measured_arena_bytes: int | None = None  # TFLite-Micro's minimum on the artifact (MCUs)
    arena_bytes: int | None = None  # what the build's verdict used: measured, planned (.pte) or predicted
    model_bytes: int | None = None  # the artifact's bytes
    fits: bool | None = None
    verification: dict = field(default_factory=dict)  # runtime -> {cosine, max_rel_error, top1_agreement}
    artifacts: list[str] = field(default_factory=list)  # paths relative to the sweep folder
    accuracy: float | None = None  # the artifact's accuracy in its runtime (--eval)
    summary: str | None = None
    error: str | None = None
    seconds: float | None = None

    def to_dict(self, *, timings: bool = True) -> dict:
        d = asdict(self)
        if not timings:
            d.pop("seconds")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Verified:
        return _known_fields(cls, d)


@dataclass
class SweepResult:
    family: str
    grid: dict
    targets: list[str]
    objectives: list[str]  # "arena_bytes:min", ...
    candidates: list[dict]  # Candidate.to_dict(), in enumeration order
    rows: list[Row]  # candidate order, then target order
    fronts: dict[str, list[str]]  # target -> candidate ids on its Pareto front (candidate order)
    verified: list[Verified]
    output: str | None = None
    executor: str = "serial"
    workers: int = 1
    reused: dict[str, int] = field(default_factory=dict)  # phase -> results read back from a previous run
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # phase -> wall seconds

    def failures(self) -> list[dict]:
        """Every candidate that failed, in either phase, with its error."""
        out = [{"phase": "analyse", "candidate": r.candidate, "target": r.target, "error": r.error}
               for r in self.rows if r.status == "error"]
        out += [{"phase": "verify", "candidate": v.candidate, "target": v.target, "error": v.error}
                for v in self.verified if v.status == "error"]
        return out

    def best(self, target: str) -> Row | None:
        """The pick for ``target``: the most accurate candidate that fits when accuracy was measured,
        else the fastest (estimated latency) that fits; ties go to the smaller arena, then the
        candidate id."""
        rows = [r for r in self.rows if r.target == target and r.eligible]
        return pick_best(rows)

    def to_dict(self, *, timings: bool = True) -> dict:
        d = {"schema": SCHEMA, "family": self.family, "grid": self.grid, "targets": self.targets,
             "objectives": self.objectives, "candidates": self.candidates,
             "rows": [r.to_dict() for r in self.rows], "fronts": self.fronts,
             "verified": [v.to_dict(timings=timings) for v in self.verified],
             "best": {t: (b.candidate if (b := self.best(t)) else None) for t in self.targets},
             "failures": self.failures(), "notes": self.notes}
        if timings:
            d.update(output=self.output, executor=self.executor, workers=self.workers, reused=self.reused,
                     timings=self.timings)
        return d


def pick_best(rows: list[Row]) -> Row | None:
    if not rows:
        return None
    if any(r.accuracy is not None for r in rows):
        return min(rows, key=lambda r: (-(r.accuracy or 0.0), r.arena_bytes, r.candidate))
    return min(rows, key=lambda r: (r.latency_ms if r.latency_ms is not None else float("inf"), r.arena_bytes,
                                    r.candidate))
