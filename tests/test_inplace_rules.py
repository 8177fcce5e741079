"""The in-place rules against byte-level emulations of the kernels' loops (no TFLite-Micro here).

Each emulation below is written from the kernel's C source (cited), not from ``inplace_rules``: it runs
the kernel's loop on one flat memory where the output starts ``D`` bytes below the input, with an
arbitrary mixing function instead of the arithmetic (only the order of reads and writes matters). At
``D = d_min`` the overlapped run must equal the run on separate memory; at ``D = d_min - 1`` some output
must differ (the bound is tight to the byte). tests/test_offline_plan.py checks the same rules in the
real interpreter at 16-byte granularity.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.analysis.inplace_rules import (
    _d_concat,
    _d_pad,
    _Window,
    d_min_of_steps,
    inplace_rule,
    kernel_libraries,
)
from edgekit.graph.ir import Graph, Op, Tensor

P = 251  # values live mod a prime: a clobbered byte almost surely changes the result


class Mem:
    """One flat memory; the input at ``base``, the output ``d`` bytes lower."""

    def __init__(self, x: np.ndarray, out_size: int, d: int | None):
        self.n_in = x.size
        self.mem = np.zeros(x.size + out_size + 2 * abs(d or 0) + 64, dtype=np.int64)
        self.i0 = abs(d or 0) + out_size + 16 if d is not None else 0
        self.o0 = self.i0 - d if d is not None else x.size + 16
        self.mem[self.i0:self.i0 + x.size] = x.ravel()
        self.out_size = out_size

    def r(self, i: int) -> int:
        return int(self.mem[self.i0 + i])

    def w(self, j: int, v: int) -> None:
        self.mem[self.o0 + j] = v % P

    def out(self) -> np.ndarray:
        return self.mem[self.o0:self.o0 + self.out_size].copy()


def mix(acc: int, v: int, k: int) -> int:
    return (acc * 31 + v * (k % 7 + 1) + 1) % P


def conv_ref(m: Mem, g: _Window):
    """reference_integer_ops::ConvPerChannel loop order (integer_ops/conv.h)."""
    for oy in range(g.oh):
        for ox in range(g.ow):
            for oc in range(g.oc):
                acc = oc
                for fy in range(g.kh):
                    for fx in range(g.kw):
                        iy, ix = oy * g.sh - g.pad_h + fy * g.dh, ox * g.sw - g.pad_w + fx * g.dw
                        if 0 <= iy < g.h and 0 <= ix < g.w:
                            for ic in range(g.c):
                                acc = mix(acc, m.r((iy * g.w + ix) * g.c + ic), ic + fy)
                m.w((oy * g.ow + ox) * g.oc + oc, acc)


def dw_ref(m: Mem, g: _Window, mult: int):
    """DepthwiseConvPerChannel (integer_ops/depthwise_conv.h); mult 1 is also MaxPool/AveragePool's order."""
    for oy in range(g.oh):
        for ox in range(g.ow):
            for ic in range(g.c):
                for k in range(mult):
                    acc = k
                    for fy in range(g.kh):
                        for fx in range(g.kw):
                            iy, ix = oy * g.sh - g.pad_h + fy * g.dh, ox * g.sw - g.pad_w + fx * g.dw
                            if 0 <= iy < g.h and 0 <= ix < g.w:
                                acc = mix(acc, m.r((iy * g.w + ix) * g.c + ic), fx)
                    m.w((oy * g.ow + ox) * g.oc + ic * mult + k, acc)


def conv_cmsis_groups(m: Mem, g: _Window, group: int):
    """arm_convolve_s8: im2col of ``group`` pixels (2: C/DSP, 4: MVE), then all their channels."""
    pixels = [(oy, ox) for oy in range(g.oh) for ox in range(g.ow)]
    for s in range(0, len(pixels), group):
        cols = []
        for oy, ox in pixels[s:s + group]:
            col = []
            for fy in range(g.kh):
                for fx in range(g.kw):
                    iy, ix = oy * g.sh - g.pad_h + fy, ox * g.sw - g.pad_w + fx
                    inside = 0 <= iy < g.h and 0 <= ix < g.w
                    col += [m.r((iy * g.w + ix) * g.c + ic) if inside else 0 for ic in range(g.c)]
            cols.append(col)
        for p, col in enumerate(cols):
            for oc in range(g.oc):
                acc = oc
                for k, v in enumerate(col):
                    acc = mix(acc, v, k)
                m.w((s + p) * g.oc + oc, acc)


def maxpool_cmsis(m: Mem, g: _Window):
    """arm_max_pool_s8: arm_memcpy_s8 of the first tap into the output pixel, then
    compare_and_replace_if_larger_q7 with each further tap, channel by channel."""
    for oy in range(g.oh):
        for ox in range(g.ow):
            base = (oy * g.ow + ox) * g.c
            first = True
            for fy in range(g.kh):
                for fx in range(g.kw):
                    iy, ix = oy * g.sh - g.pad_h + fy, ox * g.sw - g.pad_w + fx
                    if not (0 <= iy < g.h and 0 <= ix < g.w):
                        continue
                    if first:
                        memcpy_backwards(m, base, (iy * g.w + ix) * g.c, g.c)
                        first = False
                        continue
                    for c in range(g.c):
                        v = m.r((iy * g.w + ix) * g.c + c)
                        m.w(base + c, mix(int(m.mem[m.o0 + base + c]), v, fx))


def pad_ref(m: Mem, shape, pads):
    """reference_ops PadImpl: the output in order, ``*out++ = pad`` or ``*out++ = *in++``."""
    out_shape = [b + s + a for s, (b, a) in zip(shape, pads)]
    k = i = 0
    for idx in np.ndindex(*out_shape):
        inside = all(b <= q < b + s for q, s, (b, _) in zip(idx, shape, pads))
        if inside:
            m.w(k, mix(7, m.r(i), 0))
            i += 1
        else:
            m.w(k, 3)
        k += 1


def memcpy_backwards(m: Mem, dst: int, src: int, n: int):
    """A memcpy that copies byte by byte from the end (legal: memcpy's order is unspecified, and it
    is what breaks when the destination lies below an overlapping source)."""
    for t in range(n - 1, -1, -1):
        m.w(dst + t, m.r(src + t))


def concat_ref(m: Mem, shapes, axis: int, which: int, others: list[np.ndarray]):
    """reference_ops::Concatenation: per outer index, one memcpy per input (input ``which`` is in ``m``)."""
    inner = int(np.prod(shapes[0][axis + 1:]))
    outer = int(np.prod(shapes[0][:axis]))
    pos = 0
    for k in range(outer):
        for j, s in enumerate(shapes):
            cs = s[axis] * inner
            if j == which:
                memcpy_backwards(m, pos, k * cs, cs)
            else:
                for t in range(cs):
                    m.w(pos + t, int(others[j].ravel()[k * cs + t]))
            pos += cs


def run(kernel, x: np.ndarray, out_size: int, d: int | None) -> np.ndarray:
    m = Mem(x, out_size, d)
    kernel(m)
    return m.out()


def tight(kernel, x, out_size, d_min):
    """Correct at d_min, wrong one byte closer."""
    ref = run(kernel, x, out_size, None)
    assert np.array_equal(run(kernel, x, out_size, d_min), ref), f"corrupted at d_min={d_min}"
    assert not np.array_equal(run(kernel, x, out_size, d_min - 1), ref), f"d_min={d_min} is not tight"


def rand(n, seed=0):
    return np.random.default_rng(seed).integers(0, P, n)


# ---- geometry helpers ---------------------------------------------------------------------------

def window(h, w, c, oc, k, s, pad, dil=1):
    kh, kw = (k, k) if isinstance(k, int) else k
    oh = (h + 2 * pad - dil * (kh - 1) - 1) // s + 1
    ow = (w + 2 * pad - dil * (kw - 1) - 1) // s + 1
    g = _Window(1, h, w, c, oh, ow, oc, kh, kw, s, s, dil, dil)
    assert (g.pad_h, g.pad_w) == (pad, pad), "TFLite's padding rule gives another padding for this shape"
    return g


def tensor(i, shape, dtype="int8", const=False):
    return Tensor(id=i, name=f"t{i}", shape=tuple(shape), dtype=dtype, is_const=const)


def conv_graph(g: _Window, opcode="CONV_2D", mult=1):
    x = tensor(0, (1, g.h, g.w, g.c))
    wshape = (g.oc, g.kh, g.kw, g.c) if opcode == "CONV_2D" else (1, g.kh, g.kw, g.oc)
    ts = [x, tensor(1, wshape, const=True), tensor(2, (g.oc,), "int32", const=True), tensor(3, (1, g.oh, g.ow, g.oc))]
    attrs = {"opcode": opcode, "stride": (g.sh, g.sw), "dilation": (g.dh, g.dw)}
    if opcode in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        ts, attrs = [x, ts[3]], {**attrs, "kernel": (g.kh, g.kw)}
        ts[1].id = 1
        op = Op(0, "pool", "op", [0], [1], attrs=attrs)
    else:
        op = Op(0, "conv", "op", [0, 1, 2], [3], attrs=attrs)
    return Graph(ts, [op], [0], [op.outputs[0]], "tflite").link(), op


# ---- reference kernels -------------------------------------------------------------------------

@pytest.mark.parametrize("h,w,c,oc,k,s,pad", [(5, 6, 3, 4, 3, 1, 1), (7, 7, 2, 3, 3, 2, 1), (5, 5, 4, 2, 1, 1, 0),
                                             (7, 5, 2, 5, 3, 2, 0), (4, 4, 3, 1, 3, 1, 1)])
def test_conv_reference_bound_is_safe_and_tight(h, w, c, oc, k, s, pad):
    g = window(h, w, c, oc, k, s, pad)
    graph, op = conv_graph(g)
    d = inplace_rule(graph, op, 0).d_min
    tight(lambda m: conv_ref(m, g), rand(h * w * c), g.oh * g.ow * oc, d)


@pytest.mark.parametrize("h,w,c,mult,k,s,pad,dil", [(5, 6, 3, 1, 3, 1, 1, 1), (6, 6, 2, 1, 3, 2, 0, 1),
                                                    (5, 4, 1, 4, 3, 1, 1, 1), (6, 6, 2, 2, 3, 1, 2, 2)])
def test_depthwise_reference_bound_is_safe_and_tight(h, w, c, mult, k, s, pad, dil):
    g = window(h, w, c, c * mult, k, s, pad, dil)
    graph, op = conv_graph(g, "DEPTHWISE_CONV_2D")
    d = inplace_rule(graph, op, 0).d_min
    tight(lambda m: dw_ref(m, g, mult), rand(h * w * c), g.oh * g.ow * g.oc, d)


def test_pooling_reference_is_the_depthwise_order():
    g = window(6, 6, 3, 3, 2, 2, 0)
    graph, op = conv_graph(g, "MAX_POOL_2D")
    d = inplace_rule(graph, op, 0).d_min
    tight(lambda m: dw_ref(m, g, 1), rand(6 * 6 * 3), g.oh * g.ow * 3, d)


@pytest.mark.parametrize("shape,pads", [((1, 4, 5, 3), ((0, 0), (1, 1), (1, 1), (0, 0))),
                                        ((1, 3, 4, 2), ((0, 0), (0, 2), (1, 0), (0, 1))),
                                        ((2, 3), ((1, 0), (2, 1)))])
def test_pad_reference_bound(shape, pads):
    out = int(np.prod([b + s + a for s, (b, a) in zip(shape, pads)]))
    tight(lambda m: pad_ref(m, shape, pads), rand(int(np.prod(shape))), out, _d_pad(shape, pads, 1, False))


@pytest.mark.parametrize("axis", [1, 3])
def test_concat_reference_bound_each_input(axis):
    shapes = [(1, 3, 4, 2), (1, 3, 4, 2)] if axis == 3 else [(1, 2, 3, 2), (1, 3, 3, 2)]
    out = sum(int(np.prod(s)) for s in shapes)
    for which in range(2):
        others = [rand(int(np.prod(s)), seed=5 + j) for j, s in enumerate(shapes)]
        x = others[which]
        d = _d_concat(shapes, axis, which, 1)
        tight(lambda m, which=which, others=others: concat_ref(m, shapes, axis, which, others), x, out, d)


def test_transpose_and_slice_gather_bounds():
    x = tensor(0, (1, 3, 4, 5))
    y = tensor(2, (1, 4, 5, 3))
    perm = tensor(1, (4,), "int32", const=True)
    op = Op(0, "transpose", "t", [0, 1], [2], attrs={"opcode": "TRANSPOSE", "perm": (0, 2, 3, 1)})
    g = Graph([x, perm, y], [op], [0], [2], "tflite").link()
    d = inplace_rule(g, op, 0).d_min
    src = np.arange(60).reshape(1, 3, 4, 5).transpose(0, 2, 3, 1).ravel()

    def transpose(m):  # TransposeImpl: the output in order, each element from its source
        for k, i in enumerate(src):
            m.w(k, mix(1, m.r(int(i)), 0))
    tight(transpose, rand(60), 60, d)
    y2 = tensor(2, (1, 3, 4, 2))
    op2 = Op(0, "slice", "s", [0, 1, 3], [2], attrs={"opcode": "SLICE", "begin": (0, 0, 0, 3), "size": (1, 3, 4, 2)})
    g2 = Graph([x, perm, y2, tensor(3, (4,), "int32", const=True)], [op2], [0], [2], "tflite").link()
    d2 = inplace_rule(g2, op2, 0).d_min
    src2 = np.arange(60).reshape(1, 3, 4, 5)[..., 3:5].ravel()

    def slice_(m):  # Slice + SequentialTensorWriter::Write
        for k, i in enumerate(src2):
            m.w(k, mix(1, m.r(int(i)), 0))
    tight(slice_, rand(60), 24, d2)


def test_elementwise_and_reshape_rules():
    ts = [tensor(0, (1, 8)), tensor(1, (1, 8)), tensor(2, (1, 8)), tensor(3, (2, 4)), tensor(4, (1, 8), "float32")]
    add = Op(0, "add", "a", [0, 1], [2], attrs={"opcode": "ADD"})
    reshape = Op(1, "reshape", "r", [2], [3], attrs={"opcode": "RESHAPE"})
    deq = Op(2, "dequantize", "d", [3], [4], attrs={"opcode": "DEQUANTIZE"})
    g = Graph(ts, [add, reshape, deq], [0, 1], [4], "tflite").link()
    assert inplace_rule(g, add, 0).d_min == 0 and inplace_rule(g, add, 1).d_min == 0
    r = inplace_rule(g, reshape, 2)
    assert (r.d_min, r.d_max) == (0, 0)  # reshape.cc: memcpy unless the pointers are equal
    assert inplace_rule(g, deq, 3).d_min == 7 * 3  # 1 -> 4 bytes per element: (n-1)*(4-1)
    for lib in ("cmsis-nn", "reference+cmsis-nn"):
        assert inplace_rule(g, add, 0, kernels=lib).d_min == 0
    with pytest.raises(ValueError, match="unknown kernel library"):
        kernel_libraries("cmsis")


def test_no_rule_without_the_attributes_it_needs():
    g_, op = conv_graph(window(5, 5, 2, 2, 3, 1, 1))
    del op.attrs["stride"]
    assert inplace_rule(g_, op, 0) is None
    pad = Op(0, "pad", "p", [0], [1], attrs={"opcode": "PAD"})  # no paddings
    g = Graph([tensor(0, (1, 4)), tensor(1, (1, 6))], [pad], [0], [1], "tflite").link()
    assert inplace_rule(g, pad, 0) is None
    mirror = Op(0, "pad", "p", [0], [1], attrs={"opcode": "MIRROR_PAD", "paddings": ((0, 0), (1, 1))})
    assert inplace_rule(Graph(g.tensors, [mirror], [0], [1], "tflite").link(), mirror, 0) is None


# ---- CMSIS-NN -----------------------------------------------------------------------------------

def test_cmsis_conv_bound_holds_for_every_variant_and_is_tight_for_one():
    g = window(5, 6, 3, 4, 3, 1, 1)
    graph, op = conv_graph(g)
    d = inplace_rule(graph, op, 0, kernels="cmsis-nn").d_min
    x = rand(5 * 6 * 3)
    outs = []
    for group in (2, 4):  # C/DSP and MVE
        kernel = lambda m, group=group: conv_cmsis_groups(m, g, group)  # noqa: E731
        ref = run(kernel, x, g.oh * g.ow * g.oc, None)
        assert np.array_equal(run(kernel, x, g.oh * g.ow * g.oc, d), ref)
        outs.append(np.array_equal(run(kernel, x, g.oh * g.ow * g.oc, d - 1), ref))
    assert not all(outs)


def test_cmsis_1x1_conv_and_wide_depthwise_never_overlap():
    graph, op = conv_graph(window(4, 4, 8, 8, 1, 1, 0))
    assert inplace_rule(graph, op, 0) is not None
    assert inplace_rule(graph, op, 0, kernels="cmsis-nn") is None  # arm_nn_mat_mult_nt_t_s8: channel pairs outermost
    assert inplace_rule(graph, op, 0, kernels="reference+cmsis-nn") is None
    graph, op = conv_graph(window(4, 4, 128, 128, 3, 1, 1), "DEPTHWISE_CONV_2D")
    assert inplace_rule(graph, op, 0, kernels="cmsis-nn") is None  # MVE: blocks of 124 channels outermost


def test_cmsis_max_pool_accumulates_in_its_output():
    g = window(6, 6, 3, 3, 3, 1, 1)
    graph, op = conv_graph(g, "MAX_POOL_2D")
    d_ref = inplace_rule(graph, op, 0).d_min
    d = inplace_rule(graph, op, 0, kernels="cmsis-nn").d_min
    assert d > d_ref
    tight(lambda m: maxpool_cmsis(m, g), rand(6 * 6 * 3), g.oh * g.ow * 3, d)


def test_cmsis_pad_copies_whole_rows():
    shape, pads = (1, 3, 4, 2), ((0, 0), (1, 1), (1, 1), (0, 0))
    ref_d, d = _d_pad(shape, pads, 1, False), _d_pad(shape, pads, 1, True)
    assert d == ref_d + 4 * 2  # one input row (W*C bytes) more: arm_memcpy_s8 of a row onto itself is a memcpy

    def arm_pad(m):  # arm_pad_s8: memset pre rows/cols, one memcpy per input row, memset post
        out_w, pos = 4 + 2, 0
        for t in range(out_w * 2):
            m.w(pos + t, 3)
        pos += out_w * 2
        for y in range(3):
            for t in range(2):
                m.w(pos + t, 3)
            pos += 2
            memcpy_backwards(m, pos, y * 8, 8)
            pos += 8
            for t in range(2):
                m.w(pos + t, 3)
            pos += 2
        for t in range(out_w * 2):
            m.w(pos + t, 3)
    tight(arm_pad, rand(24), 5 * 6 * 2, d)


def test_engine_basics():
    assert d_min_of_steps([], []) < -(1 << 60)
    assert d_min_of_steps([4, 8], [0, 4]) == 0  # element-wise in blocks of 4
    assert d_min_of_steps([4, 8], [0, 4], inclusive=True) == 4  # a memcpy must not overlap its own source
