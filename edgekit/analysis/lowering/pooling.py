"""Pooling, reductions and resizing.

- MAX_POOL_2D / AVERAGE_POOL_2D in NHWC, VALID; PyTorch padding becomes an explicit PAD (PADV2
  with the lowest value for max pooling), as on the registered CNNs. A 1-D pool runs on
  (N, 1, L, C) like a 1-D conv. A following ReLU is fused (probes "relu_after_max_pool/avg_pool").
- Adaptive average pooling to 1 x 1 is MEAN over H and W in NHWC (keep_dims; a flatten after it
  makes it keep_dims=False, see ``cleanup``). ``x.mean(dims, keepdim=True)`` on an NHWC tensor
  stays in NHWC; any other mean reads the PyTorch layout (probe "mean_no_keepdim": TRANSPOSE +
  MEAN). A mean followed by a ReLU is SUM + MUL by 1/n with the ReLU fused into the MUL (probe
  "relu_after_mean").
- Nearest and bilinear upsampling: RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR with an int32[2]
  size operand, in NHWC.
"""

from __future__ import annotations

import math

from edgekit.analysis.converter_facts import FUSED_ACTIVATIONS
from edgekit.analysis.lowering.builder import NCHW_TO_NHWC, Lowering
from edgekit.analysis.lowering.conv import pad_nhwc, pair
from edgekit.analysis.lowering.fusion import absorb, set_all
from edgekit.graph.ir import Op


def lower_pool(lw: Lowering, op: Op) -> None:
    """max_pool / avg_pool (1-D and 2-D) -> MAX_POOL_2D / AVERAGE_POOL_2D."""
    x_t = lw.acts(op)[0]
    x, y = lw.g.tensors[x_t], lw.g.tensors[op.outputs[0]]
    if op.attrs.get("aten") in ("adaptive_max_pool2d",) or op.attrs.get("kernel") is None:
        return lw.not_modelled(op, "adaptive max pooling")
    if any(d != 1 for d in pair(op.attrs.get("dilation", 1))) or op.attrs.get("divisor_override") or \
            (op.attrs.get("count_include_pad") is False and any(pair(op.attrs.get("padding", 0)))):
        return lw.not_modelled(op, "pooling with dilation, a divisor override or count_include_pad=False")
    one_d = len(x.shape) == 3
    n = 1 if one_d else 2
    k, s = pair(op.attrs["kernel"], n), pair(op.attrs.get("stride") or op.attrs["kernel"], n)
    p = pair(op.attrs.get("padding", 0), n)
    if one_d:
        k, s, p = (1, *k), (1, *s), (0, *p)
    sizes = (1, x.shape[2]) if one_d else tuple(x.shape[2:])
    out_sizes = (1, y.shape[2]) if one_d else tuple(y.shape[2:])
    if any((sizes[i] + 2 * p[i] - k[i]) // s[i] + 1 != out_sizes[i] for i in range(2)):
        return lw.not_modelled(op, "pooling with ceil_mode that changes the output size")
    name = lw.where(op)
    src = lw.nhwc(x_t)
    if any(p):
        src = pad_nhwc(lw, src, ((p[0], p[0]), (p[1], p[1])), name, op.source,
                       "PADV2" if op.kind == "max_pool" else "PAD")
    fused, absorbed = absorb(lw, op)
    out = lw.act(lw.g.tensors[absorbed[-1]].name, (x.shape[0], *out_sizes, x.shape[1]))
    lw.emit("MAX_POOL_2D" if op.kind == "max_pool" else "AVERAGE_POOL_2D", name, [src], [out], source=op.source,
            padding="valid", stride=s, kernel=k, fused_activation=fused)
    set_all(lw, absorbed, out, nhwc=True)


def _axes(op: Op, rank: int) -> tuple[tuple[int, ...], bool]:
    """(reduced dims, keepdim) of a reduction: adaptive pooling to 1 reduces every spatial dim."""
    if op.attrs.get("aten", "").startswith(("adaptive", "_adaptive")):
        return tuple(range(2, rank)), True
    dims = op.attrs.get("dims")
    if dims is None:  # mean(x): every dim
        return tuple(range(rank)), bool(op.attrs.get("keepdim"))
    return tuple(sorted(d % rank for d in dims)), bool(op.attrs.get("keepdim"))


def lower_reduce(lw: Lowering, op: Op) -> None:
    """mean / sum (and adaptive average pooling to 1) -> MEAN / SUM (or SUM + MUL)."""
    x_t = lw.acts(op)[0]
    x, y = lw.g.tensors[x_t], lw.g.tensors[op.outputs[0]]
    if op.attrs.get("aten", "").startswith(("adaptive", "_adaptive")) and any(d != 1 for d in y.shape[2:]):
        return lw.not_modelled(op, f"adaptive pooling to {tuple(y.shape[2:])} (not 1)")
    axes, keep = _axes(op, len(x.shape))
    if op.attrs.get("aten", "") in ("adaptive_avg_pool2d", "_adaptive_avg_pool2d") and len(x.shape) == 4:
        src, phys, nhwc = lw.nhwc(x_t), (2, 1), True  # the axes operand reads [2, 1] (measured)
    elif keep and lw.in_nhwc(op) and len(x.shape) == 4:
        src, layout = lw.held(op, x_t)
        phys, nhwc = tuple(layout.perm[a] for a in axes), True
    else:
        src, phys, nhwc = lw.logical(x_t), axes, False
    # reduce without keep_dims, then RESHAPE back: ``cleanup`` folds the RESHAPE into keep_dims where
    # nothing came between them (probes "sum_keepdim", "relu_after_mean": a broadcasting MUL reads
    # the (1, C) result, a scalar MUL runs before the RESHAPE)
    squeezed = tuple(d for i, d in enumerate(lw.shape(src)) if i not in phys)
    result, out = _emit_reduce(lw, op, src, phys, squeezed)
    if keep or nhwc:
        out = lw.reshape(out, [1 if i in phys else d for i, d in enumerate(lw.shape(src))])
    for t in {op.outputs[0], result}:
        if nhwc:
            lw.set_nhwc(t, out)
        else:
            lw.set(t, out)


def _emit_reduce(lw: Lowering, op: Op, src: int, axes, out_shape) -> tuple[int, int]:
    """(torch tensor the result stands for, lowered tensor)."""
    name = lw.where(op)
    axes_t = lw.ints(axes, "axes")
    user = lw.only_user(op.outputs[0])
    if op.kind == "mean" and user is not None and user.kind in FUSED_ACTIVATIONS:
        # SUM + MUL(1/n) with the activation fused into the MUL (probe "relu_after_mean")
        total = lw.act(f"{name}_sum", out_shape)
        lw.emit("SUM", f"{name}/sum", [src, axes_t], [total], source=op.source)
        n = math.prod(lw.shape(src)[a] for a in axes)
        out = lw.act(lw.g.tensors[user.outputs[0]].name, out_shape)
        lw.emit("MUL", name, [total, lw.scalar(("1/n", n), f"{name}_scale")], [out], source=op.source,
                fused_activation=user.kind)
        lw.skip.add(user.index)
        return user.outputs[0], out
    out = lw.act(lw.g.tensors[op.outputs[0]].name, out_shape)
    lw.emit("MEAN" if op.kind == "mean" else "SUM", name, [src, axes_t], [out], source=op.source)
    return op.outputs[0], out


def lower_resize(lw: Lowering, op: Op) -> None:
    x_t = lw.acts(op)[0]
    x, y = lw.g.tensors[x_t], lw.g.tensors[op.outputs[0]]
    if len(x.shape) != 4:
        return lw.not_modelled(op, f"{len(x.shape) - 2}-D resizing")
    opcode = "RESIZE_BILINEAR" if "bilinear" in op.attrs.get("aten", "") else "RESIZE_NEAREST_NEIGHBOR"
    src = lw.nhwc(x_t)
    out = lw.act(y.name, tuple(y.shape[i] for i in NCHW_TO_NHWC))
    lw.emit(opcode, lw.where(op), [src, lw.ints(y.shape[2:], "size")], [out], source=op.source)
    lw.set_nhwc(op.outputs[0], out)
