"""Pareto fronts per target over the candidates that fit.

An objective is ``"name:min"`` or ``"name:max"`` over a ``Row`` field. Candidate ``a`` dominates
``b`` when it is at least as good in every objective and strictly better in one; the front is the
set of eligible rows (analysed, runnable, within the target's budget) that nothing dominates.
Rows equal in every objective are all kept (neither dominates). O(n²) per target: 1,000
candidates are a million comparisons of a few numbers, well under a second.

Default objectives (``default_objectives``): the arena (min), the estimated latency (min) and what
the model buys with them — the measured accuracy (max) when the sweep has an evaluator, else MACs
(max), the capacity proxy MCUNet's TinyNAS uses to rank search spaces under a memory limit
(more computation within the same memory means a more accurate model of the family). Minimising
MACs beside latency would make the smallest candidate dominate the whole grid.
"""

from __future__ import annotations

from edgekit.errors import UsageError
from edgekit.sweep.result import Row

OBJECTIVE_FIELDS = ("arena_bytes", "latency_ms", "macs", "model_bytes", "params", "peak_activation_bytes",
                    "accuracy")


def default_objectives(with_accuracy: bool) -> list[str]:
    return ["arena_bytes:min", "latency_ms:min", "accuracy:max" if with_accuracy else "macs:max"]


def parse_objectives(items) -> list[tuple[str, int]]:
    """["arena_bytes:min", ...] -> [("arena_bytes", +1), ...]; +1 minimise, -1 maximise."""
    out = []
    for text in items:
        name, _, sense = str(text).partition(":")
        if name not in OBJECTIVE_FIELDS or sense not in ("min", "max"):
            raise UsageError(f"bad objective {text!r}: expected FIELD:min|max with FIELD one of "
                             f"{', '.join(OBJECTIVE_FIELDS)}")
        out.append((name, 1 if sense == "min" else -1))
    if not out:
        raise UsageError("a Pareto front needs at least one objective")
    return out


def _vector(row: Row, objs) -> tuple[float, ...] | None:
    vals = []
    for name, sign in objs:
        v = getattr(row, name)
        if v is None:
            return None
        vals.append(sign * float(v))
    return tuple(vals)


def dominates(a: tuple, b: tuple) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def front(rows: list[Row], objectives) -> list[Row]:
    """The non-dominated eligible rows, in the order given."""
    objs = parse_objectives(objectives)
    pts = [(r, v) for r in rows if r.eligible and (v := _vector(r, objs)) is not None]
    return [r for r, v in pts if not any(dominates(w, v) for _, w in pts)]


def fronts(rows: list[Row], targets: list[str], objectives) -> dict[str, list[str]]:
    """target -> candidate ids on its front."""
    return {t: [r.candidate for r in front([r for r in rows if r.target == t], objectives)] for t in targets}
