"""Liveness on the Graph IR: per-op live bytes, the peak, and buffers for the planners.

A tensor produced by an op of kind ``view`` (reshape, flatten, split, getitem, ...)
aliases its input: it is not a new buffer, and it extends the lifetime of the buffer
it views. Everything resident at a step counts: the op's inputs and outputs and every
tensor held for a later residual add or concat.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.analysis.converter_facts import INPLACE_ELEMENTWISE
from edgekit.analysis.planners import Buffer
from edgekit.graph.ir import Graph

ALIAS_KINDS = {"view"}
# element-wise ops whose output may overwrite an input that dies at this op (same size)
INPLACE_KINDS = INPLACE_ELEMENTWISE


@dataclass
class Liveness:
    buffers: list[Buffer]  # one per non-alias activation tensor; Buffer.id == tensor id
    root: dict[int, int]  # tensor id -> id of the buffer it lives in
    live_bytes: list[int]  # per op index: bytes resident while the op runs
    peak_live_bytes: int
    peak_op: int | None


def alias_roots(g: Graph) -> dict[int, int]:
    root: dict[int, int] = {}
    for t in g.tensors:
        if not t.is_const:
            root[t.id] = t.id
    for op in g.ops:
        if op.kind in ALIAS_KINDS:
            src = [i for i in op.inputs if not g.tensors[i].is_const]
            if src:
                for o in op.outputs:
                    root[o] = root.get(src[0], src[0])
    return root


def liveness(g: Graph, *, inplace: bool = False) -> Liveness:
    """Lifetimes of activation buffers in execution order.

    With ``inplace``, an element-wise op writes its output into an input buffer that dies
    at that op and has the same size (a safe in-place rewrite), so the two merge.
    """
    n = len(g.ops)
    root = alias_roots(g)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for tid in g.inputs:
        if tid in root:
            first[root[tid]] = 0
            last[root[tid]] = max(last.get(root[tid], 0), 0)
    for op in g.ops:
        for tid in op.inputs:
            if tid in root:
                r = root[tid]
                first.setdefault(r, op.index)
                last[r] = max(last.get(r, op.index), op.index)
        for tid in op.outputs:
            if tid in root:
                r = root[tid]
                first[r] = min(first.get(r, op.index), op.index)
                last[r] = max(last.get(r, op.index), op.index)
    for tid in g.outputs:
        if tid in root:
            last[root[tid]] = max(n - 1, 0)
    if inplace:
        for op in g.ops:
            if op.kind not in INPLACE_KINDS or len(op.outputs) != 1:
                continue
            out = root.get(op.outputs[0])
            if out is None or out != op.outputs[0]:
                continue
            for tid in op.inputs:
                r = root.get(tid)
                if (r is not None and r != out and last.get(r) == op.index
                        and g.tensors[r].nbytes == g.tensors[out].nbytes and r not in g.outputs
                        and r not in [root.get(i) for i in g.inputs]):
                    # merge: the output lives in r's buffer
                    for k, v in root.items():
                        if v == out:
                            root[k] = r
                    last[r] = max(last[r], last.pop(out, op.index))
                    first.pop(out, None)
                    break
    buffers = [Buffer(id=r, size=g.tensors[r].nbytes, first=first[r], last=last[r], name=g.tensors[r].name)
               for r in sorted(first) if g.tensors[r].nbytes > 0]
    live = [0] * n
    for b in buffers:
        for i in range(b.first, b.last + 1):
            if i < n:
                live[i] += b.size
    if n == 0:
        peak = sum(b.size for b in buffers)
        return Liveness(buffers, root, live, peak, None)
    peak_op = max(range(n), key=lambda i: live[i])
    return Liveness(buffers, root, live, live[peak_op], peak_op)
