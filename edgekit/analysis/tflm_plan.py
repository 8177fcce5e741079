"""TFLite-Micro's memory plan: which buffers it plans, their lifetimes, and its greedy planner.

- ``planned_buffers(graphs, requests, unplanned)`` replays AllocationInfoBuilder
  (micro_allocation_info.cc): one AllocationInfo per tensor of every subgraph, then one per
  scratch-buffer request; a tensor is planned when it has no data in the flatbuffer, is not a
  variable, has a size and no kernel pointed it elsewhere in Prepare (VAR_HANDLE's output).
  Lifetimes come from MarkAllocationLifetimes: an "allocation scope" counter starts at 0 with
  the main subgraph's inputs, each op opens a new scope (creating its outputs, using its
  inputs), a control-flow op (IF, WHILE, CALL_ONCE) opens one more scope per subgraph it calls
  and marks that subgraph there, recursively; a scratch buffer lives from its op's scope to
  the scope after that op's subgraphs; subgraph outputs live to the subgraph's end.
- ``tflm_greedy_plan(sizes, firsts, lasts, offline)``: GreedyMemoryPlanner (greedy_memory_planner.cc),
  exactly, offline-planned buffers (an ``OfflineMemoryAllocation`` entry) included.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.graph.ir import Graph


@dataclass
class PlannedBuffer:
    id: int  # tensor id, or -(k+1) for the k-th scratch buffer
    size: int  # aligned to 16
    first: int
    last: int
    subgraph: int = 0


@dataclass(frozen=True)
class ScratchRequest:
    bytes: int
    subgraph: int
    node: int


def _up(n: int, a: int = 16) -> int:
    return (n + a - 1) // a * a


def called_subgraphs(op) -> list[int]:
    """The subgraphs a control-flow op invokes, in the order MarkSubgraphLifetimesIfNecessary
    visits them (IF: then, else; WHILE: cond, body; CALL_ONCE: init)."""
    o = op.attrs.get("options") or {}
    code = op.attrs.get("opcode")
    keys = {"IF": ("thenSubgraphIndex", "elseSubgraphIndex"), "WHILE": ("condSubgraphIndex", "bodySubgraphIndex"),
            "CALL_ONCE": ("initSubgraphIndex",)}.get(code, ())
    return [int(o.get(k, 0)) for k in keys]


def planned_buffers(graphs: list[Graph] | Graph, requests: list[ScratchRequest] = (),
                    tensor_bytes=None, unplanned: set = frozenset()) -> list[PlannedBuffer]:
    """The buffers TFLite-Micro plans, in AddBuffer order, with its lifetimes.

    ``graphs``: the main graph and its other subgraphs in file order (or one Graph: its
    ``subgraphs`` are used); ``tensor_bytes(t)``: the runtime's size of a tensor;
    ``unplanned``: (subgraph, tensor id) pairs a kernel gave memory of its own.
    """
    if isinstance(graphs, Graph):
        graphs = [graphs, *graphs.subgraphs]
    if tensor_bytes is None:
        from edgekit.analysis.tflm_kernels import nbytes as tensor_bytes
    first: dict = {}
    last: dict = {}
    req_first = [-1] * len(requests)
    req_last = [-1] * len(requests)
    scope = 0

    def created(key, s):
        if first.get(key, -1) == -1:
            first[key] = s

    def mark(k: int, depth: int = 0) -> None:
        nonlocal scope
        g = graphs[k]
        for t in g.inputs:
            created((k, t), scope)
            last[(k, t)] = scope
        for i, op in enumerate(g.ops):
            scope += 1
            for t in op.outputs:
                created((k, t), scope)
            start = scope
            for sub in called_subgraphs(op):
                if 0 <= sub < len(graphs) and depth < 16:
                    scope += 1
                    mark(sub, depth + 1)
            for t in op.inputs:
                last[(k, t)] = scope
            for t in op.outputs:
                last[(k, t)] = scope
            for r, req in enumerate(requests):
                if req.node == i and req.subgraph == k:
                    if req_first[r] == -1:
                        req_first[r] = start
                    req_last[r] = scope
        for t in g.outputs:
            created((k, t), scope)
            last[(k, t)] = scope

    mark(0)
    bufs = []
    for k, g in enumerate(graphs):
        for t in g.tensors:
            n = tensor_bytes(t)
            if t.is_const or t.is_variable or n == 0 or (k, t.id) in unplanned:
                continue
            bufs.append(PlannedBuffer(t.id, _up(n), first.get((k, t.id), -1), last.get((k, t.id), -1), k))
    for r, req in enumerate(requests):
        bufs.append(PlannedBuffer(-(r + 1), _up(req.bytes), req_first[r], req_last[r], req.subgraph))
    return bufs


def tflm_greedy_plan(sizes: list[int], firsts: list[int], lasts: list[int],
                     offline: list[int | None] | None = None) -> tuple[list[int], int]:
    """TFLite-Micro's GreedyMemoryPlanner (greedy_memory_planner.cc), exactly.

    Buffers are given in the order AddBuffer was called; sizes must already be aligned.
    Returns (offsets, arena bytes). ``offline``: per buffer, its offline-planned offset (the
    ``OfflineMemoryAllocation`` metadata) or None. CalculateOffsetsIfNeeded puts the offline buffers
    first, in AddBuffer order, at their given offsets (no check of any kind); the others follow, from
    the tail (reversed insertion order), sorted by a stable descending bubble sort, so equal sizes are
    placed latest-added first. Each of those goes at the first gap (in offset order) between buffers
    whose lifetimes overlap its own that is large enough.
    """
    n = len(sizes)
    if n == 0:
        return [], 0
    offline = offline or [None] * n
    fixed = [i for i in range(n) if offline[i] is not None]
    online = sorted((i for i in range(n - 1, -1, -1) if offline[i] is None), key=lambda i: -sizes[i])
    offsets = [0] * n
    # The planner walks its offset-sorted list of placed buffers and skips those not alive with the new
    # one; walking only the ones alive with it (found through a per-step index), sorted by offset, gives
    # the same offset (among equal offsets the order does not change the result) in far less time.
    alive_at: dict[int, list[int]] = {}
    for b in fixed + online:
        f, la, s = firsts[b], lasts[b], sizes[b]
        if offline[b] is not None:
            cand = offline[b]
        else:
            near = alive_at.get(f, []) if f == la else {p for t in range(f, la + 1) for p in alive_at.get(t, ())}
            cand = 0
            for p in sorted(near, key=offsets.__getitem__):
                if offsets[p] - cand >= s:
                    break  # the gap before p fits
                cand = max(cand, offsets[p] + sizes[p])
        offsets[b] = cand
        for t in range(f, la + 1):
            alive_at.setdefault(t, []).append(b)
    arena = max(offsets[i] + sizes[i] for i in range(n))
    return offsets, arena
