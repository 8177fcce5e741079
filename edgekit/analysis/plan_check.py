"""The static check of an offline memory plan (``check_plan``), independent of the placement code
in ``analysis.offline_plan``: offsets aligned and non-negative, every planned tensor placed, and no
two tensors alive together overlapping unless they are an op's dying input and its output at a
distance the kernel's in-place rule (``analysis.inplace_rules``) allows."""

from __future__ import annotations

from edgekit.analysis.inplace_rules import inplace_rule
from edgekit.analysis.op_orders import is_topological, reorder
from edgekit.analysis.tflm_arena import ALIGN, planned_buffers
from edgekit.graph.ir import Graph


def check_plan(g: Graph, offsets: dict[int, int], op_order: list[int] | None = None, *,
               kernels: str = "reference", partial: bool = False) -> list[str]:
    """Problems of an offline plan for ``g`` run in ``op_order`` (empty list: sound).

    Independent of the placement: lifetimes from ``tflm_arena.planned_buffers``, rules from
    ``inplace_rules.inplace_rule``. Every planned tensor must have a 16-aligned, non-negative offset;
    constants must have none; two tensors alive at the same step may share bytes only if one is an
    input of op *i* whose last use is op *i* and the other is that op's output, and their distance is
    allowed by the op's rule. ``partial``: tensors without an offset are fine (TFLite-Micro places them
    around the others, as for an entry with -1s); the ones given are still checked."""
    problems: list[str] = []
    order = list(range(len(g.ops))) if op_order is None else list(op_order)
    if sorted(order) != list(range(len(g.ops))):
        return [f"the operator order is not a permutation of the {len(g.ops)} ops"]
    if not is_topological(g, order):
        problems.append("the operator order runs an op before the producer of one of its inputs")
    go = reorder(g, order)
    bufs = planned_buffers(go)
    planned = {b.id: b for b in bufs if b.id >= 0}
    for tid, off in offsets.items():
        if tid not in planned:
            what = "a constant" if 0 <= tid < len(g.tensors) and g.tensors[tid].is_const else "not planned"
            problems.append(f"tensor {tid} has offset {off} but is {what}")
        elif off < 0 or off % ALIGN:
            problems.append(f"tensor {tid} ({g.tensors[tid].name}) at offset {off}: not a non-negative "
                            f"multiple of {ALIGN}")
    missing = [tid for tid in planned if tid not in offsets]
    if missing and not partial:
        problems.append(f"{len(missing)} planned tensor(s) without an offset (first: {missing[0]})")
    if problems:
        return problems
    planned = {tid: b for tid, b in planned.items() if tid in offsets}
    alive_at: dict[int, list[int]] = {}
    for b in planned.values():
        for t in range(b.first, b.last + 1):
            alive_at.setdefault(t, []).append(b.id)
    for b in planned.values():
        for pid in alive_at.get(b.first, ()):
            if pid == b.id:
                continue
            p = planned[pid]
            if p.first > b.first or (p.first == b.first and pid > b.id):
                continue  # checked from p's side
            ob, op_ = offsets[b.id], offsets[pid]
            if ob < op_ + p.size and op_ < ob + b.size:  # aligned sizes, as TFLite-Micro plans them
                why = _overlap_allowed(go, pid, b.id, op_ - ob, kernels)
                if why:
                    problems.append(why)
    return problems


def _overlap_allowed(go: Graph, x: int, y: int, d: int, kernels: str) -> str | None:
    """None if ``y`` may overlap ``x`` at ``d = off_x - off_y`` (x the input dying where y is made)."""
    tx, ty = go.tensors[x], go.tensors[y]
    what = f"tensors {x} ({tx.name}) and {y} ({ty.name}) are alive together and overlap (distance {d} B)"
    ops = [op for op in go.ops if y in op.outputs]
    if not ops:
        return what + ": the second is not produced by an op"
    op = ops[0]
    if x not in op.inputs or x in go.outputs:
        return what + f": not an input dying at {op.attrs.get('opcode', op.kind)} #{op.index}"
    last = max((o.index for o in go.ops if x in o.inputs), default=-1)
    if last != op.index:
        return what + f": {tx.name} is still read after op #{op.index}"
    rule = inplace_rule(go, op, x, kernels=kernels)
    if rule is None:
        return what + f": {op.attrs.get('opcode', op.kind)} has no in-place rule ({kernels} kernels)"
    if not rule.allows(d):
        bound = f"[{rule.d_min}, {rule.d_max}]" if rule.d_max is not None else f">= {rule.d_min}"
        return what + f": {rule.kernel} allows a distance {bound} B"
    return None
