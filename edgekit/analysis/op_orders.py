"""Operator orders for a graph with branches: TFLite-Micro runs the operators in the flatbuffer's
order, so the offline planner (``analysis.offline_plan``) tries other topological orders — a
memory-greedy list schedule and depth-first orders that finish the larger or the smaller branch
first — and writes the best into the model with its plan."""

from __future__ import annotations

from dataclasses import replace

from edgekit.analysis.tflm_arena import ALIGN
from edgekit.graph.ir import Graph


def reorder(g: Graph, order: list[int]) -> Graph:
    """A copy of ``g`` whose ops run in ``order`` (original indices); tensors are shared, ops re-indexed,
    ``attrs["orig_index"]`` keeps where each came from."""
    ops = []
    for pos, i in enumerate(order):
        op = g.ops[i]
        ops.append(replace(op, index=pos, attrs={**op.attrs, "orig_index": op.attrs.get("orig_index", i)}))
    out = Graph(tensors=g.tensors, ops=ops, inputs=g.inputs, outputs=g.outputs, source_format=g.source_format,
                name=g.name, meta=dict(g.meta))
    return out


def _deps(g: Graph) -> tuple[list[set[int]], list[list[int]]]:
    """Producer ops of each op's inputs, and consumers of each op's outputs (op indices)."""
    producer = {}
    for op in g.ops:
        for t in op.outputs:
            producer[t] = op.index
    preds = [{producer[t] for t in op.inputs if t in producer} for op in g.ops]
    succs: list[list[int]] = [[] for _ in g.ops]
    for i, ps in enumerate(preds):
        for p in ps:
            succs[p].append(i)
    return preds, succs


def _act_sizes(g: Graph) -> list[int]:
    """Aligned bytes of each tensor in the arena (0 for constants)."""
    return [0 if t.is_const else -(-t.nbytes // ALIGN) * ALIGN for t in g.tensors]


def memory_greedy_order(g: Graph) -> list[int]:
    """List schedule: of the ready ops, run the one that grows live memory least (output bytes minus the
    bytes of inputs it is the last reader of); ties: the original order."""
    import heapq

    preds, succs = _deps(g)
    act, outs = _act_sizes(g), set(g.outputs)
    remaining_readers = {}
    for op in g.ops:
        for t in set(op.inputs):
            remaining_readers[t] = remaining_readers.get(t, 0) + 1
    waiting = [len(p) for p in preds]

    def delta(i: int) -> int:
        op = g.ops[i]
        freed = sum(act[t] for t in set(op.inputs) if remaining_readers.get(t) == 1 and t not in outs)
        return sum(act[t] for t in op.outputs) - freed

    ready = [(delta(i), i) for i in range(len(g.ops)) if waiting[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        d, i = heapq.heappop(ready)
        if d != delta(i):  # stale key: a sibling freed or kept an input meanwhile
            heapq.heappush(ready, (delta(i), i))
            continue
        order.append(i)
        for t in set(g.ops[i].inputs):
            remaining_readers[t] -= 1
        for s in succs[i]:
            waiting[s] -= 1
            if waiting[s] == 0:
                heapq.heappush(ready, (delta(s), s))
        # readers of inputs shared with ready ops changed: refresh lazily through the stale check
    return order


def depth_first_order(g: Graph, *, larger_first: bool = True) -> list[int]:
    """Post-order from the graph outputs: before an op, run the producers of its inputs, one branch to its
    end before the next (the branch with more activation bytes first, or last)."""
    preds, _ = _deps(g)
    act, outs = _act_sizes(g), set(g.outputs)
    weight: dict[int, int] = {}

    def branch_bytes(i: int) -> int:  # activation bytes produced by i and its ancestors (memoised)
        stack = [i]
        while stack:
            j = stack[-1]
            todo = [p for p in preds[j] if p not in weight]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if j not in weight:
                weight[j] = sum(act[t] for t in g.ops[j].outputs) + sum(weight[p] for p in preds[j])
        return weight[i]

    order: list[int] = []
    done: set[int] = set()
    sinks = [i for i in range(len(g.ops)) if all(t in outs or not g.tensors[t].consumers
                                                  for t in g.ops[i].outputs)]
    for s in sinks + list(range(len(g.ops))):
        stack = [(s, False)]
        while stack:
            j, expanded = stack.pop()
            if j in done:
                continue
            if expanded:
                done.add(j)
                order.append(j)
                continue
            stack.append((j, True))
            ps = sorted((p for p in preds[j] if p not in done), key=branch_bytes, reverse=not larger_first)
            stack.extend((p, False) for p in reversed(ps))
    return order


def candidate_orders(g: Graph) -> dict[str, list[int]]:
    """Distinct topological orders worth trying (the original first)."""
    orders = {"original": list(range(len(g.ops)))}
    if not _has_branches(g):
        return orders
    for name, fn in (("memory-greedy", memory_greedy_order),
                     ("depth-first-larger", lambda x: depth_first_order(x, larger_first=True)),
                     ("depth-first-smaller", lambda x: depth_first_order(x, larger_first=False))):
        order = fn(g)
        if len(order) == len(g.ops) and order not in orders.values():
            orders[name] = order
    return orders


def _has_branches(g: Graph) -> bool:
    return any(sum(1 for c in g.tensors[t].consumers) > 1 for op in g.ops for t in op.outputs)


def is_topological(g: Graph, order: list[int]) -> bool:
    produced = set(g.inputs) | {t.id for t in g.tensors if t.is_const}
    for i in order:
        op = g.ops[i]
        if any(t not in produced and g.tensors[t].producer is not None for t in op.inputs):
            return False
        produced.update(op.outputs)
    return True
