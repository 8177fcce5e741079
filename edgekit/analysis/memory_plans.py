"""Which memory plan a TFLite-Micro model gets: TFLite-Micro's own, edgekit's offline plan, or the
``OfflineMemoryAllocation`` entry the model already carries — decided once, for ``check`` (before
export, on the lowered graph) and for ``build`` (on the artifact), so both say the same.

``--memory-plan auto`` (the default) takes the smallest predicted arena: edgekit's plan when it lowers
TFLite-Micro's, a sound existing entry when it is no larger than edgekit's plan. ``offline`` always
writes edgekit's plan (or keeps a better existing one); ``tflm`` leaves the planning to TFLite-Micro
(an existing entry still counts: TFLite-Micro obeys it).

Plans are made with in-place rules that hold for the board's kernel library *and* for the reference
kernels (``planning_kernels``), so the host interpreter can verify every plan bit for bit before it
is written; the CMSIS-NN side of the rules is derived from its sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.analysis.inplace_rules import kernel_libraries
from edgekit.analysis.offline_plan import OfflinePlan, PlanningError, check_plan, plan_graph, reorder
from edgekit.analysis.tflm_arena import TflmArenaEstimate, predict_tflm_arena
from edgekit.graph.ir import Graph


def planning_kernels(kernels: str) -> str:
    """The rules a plan for ``kernels`` is made with: safe there and on the reference kernels."""
    return "+".join(dict.fromkeys(("reference",) + kernel_libraries(kernels)))


def existing_plan(g: Graph, kernels: str) -> OfflinePlan | str | None:
    """The model's own ``OfflineMemoryAllocation`` entry as an OfflinePlan (original operator order),
    the reason it is unsound, or None when the model has none."""
    old = g.meta.get("offline_plan")
    if old is None:
        return None
    if old.problems:
        return "; ".join(old.problems)
    planned_ids = {t.id for t in g.tensors if not t.is_const and t.nbytes > 0}
    partial = {tid: off for tid, off in old.as_dict().items() if tid in planned_ids}  # TFLite-Micro ignores the rest
    problems = check_plan(g, partial, kernels=kernels, partial=True)
    if problems:
        return "; ".join(problems[:3])
    own = predict_tflm_arena(g)
    est = predict_tflm_arena(g, offline_offsets=partial)
    return OfflinePlan(offsets=partial, op_order=list(range(len(g.ops))), head_bytes=est.head_bytes,
                       arena_bytes=est.total_bytes, tflm_head_bytes=own.head_bytes,
                       tflm_arena_bytes=own.total_bytes, n_tensors=len(g.tensors), kernels=kernels,
                       strategy="the model's existing OfflineMemoryAllocation entry")


def choose_plan(g: Graph, *, kernels: str, existing: str = "auto", orders: bool = True) -> OfflinePlan:
    """The best plan for ``g`` under ``kernels`` (rules as given: see ``planning_kernels``).

    ``existing``: ``"auto"`` keeps a sound existing entry that predicts no more than edgekit's plan, else
    replaces it; ``"replace"`` always plans; ``"keep"`` keeps it (PlanningError if it is unsound or
    missing). The decision is in ``plan.notes``. Raises PlanningError for a graph that cannot be
    planned offline."""
    if existing not in ("auto", "replace", "keep"):
        raise ValueError(f"existing must be 'auto', 'replace' or 'keep', got {existing!r}")
    kept = existing_plan(g, kernels) if existing != "replace" else None
    if existing == "keep":
        if kept is None:
            raise PlanningError("the model has no OfflineMemoryAllocation entry to keep")
        if isinstance(kept, str):
            raise PlanningError(f"the model's existing OfflineMemoryAllocation entry is unsound: {kept}")
        return kept
    plan = plan_graph(g, kernels=kernels, orders=orders)
    if g.meta.get("offline_plan") is not None:
        if isinstance(kept, OfflinePlan) and kept.arena_bytes <= plan.arena_bytes:
            kept.notes.append(f"kept the model's own OfflineMemoryAllocation entry: sound, and it predicts "
                              f"{kept.arena_bytes:,d} B <= edgekit's {plan.arena_bytes:,d} B")
            return kept
        why = (f"it is unsound ({kept})" if isinstance(kept, str) else
               "asked to replace it" if kept is None else
               f"edgekit's plan predicts {plan.arena_bytes:,d} B < its {kept.arena_bytes:,d} B")
        plan.notes.append(f"replaced the model's existing OfflineMemoryAllocation entry: {why}")
    return plan


@dataclass
class MemoryPlanChoice:
    """What ``check`` reports and ``build`` writes: both plans, and which one the arena figure uses."""

    mode: str  # auto | offline | tflm
    kernels: str  # the board's library
    tflm_bytes: int  # TFLite-Micro's own planner (with an existing entry: TFLite-Micro obeys it)
    offline_bytes: int | None  # edgekit's plan (None: none was made)
    used: str  # "tflm" | "offline" | "existing"
    estimate: TflmArenaEstimate  # the arena of the plan used (breakdown, notes)
    plan: OfflinePlan | None = None  # the plan to write (used == "offline")
    reason: str = ""  # why edgekit's plan is not used, when it is not
    notes: list[str] = field(default_factory=list)

    @property
    def arena_bytes(self) -> int:
        return self.estimate.total_bytes

    def to_dict(self) -> dict:
        d = {"mode": self.mode, "kernels": self.kernels, "used": self.used, "tflm_arena_bytes": self.tflm_bytes,
             "offline_arena_bytes": self.offline_bytes, "arena_bytes": self.arena_bytes, "reason": self.reason,
             "notes": list(self.notes)}
        if self.plan is not None:
            d["in_place"] = [{"op": p.op, "opcode": p.opcode} for p in self.plan.inplace]
            d["reordered"] = self.plan.reordered
        return d


def choose_memory_plan(g: Graph, *, mode: str, kernels: str) -> MemoryPlanChoice:
    """The plan ``--memory-plan mode`` gives ``g`` (a .tflite graph or the lowered pre-export graph)."""
    existing = existing_plan(g, planning_kernels(kernels))
    own = predict_tflm_arena(g, offline_offsets=existing.offsets if isinstance(existing, OfflinePlan) else None)
    choice = MemoryPlanChoice(mode=mode, kernels=kernels, tflm_bytes=own.total_bytes, offline_bytes=None,
                              used="existing" if isinstance(existing, OfflinePlan) else "tflm", estimate=own)
    if isinstance(existing, str):
        choice.notes.append(f"the model's OfflineMemoryAllocation entry is unsound: {existing}")
    if mode == "tflm":
        choice.reason = "--memory-plan tflm: TFLite-Micro plans the arena itself"
        return choice
    try:
        plan = choose_plan(g, kernels=planning_kernels(kernels))
    except PlanningError as exc:
        choice.reason = str(exc)
        return choice
    choice.offline_bytes = plan.arena_bytes
    if plan.strategy.startswith("the model's existing"):
        choice.reason = "the model's own OfflineMemoryAllocation entry is at least as small"
        return choice
    if mode == "auto" and plan.arena_bytes >= own.total_bytes:
        choice.reason = f"edgekit's offline plan saves nothing ({plan.arena_bytes:,d} B)"
        return choice
    go = reorder(g, plan.op_order) if plan.reordered else g
    choice.plan, choice.used = plan, "offline"
    choice.estimate = predict_tflm_arena(go, offline_offsets=plan.offsets)
    n = len(plan.inplace)
    choice.notes.append(f"TFLite-Micro's own plan: {own.total_bytes:,d} B; with edgekit's offline plan: "
                        f"{plan.arena_bytes:,d} B ({n} op{'s' if n != 1 else ''} write over their input; rules "
                        f"safe for {kernels} and the reference kernels)")
    return choice
