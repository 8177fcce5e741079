"""Views, copies, padding, concatenation and pixel shuffle.

- A view that keeps the data (dropout in eval, detach, a folded BatchNorm, an identical shape)
  is no op. A permute is no op either: it changes the pending permutation, and the TRANSPOSE
  appears where a later op needs the layout (the converter's transposes of a permute next to its
  own layout transposes cancel: conv -> permute(0, 2, 3, 1) -> LayerNorm has none).
- Any other view (reshape, flatten, (un)squeeze, unflatten) is a RESHAPE of the PyTorch layout.
- Slices are SLICE (STRIDED_SLICE with a step), in the NHWC layout when the tensor is held in it
  (the converter rewrites their dims); ``select`` is a SLICE whose squeeze waits for the next
  reshape.
- Constant padding is PAD in the layout the tensor is held in (the converter moves transposes
  through PAD: an F.pad between two NHWC convs is a PAD in NHWC, same_pad family).
- ``cat`` is CONCATENATION; ``pixel_shuffle`` is TRANSPOSE to NCHW and three RESHAPE/TRANSPOSE
  pairs (measured, pixel_shuffle family).
"""

from __future__ import annotations

from edgekit.analysis.lowering.builder import NHWC_TO_NCHW, Lowering, Val, compose, is_identity
from edgekit.graph.ir import Op
from edgekit.graph.kinds import SLICING_VIEWS, TRANSPOSING_VIEWS

ALIASES = {"dropout", "dropout_", "detach", "alias", "getitem", "contiguous", "lift_fresh_copy"}


def lower_view(lw: Lowering, op: Op) -> None:
    acts = lw.acts(op)
    if not acts or not op.outputs:
        return
    x_t, aten = acts[0], op.attrs.get("aten", "")
    outs = [lw.g.tensors[o] for o in op.outputs]
    if op.attrs.get("folded_bn") or aten in ALIASES or all(o.numel == 0 for o in outs):
        for o in op.outputs:
            lw.set(o, lw.val(x_t))
        return
    if aten in TRANSPOSING_VIEWS and op.attrs.get("perm") is not None:
        return _permute(lw, x_t, op.outputs[0], tuple(op.attrs["perm"]))
    if aten in SLICING_VIEWS:
        return _slices(lw, op, x_t)
    y = outs[0]
    if aten == "expand" and y.numel != lw.g.tensors[x_t].numel:
        return lw.not_modelled(op, "expand that broadcasts (BROADCAST_TO is not measured)")
    if tuple(y.shape) == tuple(lw.g.tensors[x_t].shape):
        lw.set(y.id, lw.val(x_t))
        return
    lw.set(y.id, lw.reshape(lw.logical(x_t), y.shape))


def _permute(lw: Lowering, x_t: int, y_t: int, perm: tuple[int, ...]) -> None:
    v = lw.val(x_t)
    if v.shape is not None:
        v = Val(lw.logical(x_t))
    new = compose(v.perm if v.perm is not None else tuple(range(len(perm))), perm)
    lw.set(y_t, Val(v.tid, None if is_identity(new) else new, None, new == NHWC_TO_NCHW))


def lower_copy(lw: Lowering, op: Op) -> None:
    """clone / contiguous / _to_copy: no op unless the dtype changes."""
    x_t = lw.acts(op)[0]
    if lw.g.tensors[x_t].dtype != lw.g.tensors[op.outputs[0]].dtype:
        return lw.not_modelled(op, "a dtype cast")
    lw.set(op.outputs[0], lw.val(x_t))


def _slices(lw: Lowering, op: Op, x_t: int) -> None:
    rank = len(lw.g.tensors[x_t].shape)
    dim = op.attrs.get("dim", 0) % rank
    src, layout = lw.held(op, x_t)
    pdim = layout.perm[dim] if layout.perm is not None else dim
    step = int(op.attrs.get("step", 1) or 1)
    select = op.attrs.get("aten") == "select"
    start = int(op.attrs.get("index", op.attrs.get("start", 0)) or 0) % max(lw.g.tensors[x_t].shape[dim], 1)
    for o in op.outputs:
        y = lw.g.tensors[o]
        if y.numel == 0:
            continue
        shape = list(lw.shape(src))
        shape[pdim] = 1 if select else y.shape[dim]
        begin = [0] * len(shape)
        begin[pdim] = start
        start += shape[pdim]
        out = lw.act(y.name, shape)
        if step != 1:
            end = [b + (d - 1) * (step if i == pdim else 1) + 1 for i, (b, d) in enumerate(zip(begin, shape))]
            strides = [step if i == pdim else 1 for i in range(len(shape))]
            ins = [src, lw.ints(begin, "begin"), lw.ints(end, "end"), lw.ints(strides, "strides")]
        else:
            ins = [src, lw.ints(begin, "begin"), lw.ints(shape, "size")]
        lw.emit("STRIDED_SLICE" if step != 1 else "SLICE", lw.where(op), ins, [out], source=op.source)
        final = tuple(y.shape) if select else None
        lw.set(o, Val(out, layout.perm, final, layout.nhwc) if layout.perm else
               (Val(out, None, final) if final else out))


def lower_pad(lw: Lowering, op: Op) -> None:
    x_t = lw.acts(op)[0]
    pads = op.attrs.get("pad", ())
    if op.attrs.get("mode", "constant") != "constant" or any(p < 0 for p in pads) or op.attrs.get("value", 0.0):
        return lw.not_modelled(op, f"{op.attrs.get('mode')} padding {pads} with value {op.attrs.get('value')}")
    rank = len(lw.g.tensors[x_t].shape)
    widths = [(0, 0)] * rank
    for i in range(len(pads) // 2):  # F.pad lists the last dim first
        widths[rank - 1 - i] = (pads[2 * i], pads[2 * i + 1])
    v = lw.val(x_t)
    if v.perm is not None and v.shape is None:
        src, phys = v.tid, [None] * rank
        for k in range(rank):
            phys[v.perm[k]] = widths[k]
        layout = v
    else:
        src, phys, layout = lw.logical(x_t), widths, Val(-1)
    shape = tuple(d + a + b for d, (a, b) in zip(lw.shape(src), phys))
    out = lw.act(lw.g.tensors[op.outputs[0]].name, shape)
    flat = tuple(x for pair in phys for x in pair)
    lw.emit("PAD", lw.where(op), [src, lw.shared(("pads", flat), f"{lw.where(op)}_paddings", (rank, 2))], [out],
            source=op.source, paddings=flat)
    lw.set(op.outputs[0], Val(out, layout.perm, None, layout.nhwc))


def lower_concat(lw: Lowering, op: Op) -> None:
    acts = lw.acts(op)
    rank = len(lw.g.tensors[op.outputs[0]].shape)
    dim = op.attrs.get("dim", 0) % rank
    layout = lw.held(op, acts[0])[1]
    ins = [lw.held(op, t)[0] if t in acts else _const_input(lw, t, layout) for t in op.inputs]
    axis = layout.perm[dim] if layout.perm is not None else dim
    shape = list(lw.shape(ins[0]))
    shape[axis] = sum(lw.shape(t)[axis] for t in ins)
    out = lw.act(lw.g.tensors[op.outputs[0]].name, shape)
    lw.emit("CONCATENATION", lw.where(op), ins, [out], source=op.source, axis=axis)
    lw.set(op.outputs[0], Val(out, layout.perm, None, layout.nhwc))


def _const_input(lw: Lowering, torch_tid: int, layout: Val) -> int:
    """A constant concatenated with activations (a learned token), stored in ``layout``."""
    t = lw.g.tensors[torch_tid]
    shape = t.shape if layout.perm is None else tuple(t.shape[layout.perm.index(i)] for i in range(len(t.shape)))
    return lw.data(t.name, shape)


def lower_pixel_shuffle(lw: Lowering, op: Op) -> None:
    """(1, C*r*r, H, W) -> (1, C, H*r, W*r) as the converter emits it: in NCHW,
    RESHAPE (C, r, r, H*W), TRANSPOSE (0, 1, 3, 2), RESHAPE (C, r, H, W*r), TRANSPOSE (0, 2, 1, 3),
    RESHAPE (1, C, H*r, W*r)."""
    x_t = lw.acts(op)[0]
    n, crr, h, w = lw.g.tensors[x_t].shape
    r = int(op.attrs.get("factor", 0))
    if n != 1 or op.kind != "pixel_shuffle" or r < 1:
        return lw.not_modelled(op, "pixel (un)shuffle with batch > 1 or pixel_unshuffle")
    c = crr // (r * r)
    cur = lw.reshape(lw.logical(x_t), (c, r, r, h * w))
    cur = lw.transpose(cur, (0, 1, 3, 2))
    cur = lw.reshape(cur, (c, r, h, w * r))
    cur = lw.transpose(cur, (0, 2, 1, 3))
    lw.set(op.outputs[0], lw.reshape(cur, (1, c, h * r, w * r)))

