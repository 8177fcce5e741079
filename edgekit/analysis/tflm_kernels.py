"""What each TFLite-Micro kernel allocates in the arena, op by op (torch-free, pure data).

For every kernel the ``tflite-micro`` Python package registers
(python/tflite_micro/python_ops_resolver.cc) this module says what TFLite-Micro allocates
for one node of it while ``AllocateTensors()`` runs:

- ``builtin_data``: the parsed options struct (core/api/flatbuffer_conversions.cc Parse*,
  ``TfLite*Params`` from core/c/builtin_op_data.h; size and alignment compiled with the 64-bit
  host compiler), allocated for every node of a builtin op whether or not it has options;
- ``op_data``: what the kernel's ``Init`` allocates (``sizeof(OpData)``; measured as the
  RecordingMicroAllocator's "Persistent buffer data" of one-op models), or a function of the
  node for kernels whose Init allocates state sized by their options (signal ops);
- ``prepare``: the order of the kernel's ``Prepare`` allocations: ``i<k>``/``o<k>`` a temporary
  ``TfLiteTensor`` for input/output slot k (``AllocateTempInputTensor``: absent optional inputs
  allocate nothing), ``i*``/``o*`` every input/output (``i1*``: inputs 1, 2, ...), ``P`` where
  its persistent allocations (``persistent``) happen while the temporaries are still read (the
  arena must hold both), ``p`` where they happen after the temporaries' last use (an overlap
  is harmless: AllocatePersistentBuffer checks against the head only); temporaries are never
  reused within one Prepare (SingleArenaBufferAllocator::AllocateTemp only moves forward
  until ResetTempAllocations);
- ``persistent`` / ``scratch``: functions of the node giving the bytes of each
  ``AllocatePersistentBuffer`` and each ``RequestScratchBufferInArena`` in Prepare.

Each entry cites its kernel source (tensorflow/lite/micro/kernels/ and signal/micro/kernels/
of tflite-micro). A kernel missing here, or a variant a ``check`` function rejects, is not
modelled: ``tflm_arena.unmodelled_ops`` says why and the arena estimate lists it (never a
guess). Sizes are those of the 64-bit host build (``HOST_64`` in ``tflm_arena``); a 32-bit
target changes the pointer-bearing ``op_data`` sizes and an optimized kernel library adds
scratch buffers: pass a modified copy of ``KERNELS`` to ``predict_tflm_arena(kernels=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgekit.graph.ir import Graph, Op, Tensor

# memory_helpers.cc TfLiteTypeSizeOf: the bytes per element TFLite-Micro uses for a tensor of
# each type. A model with a tensor of another type (string, variant, int2, uint4: measured)
# fails AllocateTensors: AllocationInfoBuilder sizes every tensor of every subgraph.
TYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int16": 2, "int32": 4, "uint32": 4,
              "uint8": 1, "uint16": 2, "int8": 1, "int64": 8, "uint64": 8, "bool": 1, "resource": 4,
              "complex64": 8, "complex128": 16, "int4": 1,
              # measured: the tflite-micro package (0.dev20261023) sizes both float8 types (1 B)
              "float8_e4m3fn": 1, "float8_e5m2": 1}

# The ops the tflite-micro Python package registers (python_ops_resolver.cc; custom ops by
# the name micro_mutable_op_resolver.h registers them under).
REGISTERED = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND BROADCAST_ARGS
BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS CUMSUM DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE
DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD
FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU
LESS LESS_EQUAL LOG LOG_SOFTMAX LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC MAX_POOL_2D MAXIMUM MEAN MINIMUM
MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE REDUCE_ALL REDUCE_MAX REDUCE_MIN
RELU RELU6 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE
SOFTMAX SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE
SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
CUSTOM:CIRCULAR_BUFFER CUSTOM:TFLM_DECODE CUSTOM:TFLite_Detection_PostProcess CUSTOM:ethos-u
CUSTOM:SignalDelay CUSTOM:SignalEnergy CUSTOM:SignalFftAutoScale CUSTOM:SignalFilterBank
CUSTOM:SignalFilterBankLog CUSTOM:SignalFilterBankSquareRoot CUSTOM:SignalFilterBankSpectralSubtraction
CUSTOM:SignalFramer CUSTOM:SignalIrfft CUSTOM:SignalOverlapAdd CUSTOM:SignalPCAN CUSTOM:SignalRfft
CUSTOM:SignalStacker CUSTOM:SignalWindow
""".split())

Sizes = Callable[[Graph, Op], list[int]]


@dataclass(frozen=True)
class Kernel:
    """One kernel's arena allocations (see the module docstring)."""

    op_data: int | Sizes = 0  # bytes, or a function of the node giving each Init allocation
    builtin_data: tuple[int, int] | None = None  # (sizeof, alignof) of the parsed options
    prepare: str | Callable[[Graph, Op], str] = "i* o*"
    persistent: Sizes | None = None
    scratch: Sizes | None = None
    check: Callable[[Graph, Op], str | None] | None = None  # a reason when this node is not modelled
    source: str = ""


# ---- node helpers ---------------------------------------------------------------------------

def slots(op: Op) -> list[int]:
    """The node's inputs by position, -1 where an optional input is absent."""
    return list(op.attrs.get("input_slots") or op.inputs)


def inp(g: Graph, op: Op, k: int) -> Tensor | None:
    s = slots(op)
    return g.tensors[s[k]] if k < len(s) and s[k] >= 0 else None


def out(g: Graph, op: Op, k: int = 0) -> Tensor | None:
    return g.tensors[op.outputs[k]] if k < len(op.outputs) else None


def opt(op: Op, name: str, default=None):
    return (op.attrs.get("options") or {}).get(name, default)


def nbytes(t: Tensor) -> int:
    return t.numel * TYPE_BYTES.get(t.dtype, 0)


def is_quantized(t: Tensor | None) -> bool:
    return t is not None and t.dtype in ("int8", "int16", "uint8")


# ---- Prepare allocations that depend on the node -------------------------------------------------

def _conv_quant(g: Graph, op: Op) -> list[int]:
    """conv_common.cc ConvPrepare / depthwise_conv_common.cc / transpose_conv.cc: per-channel
    output multiplier and shift (int32 each), for every input type, float included."""
    w = inp(g, op, 1)  # the filter (TRANSPOSE_CONV: output_shape, filter, input, bias)
    if w is None or len(w.shape) != 4:
        return []
    c = w.shape[3] if _opcode(op) == "DEPTHWISE_CONV_2D" else w.shape[0]
    return [4 * c, 4 * c]


def _int4_unpack(g: Graph, op: Op) -> list[int]:
    """conv_common.cc / fully_connected.cc: an int4 filter is unpacked into a scratch buffer."""
    w = inp(g, op, 1)
    return [w.numel] if w is not None and w.dtype == "int4" else []


def _transpose_conv_scratch(g: Graph, op: Op) -> list[int]:
    """transpose_conv.cc Prepare: an int32 (int8 input) or int64 (int16 input) accumulator of
    the output's size, then (CalculateOpData) an int64 copy of an int16 model's int16 bias."""
    x, o, b = inp(g, op, 2), out(g, op), inp(g, op, 3)
    req = []
    if x is not None and x.dtype == "int8":
        req.append(4 * o.numel)
    elif x is not None and x.dtype == "int16":
        req.append(8 * o.numel)
        if b is not None and b.dtype == "int16":
            req.append(8 * b.numel)  # bias_converted_buffer_index
    return req


def _transpose_conv_prepare(g: Graph, op: Op) -> str:
    """transpose_conv.cc: Prepare takes output, input, filter; CalculateOpData takes input,
    filter, bias, output again for quantized inputs only."""
    x = inp(g, op, 2)
    return "o0 i2 i1 P" + (" i2 i1 i3 o0" if x is not None and x.dtype != "float32" else "")


def _fc_quant(g: Graph, op: Op) -> list[int]:
    """fully_connected_common.cc CalculateOpDataFullyConnected: per-channel multipliers and
    shifts for per-channel quantized weights (int8/int16 inputs)."""
    x, w = inp(g, op, 0), inp(g, op, 1)
    if w is None or not is_quantized(x) or w.quant is None or w.quant.num_scales <= 1:
        return []
    c = w.quant.num_scales
    return [4 * c, 4 * c]


def _batch_matmul(g: Graph, op: Op) -> list[int]:
    """batch_matmul.cc InitializeTemporaries: quantization parameters (7 int32) for int8/int16,
    then for each transposed operand (LHS if adj_x, RHS unless adj_y) a TfLiteEvalTensor (24),
    its dims (TfLiteIntArray) and a copy of its data."""
    lhs, rhs = inp(g, op, 0), inp(g, op, 1)
    sizes = [28] if is_quantized(lhs) else []
    for t, flag in ((lhs, opt(op, "adjX", False)), (rhs, not opt(op, "adjY", False))):
        if flag and t is not None:
            sizes += [24, 4 + 4 * len(t.shape), nbytes(t)]
    return sizes


def _reduce_scratch(g: Graph, op: Op) -> list[int]:
    """reduce_common.cc PrepareMeanOrSumHelper: an int32 accumulator per output element for
    int8/int16 input, then the input-iterator (int per input dim) and resolved-axis (int per
    axis) buffers; PrepareMinMaxHelper / PrepareAllHelper: the last two only."""
    x, axis, o = inp(g, op, 0), inp(g, op, 1), out(g, op)
    n_axis = axis.numel if axis is not None else 1
    req = []
    if _opcode(op) in ("MEAN", "SUM") and x is not None and x.dtype in ("int8", "int16"):
        req.append(4 * o.numel)
    return req + [4 * max(len(x.shape), 1) if x is not None else 4, 4 * n_axis]


def _reduce_prepare(g: Graph, op: Op) -> str:
    """reduce_common.cc: PrepareSimple takes input and axis, plus the output for int8 input;
    MEAN/SUM run it after their own input/output/axis, MAX/MIN before theirs, ALL after."""
    simple = "i0 i1" + (" o0" if (inp(g, op, 0) is not None and inp(g, op, 0).dtype == "int8") else "")
    if _opcode(op) in ("REDUCE_MAX", "REDUCE_MIN"):
        return simple + " i0 o0 i1"
    return "i0 o0 i1 " + simple


def _softmax_lut(g: Graph, op: Op) -> list[int]:
    """softmax_common.cc InitializeLutForInt16: two int16 LUTs of 513 entries for int16 input."""
    x = inp(g, op, 0)
    return [2 * 513, 2 * 513] if x is not None and x.dtype == "int16" else []


def _int8_only(size: int) -> Sizes:
    def sizes(g: Graph, op: Op) -> list[int]:
        x = inp(g, op, 0)
        return [size] if x is not None and x.dtype == "int8" else []
    return sizes


def _mirror_pad_scratch(g: Graph, op: Op) -> list[int]:
    """mirror_pad.cc Prepare: two int arrays of the input's rank."""
    x = inp(g, op, 0)
    r = len(x.shape) if x is not None else 0
    return [4 * r, 4 * r]


def _add_n_scratch(g: Graph, op: Op) -> list[int]:
    """add_n.cc CalculateOpData: one data pointer per input (8 B on a 64-bit host)."""
    return [8 * len(op.inputs)]


def _add_n_persistent(g: Graph, op: Op) -> list[int]:
    """add_n.cc: int8 allocates its OpData in Prepare (float keeps a scratch index only)."""
    x = inp(g, op, 0)
    return [40] if x is not None and x.dtype == "int8" else []


def _lstm_scratch(g: Graph, op: Op) -> list[int]:
    """unidirectional_sequence_lstm.cc Prepare: four buffers of batch x state elements of the
    cell-state type (lstm_eval.cc CreateLstmSizeInfo)."""
    x, h, c = inp(g, op, 0), inp(g, op, 18), inp(g, op, 19)
    if x is None or h is None or c is None:
        return []
    batch = x.shape[1] if opt(op, "timeMajor", False) and len(x.shape) == 3 else (x.shape[0] if x.shape else 1)
    n = batch * h.shape[-1] * TYPE_BYTES.get(c.dtype, 4)
    return [n] * 4


def _lstm_variant(g: Graph, op: Op) -> str | None:
    """lstm_eval.cc LstmTensors::ValidateTensorStatus: TFLite-Micro runs the plain LSTM only."""
    present = [k for k in (*range(9, 12), 16, 17, *range(20, 24)) if inp(g, op, k) is not None]
    if present:
        return (f"peephole, projection or layer-norm LSTM (inputs {present}): TFLite-Micro's kernel refuses these "
                "variants (lstm_eval.cc ValidateTensorStatus)")
    return None


def _svdf_scratch(g: Graph, op: Op) -> list[int]:
    """svdf_common.cc PrepareSvdf: int8 asks for batch x filters and batch x units int32
    buffers, float for batch x filters floats."""
    x, wf, o = inp(g, op, 0), inp(g, op, 1), out(g, op)
    if x is None or wf is None or o is None:
        return []
    batch, filters, units = x.shape[0], wf.shape[0], o.shape[-1]
    if x.dtype == "int8":
        return [4 * batch * filters, 4 * batch * units]
    return [4 * batch * filters]


def _opcode(op: Op) -> str:
    return op.attrs.get("opcode") or op.kind.upper()


def _out_dims(g: Graph, op: Op) -> list[int]:
    """kernel_util.cc CreateWritableTensorDimsWithCopy: the output's dims moved from the
    flatbuffer into the arena (TfLiteIntArray of the output's rank)."""
    o = out(g, op)
    return [4 + 4 * len(o.shape)] if o is not None else []


def _plus(*fns: Sizes) -> Sizes:
    def sizes(g: Graph, op: Op) -> list[int]:
        return [n for f in fns for n in f(g, op)]
    return sizes


def _const(*sizes: int) -> Sizes:
    return lambda g, op: list(sizes)


def custom_options(op: Op) -> dict:
    """A custom op's options (a flexbuffer map, as the TF signal ops write them); {} if none."""
    data = op.attrs.get("custom_options")
    if not data:
        return {}
    from flatbuffers import flexbuffers

    try:
        value = flexbuffers.Loads(data)
    except Exception:  # not a flexbuffer map: the kernel would reject it too
        return {}
    return value if isinstance(value, dict) else {}


def _copt(name: str, default: int = 0) -> Callable[[Op], int]:
    return lambda op: int(custom_options(op).get(name, default))


def _kissfft_r(fft_length: int, cpx: int) -> int:
    """kiss_fftr_alloc's memory (kiss_fftr.c, kiss_fft.c with MAXFACTORS 32): the fftr state
    (3 pointers), a complex FFT of half the length (kiss_fft_state: nfft, inverse,
    factors[64], twiddles) and 3/2 of the half length of complex scratch/twiddles."""
    n = fft_length // 2
    sub = 4 + 4 + 4 * 64 + cpx * n  # kiss_fft_state with twiddles[n]
    return 3 * 8 + sub + cpx * (n * 3 // 2)


_FFT_CPX = {7: 4, 2: 8, 0: 8}  # TensorType T -> sizeof(kiss_fft_cpx): int16, int32, float32


def _fft_init(params: int, extra_float: int = 0) -> Sizes:
    """signal rfft.cc / irfft.cc Init: the params struct and the kissfft state
    (signal/src/rfft_*.cc, irfft_*.cc *GetNeededMemory; IrfftFloatState adds 16 B)."""
    def sizes(g: Graph, op: Op) -> list[int]:
        o = custom_options(op)
        t, n = int(o.get("T", 0)), int(o.get("fft_length", 0))
        state = _kissfft_r(n, _FFT_CPX.get(t, 8)) + (extra_float if t == 0 else 0)
        return [params, state]
    return sizes


def _fft_scratch(g: Graph, op: Op) -> list[int]:
    """signal rfft.cc Prepare: fft_length elements of T."""
    o = custom_options(op)
    return [int(o.get("fft_length", 0)) * {7: 2, 2: 4, 0: 4}.get(int(o.get("T", 0)), 4)]


def _circular_buffer(capacity: int) -> int:
    """signal/src/circular_buffer.cc CircularBufferGetNeededMemory: a 40-B header + 2 x capacity int16."""
    return 40 + 4 * capacity


def _outer_dims(t: Tensor | None, inner: int = 1) -> int:
    if t is None or not t.shape:
        return 1
    return max(t.numel // max(1, int(__import__("math").prod(t.shape[-inner:]))), 1)


def _framer_state(g: Graph, op: Op) -> list[int]:
    """signal framer.cc Prepare: per outer row a state pointer, a circular-buffer pointer and a
    circular buffer of frame_size rounded up to a multiple of frame_step."""
    o = custom_options(op)
    size, step = int(o.get("frame_size", 0)), max(int(o.get("frame_step", 1)), 1)
    outer = _outer_dims(inp(g, op, 0))
    cap = (size + step - 1) // step * step
    return [8 * outer, 8 * outer] + [_circular_buffer(cap)] * outer


def _delay_state(g: Graph, op: Op) -> list[int]:
    """signal delay.cc Prepare: as the framer, with frame + delay_length elements."""
    x = inp(g, op, 0)
    outer, frame = _outer_dims(x), (x.shape[-1] if x is not None and x.shape else 1)
    cap = frame + int(custom_options(op).get("delay_length", 0))
    return [8 * outer, 8 * outer] + [_circular_buffer(cap)] * outer


def _overlap_add_state(g: Graph, op: Op) -> list[int]:
    """signal overlap_add.cc Prepare: per outer row a pointer and frame_size elements of T."""
    x = inp(g, op, 0)
    if x is None or len(x.shape) < 2:
        return []
    outer = _outer_dims(x, inner=2)
    return [8 * outer] + [x.shape[-1] * TYPE_BYTES.get(x.dtype, 4)] * outer


def _stacker_init(g: Graph, op: Op) -> list[int]:
    """signal stacker.cc Init: params (56) and a circular buffer of num_channels x
    (left + right + 1)."""
    o = custom_options(op)
    n = int(o.get("num_channels", 0)) * (int(o.get("stacker_left_context", 0))
                                         + int(o.get("stacker_right_context", 0)) + 1)
    return [56, _circular_buffer(n)]


def _detection_scratch(g: Graph, op: Op) -> list[int]:
    """detection_postprocess.cc Prepare: eleven scratch buffers sized by the number of boxes,
    classes and max_detections."""
    o = custom_options(op)
    enc, cls = inp(g, op, 0), inp(g, op, 1)
    if enc is None or cls is None or len(enc.shape) < 2 or len(cls.shape) < 3:
        return []
    nb, md, nc = enc.shape[1], int(o.get("max_detections", 0)), int(o.get("num_classes", 0))
    return [nb, nb * 4 * 4, cls.shape[1] * cls.shape[2] * 4, nb * 4, nb * 4, md * nb * 4, md * nb * 4, nb * 4,
            md * nb * 4, max(nc, md) * nb * 4, min(nb, md) * nb * 4]


# TfLite*Params (size, alignof) as compiled for the 64-bit host from core/c/builtin_op_data.h
# (the Parse* function of flatbuffer_conversions.cc allocates one per node). Exception:
# FULLY_CONNECTED takes 32 B in the installed package (measured on one-op and sine_float
# models) where the pinned header compiles to 16.
_PARAMS = {
    "ADD": (8, 4), "ARG_MAX": (4, 4), "ARG_MIN": (4, 4), "BATCH_MATMUL": (3, 1), "CALL_ONCE": (4, 4),
    "CAST": (8, 4), "CONCATENATION": (8, 4), "CONV_2D": (28, 4), "CUMSUM": (2, 1), "DEPTHWISE_CONV_2D": (28, 4),
    "DEPTH_TO_SPACE": (4, 4), "DIV": (4, 4), "FULLY_CONNECTED": (32, 4), "GATHER": (8, 4), "IF": (8, 4),
    "L2_NORMALIZATION": (4, 4), "LEAKY_RELU": (4, 4), "MIRROR_PAD": (4, 4), "MUL": (4, 4), "PACK": (8, 4),
    "AVERAGE_POOL_2D": (40, 4), "MAX_POOL_2D": (40, 4), "L2_POOL_2D": (40, 4), "MEAN": (1, 1), "SUM": (1, 1),
    "REDUCE_MAX": (1, 1), "REDUCE_MIN": (1, 1), "REDUCE_ALL": (1, 1), "RESHAPE": (36, 4),
    "RESIZE_BILINEAR": (2, 1), "RESIZE_NEAREST_NEIGHBOR": (2, 1), "SHAPE": (4, 4), "SOFTMAX": (4, 4),
    "SPACE_TO_DEPTH": (4, 4), "SPLIT": (4, 4), "SPLIT_V": (4, 4), "SQUEEZE": (36, 4), "STRIDED_SLICE": (24, 4),
    "SUB": (8, 4), "SVDF": (12, 4), "TRANSPOSE_CONV": (20, 4), "UNIDIRECTIONAL_SEQUENCE_LSTM": (16, 4),
    "UNPACK": (8, 4), "VAR_HANDLE": (16, 8), "WHILE": (8, 4),
}

_K = Kernel
_CONV = "o0 i0 i1 P i0 i1 i2 o0"  # ConvPrepare, then CalculateOpDataConv (conv_common.cc)

KERNELS: dict[str, Kernel] = {
    # convolutions and matrix products
    "CONV_2D": _K(80, prepare=_CONV, persistent=_conv_quant, scratch=_int4_unpack, source="conv_common.cc"),
    "DEPTHWISE_CONV_2D": _K(80, prepare=_CONV, persistent=_conv_quant, scratch=_int4_unpack,
                            source="depthwise_conv_common.cc"),
    "TRANSPOSE_CONV": _K(88, prepare=_transpose_conv_prepare, persistent=_conv_quant,
                         scratch=_transpose_conv_scratch, source="transpose_conv.cc"),
    "FULLY_CONNECTED": _K(72, prepare="i0 i1 i2 o0 P", persistent=_fc_quant, scratch=_int4_unpack,
                          source="fully_connected.cc, fully_connected_common.cc"),
    "BATCH_MATMUL": _K(32, prepare="i0 i1 o0 P", persistent=_plus(_batch_matmul, _out_dims),
                       source="batch_matmul.cc, batch_matmul_common.cc"),
    # pooling and reductions
    "AVERAGE_POOL_2D": _K(32, source="pooling_common.cc"),
    "MAX_POOL_2D": _K(32, source="pooling_common.cc"),
    "L2_POOL_2D": _K(0, prepare="i0 o0 p", persistent=_out_dims, source="l2_pool_2d.cc"),
    "MEAN": _K(44, prepare=_reduce_prepare, scratch=_reduce_scratch, source="reduce_common.cc"),
    "SUM": _K(44, prepare=_reduce_prepare, scratch=_reduce_scratch, source="reduce_common.cc"),
    "REDUCE_MAX": _K(44, prepare=_reduce_prepare, scratch=_reduce_scratch, source="reduce_common.cc"),
    "REDUCE_MIN": _K(44, prepare=_reduce_prepare, scratch=_reduce_scratch, source="reduce_common.cc"),
    "REDUCE_ALL": _K(44, prepare=_reduce_prepare, scratch=_reduce_scratch, source="reduce_common.cc"),
    # element-wise
    "ADD": _K(60, source="add.cc, add_common.cc"),
    "SUB": _K(52, source="sub.cc, sub_common.cc"),
    "MUL": _K(36, source="mul_common.cc"),
    "DIV": _K(28, source="div.cc"),
    "SQUARED_DIFFERENCE": _K(112, source="squared_difference.cc"),
    "ADD_N": _K(0, prepare="i0 o0 i1* P", persistent=_add_n_persistent, scratch=_add_n_scratch, source="add_n.cc"),
    "MAXIMUM": _K(0, prepare="", source="maximum_minimum.cc (no Init, no Prepare)"),
    "MINIMUM": _K(0, prepare="", source="maximum_minimum.cc"),
    "FLOOR_DIV": _K(0, source="floor_div.cc"),
    "FLOOR_MOD": _K(0, source="floor_mod.cc"),
    "EQUAL": _K(32, prepare="i0 i1", source="comparisons.cc"),
    "NOT_EQUAL": _K(32, prepare="i0 i1", source="comparisons.cc"),
    "GREATER": _K(32, prepare="i0 i1", source="comparisons.cc"),
    "GREATER_EQUAL": _K(32, prepare="i0 i1", source="comparisons.cc"),
    "LESS": _K(32, prepare="i0 i1", source="comparisons.cc"),
    "LESS_EQUAL": _K(32, prepare="i0 i1", source="comparisons.cc"),
    "LOGICAL_AND": _K(0, prepare="", source="logical.cc"),
    "LOGICAL_OR": _K(0, prepare="", source="logical.cc"),
    "SELECT_V2": _K(1, source="select.cc"),
    "ABS": _K(28, source="elementwise.cc PrepareAbsRsqrt"),
    "RSQRT": _K(28, source="elementwise.cc PrepareAbsRsqrt"),
    "SIN": _K(0, source="elementwise.cc GenericPrepare"),
    "COS": _K(0, source="elementwise.cc"),
    "LOG": _K(0, source="elementwise.cc"),
    "SQRT": _K(0, source="elementwise.cc"),
    "SQUARE": _K(0, source="elementwise.cc"),
    "LOGICAL_NOT": _K(0, source="elementwise.cc"),
    "CEIL": _K(0, source="ceil.cc"),
    "FLOOR": _K(0, prepare="", source="floor.cc (no Prepare)"),
    "NEG": _K(0, prepare="", source="neg.cc (no Prepare)"),
    "ROUND": _K(0, source="round.cc"),
    "EXP": _K(0, source="exp.cc"),
    "ZEROS_LIKE": _K(0, source="zeros_like.cc"),
    "CAST": _K(0, source="cast.cc"),
    # activations
    "RELU": _K(28, source="activations.cc, activations_common.cc"),
    "RELU6": _K(8, prepare="i0", source="activations_common.cc Relu6Prepare"),
    "LEAKY_RELU": _K(24, source="leaky_relu_common.cc"),
    "PRELU": _K(28, source="prelu_common.cc"),
    "ELU": _K(256, source="elu.cc (OpData holds a 256-entry int8 LUT)"),
    "HARD_SWISH": _K(20, source="hard_swish_common.cc"),
    "LOGISTIC": _K(16, source="logistic_common.cc"),
    "TANH": _K(16, prepare="i0 i0 o0", source="tanh.cc TanhPrepare + CalculateArithmeticOpData"),
    "SOFTMAX": _K(80, prepare="i0 o0 P", persistent=_softmax_lut, source="softmax_common.cc"),
    "LOG_SOFTMAX": _K(0, prepare="i0 o0 P", persistent=_int8_only(40), source="log_softmax.cc"),
    "L2_NORMALIZATION": _K(4, source="l2norm.cc"),
    "QUANTIZE": _K(32, source="quantize_common.cc"),
    "DEQUANTIZE": _K(32, source="dequantize_common.cc"),
    # shape and data movement
    "RESHAPE": _K(0, source="reshape_common.cc (copies the output dims only for a -1 in the file's "
                            "output shape: a dynamic tensor, which Prepare then refuses)"),
    "SQUEEZE": _K(0, source="squeeze.cc"),
    "EXPAND_DIMS": _K(0, source="expand_dims.cc"),
    "TRANSPOSE": _K(0, source="transpose.h TransposeContext"),
    "PAD": _K(56, source="pad_common.cc"),
    "PADV2": _K(56, source="pad_common.cc"),
    "MIRROR_PAD": _K(20, scratch=_mirror_pad_scratch, source="mirror_pad.cc"),
    "CONCATENATION": _K(80, prepare="i0 o0 i*", source="concatenation.cc"),
    "PACK": _K(0, prepare="", source="pack.cc (no Prepare)"),
    "UNPACK": _K(0, prepare="", source="unpack.cc (no Prepare)"),
    "SPLIT": _K(0, prepare="i0", source="split.cc"),
    "SPLIT_V": _K(0, prepare="i2", source="split_v.cc"),
    "SLICE": _K(0, source="slice.cc"),
    "STRIDED_SLICE": _K(84, source="strided_slice_common.cc"),
    "GATHER": _K(0, prepare="i* o0 p", persistent=_out_dims, source="gather.cc"),
    "GATHER_ND": _K(0, prepare="i* o0 p", persistent=_out_dims, source="gather_nd.cc"),
    "REVERSE_V2": _K(0, source="reverse.cc"),
    "DEPTH_TO_SPACE": _K(0, prepare="i0 o0 p", persistent=_out_dims, source="depth_to_space.cc"),
    "SPACE_TO_DEPTH": _K(0, prepare="i0 o0 p", persistent=_out_dims, source="space_to_depth.cc"),
    "BATCH_TO_SPACE_ND": _K(0, prepare="i0 o0", source="batch_to_space_nd.cc"),
    "SPACE_TO_BATCH_ND": _K(4, prepare="i0 o0", source="space_to_batch_nd.cc"),
    "RESIZE_BILINEAR": _K(0, source="resize_bilinear.cc"),
    "RESIZE_NEAREST_NEIGHBOR": _K(0, source="resize_nearest_neighbor.cc"),
    "BROADCAST_TO": _K(0, source="broadcast_to.cc"),
    "BROADCAST_ARGS": _K(0, source="broadcast_args.cc"),
    "DYNAMIC_UPDATE_SLICE": _K(0, source="dynamic_update_slice.cc"),
    "EMBEDDING_LOOKUP": _K(0, prepare="i0 i1 o0 p", persistent=_plus(_out_dims, _const(16)),
                           source="embedding_lookup.cc"),
    "CUMSUM": _K(0, prepare="i0 i1 o0 P", persistent=_int8_only(36), source="cumsum.cc"),
    "ARG_MAX": _K(0, prepare="", source="arg_min_max.cc (no Prepare)"),
    "ARG_MIN": _K(0, prepare="", source="arg_min_max.cc (no Prepare)"),
    "SHAPE": _K(0, source="shape.cc"),
    "FILL": _K(0, source="fill.cc"),
    # recurrent and stateful
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _K(688, prepare="i* o0", scratch=_lstm_scratch, check=_lstm_variant,
                                       source="unidirectional_sequence_lstm.cc, lstm_eval.cc LstmTensors"),
    "SVDF": _K(36, prepare="i0 i1 i2 i3 i4 o0", scratch=_svdf_scratch, source="svdf.cc, svdf_common.cc"),
    "CUSTOM:CIRCULAR_BUFFER": _K(8, prepare="i0 o0", source="circular_buffer.cc, circular_buffer_common.cc"),
    # control flow (the subgraphs they call are planned with the main one: tflm_plan)
    "WHILE": _K(8, prepare="", source="while.cc"),
    "IF": _K(8, prepare="i0", source="if.cc"),
    "CALL_ONCE": _K(8, prepare="", source="call_once.cc"),
    # resource variables (micro_resource_variable.cc; the buffer: tflm_arena._resource_buffer)
    "VAR_HANDLE": _K(4, prepare="", source="var_handle.cc (its output points at its OpData: not planned)"),
    "READ_VARIABLE": _K(0, prepare="i0", source="read_variable.cc"),
    "ASSIGN_VARIABLE": _K(4, prepare="i1 P", source="assign_variable.cc (OpData: USE_TFLM_COMPRESSION)"),
    # object detection
    "CUSTOM:TFLite_Detection_PostProcess": _K(112, prepare="i0 i1 i2", scratch=_detection_scratch,
                                              source="detection_postprocess.cc"),
    # the signal library (signal/micro/kernels; options are flexbuffer maps)
    "CUSTOM:SignalWindow": _K(8, prepare="i0 i1 o0", source="window.cc"),
    "CUSTOM:SignalFftAutoScale": _K(0, prepare="i0 o0 o1", source="fft_auto_scale_common.cc"),
    "CUSTOM:SignalRfft": _K(_fft_init(48), prepare="i0 o0", scratch=_fft_scratch, source="rfft.cc"),
    "CUSTOM:SignalIrfft": _K(_fft_init(32, extra_float=16), prepare="i0 o0", source="irfft.cc"),
    "CUSTOM:SignalEnergy": _K(8, prepare="i0 o0", source="energy.cc"),
    "CUSTOM:SignalFilterBank": _K(lambda g, op: [64, 8 * (_copt("num_channels")(op) + 1)],
                                  prepare="i0 i1 i2 i3 i4 i5 o0", source="filter_bank.cc"),
    "CUSTOM:SignalFilterBankSquareRoot": _K(0, prepare="i0 i1 o0", source="filter_bank_square_root_common.cc"),
    "CUSTOM:SignalFilterBankSpectralSubtraction": _K(lambda g, op: [56, 4 * _copt("num_channels")(op)],
                                                     prepare="i0 o0 o1",
                                                     source="filter_bank_spectral_subtraction.cc"),
    "CUSTOM:SignalPCAN": _K(4, prepare="i0 i1 i2 o0", source="pcan.cc"),
    "CUSTOM:SignalFilterBankLog": _K(8, prepare="i0 o0", source="filter_bank_log.cc"),
    "CUSTOM:SignalFramer": _K(40, prepare="i0 o0 o1 P", persistent=_framer_state, source="framer.cc"),
    "CUSTOM:SignalStacker": _K(_stacker_init, prepare="i0 o0 o1", source="stacker.cc"),
    "CUSTOM:SignalDelay": _K(32, prepare="i0 o0 P", persistent=_delay_state, source="delay.cc"),
    "CUSTOM:SignalOverlapAdd": _K(32, prepare="i0 o0 P", persistent=_overlap_add_state, source="overlap_add.cc"),
}

# Model metadata that changes what TFLite-Micro allocates, which this model does not replay.
METADATA_NOT_MODELLED = {
    "OfflineMemoryAllocation": "an offline memory plan (micro_allocation_info.cc GetOfflinePlannedOffsets) "
                               "replaces the greedy plan; it is modelled when its offsets are passed "
                               "(predict_tflm_arena(offline_offsets=...), as analysis.memory_plans does), "
                               "and this one is unsound",
    "COMPRESSION_METADATA": "compressed tensors (micro_allocator.cc AllocateCompressedTensorsList, "
                            "decompression scratch buffers): not modelled",
}

# Registered but not modelled, with the reason (the estimate lists them instead of guessing).
NOT_MODELLED = {
    "CUSTOM:TFLM_DECODE": "decodes compressed tensors into alternate or scratch memory (decode.cc): not modelled",
    "CUSTOM:ethos-u": "runs on an Arm Ethos-U NPU, whose memory this model does not cover",
}
for _name, _k in KERNELS.items():  # attach the parsed-options struct of each builtin op
    if _name in _PARAMS and _k.builtin_data is None:
        KERNELS[_name] = Kernel(**{**_k.__dict__, "builtin_data": _PARAMS[_name]})
