"""Convolutions: CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV in NHWC, as the converter emits them.

- Padding: TFLite has SAME (pads ``total // 2`` before, the rest after) and VALID. PyTorch's
  symmetric padding that equals SAME becomes SAME; any other padding becomes an explicit PAD
  before a VALID conv (stride-2 convs on even sizes: measured on every registered CNN).
- A conv with one input channel and ``groups == 1`` becomes DEPTHWISE_CONV_2D with depth
  multiplier ``out_channels`` (measured: the DS-CNN keyword spotter's first conv); a grouped
  conv stays CONV_2D with ``in_channels / groups`` filter channels (measured); a depthwise conv
  with multiplier > 1 is DEPTHWISE_CONV_2D with ``out_channels`` filters (measured).
- A 1-D conv runs as a 2-D conv on (N, 1, L, C) (measured: RESHAPE + TRANSPOSE once, at the
  first 1-D conv).
- TRANSPOSE_CONV's inputs are (output shape, weights (O, H, W, I), input, bias); the converter
  handles PyTorch's padding only where the output is ``in * stride`` (SAME) or
  ``(in - 1) * stride + kernel`` (VALID); litert-torch fails on the others (measured:
  ``output_padding=1, padding=1`` does not convert).
"""

from __future__ import annotations

from edgekit.analysis.lowering.builder import Lowering
from edgekit.analysis.lowering.fusion import absorb, set_all
from edgekit.graph.ir import Op
from edgekit.padding import same_pads


def pair(v, n: int = 2) -> tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        vals = tuple(int(x) for x in v)
        return vals if len(vals) == n else (vals[0],) * n
    return (int(v),) * n


def _spatial(op: Op, one_d: bool):
    """(kernel, stride, padding, dilation) as 2-D pairs (a 1-D conv gets a unit height); padding
    may be the string "same" or "valid"."""
    def two(key: str, default: int):
        v = op.attrs.get(key, default)
        if isinstance(v, str):
            return v
        return ((1 if key != "padding" else 0), pair(v, 1)[0]) if one_d else pair(v)

    k = (1, int(op.attrs["kernel"][0])) if one_d else tuple(op.attrs["kernel"])
    return k, two("stride", 1), two("padding", 0), two("dilation", 1)


def pad_nhwc(lw: Lowering, src: int, pads, name: str, source, opcode: str = "PAD") -> int:
    """An explicit PAD of the H and W dims of an NHWC tensor (pads: ((top, bottom), (left, right)))."""
    n, h, w, c = lw.shape(src)
    (t, b), (left, r) = pads
    out = lw.act(f"{name}_pad", (n, h + t + b, w + left + r, c))
    widths = (0, 0, t, b, left, r, 0, 0)
    ins = [src, lw.shared(("pads", widths), f"{name}_paddings", (4, 2))]
    if opcode == "PADV2":  # max pooling pads with the lowest value
        ins.append(lw.scalar("pad_lowest", f"{name}_padvalue"))
    lw.emit(opcode, f"{name}/pad", ins, [out], source=source, paddings=widths)
    return out


def _padding(lw: Lowering, src: int, sizes, k, s, p, d, name, source) -> tuple[int, str]:
    if isinstance(p, str):  # padding="same" / "valid" (PyTorch's "same" pads like TFLite's, stride 1)
        return src, p
    if not any(p):
        return src, "valid"
    same = [same_pads(sizes[i], k[i], s[i], d[i]) for i in range(2)]
    if lw.same_padding or all(same[i] == (p[i], p[i]) for i in range(2)):
        return src, "same"
    return pad_nhwc(lw, src, ((p[0], p[0]), (p[1], p[1])), name, source), "valid"


def lower_conv(lw: Lowering, op: Op) -> None:
    """conv1d, conv2d, depthwise_conv2d (any groups) -> CONV_2D / DEPTHWISE_CONV_2D."""
    x_t = lw.acts(op)[0]
    x = lw.g.tensors[x_t]
    one_d = op.kind == "conv1d" or len(x.shape) == 3
    if len(x.shape) != (3 if one_d else 4) or op.attrs.get("kernel") is None:
        return lw.not_modelled(op, f"a {len(x.shape)}-D convolution")
    k, s, p, d = _spatial(op, one_d)
    src = lw.nhwc(x_t)
    name = lw.where(op)
    src, padding = _padding(lw, src, lw.shape(src)[1:3], k, s, p, d, name, op.source)
    cin, cout, groups = x.shape[1], int(op.attrs["out_channels"]), int(op.attrs.get("groups", 1))
    depthwise = (groups == cin and groups > 1) or (groups == 1 and cin == 1)
    if depthwise:
        opcode, wshape, axis = "DEPTHWISE_CONV_2D", (1, *k, cout), 3
    else:
        opcode, wshape, axis = "CONV_2D", (cout, *k, cin // groups), 0
    w = lw.weight(f"{name}.weight", wshape, channels=cout, axis=axis)
    b = lw.weight(f"{name}.bias", (cout,), channels=cout, bias=True)
    fused, absorbed = absorb(lw, op)
    n = x.shape[0]
    oh, ow = _conv_out(lw.shape(src)[1:3], k, s, d, padding)
    out = lw.act(lw.g.tensors[absorbed[-1]].name, (n, oh, ow, cout))
    lw.emit(opcode, name, [src, w, b], [out], source=op.source, padding=padding, fused_activation=fused,
            stride=s, kernel=k, dilation=d, out_channels=cout)
    set_all(lw, absorbed, out, nhwc=True)


def _conv_out(sizes, k, s, d, padding) -> tuple[int, int]:
    if padding == "same":
        return tuple(-(-sizes[i] // s[i]) for i in range(2))
    return tuple((sizes[i] - ((k[i] - 1) * d[i] + 1)) // s[i] + 1 for i in range(2))


def lower_conv_transpose(lw: Lowering, op: Op) -> None:
    x_t = lw.acts(op)[0]
    x = lw.g.tensors[x_t]
    y = lw.g.tensors[op.outputs[0]]
    if len(x.shape) != 4 or int(op.attrs.get("groups", 1)) != 1:
        return lw.not_modelled(op, "a grouped or non-2-D transposed convolution")
    k, s = tuple(op.attrs["kernel"]), pair(op.attrs.get("stride", 1))
    sizes, out_sizes = x.shape[2:], y.shape[2:]
    if all(out_sizes[i] == sizes[i] * s[i] for i in range(2)):
        padding = "same"
    elif all(out_sizes[i] == (sizes[i] - 1) * s[i] + k[i] for i in range(2)):
        padding = "valid"
    else:
        return lw.not_modelled(op, f"transposed-conv padding {op.attrs.get('padding')} (output {tuple(out_sizes)})")
    name, cout = lw.where(op), int(y.shape[1])
    src = lw.nhwc(x_t)
    w = lw.weight(f"{name}.weight", (cout, *k, x.shape[1]), channels=cout)
    b = lw.weight(f"{name}.bias", (cout,), channels=cout, bias=True)
    fused, absorbed = absorb(lw, op)
    out = lw.act(lw.g.tensors[absorbed[-1]].name, (y.shape[0], *out_sizes, cout))
    lw.emit("TRANSPOSE_CONV", name, [lw.ints((y.shape[0], *out_sizes, cout), "output_shape"), w, src, b], [out],
            source=op.source, padding=padding, fused_activation=fused, stride=s, kernel=k, out_channels=cout)
    set_all(lw, absorbed, out, nhwc=True)
