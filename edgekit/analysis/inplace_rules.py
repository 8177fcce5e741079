"""When may a TFLite-Micro kernel write its output over its own input? One rule per op and kernel library.

An op's output may share memory with an input that dies at that op if the kernel never writes a byte of
the output over a byte of that input it has still to read. The offline planner places the output
``D = input_offset - output_offset`` bytes below the input; a rule says which ``D`` are safe:
``d_min <= D <= d_max`` (``d_max`` None: no upper bound; a buffer far enough away never overlaps).

**The derivation, one engine for every kernel.** A kernel is written down as its loop: a sequence of
steps in execution order; step *k* reads input bytes at addresses ``>= read_min[k]`` (relative to the
input's start) and writes output bytes below ``write_end[k]`` (relative to the output's start). A write
is harmless if it lands entirely below every input byte read later:
``out + write_end[k] <= in + min(read_min[j] for j > k)``, i.e. ``D >= write_end[k] - min_{j>k} read_min[j]``.
When a step's own reads may come after (or during) its own writes — a ``memcpy`` (undefined for
overlapping ranges) or a kernel that accumulates in the output — its own reads count too (``j >= k``).
``d_min`` is the largest such bound over all steps. This is sufficient (a write may also land in a hole
of the future reads; the rule ignores that) and, for the sequential kernels, tight: one 16-byte step
below ``d_min`` corrupts tensors (tests/test_offline_plan.py shows it in the interpreter).

Kernel libraries:

- ``"reference"``: TFLite-Micro's reference kernels, what the ``tflite-micro`` Python interpreter on the
  host runs. Every reference rule is checked bit-exactly in that interpreter by ``runtime.tflm_verify``.
- ``"cmsis-nn"``: TFLite-Micro built with ``OPTIMIZED_KERNEL_DIR=cmsis_nn`` (Cortex-M boards). Ops with a
  CMSIS-NN kernel (tensorflow/lite/micro/kernels/cmsis_nn/*.cc: CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL,
  PAD, pooling, FULLY_CONNECTED, SOFTMAX, TRANSPOSE, ...) follow the ``arm_*_s8`` functions of CMSIS-NN
  (tools/make/downloads/cmsis_nn/Source/); the others run the reference kernels. A CMSIS-NN function has
  up to three compiled variants (plain C, DSP for Cortex-M4/M7/M33, MVE for Cortex-M55/M85); a rule
  takes the largest ``d_min`` over the variants the function can run, so it holds on any Cortex-M.
  These rules are derived from the sources, not run here.

Only int8/uint8 ops, or ops whose input and output have the same type, get a rule: with a ``char`` on
either side C's aliasing rules force the compiler to keep the loop's order of loads and stores; between
two different non-char types it may reorder them. An op (or a kernel variant) whose rule is not derived
here gets none: its output never overlaps its input.

Sources (tflite-micro, tensorflow/lite/kernels/internal/reference/ unless a path is given):
``integer_ops/conv.h`` ConvPerChannel, ``integer_ops/depthwise_conv.h`` DepthwiseConvPerChannel,
``integer_ops/pooling.h`` MaxPool/AveragePool, ``pad.h`` PadImpl, ``concatenation.h`` Concatenation,
``transpose.h`` TransposeImpl, ``slice.h`` Slice (+ ``portable_tensor.h`` SequentialTensorWriter),
``integer_ops/add.h``/``add.h`` ElementWise, ``mul.h``, ``requantize.h`` Requantize, ``quantize.h``
AffineQuantize, ``dequantize.h`` Dequantize, and micro/kernels/reshape.cc EvalReshapeReference.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from edgekit.graph.ir import Graph, Op, hw_pair

KERNEL_LIBRARIES = ("reference", "cmsis-nn")
_INF = 1 << 62
_CHAR = {"int8", "uint8", "bool"}
_SIZES = {"int8": 1, "uint8": 1, "bool": 1, "int16": 2, "float16": 2, "int32": 4, "float32": 4, "int64": 8}


@dataclass(frozen=True)
class InplaceRule:
    """The output may start ``D`` bytes below the input (``D = in_offset - out_offset``) when
    ``d_min <= D <= d_max`` (``d_max`` None: unbounded). ``kernel`` names the function it comes from."""

    d_min: int
    d_max: int | None
    kernel: str

    def allows(self, d: int) -> bool:
        return self.d_min <= d and (self.d_max is None or d <= self.d_max)


# ---- the engine ------------------------------------------------------------------------------

def d_min_of_steps(write_end, read_min, inclusive=False) -> int:
    """``max_k write_end[k] - min(read_min[j] for j > k)`` (``j >= k`` where ``inclusive``).

    Arrays in bytes, steps in execution order; a step that reads nothing has ``read_min = _INF``.
    Returns ``-_INF`` when no write is followed by a read (any overlap is safe)."""
    w = np.asarray(write_end, dtype=np.int64)
    r = np.asarray(read_min, dtype=np.int64)
    if w.size == 0:
        return -_INF
    suffix = np.minimum.accumulate(r[::-1])[::-1]  # min over j >= k
    later = np.empty_like(suffix)
    later[:-1] = suffix[1:]
    later[-1] = _INF
    if isinstance(inclusive, np.ndarray):
        future = np.where(inclusive, suffix, later)
    else:
        future = suffix if inclusive else later
    keep = future < _INF
    if not keep.any():
        return -_INF
    return int((w[keep] - future[keep]).max())


@dataclass(frozen=True)
class _Window:
    """Geometry of a sliding-window op on NHWC tensors (TFLite's padding rule)."""

    n: int
    h: int
    w: int
    c: int
    oh: int
    ow: int
    oc: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int = 1
    dw: int = 1

    @property
    def pad_h(self) -> int:  # kernels/padding.h ComputePaddingWithOffset (floor of half the total)
        return max(0, (self.oh - 1) * self.sh + (self.kh - 1) * self.dh + 1 - self.h) // 2

    @property
    def pad_w(self) -> int:
        return max(0, (self.ow - 1) * self.sw + (self.kw - 1) * self.dw + 1 - self.w) // 2


def _first_inside(origin: np.ndarray, k: int, d: int, size: int) -> np.ndarray:
    """Smallest in-image coordinate ``origin + d*f`` (0 <= f < k), or -1 where the window misses."""
    f0 = np.where(origin < 0, (-origin + d - 1) // d, 0)
    first = origin + f0 * d
    return np.where((f0 < k) & (first < size), first, -1)


@functools.lru_cache(maxsize=4096)
def _window_starts(g: _Window) -> np.ndarray:
    """Per output pixel (batch, row, column order): the element index of the lowest input pixel (channel
    0) its window reads, or _INF when every tap falls in the padding (the kernels skip those)."""
    iy = _first_inside(np.arange(g.oh) * g.sh - g.pad_h, g.kh, g.dh, g.h)
    ix = _first_inside(np.arange(g.ow) * g.sw - g.pad_w, g.kw, g.dw, g.w)
    start = (iy[:, None] * g.w + ix[None, :]) * g.c
    start = np.where((iy[:, None] >= 0) & (ix[None, :] >= 0), start, _INF).ravel()
    batch = (np.arange(g.n) * (g.h * g.w * g.c))[:, None]
    return np.where(start[None, :] < _INF, start[None, :] + batch, _INF).ravel()


def _scaled(a: np.ndarray, e: int) -> np.ndarray:
    return np.where(a < _INF, a * e, _INF)


@functools.lru_cache(maxsize=4096)
def _d_conv_reference(g: _Window, e_i: int, e_o: int) -> int:
    """reference_integer_ops::ConvPerChannel: for each output pixel, for each output channel, read the
    whole window (every input channel of the group) and write one byte. Per pixel two steps suffice:
    A (channels 0..Co-2: the window is read again afterwards) and B (channel Co-1)."""
    r = _scaled(_window_starts(g), e_i)
    pix = np.arange(r.size, dtype=np.int64)
    a_end = (pix * g.oc + g.oc - 1) * e_o
    b_end = (pix + 1) * g.oc * e_o
    if g.oc == 1:
        return d_min_of_steps(b_end, r)
    return d_min_of_steps(np.stack([a_end, b_end], 1).ravel(), np.repeat(r, 2))


@functools.lru_cache(maxsize=4096)
def _d_channelwise(g: _Window, e_i: int, e_o: int, mult: int, group: int) -> int:
    """Depthwise conv and pooling: for each output pixel, for each group of ``group`` input channels (and
    each of the ``mult`` outputs per channel), read that channel of the window, write. Reference kernels:
    group 1 (integer_ops/depthwise_conv.h DepthwiseConvPerChannel; integer_ops/pooling.h MaxPool,
    AveragePool: mult 1). Steps per (pixel, channel group): A (outputs before the last of the group's
    multiplier, the channel is read again) and B (the last one)."""
    r = _window_starts(g)
    n_pix = r.size
    starts = np.arange(0, g.c, group)
    ends = np.minimum(starts + group, g.c)
    read = np.where(r[:, None] < _INF, (r[:, None] + starts[None, :]) * e_i, _INF)  # (pix, groups)
    base = np.arange(n_pix, dtype=np.int64)[:, None] * g.oc
    b_end = (base + ends[None, :] * mult) * e_o
    if mult == 1:
        return d_min_of_steps(b_end.ravel(), read.ravel())
    a_end = (base + ends[None, :] * mult - 1) * e_o
    return d_min_of_steps(np.stack([a_end, b_end], 2).ravel(), np.repeat(read.ravel(), 2))


@functools.lru_cache(maxsize=4096)
def _d_pixel_groups(g: _Window, e_i: int, e_o: int, group: int, inclusive: bool) -> int:
    """Kernels that read the windows of ``group`` consecutive output pixels (every channel; im2col) and
    then write every channel of those pixels; ``inclusive``: the group's reads continue after its first
    write (the output is the accumulator, or a matrix kernel re-reads its rows per channel pair)."""
    r = _window_starts(g)
    n_pix = r.size
    n_grp = -(-n_pix // group)
    padded = np.full(n_grp * group, _INF, dtype=np.int64)
    padded[:n_pix] = r
    read = _scaled(padded.reshape(n_grp, group).min(1), e_i)
    end = np.minimum((np.arange(n_grp, dtype=np.int64) + 1) * group, n_pix) * g.oc * e_o
    return d_min_of_steps(end, read, inclusive)


@functools.lru_cache(maxsize=4096)
def _d_rows(g: _Window, e_i: int, e_o: int) -> int:
    """CMSIS-NN arm_convolve_1x1_s8 (1x1, stride > 1): per output row, arm_nn_mat_mult_nt_t_s8 re-reads
    the row's input pixels for every output-channel pair (DSP and C) while writing the row."""
    oy = np.arange(g.n * g.oh, dtype=np.int64)
    b, y = oy // g.oh, oy % g.oh
    read = (b * g.h * g.w + y * g.sh * g.w) * g.c * e_i
    return d_min_of_steps((oy + 1) * g.ow * g.oc * e_o, read, True)


def _d_elementwise(n: int, e_i: int, e_o: int) -> int:
    """A loop ``for i: out[i] = f(in[i])`` (or of two inputs of the output's shape): step i reads
    element i, writes element i. ``D >= max_{i<n-1} (i+1)*e_o - (i+1)*e_i``."""
    if n < 2:
        return -_INF
    return (n - 1) * (e_o - e_i) if e_o >= e_i else e_o - e_i


@functools.lru_cache(maxsize=4096)
def _d_gather(in_index: tuple, e: int) -> int:
    """A loop over the output in order, each element copied from one input element
    (reference TransposeImpl, Slice's SequentialTensorWriter::Write)."""
    idx = np.asarray(in_index, dtype=np.int64)
    return d_min_of_steps((np.arange(idx.size, dtype=np.int64) + 1) * e, idx * e)


def _d_pad(in_shape: tuple, paddings: tuple, e: int, cmsis: bool) -> int:
    """reference_ops PadImpl: the output is written in order, one element per step, each either the pad
    value or the next input element (``*out_ptr++ = *in_ptr++``). The bound is the number of pad elements
    written before the last input element is read: ``k_last - (n_in - 1)`` elements, ``k_last`` being
    the output index of the last input element. CMSIS-NN arm_pad_s8 (int8, 4-D) copies each input row
    with one arm_memcpy_s8 (a memcpy: its source and destination must not overlap), one row more."""
    out_shape = [b + s + a for s, (b, a) in zip(in_shape, paddings)]
    n_in = int(np.prod(in_shape))
    if n_in == 0:
        return -_INF
    k_last, stride = 0, 1
    for d in range(len(out_shape) - 1, -1, -1):
        k_last += (paddings[d][0] + in_shape[d] - 1) * stride
        stride *= out_shape[d]
    d = k_last - (n_in - 1)
    if cmsis:
        row = in_shape[-1] * (in_shape[-2] if len(in_shape) >= 2 and paddings[-1] == (0, 0) else 1)
        d += row
    return d * e


def _d_concat(shapes: list[tuple], axis: int, i: int, e: int) -> int:
    """reference_ops::Concatenation: ``for k in outer: for each input j: memcpy(out, in_j + k*cs_j, cs_j)``
    (cs_j: input j's slab). Input i's block k must land below its own source (memcpy) and below what is
    still to be read of input i: ``D >= (outer-1)*(C - cs_i) + pre_i + cs_i`` with ``C = sum cs_j`` and
    ``pre_i = sum_{j<i} cs_j`` (the largest term is input i's last block)."""
    inner = int(np.prod(shapes[0][axis + 1:])) if axis + 1 < len(shapes[0]) else 1
    outer = int(np.prod(shapes[0][:axis])) if axis > 0 else 1
    cs = [s[axis] * inner for s in shapes]
    return ((outer - 1) * (sum(cs) - cs[i]) + sum(cs[:i]) + cs[i]) * e


# ---- the rules, per op ------------------------------------------------------------------------

# ops that TFLite-Micro's cmsis_nn kernel directory replaces (tensorflow/lite/micro/kernels/cmsis_nn/)
_CMSIS_OPS = {"ADD", "MUL", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "PAD", "AVERAGE_POOL_2D",
              "MAX_POOL_2D", "SOFTMAX", "TRANSPOSE", "MAXIMUM", "MINIMUM", "BATCH_MATMUL", "SVDF",
              "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM"}
# sequential element-wise loops, reference kernels: QUANTIZE (requantize.h Requantize, quantize.h
# AffineQuantize), DEQUANTIZE (dequantize.h Dequantize), HARD_SWISH (hard_swish.h HardSwish), LOGISTIC
# (integer_ops/logistic.h Logistic, logistic.h), EXPAND_DIMS (micro/kernels/expand_dims.cc memCopyN)
_UNARY = {"QUANTIZE", "DEQUANTIZE", "HARD_SWISH", "LOGISTIC", "EXPAND_DIMS"}
# binary element-wise without broadcast: integer_ops/add.h ElementWise, add.h AddElementwise,
# integer_ops/mul.h MulElementwise; CMSIS-NN arm_elementwise_add_s8/mul_s8 read 4 (DSP) or 16 (MVE)
# elements of each input and then write those 4/16 outputs: the same bound.
_BINARY = {"ADD", "MUL"}
_MVE_CH_BLOCK = 124  # CH_IN_BLOCK_MVE, arm_depthwise_conv_s8_opt.c
# CONVERT_DW_CONV_WITH_ONE_INPUT_CH_AND_OUTPUT_CH_ABOVE_THRESHOLD (arm_nnsupportfunctions.h; 8 with Arm Compiler)
_DW_TO_CONV_THRESHOLD = 1


def kernel_libraries(kernels: str) -> tuple[str, ...]:
    """``"reference"``, ``"cmsis-nn"`` or several joined by ``+`` (a plan safe for all of them)."""
    libs = tuple(k.strip() for k in str(kernels).split("+"))
    bad = [k for k in libs if k not in KERNEL_LIBRARIES]
    if bad or not libs:
        raise ValueError(f"unknown kernel library {kernels!r}; known: {', '.join(KERNEL_LIBRARIES)} "
                         f"(or several joined by '+')")
    return libs


def inplace_rule(g: Graph, op: Op, input_id: int, *, kernels: str = "reference") -> InplaceRule | None:
    """The rule under which ``op``'s single output may overlap its input tensor ``input_id``, or None
    (never overlap) when the kernel's safe distance is not derived here. With several kernel libraries
    (``"reference+cmsis-nn"``) the distances allowed by all of them."""
    libs = kernel_libraries(kernels)
    if len(libs) > 1:
        rules = [inplace_rule(g, op, input_id, kernels=k) for k in libs]
        if any(r is None for r in rules):
            return None
        highs = [r.d_max for r in rules if r.d_max is not None]
        rule = InplaceRule(max(r.d_min for r in rules), min(highs) if highs else None,
                           "+".join(r.kernel for r in rules))
        return rule if rule.d_max is None or rule.d_min <= rule.d_max else None
    if len(op.outputs) != 1 or input_id not in op.inputs:
        return None
    x, y = g.tensors[input_id], g.tensors[op.outputs[0]]
    if x.is_const or x.dtype not in _SIZES or y.dtype not in _SIZES:
        return None
    if not (x.dtype == y.dtype or x.dtype in _CHAR or y.dtype in _CHAR):
        return None  # two different non-char types: the compiler may reorder the loop's loads/stores
    code = op.attrs.get("opcode") or op.kind.upper()
    cmsis = kernels == "cmsis-nn" and code in _CMSIS_OPS
    if cmsis and not (x.dtype == "int8" and y.dtype == "int8"):
        return None  # a CMSIS-NN kernel's other-type paths are not derived here
    e_i, e_o = _SIZES[x.dtype], _SIZES[y.dtype]
    try:
        d = _d_min(g, op, code, x, y, input_id, e_i, e_o, cmsis)
    except (KeyError, ValueError, IndexError, TypeError, ZeroDivisionError):
        return None  # the op lacks an attribute its rule needs: no overlap
    if d is None:
        return None
    if isinstance(d, InplaceRule):
        return d
    lib = "cmsis-nn" if cmsis else "reference"
    return InplaceRule(max(int(d), -y.nbytes), None, f"{lib}:{code}")


def _d_min(g, op, code, x, y, input_id, e_i, e_o, cmsis):
    positions = [k for k, t in enumerate(op.inputs) if t == input_id]
    if code == "RESHAPE":
        # micro/kernels/reshape.cc EvalReshapeReference: memcpy only if the two pointers differ; the
        # same address is a no-op, any other overlap an overlapping memcpy: D == 0 exactly.
        return InplaceRule(0, 0, "reference:RESHAPE") if x.nbytes == y.nbytes else None
    if code in _UNARY:
        if positions != [0] or x.numel != y.numel:
            return None
        return _d_elementwise(y.numel, e_i, e_o)
    if code in _BINARY:
        if tuple(x.shape) != tuple(y.shape) or any(
                tuple(g.tensors[t].shape) != tuple(y.shape) for t in op.inputs[:2]):
            return None  # broadcasting kernels (BroadcastAdd4DSlow, ...) are not derived here
        return _d_elementwise(y.numel, e_i, e_o)
    if code in ("PAD", "PADV2"):
        pads = op.attrs["paddings"]
        if positions != [0] or len(pads) != len(x.shape):
            return None
        if cmsis and len(x.shape) > 4:
            return None
        return _d_pad(tuple(x.shape), tuple(tuple(p) for p in pads), e_i, cmsis)
    if code == "CONCATENATION":
        shapes = [tuple(g.tensors[t].shape) for t in op.inputs]
        if any(g.tensors[t].dtype != y.dtype for t in op.inputs):
            return None
        axis = _concat_axis(op, shapes, tuple(y.shape))
        return max(_d_concat(shapes, axis, k, e_o) for k in positions)
    if code == "TRANSPOSE":
        if cmsis:
            return None  # arm_transpose_s8 (scattered writes) not derived here
        perm = tuple(op.attrs["perm"])
        if positions != [0] or sorted(perm) != list(range(len(x.shape))) or \
                tuple(x.shape[p] for p in perm) != tuple(y.shape):
            return None
        idx = np.arange(x.numel, dtype=np.int64).reshape(x.shape).transpose(perm).ravel()
        return _d_gather(tuple(idx.tolist()), e_i) if x.numel <= 1 << 20 else None
    if code == "SLICE":
        begin, size = op.attrs["begin"], op.attrs["size"]
        if positions != [0] or len(begin) != len(x.shape):
            return None
        box = tuple(slice(b, x.shape[d] if s == -1 else b + s) for d, (b, s) in enumerate(zip(begin, size)))
        idx = np.arange(x.numel, dtype=np.int64).reshape(x.shape)[box].ravel()
        return _d_gather(tuple(idx.tolist()), e_i) if x.numel <= 1 << 20 else None
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"):
        if positions != [0]:
            return None
        return _d_window(g, op, code, x, y, e_i, e_o, cmsis)
    return None


def _concat_axis(op: Op, shapes: list[tuple], out: tuple) -> int:
    axis = op.attrs.get("axis")
    if axis is None:  # the one dimension where an input differs from the output
        diff = {d for s in shapes for d in range(len(out)) if s[d] != out[d]}
        axis = diff.pop() if len(diff) == 1 else None
        if axis is None:
            raise ValueError("concatenation axis unknown")
    return axis + len(out) if axis < 0 else axis


def _d_window(g, op, code, x, y, e_i, e_o, cmsis):
    if len(x.shape) != 4 or len(y.shape) != 4:
        return None
    n, h, w, c = x.shape
    _, oh, ow, oc = y.shape
    sh, sw = hw_pair(op.attrs["stride"])
    dh, dw = hw_pair(op.attrs.get("dilation"))
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        wt = g.tensors[op.inputs[1]]
        if len(wt.shape) != 4:
            return None
        kh, kw = wt.shape[1], wt.shape[2]
    else:
        kh, kw = hw_pair(op.attrs["kernel"])
        dh = dw = 1
    geo = _Window(n, h, w, c, oh, ow, oc, kh, kw, sh, sw, dh, dw)
    if cmsis and code in ("CONV_2D", "DEPTHWISE_CONV_2D") and g.tensors[op.inputs[1]].dtype != "int8":
        return None  # int4 filters: arm_convolve_wrapper_s4 / arm_depthwise_conv_wrapper_s4, not derived
    if code == "CONV_2D":
        groups = c // g.tensors[op.inputs[1]].shape[3]
        return _d_conv_cmsis(geo, groups) if cmsis else _d_conv_reference(geo, e_i, e_o)
    if code == "DEPTHWISE_CONV_2D":
        mult = oc // c
        return _d_depthwise_cmsis(geo, mult) if cmsis else _d_channelwise(geo, e_i, e_o, mult, 1)
    if not cmsis:
        return _d_channelwise(geo, e_i, e_o, 1, 1)
    if code == "MAX_POOL_2D":
        # arm_max_pool_s8: per output pixel, arm_memcpy_s8 of the first tap into the output, then
        # compare_and_replace_if_larger_q7 with the other taps: the pixel's reads follow its write.
        return _d_pixel_groups(geo, 1, 1, 1, True)
    # arm_avgpool_s8: DSP sums a pixel's window into the scratch buffer, then writes the pixel; MVE
    # works in blocks of 16 channels per pixel; plain C channel by channel.
    return max(_d_pixel_groups(geo, 1, 1, 1, False), _d_channelwise(geo, 1, 1, 1, 16),
               _d_channelwise(geo, 1, 1, 1, 1))


def _d_conv_cmsis(geo: _Window, groups: int):
    """arm_convolve_wrapper_s8 picks the function (arm_nnsupportfunctions.h arm_nn_is_convolve_1x1...):
    - 1x1, no padding, stride 1 -> arm_convolve_1x1_s8_fast -> arm_nn_mat_mult_nt_t_s8 over all pixels;
      its DSP and C paths loop over output-channel pairs outermost and re-read every input row for each
      pair: the whole input is read until the last pair. No overlap.
    - 1x1, no padding, stride > 1 -> arm_convolve_1x1_s8: one arm_nn_mat_mult_nt_t_s8 per output row.
    - input height 1 -> arm_convolve_1_x_n_s8: not derived here.
    - else arm_convolve_s8: with groups > 1 the group loop is outermost (the input is re-read per group):
      no overlap; else im2col of 2 (C, DSP) or 4 (MVE) output pixels, then every channel of those
      pixels is written."""
    one_by_one = geo.kh == geo.kw == 1 and geo.pad_h == geo.pad_w == 0 and geo.dh == geo.dw == 1 and groups == 1
    if one_by_one:
        if geo.sh == geo.sw == 1:
            return None
        return _d_rows(geo, 1, 1)
    if geo.h == 1 and geo.kh == 1 and geo.dw == 1 and (geo.sw * geo.c) % 4 == 0 and groups == 1:
        return None
    if groups != 1:
        return None
    return max(_d_pixel_groups(geo, 1, 1, 2, False), _d_pixel_groups(geo, 1, 1, 4, False))


def _d_depthwise_cmsis(geo: _Window, mult: int):
    """arm_depthwise_conv_wrapper_s8 (every variant it can take, the largest bound):
    - MVE, one input channel and more than 1 output (8 with Arm Compiler) -> arm_depthwise_conv_to_conv_s8:
      not derived.
    - multiplier 1, batch 1, no dilation: C/DSP 3x3 with padding <= 1 -> arm_depthwise_conv_3x3_s8 (per
      pixel, 4 channels at a time: read their window, write 4 bytes); other kernels ->
      arm_depthwise_conv_s8_opt: DSP im2col of one pixel (all channels) then its outputs; plain C falls
      back to arm_depthwise_conv_s8 (channel by channel); MVE im2col of 4 pixels then their outputs, in
      blocks of 124 channels (CH_IN_BLOCK_MVE) outermost: with more channels the input is re-read per
      block, no overlap.
    - otherwise arm_depthwise_conv_s8 (depthwise_conv_s8_generic / _mult_4): the reference loop order."""
    if geo.c == 1 and geo.oc > _DW_TO_CONV_THRESHOLD:
        return None
    if not (mult == 1 and geo.n == 1 and geo.dh == geo.dw == 1):
        return _d_channelwise(geo, 1, 1, mult, 1)
    if geo.c > _MVE_CH_BLOCK:
        return None
    mve = _d_pixel_groups(geo, 1, 1, 4, False)
    if geo.kh == geo.kw == 3 and geo.pad_h <= 1 and geo.pad_w <= 1:
        return max(mve, _d_channelwise(geo, 1, 1, 1, 4))
    return max(mve, _d_pixel_groups(geo, 1, 1, 1, False), _d_channelwise(geo, 1, 1, 1, 1))


def op_inplace_rules(g: Graph, op: Op, *, kernels: str = "reference") -> dict[int, InplaceRule]:
    """{input tensor id: rule} for every activation input of ``op`` that has one."""
    out = {}
    for tid in dict.fromkeys(op.inputs):
        rule = inplace_rule(g, op, tid, kernels=kernels)
        if rule is not None:
            out[tid] = rule
    return out
