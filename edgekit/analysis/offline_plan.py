"""An offline memory plan for TFLite-Micro: tensor offsets in the arena's head, smaller than its own plan.

TFLite-Micro's GreedyMemoryPlanner never lets two tensors that are alive at the same step share
bytes; on the models tried its plan already meets that lower bound. What it leaves is the overlap of an
op's output with an input that dies at that op, where the kernel's loop order makes it safe
(``inplace_rules``: ``d_min <= in_offset - out_offset <= d_max``). This planner uses it:

1. **Lifetimes** are TFLite-Micro's (``tflm_arena.planned_buffers``: graph inputs from step 0, op *i* at
   step *i + 1*, graph outputs to the end), on the graph in the operator order being tried.
2. **Placement**: buffers are placed one at a time at the lowest 16-aligned offset where they collide with
   no placed buffer alive at the same time, except an in-place partner at an allowed distance (each
   placed buffer forbids an interval of start offsets; a rule cuts a hole in it; a sweep over the sorted
   intervals finds the lowest free offset). Several placement orders are tried (largest first; largest
   first with the later tensor first among equals; by first use; backwards in time, so that a chain of
   in-place ops climbs up from offset 0 instead of being stopped by it; by size x lifetime; in-place
   chains together), then seeded random perturbations of them on the best operator order (first fit is
   myopic: a perturbed order often packs tighter). The number of candidates is bounded by a work budget
   (ops x placements, ``MAX_WORK``): small graphs get every candidate, a 5,000-op graph the original
   order and the fixed placements; the same graph always gets the same plan.
3. **Operator orders**: TFLite-Micro runs the operators in the flatbuffer's order, so for graphs with
   branches (fire modules, concatenations, residuals) other topological orders are tried (a memory-greedy
   list schedule and depth-first orders that finish the larger or the smaller branch first) and the
   best is written into the model with the plan. (On the converter's graphs measured so far the original
   order won every time but once: ``residual`` under the CMSIS-NN rules.)
4. **The arena** each candidate needs is the head TFLite-Micro builds from it — the offline buffers where
   the plan puts them and the kernel scratch buffers placed around them by GreedyMemoryPlanner
   (``tflm_arena.tflm_greedy_plan`` with offline offsets) — plus the unchanged persistent tail
   (``tflm_arena.predict_tflm_arena``). The smallest wins (then the smaller head, then the earlier
   order); TFLite-Micro's own plan is a candidate, so a plan never predicts more than it.
5. **A static check** (``check_plan``), independent of the placement code: offsets aligned and
   non-negative, every planned tensor placed, and no two tensors alive together overlap unless they are
   an op's dying input and its output at a distance the rule allows.

Works on any Graph whose ops carry ``attrs["opcode"]`` (a .tflite read by ``graph.tflite_reader``, or the
lowered pre-export graph of ``analysis.lowering``); ops without the attributes a rule needs never overlap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from edgekit.analysis.inplace_rules import InplaceRule, inplace_rule
from edgekit.analysis.op_orders import (  # noqa: F401  (re-exported: the planner's public names)
    candidate_orders,
    depth_first_order,
    is_topological,
    memory_greedy_order,
    reorder,
)
from edgekit.analysis.plan_check import check_plan  # noqa: F401  (re-exported)
from edgekit.analysis.tflm_arena import ALIGN, planned_buffers, predict_tflm_arena
from edgekit.graph.ir import Graph, Op

PLACEMENTS = ("size", "size-late", "first", "last", "area", "chains")


@dataclass(frozen=True)
class InplacePair:
    """Op ``op`` (index in the original model) writes ``output_id`` over ``input_id``."""

    op: int
    opcode: str
    input_id: int
    output_id: int
    rule: InplaceRule


@dataclass
class OfflinePlan:
    """An offline memory plan and what it buys. Byte counts are predictions (``tflm_arena``)."""

    offsets: dict[int, int]  # tensor id -> offset in the head; tensors absent are planned online (-1)
    op_order: list[int]  # original op indices in the order TFLite-Micro must run them
    head_bytes: int  # planned head: offline tensors + scratch buffers placed around them
    arena_bytes: int  # predicted minimum arena_size with the plan
    tflm_head_bytes: int  # TFLite-Micro's own plan, same model
    tflm_arena_bytes: int
    n_tensors: int  # tensors of the subgraph (the metadata has one offset per tensor)
    kernels: str = "reference"
    inplace: list[InplacePair] = field(default_factory=list)  # pairs that do overlap in this plan
    strategy: str = ""  # the operator order and placement that won
    candidates: int = 0  # (order, placement) pairs evaluated
    planning_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def reordered(self) -> bool:
        return self.op_order != sorted(self.op_order)

    @property
    def saving_bytes(self) -> int:
        return self.tflm_arena_bytes - self.arena_bytes

    @property
    def saving_pct(self) -> float:
        return 100.0 * self.saving_bytes / self.tflm_arena_bytes if self.tflm_arena_bytes else 0.0

    def to_dict(self) -> dict:
        """JSON-ready summary (the offsets themselves are in the model's metadata)."""
        return {"kernels": self.kernels, "arena_bytes": self.arena_bytes, "head_bytes": self.head_bytes,
                "tflm_arena_bytes": self.tflm_arena_bytes, "tflm_head_bytes": self.tflm_head_bytes,
                "saving_bytes": self.saving_bytes, "saving_pct": round(self.saving_pct, 2),
                "reordered": self.reordered, "strategy": self.strategy, "candidates": self.candidates,
                "planning_s": round(self.planning_s, 4), "notes": list(self.notes),
                "inplace": [{"op": p.op, "opcode": p.opcode, "input": p.input_id, "output": p.output_id,
                             "d_min": p.rule.d_min, "d_max": p.rule.d_max} for p in self.inplace]}

    def offset_table(self) -> list[int]:
        """One int32 per tensor, -1 where TFLite-Micro plans the tensor itself (the metadata's layout)."""
        return [self.offsets.get(i, -1) for i in range(self.n_tensors)]


class PlanningError(ValueError):
    """The graph cannot be planned offline (several subgraphs, control flow, ...)."""


# ---- placement -------------------------------------------------------------------------------

@dataclass
class _Buf:
    id: int  # tensor id
    size: int  # aligned
    first: int
    last: int


def _buffers(g: Graph) -> list[_Buf]:
    return [_Buf(b.id, b.size, b.first, b.last) for b in planned_buffers(g) if b.id >= 0]


def op_rules(g: Graph, *, kernels: str) -> dict[int, dict[int, InplaceRule]]:
    """{op index: {input id: rule}} (rules depend on the op, not on where it runs)."""
    out = {}
    seen: dict[tuple, dict[int, InplaceRule]] = {}  # repeated blocks: same op, same shapes, same rule
    for op in g.ops:
        if len(op.outputs) != 1:
            continue
        key = (repr(sorted(op.attrs.items())), tuple((g.tensors[t].shape, g.tensors[t].dtype, g.tensors[t].is_const)
                                                     for t in op.inputs + op.outputs),
               tuple(op.inputs.index(t) for t in op.inputs))
        if key not in seen:
            rules = op_rules_one(g, op, kernels)
            seen[key] = {op.inputs.index(x): r for x, r in rules.items()}
        rules = {op.inputs[k]: r for k, r in seen[key].items()}
        if rules:
            out[op.index] = rules
    return out


def inplace_candidates(g: Graph, bufs: list[_Buf], *, kernels: str = "reference",
                       rules: dict | None = None) -> dict[tuple[int, int], tuple]:
    """{(input id, output id): (d_min, d_max, op position)} for every op whose input dies at that op
    (TFLite-Micro lifetimes: its last step is the op's) and whose kernel has a rule. ``rules``:
    ``op_rules`` of the graph in its original order (``g`` may be reordered)."""
    life = {b.id: b for b in bufs}
    out = {}
    for op in g.ops:
        orig = op.attrs.get("orig_index", op.index)
        op_r = rules.get(orig) if rules is not None else op_rules_one(g, op, kernels)
        if not op_r or op.outputs[0] not in life or op.outputs[0] in g.inputs:
            continue
        y, step = op.outputs[0], op.index + 1
        for x, rule in op_r.items():
            bx = life.get(x)
            if bx is not None and bx.last == step and x not in g.outputs:
                out[(x, y)] = (rule.d_min, rule.d_max, op.index)
    return out


def op_rules_one(g: Graph, op: Op, kernels: str) -> dict[int, InplaceRule]:
    if len(op.outputs) != 1:
        return {}
    return {x: r for x in dict.fromkeys(op.inputs) if x != op.outputs[0] and not g.tensors[x].is_const
            for r in [inplace_rule(g, op, x, kernels=kernels)] if r is not None}


def place(bufs: list[_Buf], order: list[int], pairs: dict, *, align: int = ALIGN) -> dict[int, int]:
    """Place ``bufs`` (indices in ``order``) first-fit at the lowest aligned offset; see the module doc.

    Each placed buffer alive at the same time forbids the start offsets ``[off - size_b + 1, off + size)``;
    an in-place partner's rule removes the allowed distances from that interval."""
    n = len(bufs)
    index = {b.id: k for k, b in enumerate(bufs)}
    off = [-1] * n
    partners: list[list[tuple]] = [[] for _ in range(n)]
    for (x, y), (d_min, d_max, _) in pairs.items():
        kx, ky = index[x], index[y]
        # y placed after x: allowed start offsets of y are [off_x - d_max, off_x - d_min]
        partners[ky].append((kx, -d_max if d_max is not None else None, -d_min))
        # x placed after y: allowed start offsets of x are [off_y + d_min, off_y + d_max]
        partners[kx].append((ky, d_min, d_max))
    alive_at: dict[int, list[int]] = {}
    for k in order:
        b = bufs[k]
        size_b = b.size
        if b.first == b.last:
            seen = alive_at.get(b.first, ())
        else:
            seen = set()
            for t in range(b.first, b.last + 1):
                seen.update(alive_at.get(t, ()))
        holes = {}
        for other, lo_rel, hi_rel in partners[k]:
            if off[other] >= 0:
                o = off[other]
                holes[other] = (None if lo_rel is None else o + lo_rel, None if hi_rel is None else o + hi_rel)
        intervals = []
        for p in seen:
            o = off[p]
            lo, hi = o - size_b + 1, o + bufs[p].size
            hole = holes.get(p)
            if hole is None:
                intervals.append((lo, hi))
                continue
            h_lo, h_hi = hole
            if h_lo is not None and lo < h_lo:
                intervals.append((lo, min(hi, h_lo)))
            if h_hi is not None and h_hi + 1 < hi:
                intervals.append((max(lo, h_hi + 1), hi))
        intervals.sort()
        cand = 0
        for lo, hi in intervals:
            if lo > cand:
                break
            if hi > cand:
                cand = -(-hi // align) * align
        off[k] = cand
        for t in range(b.first, b.last + 1):
            alive_at.setdefault(t, []).append(k)
    return {b.id: off[k] for k, b in enumerate(bufs)}


def placement_order(bufs: list[_Buf], pairs: dict, how: str) -> list[int]:
    idx = list(range(len(bufs)))
    if how == "size":
        return sorted(idx, key=lambda k: (-bufs[k].size, bufs[k].first, k))
    if how == "size-late":  # equal sizes: the later tensor first, so inputs stack above their outputs
        return sorted(idx, key=lambda k: (-bufs[k].size, -bufs[k].first, -k))
    if how == "first":
        return sorted(idx, key=lambda k: (bufs[k].first, -bufs[k].size, k))
    if how == "last":  # backwards in time: an input is placed after its output, at d_min above it
        return sorted(idx, key=lambda k: (-bufs[k].first, -bufs[k].size, -k))
    if how == "area":
        return sorted(idx, key=lambda k: (-bufs[k].size * (bufs[k].last - bufs[k].first + 1), k))
    if how == "chains":  # in-place chains stay together: the chain with the largest member first
        pos = {b.id: k for k, b in enumerate(bufs)}
        parent = list(idx)

        def find(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a
        for x, y in pairs:
            if x in pos and y in pos:
                parent[find(pos[x])] = find(pos[y])
        biggest: dict[int, int] = {}
        for k in idx:
            r = find(k)
            biggest[r] = max(biggest.get(r, 0), bufs[k].size)
        return sorted(idx, key=lambda k: (-biggest[find(k)], find(k), bufs[k].first, k))
    raise ValueError(f"unknown placement order {how!r}; known: {', '.join(PLACEMENTS)}")


# ---- evaluation and the planner ------------------------------------------------------------------

_CONTROL_FLOW = {"IF", "WHILE", "CALL_ONCE", "CALL"}


def _head_with(pbufs: list, offsets: dict[int, int]) -> int:
    """The head GreedyMemoryPlanner builds around these offline offsets: ``pbufs`` is
    ``planned_buffers`` of the graph; buffers without an offset (kernel scratch buffers) are placed
    online, largest first (ties: later added first), first-fit among the buffers alive with them."""
    head = 0
    fixed_at: dict[int, list[tuple[int, int]]] = {}
    online = [k for k, b in enumerate(pbufs) if b.id < 0 or b.id not in offsets]
    for b in pbufs:
        o = offsets.get(b.id) if b.id >= 0 else None
        if o is None:
            continue
        head = max(head, o + b.size)
        if online:
            for t in range(b.first, b.last + 1):
                fixed_at.setdefault(t, []).append((o, o + b.size))
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last) of online buffers
    for k in sorted(online, key=lambda k: (-pbufs[k].size, -k)):
        b = pbufs[k]
        near = {iv for t in range(b.first, b.last + 1) for iv in fixed_at.get(t, ())}
        near |= {(o, e) for o, e, f, la in placed if not (f > b.last or b.first > la)}
        cand = 0
        for o, e in sorted(near):
            if o - cand >= b.size:
                break
            cand = max(cand, e)
        placed.append((cand, cand + b.size, b.first, b.last))
        head = max(head, cand + b.size)
    return head


def _estimate(go: Graph, same_graph_estimate, head: int, offsets: dict[int, int]):
    """The arena estimate with these offline offsets. With an estimate of the same graph (same operator
    order) only the head changes: ``max(align(head) + align(tail), phase_bytes)``, as predict_tflm_arena
    computes it; otherwise the full prediction."""
    if same_graph_estimate is None:
        return predict_tflm_arena(go, offline_offsets=offsets)
    e = same_graph_estimate
    up = lambda n: -(-n // ALIGN) * ALIGN  # noqa: E731
    total = max(up(head) + up(e.tail_bytes), e.phase_bytes)
    return replace(e, head_bytes=head, total_bytes=total, offsets={}, breakdown={})


def plannable(g: Graph) -> str | None:
    """Why ``g`` cannot get an offline plan, or None."""
    if g.meta.get("subgraphs", 1) > 1:
        return f"{g.meta['subgraphs']} subgraphs (only single-subgraph models are planned offline)"
    flow = sorted({op.attrs.get("opcode", "") for op in g.ops} & _CONTROL_FLOW)
    if flow:
        return f"control-flow operator(s) {', '.join(flow)}"
    if not all("opcode" in op.attrs for op in g.ops):
        return "ops without attrs['opcode'] (not a TFLite graph)"
    return None


MAX_WORK = 36_000  # ops x placements tried per graph: every candidate up to ~1,500 ops, then fewer orders


def plan_graph(g: Graph, *, kernels: str = "reference", orders: bool = True,
               placements: tuple[str, ...] = PLACEMENTS, max_work: int = MAX_WORK,
               order: list[int] | None = None) -> OfflinePlan:
    """The smallest offline plan found for ``g`` (see the module doc). Raises PlanningError if the graph
    cannot be planned offline; the result never predicts more than TFLite-Micro's own plan.

    ``max_work`` bounds ops x placements evaluated (deterministically: the same graph always gets the
    same candidates): the original order always gets every placement; other operator orders are tried
    while the bound allows (a 5,000-op graph: the original order only). ``order``: plan this operator
    order only (original op indices, topological) instead of searching."""
    t0 = time.perf_counter()
    why = plannable(g)
    if why:
        raise PlanningError(f"no offline plan: {why}")
    own = predict_tflm_arena(g)
    own_offsets = {tid: off for tid, off in own.offsets.items() if tid >= 0}
    identity = list(range(len(g.ops)))
    rules = op_rules(g, kernels=kernels)
    # within one operator order the tail and the prepare/planning temporaries are fixed, so the head
    # ranks the placements; across orders the predicted totals are compared, then the heads (ties:
    # the earlier order, TFLite-Micro's own first)
    best = (own.total_bytes, own.head_bytes, 0, "original order, TFLite-Micro's own placement", identity,
            own_offsets, {}, own)
    n_cand = 1
    n_orders = max(1, max_work // max(1, len(g.ops) * len(placements)))
    work = 0
    tried = candidate_orders(g) if orders and n_orders > 1 else {"original": identity}
    if order is not None:
        if sorted(order) != identity or not is_topological(g, order):
            raise PlanningError("the operator order given is not a topological order of the graph's ops")
        tried, n_orders = {"given" if order != identity else "original": list(order)}, 1
        if order != identity:  # TFLite-Micro's own plan is for the original order: not a candidate
            best = (float("inf"), float("inf")) + best[2:]
    for rank, (oname, order) in enumerate(list(tried.items())[:n_orders]):
        go = reorder(g, order) if order != identity else g
        pbufs = planned_buffers(go)
        bufs = [_Buf(b.id, b.size, b.first, b.last) for b in pbufs if b.id >= 0]
        pairs = inplace_candidates(go, bufs, rules=rules)
        top = None
        for how in placements:
            offsets = place(bufs, placement_order(bufs, pairs, how), pairs)
            head = _head_with(pbufs, offsets)
            n_cand += 1
            if top is None or head < top[0]:
                top = (head, how, offsets)
        est = _estimate(go, own if order == identity else None, top[0], top[2])
        if (est.total_bytes, est.head_bytes, rank) < best[:3]:
            best = (est.total_bytes, est.head_bytes, rank, f"{oname} order, {top[1]} placement", order, top[2],
                    pairs, est)
        work += len(g.ops) * len(placements)
    best = _restarts(g, best, max(0, (max_work - work) // max(1, len(g.ops))), n_cand)
    n_cand = best[-1]
    best = best[:-1]
    _, _, _, strategy, order, offsets, pairs, est = best
    go = reorder(g, order) if order != identity else g
    derived = est.total_bytes if pairs else None  # None: TFLite-Micro's own placement kept
    est = predict_tflm_arena(go, offline_offsets=offsets)  # breakdown and notes for the plan chosen
    assert derived is None or est.total_bytes == derived, (est.total_bytes, derived)
    inplace = _overlapping_pairs(go, offsets, pairs)
    return OfflinePlan(offsets=offsets, op_order=order, head_bytes=est.head_bytes, arena_bytes=est.total_bytes,
                       tflm_head_bytes=own.head_bytes, tflm_arena_bytes=own.total_bytes, n_tensors=len(g.tensors),
                       kernels=kernels, inplace=inplace, strategy=strategy, candidates=n_cand,
                       planning_s=time.perf_counter() - t0, notes=list(est.notes))


RESTARTS = 48


def _restarts(g: Graph, best: tuple, budget: int, n_cand: int) -> tuple:
    """Seeded random placement orders on the best operator order (the first-fit greedy is myopic: a
    perturbed order often packs tighter); at most ``min(RESTARTS, budget)`` of them. Deterministic."""
    import random

    _, _, rank, strategy, order, offsets, pairs, est = best
    k_max = min(RESTARTS, budget)
    if k_max <= 0 or not pairs:
        return best + (n_cand,)
    go = reorder(g, order) if order != list(range(len(g.ops))) else g
    pbufs = planned_buffers(go)
    bufs = [_Buf(b.id, b.size, b.first, b.last) for b in pbufs if b.id >= 0]
    rng = random.Random(0)
    top = (_head_with(pbufs, offsets), offsets, None)
    for k in range(k_max):
        noise = [rng.random() for _ in bufs]
        if k % 3 == 0:
            key = lambda i, noise=noise: -bufs[i].size * (1 + 0.5 * noise[i])  # noqa: E731
        elif k % 3 == 1:
            key = lambda i, noise=noise: (-bufs[i].size, noise[i])  # noqa: E731
        else:
            key = lambda i, noise=noise: -bufs[i].first - 3 * noise[i]  # noqa: E731
        cand = place(bufs, sorted(range(len(bufs)), key=key), pairs)
        head = _head_with(pbufs, cand)
        if head < top[0]:
            top = (head, cand, k)
    n_cand += k_max
    if top[2] is None:
        return best + (n_cand,)
    est2 = _estimate(go, est, top[0], top[1])
    if (est2.total_bytes, est2.head_bytes) >= (est.total_bytes, est.head_bytes):
        return best + (n_cand,)
    name = strategy.split(",")[0] + f", random placement order #{top[2]}"
    return (est2.total_bytes, est2.head_bytes, rank, name, order, top[1], pairs, est2, n_cand)


def _overlapping_pairs(go: Graph, offsets: dict[int, int], pairs: dict) -> list[InplacePair]:
    out = []
    for (x, y), (d_min, d_max, op_pos) in pairs.items():
        sx, sy = go.tensors[x].nbytes, go.tensors[y].nbytes
        ox, oy = offsets[x], offsets[y]
        if ox < oy + sy and oy < ox + sx:
            op = go.ops[op_pos]
            out.append(InplacePair(op.attrs.get("orig_index", op.index), op.attrs.get("opcode", op.kind), x, y,
                                   InplaceRule(d_min, d_max, op.attrs.get("opcode", op.kind))))
    return sorted(out, key=lambda p: p.op)
