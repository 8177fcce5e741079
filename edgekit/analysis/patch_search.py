"""Which split and patch grid: every candidate's predicted arena, MAC overhead and latency, and a pick.

For a graph (a .tflite read by ``graph.tflite_reader``, or the lowered pre-export graph), each *split*
— the output of a layer (``analysis.patches.split_label`` changes after it) that cuts the graph and
whose stage can run on patches — is tried with square grids 2x2 .. ``max_grid`` x ``max_grid`` and
horizontal stripes 2x1 .. ``max_grid`` x 1 (no more patches per side than the split has rows). For each
candidate ``analysis.patches`` builds the patched graph and the arena models predict what TFLite-Micro
will need:

- ``arena_bytes``: TFLite-Micro's own plan (``tflm_arena.predict_tflm_arena``), exact to the byte on
  the models tried: the patch ops' persistent data (node structs, per-channel quantization, ...) grows
  the tail, the smaller activations shrink the head — both are in the number;
- ``planned_arena_bytes``: with edgekit's offline plan (``offline_plan.plan_graph``), patches first; the
  search plans each candidate quickly (original operator order, the fixed placements), then the
  ``full_plans`` best and the cheapest ones fully, as the build does (never more than the quick plan);
  the unpatched model is planned fully, so a candidate must beat the best plan without patches;
- ``mac_overhead``: the halos' recomputed MACs over the whole model's MACs;
- ``latency_ms``: the caller's latency estimate of the patched graph (``latency=`` callable; the build
  passes ``profile.emulate.estimate_graph``'s total for the target), recomputed MACs and the extra
  ops included.

The full input image stays resident during the stage in every figure (it is a tensor of the model, alive
until the last patch's SLICE), unlike MCUNetV2's published figures, which leave it out.

**The pick.** Candidates over ``max_mac_overhead`` or that do not lower the arena below the unpatched
model's (with the same plan) are never picked; they stay in the table with the reason. Of the others, the
smallest arena (then fewer MACs): the MAC bound already caps the cost, and the smallest arena leaves the
most room for what the arena model does not see on a board (CMSIS-NN's scratch buffers). When the
unpatched model fits the budget, no patches (``pick`` None, ``reason`` says so: ``--patch auto``); else
the reason says whether the pick fits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from edgekit.analysis.patch_rewrite import patch_rewrite, patched_graph
from edgekit.analysis.patches import WINDOW_OPS, PatchError, find_stage, split_label
from edgekit.analysis.tflm_arena import predict_tflm_arena
from edgekit.graph.ir import Graph

MAX_GRID = 6
FULL_PLANS = 6  # candidates planned fully after the quick plans (the best ones, and the cheapest ones)


@dataclass
class PatchCandidate:
    split: int  # tensor id
    label: str  # the layer it ends ("features.5"), or "tensor N"
    grid: tuple[int, int]
    arena_bytes: int  # predicted, TFLite-Micro's own plan
    head_bytes: int
    tail_bytes: int
    macs: int  # the whole patched model
    extra_macs: int
    mac_overhead: float  # extra_macs / the original model's MACs
    planned_arena_bytes: int | None = None  # predicted, edgekit's offline plan on the patched model
    planned_head_bytes: int | None = None
    latency_ms: float | None = None
    n_ops: int = 0
    n_tensors: int = 0
    status: str = ""  # "picked", "ok", or why it is not picked ("cannot help: ...", "MACs +31 % > 20 %")

    @property
    def spec(self) -> str:
        """The ``--patch`` value that builds it: ``2x2@features.5``."""
        layer = f"#{self.split}" if self.label.startswith("tensor ") else self.label
        return f"{self.grid[0]}x{self.grid[1]}@{layer}"

    def best_arena(self) -> int:
        """The planned arena when there is one, else TFLite-Micro's own."""
        return self.planned_arena_bytes if self.planned_arena_bytes is not None else self.arena_bytes


@dataclass
class PatchSearch:
    """The candidates and the pick (None: no patches, ``reason`` says why)."""

    arena_bytes: int  # the unpatched model, TFLite-Micro's own plan (predicted)
    head_bytes: int
    planned_arena_bytes: int | None  # the unpatched model with edgekit's offline plan
    macs: int
    latency_ms: float | None
    candidates: list[PatchCandidate] = field(default_factory=list)
    pick: PatchCandidate | None = None
    reason: str = ""
    budget_bytes: int | None = None
    max_mac_overhead: float = 0.2
    kernels: str = "reference"
    search_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def suggestion(self) -> str | None:
        """The what-if line for ``edgekit check``: ``fits with 2x2 patches up to features.2 (+1.8 % MACs):
        arena 135,408 B`` (None without a pick)."""
        c = self.pick
        if c is None:
            return None
        fits = self.budget_bytes is not None and c.best_arena() <= self.budget_bytes
        plan = " with the offline plan" if c.planned_arena_bytes is not None else ""
        return (f"{'fits' if fits else 'smallest'} with {c.grid[0]}x{c.grid[1]} patches up to {c.label} "
                f"(+{100 * c.mac_overhead:.1f} % MACs): arena {c.best_arena():,d} B{plan}")

    @property
    def base_arena(self) -> int:
        return self.planned_arena_bytes if self.planned_arena_bytes is not None else self.arena_bytes

    def to_dict(self) -> dict:
        def cand(c: PatchCandidate) -> dict:
            d = asdict(c)
            d["grid"] = f"{c.grid[0]}x{c.grid[1]}"
            d["spec"] = c.spec
            d["mac_overhead_pct"] = round(100 * c.mac_overhead, 2)
            return d
        return {"arena_bytes": self.arena_bytes, "head_bytes": self.head_bytes,
                "planned_arena_bytes": self.planned_arena_bytes, "macs": self.macs, "latency_ms": self.latency_ms,
                "budget_bytes": self.budget_bytes, "max_mac_overhead": self.max_mac_overhead,
                "kernels": self.kernels, "pick": cand(self.pick) if self.pick else None, "reason": self.reason,
                "search_s": round(self.search_s, 3), "notes": list(self.notes),
                "candidates": [cand(c) for c in self.candidates]}


def candidate_splits(g: Graph) -> list[int]:
    """Tensors that end a layer (the next op belongs to another one), cut the graph and can be patched
    (at least 2 rows and columns, and a conv or pool in the stage: a stage of layout ops only, such as
    the input's TRANSPOSE, holds nothing patches could shrink)."""
    out = []
    for k, op in enumerate(g.ops):
        if len(op.outputs) != 1:
            continue
        tid = op.outputs[0]
        nxt = g.ops[k + 1] if k + 1 < len(g.ops) else None
        if nxt is not None and nxt.outputs and split_label(g, nxt.outputs[0]) == split_label(g, tid):
            continue
        try:
            st = find_stage(g, tid)
        except PatchError:
            continue
        lay = st.layout[tid]
        windows = any(g.ops[i].attrs.get("opcode") in WINDOW_OPS for i in st.ops)
        if windows and g.tensors[tid].shape[lay[0]] >= 2 and g.tensors[tid].shape[lay[1]] >= 2:
            out.append(tid)
    return out


def evaluate(g: Graph, split: int, grid: tuple[int, int], *, plan: bool = True, kernels: str = "reference",
             latency: Callable[[Graph], float] | None = None) -> PatchCandidate:
    """One candidate's predicted figures (PatchError if it cannot be built)."""
    from edgekit.analysis.offline_plan import PlanningError, plan_graph

    rw = patch_rewrite(g, split, grid)
    pg = patched_graph(g, rw)
    est = predict_tflm_arena(pg)
    c = PatchCandidate(split, split_label(g, split), rw.grid, est.total_bytes, est.head_bytes, est.tail_bytes,
                       pg.macs, rw.extra_macs, rw.extra_macs / max(g.macs, 1), n_ops=len(pg.ops),
                       n_tensors=len(pg.tensors))
    if plan:
        try:
            p = plan_graph(pg, kernels=kernels)
            c.planned_arena_bytes, c.planned_head_bytes = p.arena_bytes, p.head_bytes
        except PlanningError:
            pass
    if latency is not None:
        c.latency_ms = float(latency(pg))
    return c


def _plan(g: Graph, c: PatchCandidate, kernels: str, *, full: bool = False) -> None:
    """The quick offline plan: the original operator order and the fixed placements, no random restarts
    (the full planner tries these too: its arena is never larger); ``full``: the build's plan."""
    from edgekit.analysis.offline_plan import PLACEMENTS, PlanningError, plan_graph

    pg = patched_graph(g, patch_rewrite(g, c.split, c.grid))
    quick = {} if full else {"orders": False, "max_work": len(pg.ops) * len(PLACEMENTS)}
    try:
        p = plan_graph(pg, kernels=kernels, **quick)
    except PlanningError:
        return
    c.planned_arena_bytes, c.planned_head_bytes = p.arena_bytes, p.head_bytes


def search_graph(g: Graph, *, budget_bytes: int | None = None, max_mac_overhead: float = 0.2,
                 plan: bool = True, kernels: str = "reference", max_grid: int = MAX_GRID,
                 latency: Callable[[Graph], float] | None = None,
                 splits: list[int] | None = None, full_plans: int = FULL_PLANS) -> PatchSearch:
    """Every candidate (split x grid) of ``g`` and the pick (see the module doc). Candidates over the MAC
    bound are not planned offline (their ``planned_*`` are None); splits after the first whose 2x2 grid
    is over the bound are not tried (deeper splits have larger halos)."""
    from edgekit.analysis.offline_plan import PlanningError, plan_graph

    t0 = time.perf_counter()
    base = predict_tflm_arena(g)
    planned = None
    if plan:
        try:
            planned = plan_graph(g, kernels=kernels).arena_bytes  # the full plan: patches must beat it
        except PlanningError:
            plan = False
    res = PatchSearch(base.total_bytes, base.head_bytes, planned, g.macs,
                      float(latency(g)) if latency is not None else None, budget_bytes=budget_bytes,
                      max_mac_overhead=max_mac_overhead, kernels=kernels)
    for tid in (candidate_splits(g) if splits is None else splits):
        first = None
        for grid in _grids(max_grid):
            if first is not None and grid[0] > 2 and _over(res, tid, grid):
                continue  # a smaller grid of the same shape was already over the MAC bound
            try:
                c = evaluate(g, tid, grid, plan=False, latency=latency)
            except PatchError:
                continue  # the split has fewer rows or columns than the grid
            res.candidates.append(c)
            first = c if grid == (2, 2) else first
            if plan and c.mac_overhead <= max_mac_overhead:
                _plan(g, c, kernels)
        if splits is None and first is not None and first.mac_overhead > max_mac_overhead:
            res.notes.append(f"splits after {first.label} not tried: 2x2 patches there already "
                             f"recompute {100 * first.mac_overhead:.0f} % of the MACs")
            break  # a later split has larger halos still
    if plan and full_plans:  # the quick plans rank; the best (whatever they beat) and cheapest get the full one
        within = [c for c in res.candidates if c.planned_arena_bytes is not None]
        best = sorted(within, key=lambda c: c.planned_arena_bytes)[:full_plans]
        helping = [c for c in within if c.planned_arena_bytes < res.base_arena]
        cheap = sorted(helping, key=lambda c: c.extra_macs)[:max(1, full_plans // 2)]
        for c in {id(c): c for c in best + cheap}.values():
            _plan(g, c, kernels, full=True)
    _pick(res)
    res.search_s = time.perf_counter() - t0
    res.notes.append("every arena counts the whole input image, resident through the patch stage")
    return res


def _grids(max_grid: int) -> list[tuple[int, int]]:
    """Square grids, then horizontal stripes (n x 1): a stripe spans whole rows, so the CONCATENATION
    that assembles the split copies contiguous blocks (the offline plan lets its output overlap them)."""
    return [(n, n) for n in range(2, max_grid + 1)] + [(n, 1) for n in range(2, max_grid + 1)]


def _over(res: PatchSearch, tid: int, grid: tuple[int, int]) -> bool:
    """A smaller grid of the same family at this split is over the MAC bound (more patches, more halos)."""
    return any(c.split == tid and c.grid[0] < grid[0] and (c.grid[1] == 1) == (grid[1] == 1)
               and c.mac_overhead > res.max_mac_overhead for c in res.candidates)


def _pick(res: PatchSearch) -> None:
    def pair(c: PatchCandidate) -> tuple[int, int]:  # (candidate, unpatched) with the same plan
        if c.planned_arena_bytes is not None and res.planned_arena_bytes is not None:
            return c.planned_arena_bytes, res.planned_arena_bytes
        return c.arena_bytes, res.arena_bytes

    for c in res.candidates:
        arena, base = pair(c)
        if c.mac_overhead > res.max_mac_overhead:
            c.status = f"MACs +{100 * c.mac_overhead:.1f} % > {100 * res.max_mac_overhead:.0f} %"
        elif arena >= base:
            c.status = f"cannot help: {arena:,d} B >= {base:,d} B unpatched"
        else:
            c.status = "ok"
    ok = [c for c in res.candidates if c.status == "ok"]
    if res.budget_bytes is not None and res.base_arena <= res.budget_bytes:
        res.reason = f"the model fits without patches ({res.base_arena:,d} B <= {res.budget_bytes:,d} B)"
        return
    if not ok:
        res.reason = ("no split and grid lowers the arena within the MAC bound" if res.candidates
                      else "no layer of the model can run on patches")
        return
    pick = min(ok, key=lambda c: (pair(c)[0], c.extra_macs))
    res.reason = ("the smallest arena" if res.budget_bytes is None else
                  f"the smallest arena; it fits {res.budget_bytes:,d} B" if pair(pick)[0] <= res.budget_bytes else
                  f"the smallest arena, but it does not fit {res.budget_bytes:,d} B")
    pick.status = "picked"
    res.pick = pick


def search_patches(data: bytes, *, budget_bytes: int | None = None, max_mac_overhead: float = 0.2,
                   plan: bool = True, kernels: str = "reference", max_grid: int = MAX_GRID,
                   latency: Callable[[Graph], float] | None = None) -> PatchSearch:
    """``search_graph`` on a .tflite held in memory (no torch)."""
    from edgekit.graph.tflite_reader import parse_tflite

    return search_graph(parse_tflite(data), budget_bytes=budget_bytes, max_mac_overhead=max_mac_overhead,
                        plan=plan, kernels=kernels, max_grid=max_grid, latency=latency)
