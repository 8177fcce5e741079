"""Which ops the converter runs in NHWC: litert-torch's layout partition, replayed on the IR.

litert_torch/_convert/fx_passes/optimize_layout_transposes_pass (layout_check.py,
layout_partitioners/min_cut.py) marks every fx node NHWC or not by a minimum cut: the model's
inputs and outputs and every op that cannot run in NHWC hang from the source, every op that must
(2-D conv, pooling, resizing) from the sink, with infinite capacity; each edge between ops costs
10 (9 after a ``mean``: a transpose after it is cheaper for the TFLite converter), and an op with
several users reaches them through one extra node (one transpose serves them all). An op *can*
run in NHWC when its output and its layout-sensitive inputs are 4-D and it has an NHWC rewriter
(element-wise ops, and ops whose dims the rewriter remaps: cat, softmax, mean/sum, slices).

The lowering uses the partition for those dim-remapping ops (they stay where the cut put them;
the TFLite optimizer only moves transposes through element-wise ops, which ``builder`` models
lazily). Ties go to NHWC, as the residual graph of the maximum flow leaves them on the sink side.
"""

from __future__ import annotations

from collections import deque

from edgekit.graph.ir import Graph
from edgekit.graph.kinds import SLICING_VIEWS

INF = 1 << 28
MUST = {"conv2d", "depthwise_conv2d", "conv_transpose", "max_pool", "avg_pool", "resize"}
CAN = {"add", "sub", "mul", "div", "relu", "relu6", "relu1", "clamp", "sigmoid", "tanh", "silu", "hard_swish",
       "hard_sigmoid", "gelu", "leaky_relu", "copy", "softmax", "log_softmax", "concat", "mean", "sum",
       "batch_norm", "abs", "neg", "exp", "sqrt", "rsqrt"}
TRANSPARENT = {"dropout", "dropout_", "detach", "alias", "getitem", "lift_fresh_copy"}


def _class(g: Graph, op, const_like: set[int]) -> str:
    """"must", "can" or "never" (NHWC)."""
    acts = [g.tensors[i] for i in op.inputs if not (g.tensors[i].is_const or i in const_like)]
    outs = [g.tensors[o] for o in op.outputs if g.tensors[o].numel > 0]
    four_d = bool(outs) and all(len(o.shape) == 4 for o in outs) and all(len(a.shape) == 4 for a in acts)
    aten = op.attrs.get("aten", "")
    if not four_d:
        return "never"
    if op.kind in MUST or (op.kind == "mean" and aten.lstrip("_").startswith("adaptive")):
        return "must"
    if op.kind in CAN or (op.kind == "view" and aten in SLICING_VIEWS):
        return "can"
    return "never"


def nhwc_ops(g: Graph, skip: set[int] = frozenset(), const_like: set[int] = frozenset()) -> set[int]:
    """Indices of the IR ops the converter's layout pass puts in NHWC."""
    cap: dict = {}
    source, sink = ("source",), ("sink",)

    def edge(a, b, c):
        cap.setdefault(a, {})[b] = cap.setdefault(a, {}).get(b, 0) + c
        cap.setdefault(b, {}).setdefault(a, 0)

    owner = _owners(g, skip)
    for op in g.ops:
        if op.index in skip or owner.get(op.index) != op.index:
            continue
        cls = _class(g, op, const_like)
        if cls == "never":
            edge(source, op.index, INF)
        elif cls == "must":
            edge(op.index, sink, INF)
    for tid in g.inputs:
        edge(source, ("in", tid), INF)
    edge(source, ("out",), INF)
    for node, users, cost in _uses(g, owner, skip, const_like):
        if len(users) > 1:
            edge(node, ("fanout", node), cost)
            edge(("fanout", node), node, cost)
            node = ("fanout", node)
        for u in users:
            edge(node, u, cost)
            edge(u, node, cost)
    reach = _residual_reach(cap, source, sink)
    return {n for n in cap if isinstance(n, int) and n not in reach}


def _owners(g: Graph, skip) -> dict[int, int]:
    """Each op's node: an op that only aliases its input (dropout, a folded BatchNorm) is its
    producer's node, as those ops are not in the converter's graph."""
    owner: dict[int, int] = {}
    for op in g.ops:
        owner[op.index] = op.index
        if op.kind == "view" and (op.attrs.get("aten") in TRANSPARENT or op.attrs.get("folded_bn")):
            src = [i for i in op.inputs if not g.tensors[i].is_const]
            p = g.tensors[src[0]].producer if src else None
            if p is not None:
                owner[op.index] = owner.get(p, p)
    return owner


def _uses(g: Graph, owner, skip, const_like):
    """(node, distinct user nodes, cut cost) for every node that produces activations."""
    nodes = {}
    for tid in g.inputs:
        nodes[("in", tid)] = [tid]
    for op in g.ops:
        if op.index not in skip and owner[op.index] == op.index:
            nodes[op.index] = list(op.outputs)
    for node, tids in nodes.items():
        users = []
        frontier = list(tids)
        while frontier:
            t = frontier.pop()
            if t in g.outputs and ("out",) not in users:
                users.append(("out",))
            for c in g.tensors[t].consumers:
                o = owner[c]
                if o == node and c != node:  # an aliasing op: look at its users
                    frontier.extend(g.ops[c].outputs)
                elif c not in skip and o not in users and o != node:
                    users.append(o)
        cost = 9 if isinstance(node, int) and g.ops[node].attrs.get("aten") == "mean" else 10
        if users and not (isinstance(node, int) and all(o in const_like for o in g.ops[node].outputs)):
            yield node, users, cost


def _residual_reach(cap: dict, source, sink) -> set:
    """Nodes reachable from the source in the residual graph of a maximum flow (Edmonds-Karp)."""
    flow: dict = {a: dict.fromkeys(bs, 0) for a, bs in cap.items()}
    while True:
        parent = {source: None}
        queue = deque([source])
        while queue and sink not in parent:
            a = queue.popleft()
            for b, c in cap[a].items():
                if b not in parent and c - flow[a][b] > 0:
                    parent[b] = a
                    queue.append(b)
        if sink not in parent:
            return set(parent)
        path, b = [], sink
        while parent[b] is not None:
            path.append((parent[b], b))
            b = parent[b]
        push = min(cap[a][b] - flow[a][b] for a, b in path)
        for a, b in path:
            flow[a][b] += push
            flow[b][a] -= push
