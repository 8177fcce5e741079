"""Channel layouts on an ATen fx graph: where a tensor's channels may be stored in another
order than the model computes them, and which order each producer must write.

The vocabulary (one *region* per connected group of channel shuffles):

- **shuffle**: a chain of single-user layout ops (permute, transpose, view, reshape, clone,
  channel_shuffle) from a 4-D tensor back to the same shape whose overall effect is a fixed
  channel permutation. Found by running the chain on a tensor of distinct indices, so any
  spelling (edgekit's rank-4 NHWC one, torchvision's 5-D view, ``aten.channel_shuffle``) counts.
- **moves**: ``cat``/``chunk``/``split``/``slice`` along channels, ``getitem``, shuffles;
  **carriers**: per-channel ops whose output channel c depends only on input channel c
  (activations, pools, depthwise convs, a flatten of N x C x 1 x 1);
- **sources**: convolutions (groups=1) whose output feeds the region: they can write their
  output channels in any order (permute weight rows and bias);
- **sinks**: convolutions (groups=1) and linear layers reading the region: they can read
  their input channels in any order (permute weight columns).

The *logical* tensor is what the model computes; the *storage* tensor is what the rewritten
graph holds. In storage a shuffle is dropped, and a ``chunk(k)`` right after a shuffle reads
every k-th stored channel (``S[j::k]``). Whether some choice of source orders makes this
exact is decided here, by simulation: every source channel gets an id, both programs are
run on ids, and each sink's destination set is matched between the two (a source channel
must land in the same sinks in both). For ShuffleNetV2 this always works: a channel that a
unit's branch will read in ``t`` units sits at a stored position whose number has ``t``
trailing zero bits, and the counts of both kinds are equal for every ``t`` (both count the
odd numbers m with ``m * 2**t`` in ``[n, 2n)``). The match is then checked channel by channel
at every sink; nothing is assumed.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np

_LAYOUT_OPS = {"permute", "transpose", "view", "_unsafe_view", "reshape", "clone", "contiguous", "alias",
               "channel_shuffle", "native_channel_shuffle", "pixel_shuffle"}
_CARRIERS = {"relu", "hardtanh", "clamp", "hardswish", "hardsigmoid", "sigmoid", "silu", "leaky_relu",
             "dropout", "clone", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "mean", "elu", "gelu",
             "relu6"}


def op_name(node) -> str:
    """``aten.conv2d.default`` -> ``conv2d``; ``operator.getitem`` -> ``getitem``."""
    if node.op != "call_function":
        return ""
    if node.target is operator.getitem:
        return "getitem"
    name = getattr(node.target, "__name__", "") or ""
    return name.split(".")[0]


def shape(node) -> tuple[int, ...] | None:
    tm = node.meta.get("tensor_meta")
    return tuple(int(d) for d in tm.shape) if tm is not None and hasattr(tm, "shape") else None


@dataclass
class Shuffle:
    start: object  # the node whose output the shuffle permutes
    nodes: list  # the chain, in order; nodes[-1] is the shuffled tensor
    perm: np.ndarray  # logical output channel c = input channel perm[c]


def _run_chain(nodes, x):
    """Run a single-input chain of ATen layout ops on ``x`` (each node's first arg is the previous one)."""
    import torch

    val = x
    for n in nodes:
        args = [val if a is n.args[0] else a for a in n.args]
        with torch.no_grad():
            val = n.target(*args, **n.kwargs)
    return val


def find_shuffles(gm) -> list[Shuffle]:
    """Every channel permutation spelled as a chain of layout ops (longest chain first wins)."""
    import torch

    found, used = [], set()
    for node in gm.graph.nodes:
        if node in used or op_name(node) not in _LAYOUT_OPS or not node.args:
            continue
        start = node.args[0]
        shp = shape(start) if hasattr(start, "meta") else None
        if shp is None or len(shp) != 4 or (op_name(start) in _LAYOUT_OPS and len(start.users) == 1):
            continue
        chain, cur, best = [], node, None
        while cur is not None and op_name(cur) in _LAYOUT_OPS:
            chain.append(cur)
            if shape(cur) == shp and op_name(cur) not in ("clone", "contiguous", "alias"):
                best = list(chain)
            users = list(cur.users)
            cur = users[0] if len(users) == 1 and users[0].args and users[0].args[0] is cur else None
        if best is None:
            continue
        n, c, h, w = shp
        idx = torch.arange(n * c * h * w, dtype=torch.float64).reshape(shp)
        try:
            out = _run_chain(best, idx)
        except Exception:
            continue
        perm = (out[0, :, 0, 0] // (h * w)).long() % c
        if tuple(out.shape) != shp or not torch.equal(out, idx[:, perm]) or torch.equal(perm, torch.arange(c)):
            continue
        found.append(Shuffle(start, best, perm.numpy()))
        used.update(best)
    return found


# ---------------------------------------------------------------------------- node classes

def _arg(node, i, name, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _channel_dim(node, i=2, name="dim", default=0) -> int | None:
    d = _arg(node, i, name, default)
    base = node.args[0][0] if op_name(node) == "cat" else node.args[0]
    shp = shape(base)
    if not isinstance(d, int) or shp is None:
        return None
    return d % len(shp)


def conv_groups(node) -> int | None:
    """groups of a 2-D conv node (aten.conv2d / aten.convolution), None for anything else."""
    name = op_name(node)
    if name == "conv2d":
        return int(_arg(node, 6, "groups", 1))
    if name == "convolution" and not _arg(node, 6, "transposed", False):
        return int(_arg(node, 8, "groups", 1))
    return None


def is_dense_conv(node) -> bool:
    shp = shape(node)
    return conv_groups(node) == 1 and shp is not None and len(shp) == 4 and node.args[1].op == "get_attr"


def is_depthwise(node) -> bool:
    g = conv_groups(node)
    if g is None or g <= 1:
        return False
    shp_in, shp = shape(node.args[0]), shape(node)
    return (shp_in is not None and shp is not None and shp_in[1] == g == shp[1]
            and node.args[1].op == "get_attr")


def is_sink(node, value) -> bool:
    if not node.args or node.args[0] is not value:
        return False
    if is_dense_conv(node):
        return True
    shp = shape(value)
    return op_name(node) == "linear" and shp is not None and len(shp) == 2 and node.args[1].op == "get_attr"


def is_carrier(node, value) -> bool:
    if not node.args or node.args[0] is not value or any(a is value for a in node.args[1:]):
        return False
    name, shp_in, shp = op_name(node).rstrip("_"), shape(value), shape(node)  # relu_ computes as relu
    if shp_in is None or shp is None or shp[:2] != shp_in[:2]:
        return False
    if is_depthwise(node):
        return True
    if name == "mean":
        dims = {int(d) % len(shp_in) for d in _arg(node, 1, "dim", [])}
        return dims and not dims & {0, 1}
    if name in ("flatten", "view", "reshape", "_unsafe_view"):
        return len(shp_in) == 4 and shp_in[2:] == (1, 1) and shp == shp_in[:2]
    if name in ("hardtanh", "clamp", "leaky_relu", "elu") or name in _CARRIERS:
        return all(not hasattr(a, "op") for a in node.args[1:])
    return False


def is_move(node, value) -> str | None:
    """'cat' | 'split' | 'slice' when ``node`` moves channels of ``value`` along dim 1."""
    name = op_name(node)
    if name == "cat" and _channel_dim(node, 1, "dim", 0) == 1:
        return "cat"
    if node.args and node.args[0] is value:
        if name in ("chunk", "split", "split_with_sizes") and _channel_dim(node) == 1:
            return "split" if all(op_name(u) == "getitem" for u in node.users) else None
        if name == "slice" and _channel_dim(node, 1, "dim", 0) == 1 and _arg(node, 4, "step", 1) == 1:
            return "slice"
        if name == "narrow" and _channel_dim(node, 1, "dim", 0) == 1:
            return "slice"
    return None


# ---------------------------------------------------------------------------- regions

class NotSolvable(Exception):
    """The region's layout cannot be made exact without a gather; the reason is the message."""


@dataclass
class Region:
    shuffles: dict = field(default_factory=dict)  # end node -> Shuffle
    values: set = field(default_factory=set)  # nodes whose channels may be stored permuted
    splits: set = field(default_factory=set)  # chunk/split nodes of the region
    sources: set = field(default_factory=set)  # dense convs writing into the region
    fixed: set = field(default_factory=set)  # values entering the region in logical order
    sinks: set = field(default_factory=set)  # (node) reading a region value as args[0]


def grow_region(seed: Shuffle, by_start: dict, by_end: dict) -> Region:
    """The connected region of ``seed``: every value whose channel order the rewrite may change."""
    reg = Region()
    work = [seed.nodes[-1]]
    while work:
        v = work.pop()
        if v in reg.values:
            continue
        reg.values.add(v)
        work += _producer_side(v, reg, by_end)
        work += _consumer_side(v, reg, by_start)
    return reg


def _producer_side(v, reg: Region, by_end: dict) -> list:
    if v in by_end:
        reg.shuffles[v] = by_end[v]
        return [by_end[v].start]
    name = op_name(v)
    if name == "getitem" and op_name(v.args[0]) in ("chunk", "split", "split_with_sizes"):
        reg.splits.add(v.args[0])
        return [v.args[0].args[0]]
    if name == "cat":
        return list(v.args[0])
    if name in ("slice", "narrow") or (v.args and hasattr(v.args[0], "op") and is_carrier(v, v.args[0])):
        return [v.args[0]]
    if is_dense_conv(v):
        reg.sources.add(v)
    else:
        reg.fixed.add(v)
    return []


def _consumer_side(v, reg: Region, by_start: dict) -> list:
    out = []
    for u in v.users:
        sh = by_start.get((v, u))
        if sh is not None:
            out.append(sh.nodes[-1])
            continue
        kind = is_move(u, v)
        if kind == "cat":
            out.append(u)
        elif kind == "split":
            reg.splits.add(u)
            out += list(u.users)
        elif kind == "slice" or is_carrier(u, v):
            out.append(u)
        elif is_sink(u, v):
            reg.sinks.add(u)
        else:
            hint = " (fold BatchNorm first: edgekit.passes.fold_bn)" if "batch_norm" in op_name(u) else ""
            raise NotSolvable(f"{u.name} ({op_name(u) or u.op}) reads {v.name}, a shuffled tensor, and cannot "
                              f"take its channels in another order{hint}")
    return out


# ---------------------------------------------------------------------------- simulation

def _simulate(gm, reg: Region, strided: set) -> tuple[dict, dict, dict]:
    """Run the logical and the storage program on channel ids; return (logical, storage, owner)."""
    L, S, owner = {}, {}, {}
    next_id = 0
    for node in gm.graph.nodes:
        if node in reg.splits:
            L[node], S[node] = _split(node, L[node.args[0]], S[node.args[0]], node in strided)
            continue
        if node not in reg.values:
            continue
        name = op_name(node)
        if node in reg.sources or node in reg.fixed:
            c = shape(node)[1]
            ids = np.arange(next_id, next_id + c)
            next_id += c
            owner[node] = ids
            L[node], S[node] = ids, ids
        elif node in reg.shuffles:
            sh = reg.shuffles[node]
            L[node], S[node] = L[sh.start][sh.perm], S[sh.start]
        elif name == "cat":
            L[node] = np.concatenate([L[a] for a in node.args[0]])
            S[node] = np.concatenate([S[a] for a in node.args[0]])
        elif name == "getitem":
            L[node], S[node] = L[node.args[0]][node.args[1]], S[node.args[0]][node.args[1]]
        elif name in ("slice", "narrow"):
            lo, hi = _bounds(node, len(L[node.args[0]]))
            L[node], S[node] = L[node.args[0]][lo:hi], S[node.args[0]][lo:hi]
        else:  # a carrier
            L[node], S[node] = L[node.args[0]], S[node.args[0]]
    return L, S, owner


def _bounds(node, c: int) -> tuple[int, int]:
    if op_name(node) == "narrow":
        start = int(_arg(node, 2, "start")) % c
        return start, start + int(_arg(node, 3, "length"))
    start, end = _arg(node, 2, "start", 0), _arg(node, 3, "end", None)
    return slice(start, end).indices(c)[:2]


def split_sizes(node, c: int) -> list[int]:
    name = op_name(node)
    if name == "chunk":
        k = int(node.args[1])
        size = -(-c // k)
        sizes = [size] * (c // size) + ([c % size] if c % size else [])
    elif name == "split":
        size = int(node.args[1])
        sizes = [size] * (c // size) + ([c % size] if c % size else [])
    else:
        sizes = [int(s) for s in node.args[1]]
    return sizes


def _split(node, lg, st, strided: bool):
    sizes = split_sizes(node, len(lg))
    edges = np.cumsum([0] + sizes)
    parts_l = [lg[a:b] for a, b in zip(edges[:-1], edges[1:])]
    if strided:
        k = len(sizes)
        parts_s = [st[j::k] for j in range(k)]
    else:
        parts_s = [st[a:b] for a, b in zip(edges[:-1], edges[1:])]
    return parts_l, parts_s


# ---------------------------------------------------------------------------- solving

@dataclass
class Layout:
    """What the rewrite does to one region; every permutation maps a stored position to the
    logical channel it holds."""

    region: Region
    strided: set  # split nodes that read every k-th stored channel
    rows: dict  # source conv -> output-channel permutation
    cols: dict  # sink (conv/linear) -> input-channel permutation
    carriers: dict  # depthwise conv -> channel permutation of its weight and bias


def solve(gm, reg: Region) -> Layout:
    """Choose every source's output order so that each sink reads the same channels in both
    programs; raise NotSolvable with the reason when no such order exists."""
    strided = {sp for sp in reg.splits if sp.args[0] in reg.shuffles and _equal_parts(sp)}
    L, S, owner = _simulate(gm, reg, strided)
    dest_l, dest_s = {}, {}
    for sink in reg.sinks:
        for i in L[sink.args[0]]:
            dest_l.setdefault(int(i), set()).add(sink.name)
        for i in S[sink.args[0]]:
            dest_s.setdefault(int(i), set()).add(sink.name)
    slot_to_label: dict[int, int] = {}
    for node, ids in owner.items():
        if node in reg.fixed:
            slot_to_label.update({int(i): int(i) for i in ids})
            continue
        slot_to_label.update(_match(node, ids, dest_l, dest_s))
    rows = {src: np.array([slot_to_label[int(i)] - int(owner[src][0]) for i in owner[src]])
            for src in reg.sources}
    cols = {sink: _positions(sink.name, L[sink.args[0]], S[sink.args[0]], slot_to_label) for sink in reg.sinks}
    carriers = {n: _positions(n.name, L[n.args[0]], S[n.args[0]], slot_to_label)
                for n in reg.values if n not in reg.shuffles and is_depthwise(n)}
    return Layout(reg, strided, rows, cols, carriers)


def _equal_parts(sp) -> bool:
    sizes = split_sizes(sp, shape(sp.args[0])[1])
    return len(sizes) > 1 and len(set(sizes)) == 1


def _match(node, ids, dest_l: dict, dest_s: dict) -> dict[int, int]:
    def key(i, dest):
        return tuple(sorted(dest.get(int(i), ())))

    labels = sorted(ids, key=lambda i: (key(i, dest_l), i))
    slots = sorted(ids, key=lambda i: (key(i, dest_s), i))
    if [key(i, dest_l) for i in labels] != [key(i, dest_s) for i in slots]:
        raise NotSolvable(f"the channels of {node.name} reach the convolutions after the shuffle in numbers "
                          f"no channel order of {node.name} can reproduce")
    return {int(s): int(lab) for s, lab in zip(slots, labels)}


def _positions(name: str, logical, storage, slot_to_label) -> np.ndarray:
    pos = {int(lab): p for p, lab in enumerate(logical)}
    held = [slot_to_label[int(s)] for s in storage]
    if sorted(held) != sorted(pos) or len(held) != len(pos):
        raise NotSolvable(f"{name} would read other channels than the model computes")
    return np.array([pos[lab] for lab in held])


def plan_layouts(gm) -> tuple[list[Layout], list[str]]:
    """Find the shuffles of ``gm`` (shapes from ShapeProp in ``meta['tensor_meta']``) and solve
    each region; regions that cannot be solved are left alone, with the reason."""
    shuffles = find_shuffles(gm)
    by_start = {(s.start, s.nodes[0]): s for s in shuffles}
    by_end = {s.nodes[-1]: s for s in shuffles}
    layouts, notes, done = [], [], set()
    for s in shuffles:
        if s.nodes[-1] in done:
            continue
        try:
            reg = grow_region(s, by_start, by_end)
            done |= set(reg.shuffles)
            layouts.append(solve(gm, reg))
        except NotSolvable as exc:
            done.add(s.nodes[-1])
            notes.append(f"shuffle at {s.nodes[-1].name} kept: {exc}")
    return layouts, notes
