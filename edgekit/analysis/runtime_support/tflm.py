"""TFLite-Micro: the builtin ops it registers and the tensor types each reference kernel runs.

Sources: tflite-micro at 90b983c2 (2026-08-20; ``../shared/third_party/tflite-micro``, the
reference ``*.cc`` files from upstream at the same commit). Paths below are relative to
``tensorflow/lite/micro/``; each fact names the function that checks it (a Prepare's
``TF_LITE_ENSURE``, an Eval's type switch, whose ``default:`` returns kTfLiteError).

Registered ops: every ``Add*`` builtin method of ``micro_mutable_op_resolver.h`` (the Python
package's ``python/tflite_micro/python_ops_resolver.cc`` adds all of them); a builtin opcode
not here "has no kernel in TFLite-Micro". Custom ops: those with their own Add method
(``AddDetectionPostprocess``, ``AddCircularBuffer``, the signal library's, ``AddDecode``);
``ethos-u`` needs an Ethos-U build; any other custom op has no kernel unless the firmware
registers one with ``AddCustom``.

The oracle is the interpreter of the ``tflite_micro`` Python package (0.dev20261023, reference
kernels), newer than the pinned sources: it also runs RSQRT int16 and CAST to bool, which the
2026-08 sources refuse. The table follows the interpreter (check and lint must agree) and
says so in those kernels' notes; firmware built from the pinned sources refuses both.

What is and is not checked (each verified against the interpreter in
``tests/test_runtime_support.py``, which prints the matrix):
- tensor types: every registered builtin op;
- options and shapes where a kernel refuses them: CONCATENATION (fused activation, > 10
  inputs, rank > 6), TRANSPOSE (rank > 5, non-constant perm), STRIDED_SLICE (rank > 4,
  non-constant begin/end/strides), PAD/PADV2 (rank > 5), BATCH_MATMUL (rank 2..5),
  BATCH_TO_SPACE_ND/SPACE_TO_BATCH_ND (rank 3..4), 4-D-only ops, BROADCAST_TO (rank > 5),
  FULLY_CONNECTED with per-channel int4 weights, SOFTMAX's fixed int8/int16 output scales
  and pooling's equal input/output quantization;
- not checked (a converter does not produce them): int16 zero points other than 0,
  quantization *scales* the kernels cannot represent, shape mismatches.
Kernels that run an op without error but compute nonsense are reported too (the model cannot
run *correctly*), as *silent* checks whose reason says "wrong results, no error": fused
TANH/SIGN_BIT/SIGMOID activations, which every fusing kernel ignores (kernel_util.h
CalculateActivationRange / kernels/kernel_util.cc CalculateActivationRangeQuantizedImpl fall
through to "no activation"); int16 DEPTHWISE_CONV_2D with an int32 bias, read as int64
(depthwise_conv.cc DepthwiseConvEval); a float LSTM with non-float weights (hybrid), read as
float (unidirectional_sequence_lstm.cc UnidirectionalSequenceLstmEval).
"""

from __future__ import annotations

from dataclasses import replace

from edgekit.analysis.runtime_support.facts import Check, K, Kernel, each, input_slots, sig_not
from edgekit.graph.ir import Graph, Op

RUNTIME = "tflite-micro"

# Builtin opcodes with an Add method in micro_mutable_op_resolver.h (2026-08-20).
REGISTERED = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND
BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS CUMSUM DEPTH_TO_SPACE
DEPTHWISE_CONV_2D DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS
FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL HARD_SWISH
IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR
LOGISTIC LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2
PRELU QUANTIZE READ_VARIABLE REDUCE_ALL REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE RESIZE_BILINEAR
RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND
SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM SVDF TANH
TRANSPOSE TRANSPOSE_CONV UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
""".split())

# Custom op names with a registration of their own (micro_mutable_op_resolver.h AddCustom calls).
CUSTOM_REGISTERED = frozenset({
    "TFLite_Detection_PostProcess", "CIRCULAR_BUFFER", "TFLM_DECODE", "SignalDelay", "SignalEnergy",
    "SignalFftAutoScale", "SignalFilterBank", "SignalFilterBankLog", "SignalFilterBankSpectralSubtraction",
    "SignalFilterBankSquareRoot", "SignalFramer", "SignalIrfft", "SignalOverlapAdd", "SignalPCAN", "SignalRfft",
    "SignalStacker", "SignalWindow",
})
# registered only in a build for the Ethos-U NPU (kernels/ethos_u/ethosu.cc); elsewhere AddEthosU adds nothing
NPU_CUSTOM = {"ethos-u": "needs an Ethos-U NPU build of TFLite-Micro (the Vela-compiled command stream)"}

F, I8, I16, I32, I64, U8, B = "float32", "int8", "int16", "int32", "int64", "uint8", "bool"


# ---- checks on options and shapes ---------------------------------------------------------------

def _rank(g: Graph, tid: int) -> int:
    return len(g.tensors[tid].shape)


def rank_at_most(n: int, source: str, *, which: str = "input") -> Check:
    def why(op: Op, g: Graph) -> str | None:
        ids = op.inputs[:1] if which == "input" else op.outputs[:1]
        r = max((_rank(g, t) for t in ids), default=0)
        return f"with a rank-{r} {which} (at most {n})" if r > n else None
    return Check(why, source)


def rank_between(lo: int, hi: int, source: str, *, inputs: tuple[int, ...] = (0,)) -> Check:
    def why(op: Op, g: Graph) -> str | None:
        for i in inputs:
            if i < len(op.inputs):
                r = _rank(g, op.inputs[i])
                if not lo <= r <= hi:
                    span = f"exactly {lo}" if lo == hi else f"{lo} to {hi}"
                    return f"with a rank-{r} input ({span} dimensions)"
        return None
    return Check(why, source)


def const_inputs(positions: tuple[int, ...], what: str, source: str) -> Check:
    def why(op: Op, g: Graph) -> str | None:
        for i in positions:
            if i < len(op.inputs) and not g.tensors[op.inputs[i]].is_const:
                return f"with a non-constant {what}"
        return None
    return Check(why, source)


def no_fused_activation(source: str) -> Check:
    def why(op: Op, g: Graph) -> str | None:
        act = op.attrs.get("fused_activation")
        return f"with a fused {act.upper()} activation (the kernel takes none)" if act else None
    return Check(why, source)


def max_inputs(n: int, source: str) -> Check:
    def why(op: Op, g: Graph) -> str | None:
        return f"with {len(op.inputs)} inputs (at most {n})" if len(op.inputs) > n else None
    return Check(why, source)


def _per_channel_int4_fc(op: Op, g: Graph) -> str | None:
    if len(op.inputs) < 2:
        return None
    w = g.tensors[op.inputs[1]]
    if w.dtype == "int4" and w.quant is not None and w.quant.num_scales > 1:
        return "with per-channel quantized int4 weights (int4 takes one scale per tensor)"
    return None


def _softmax_output(op: Op, g: Graph) -> str | None:
    if not op.inputs or not op.outputs:
        return None
    i, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    q = o.quant
    if q is None or q.scale is None or i.dtype not in (I8, I16):
        return None
    fixed = {(I8, I8): (1 / 256, -128), (I8, I16): (1 / 65536, -32768), (I16, I16): (1 / 32768, 0)}
    want = fixed.get((i.dtype, o.dtype))
    if want is None:
        return None
    scale, zp = want
    if abs(q.scale - scale) > 1e-3 * scale or (q.zero_point or 0) != zp:
        return (f"with {o.dtype} output scale {q.scale:.6g} and zero point {q.zero_point} "
                f"(the kernel needs {scale:.6g} and {zp})")
    return None


def _pool_quant(op: Op, g: Graph) -> str | None:
    if not op.inputs or not op.outputs:
        return None
    i, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if i.dtype not in (I8, I16) or i.quant is None or o.quant is None or i.quant.scale is None \
            or o.quant.scale is None:
        return None
    if abs(i.quant.scale - o.quant.scale) > 1e-6 or (i.quant.zero_point or 0) != (o.quant.zero_point or 0):
        return "with different input and output quantization (the kernel needs the same scale and zero point)"
    return None


IGNORED_ACTIVATIONS = {"tanh": "TANH", "sign_bit": "SIGN_BIT", "sigmoid": "SIGMOID"}


def ignored_activation(op: Op, g: Graph) -> str | None:
    """A fused activation the kernels do not apply (measured: float CONV_2D with fused TANH,
    SIGN_BIT or SIGMOID outputs the bare convolution in TFLite-Micro and in LiteRT)."""
    act = op.attrs.get("fused_activation")
    if act in IGNORED_ACTIVATIONS:
        return (f"with a fused {IGNORED_ACTIVATIONS[act]} activation (the kernel ignores it: wrong results, "
                f"no error)")
    return None


_IGNORED_ACT_SOURCE = ("kernel_util.h CalculateActivationRange / kernels/kernel_util.cc "
                       "CalculateActivationRangeQuantizedImpl (no case: no activation)")
# ops whose fused activation edgekit's .tflite reader reads (their options tables)
FUSING_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D")


def _dw_int16_int32_bias(op: Op, g: Graph) -> str | None:
    slots = input_slots(op)
    if len(slots) > 2 and slots[2] is not None and g.tensors[slots[0]].dtype == I16 \
            and g.tensors[slots[2]].dtype == I32:
        return "with int16 input and int32 bias (the kernel reads the bias as int64: wrong results, no error)"
    return None


def _lstm_float_weights(op: Op, g: Graph) -> str | None:
    slots = input_slots(op)
    if len(slots) > 2 and g.tensors[slots[0]].dtype == F and slots[2] is not None \
            and g.tensors[slots[2]].dtype != F:
        return (f"with float32 input and {g.tensors[slots[2]].dtype} weights (hybrid: the float kernel reads "
                f"them as float32, wrong results, no error)")
    return None


def _svdf_no_bias(op: Op, g: Graph) -> str | None:
    # int8 Prepare reads bias->params.scale, the float Eval GetTensorData<float>(bias), with no
    # null check ("TODO(#1751): account for optional bias tensor"): measured, both crash
    slots = input_slots(op)
    if len(slots) < 4 or slots[3] is None:
        return "without a bias (TFLite-Micro crashes on an SVDF without one)"
    return None


def _dw_absent_bias(op: Op, g: Graph) -> str | None:
    # has_bias = inputs->size == 3, then DeallocateTempTfLiteTensor(bias) on the null bias of a
    # "-1" third input: measured, the interpreter crashes (float32, int8 and int16 alike)
    slots = input_slots(op)
    if len(slots) > 2 and slots[2] is None:
        return "with an empty (-1) bias input (TFLite-Micro crashes on it; write no third input instead)"
    return None




def _four_d(source: str) -> Check:
    return rank_between(4, 4, source)


# ---- the table -------------------------------------------------------------------------------------

IO = "input=i0 output=o0"
BIN = "input=i0 input2=i1 output=o0"

KERNELS: dict[str, Kernel] = {k.opcode: k for k in [
    K("ABS", "kernels/elementwise.cc PrepareAbsRsqrt<IsAbsSupportedType>", IO,
      [each("input,output", "float32|int8|int16")]),
    K("ADD", "kernels/add.cc AddEval (output type)", BIN, ["output=float32|int32|int8|int16"],
      note="int32 ADD needs unquantized inputs (add_common.cc AddPrepare)"),
    K("ADD_N", "kernels/add_n.cc CalculateOpData", "input=i* output=o0", [each("input,output", "float32|int8")]),
    K("ARG_MAX", "kernels/arg_min_max.cc Eval", "input=i0 axis=i1 output=o0",
      ["input=float32|int8 axis=int32 output=int32"]),
    K("ARG_MIN", "kernels/arg_min_max.cc Eval", "input=i0 axis=i1 output=o0",
      ["input=float32|int8 axis=int32 output=int32"]),
    K("ASSIGN_VARIABLE", "kernels/assign_variable.cc Prepare", "resource=i0", ["resource=resource|int32"]),
    K("AVERAGE_POOL_2D", "kernels/pooling.cc AverageEval; pooling_common.cc PoolingPrepare", IO,
      ["input=float32|int8|int16"], [Check(_pool_quant, "kernels/pooling_common.cc PoolingPrepare")]),
    K("BATCH_MATMUL", "kernels/batch_matmul.cc BatchMatMulPrepare", "input=i0 input2=i1 output=o0",
      [each("input,input2,output", "float32|int8|int16")],
      [rank_between(2, 5, "kernels/batch_matmul.cc BatchMatMulPrepare", inputs=(0, 1))]),
    K("BATCH_TO_SPACE_ND", "kernels/batch_to_space_nd.cc BatchToSpaceNDPrepare / Eval", IO,
      [each("input,output", "float32|int8")],
      [rank_between(3, 4, "kernels/batch_to_space_nd.cc BatchToSpaceNDPrepare")]),
    K("BROADCAST_ARGS", "kernels/broadcast_args.cc BroadcastArgsPrepare / Eval", "shape=i0 shape2=i1 output=o0",
      [each("shape,shape2,output", "int32|int64")]),
    K("BROADCAST_TO", "kernels/broadcast_to.cc BroadcastToPrepare (any type but string)", IO,
      [sig_not("string")], [rank_at_most(5, "kernels/broadcast_to.cc BroadcastToPrepare (kMaxDims)"),
                            rank_at_most(5, "kernels/broadcast_to.cc ValidateOutputTensor", which="output")]),
    K("CALL_ONCE", "kernels/call_once.cc CallOncePrepare"),
    K("CAST", "kernels/cast.cc CastEval / copyToTensor", IO,
      ["input=int8|int16|int32|uint32|float32|bool output=int8|int16|int32|uint32|float32|bool"],
      note="bool output: run by the 2026-10 interpreter package; copyToTensor at the 2026-08 pin has no bool case"),
    K("CEIL", "kernels/ceil.cc CeilPrepare", IO, ["input,output=float32"]),
    K("CONCATENATION", "kernels/concatenation.cc ConcatenationPrepare / ConcatenationEval", "input=i* output=o0",
      [each("input,output", "bool|float32|int8|int16|int32|int64")],
      [no_fused_activation("kernels/concatenation.cc ConcatenationPrepare"),
       max_inputs(10, "kernels/concatenation.cc ConcatenationPrepare (kMaxInputNum)"),
       rank_at_most(6, "kernels/concatenation.cc ConcatenationPrepare (RuntimeShape::kMaxSmallSize)")]),
    K("CONV_2D", "kernels/conv_common.cc ConvPrepare; kernels/conv.cc ConvEval",
      "input=i0 weights=i1 bias=i2 output=o0",
      ["input,output=float32 weights=float32", "input,output=int8 weights=int8|int4",
       "input,output=int16 weights=int8 bias=int32|int64|-"]),
    K("COS", "kernels/elementwise.cc GenericPrepare<IsNumericSupportedType>", IO, ["input,output=float32"]),
    K("CUMSUM", "kernels/cumsum.cc CalculateOpData / CumSumEval", "input=i0 axis=i1 output=o0",
      [each("input,output", "float32|int8", "axis=int32")]),
    K("DEPTH_TO_SPACE", "kernels/depth_to_space.cc CalculateOpData / DepthToSpaceEval", IO,
      [each("input,output", "float32|int8")], [_four_d("kernels/depth_to_space.cc CalculateOpData")]),
    K("DEPTHWISE_CONV_2D", "kernels/depthwise_conv_common.cc DepthwiseConvPrepare; kernels/depthwise_conv.cc "
      "DepthwiseConvEval", "input=i0 weights=i1 output=o0",
      ["input,output=float32 weights=float32", "input,output=int8 weights=int8|int4",
       "input,output=int16 weights=int8"],
      [Check(_dw_absent_bias, "kernels/depthwise_conv_common.cc CalculateOpDataDepthwiseConv"),
       Check(_dw_int16_int32_bias, "kernels/depthwise_conv.cc DepthwiseConvEval", silent=True)]),
    K("DEQUANTIZE", "kernels/dequantize_common.cc DequantizePrepare", IO,
      ["input=int8|int16|uint8 output=float32"]),
    K("DIV", "kernels/div.cc CalculateOpDataDiv / DivEval", BIN, [each("input,input2,output", "float32|int32|int8")]),
    K("DYNAMIC_UPDATE_SLICE", "kernels/dynamic_update_slice.cc Prepare / Eval",
      "input=i0 update=i1 indices=i2 output=o0",
      [each("input,update", "float32|int8|int16|int32", "indices=int32|int64")]),
    K("ELU", "kernels/elu.cc CalculateOpData / EluEval", IO, [each("input,output", "float32|int8")]),
    K("EMBEDDING_LOOKUP", "kernels/embedding_lookup.cc EmbeddingLookUpPrepare", "ids=i0 table=i1 output=o0",
      ["ids=int32 table=float32 output=float32", "ids=int32 table=int8 output=float32|int8"]),
    K("EQUAL", "kernels/comparisons.cc EqualEval", "input=i0 output=o0", ["input=bool|float32|int32|int64|int8"]),
    K("NOT_EQUAL", "kernels/comparisons.cc NotEqualEval", "input=i0 output=o0",
      ["input=bool|float32|int32|int64|int8"]),
    K("GREATER", "kernels/comparisons.cc GreaterEval", "input=i0 output=o0", ["input=float32|int32|int64|int8|int16"]),
    K("GREATER_EQUAL", "kernels/comparisons.cc GreaterEqualEval", "input=i0 output=o0",
      ["input=float32|int32|int64|int8"]),
    K("LESS", "kernels/comparisons.cc LessEval", "input=i0 output=o0", ["input=float32|int32|int64|int8"]),
    K("LESS_EQUAL", "kernels/comparisons.cc LessEqualEval", "input=i0 output=o0", ["input=float32|int32|int64|int8"]),
    K("EXP", "kernels/exp.cc ExpPrepare", IO, ["input,output=float32"]),
    K("EXPAND_DIMS", "kernels/expand_dims.cc ExpandDimsEval / GetAxisValueFromTensor", "input=i0 axis=i1 output=o0",
      ["input=float32|int16|int8 axis=int32"]),
    K("FILL", "kernels/fill.cc FillPrepare / FillEval", "dims=i0 value=i1 output=o0",
      [each("value,output", "float32|int32|int8", "dims=int8|int16|int32|int64")],
      [const_inputs((0,), "dims tensor", "kernels/fill.cc FillPrepare")]),
    K("FLOOR", "kernels/floor.cc FloorEval", IO, ["input=float32"]),
    K("FLOOR_DIV", "kernels/floor_div.cc CalculateOpData / FloorDivEval", BIN, ["input,input2,output=float32"]),
    K("FLOOR_MOD", "kernels/floor_mod.cc CalculateOpData / FloorModEval", BIN, ["input,input2,output=float32"]),
    K("FULLY_CONNECTED", "kernels/fully_connected.cc FullyConnectedPrepare / FullyConnectedEval",
      "input=i0 weights=i1 bias=i2 output=o0",
      ["input,output=float32 weights=float32", "input,output=int8 weights=int8|int4",
       "input,output=int16 weights=int8"],
      [Check(_per_channel_int4_fc, "kernels/fully_connected_common.cc CalculateOpDataFullyConnected")],
      note="int16: int32 bias accumulates in int32, any other bias type is read as int64"),
    K("GATHER", "kernels/gather.cc GatherPrepare", "input=i0 indices=i1 output=o0",
      ["input=float32|int8 indices=int32"]),
    K("GATHER_ND", "kernels/gather_nd.cc GatherNdPrepare", "input=i0 indices=i1 output=o0",
      ["input=float32|int8 indices=int32"]),
    K("HARD_SWISH", "kernels/hard_swish.cc HardSwishEval", IO, ["input=float32|int8"]),
    K("IF", "kernels/if.cc IfPrepare", "condition=i0", ["condition=bool"]),
    K("L2_NORMALIZATION", "kernels/l2norm.cc L2NormPrepare / L2NormEval", IO, [each("input,output", "float32|int8")],
      [rank_at_most(4, "kernels/l2norm.cc L2NormPrepare")]),
    K("L2_POOL_2D", "kernels/l2_pool_2d.cc L2Prepare", IO, ["input,output=float32"],
      [_four_d("kernels/l2_pool_2d.cc L2Prepare")]),
    K("LEAKY_RELU", "kernels/leaky_relu.cc LeakyReluEval", IO, [each("input,output", "float32|int8|int16")]),
    K("LOG", "kernels/elementwise.cc GenericPrepare<IsNumericSupportedType>", IO, ["input,output=float32"]),
    K("LOG_SOFTMAX", "kernels/log_softmax.cc LogSoftmaxEval", IO, [each("input,output", "float32|int8")]),
    K("LOGICAL_AND", "kernels/logical.cc (no type check: reads bool)"),
    K("LOGICAL_OR", "kernels/logical.cc (no type check: reads bool)"),
    K("LOGICAL_NOT", "kernels/elementwise.cc GenericPrepare<IsLogicalSupportedType>", IO, ["input,output=bool"]),
    K("LOGISTIC", "kernels/logistic.cc LogisticEval", IO, [each("input,output", "float32|int16|int8")]),
    K("MAXIMUM", "kernels/maximum_minimum.cc Eval", "output=o0", ["output=float32|int8|int16|int32|int64"]),
    K("MINIMUM", "kernels/maximum_minimum.cc Eval", "output=o0", ["output=float32|int8|int16|int32|int64"]),
    K("MAX_POOL_2D", "kernels/pooling.cc MaxEval; pooling_common.cc PoolingPrepare", IO,
      ["input=float32|int8|int16"], [Check(_pool_quant, "kernels/pooling_common.cc PoolingPrepare")]),
    K("MEAN", "kernels/reduce_common.cc PrepareSimple / EvalMeanHelper", "input=i0 axis=i1",
      ["input=float32|int8|int16 axis=int32"]),
    K("SUM", "kernels/reduce_common.cc PrepareSimple / EvalSumHelper", "input=i0 axis=i1 output=o0",
      [each("input,output", "float32|int8|int16", "axis=int32")]),
    K("REDUCE_MAX", "kernels/reduce_common.cc PrepareSimple / EvalMinMaxHelper", "input=i0 axis=i1 output=o0",
      [each("input,output", "float32|int8", "axis=int32")]),
    K("REDUCE_MIN", "kernels/reduce_common.cc PrepareSimple / EvalMinMaxHelper", "input=i0 axis=i1 output=o0",
      [each("input,output", "float32|int8", "axis=int32")]),
    K("REDUCE_ALL", "kernels/reduce_common.cc PrepareAllHelper", "input=i0 axis=i1", ["input=bool axis=int32"]),
    K("MIRROR_PAD", "kernels/mirror_pad.cc MirrorPadEval", "input=i0 paddings=i1 output=o0",
      ["output=float32|int8 paddings=int32|int64"]),
    K("MUL", "kernels/mul_common.cc CalculateOpDataMul; kernels/mul.cc MulEval", BIN,
      [each("input,input2", "int8|int16|int32|float32")]),
    K("NEG", "kernels/neg.cc NegEval", IO, ["input=float32"]),
    K("PACK", "kernels/pack.cc PackEval", "output=o0", ["output=float32|int8|int16|int32|int64"]),
    K("PAD", "kernels/pad_common.cc PadPrepare; kernels/pad.cc PadEval", IO,
      [each("input,output", "float32|int8|int16|int32")],
      [rank_at_most(5, "kernels/pad_common.cc PadPrepare (PadKernelMaxDimensionCount)")]),
    K("PADV2", "kernels/pad_common.cc PadPrepare; kernels/pad.cc PadEval", "input=i0 paddings=i1 value=i2 output=o0",
      [each("input,value,output", "float32|int8|int16|int32")],
      [rank_at_most(5, "kernels/pad_common.cc PadPrepare (PadKernelMaxDimensionCount)")]),
    K("PRELU", "kernels/prelu.cc PreluEval; prelu_common.cc PreluPrepare", "input=i0 alpha=i1 output=o0",
      ["input,output=float32", "input,output=int8", "input,output=int16 alpha=int8"]),
    K("QUANTIZE", "kernels/quantize_common.cc PrepareQuantizeReference / EvalQuantizeReference", IO,
      ["input=float32 output=int8|int16", "input=int32 output=int8|int16", "input=int16 output=int8|int16|int32",
       "input=int8 output=int8|uint8|int16|int32", "input=uint8 output=int8"]),
    K("READ_VARIABLE", "kernels/read_variable.cc Prepare", "resource=i0", ["resource=resource|int32"]),
    K("RELU", "kernels/activations.cc ReluEval", IO, ["input=float32|int8|int16"]),
    K("RELU6", "kernels/activations.cc Relu6Eval", IO, ["input=float32|int8|int16"]),
    K("RESHAPE", "kernels/reshape_common.cc ReshapeOutput (input and output types equal)", IO,
      [each("input,output", "float32|float16|bfloat16|float64|int8|uint8|int16|uint16|int32|uint32|int64|uint64|bool"
            "|int4|complex64|complex128")]),
    K("RESIZE_BILINEAR", "kernels/resize_bilinear.cc ResizeBilinearPrepare / Eval", "input=i0 size=i1 output=o0",
      ["output=float32|int8 size=int32"], [_four_d("kernels/resize_bilinear.cc ResizeBilinearPrepare")]),
    K("RESIZE_NEAREST_NEIGHBOR", "kernels/resize_nearest_neighbor.cc ResizeNearestNeighborPrepare / Eval",
      "input=i0 size=i1 output=o0", ["output=float32|int8|int16 size=int32"],
      [_four_d("kernels/resize_nearest_neighbor.cc ResizeNearestNeighborPrepare")]),
    K("REVERSE_V2", "kernels/reverse.cc ReverseV2Prepare", "input=i0 axis=i1 output=o0",
      [each("input,output", "int32|float32|uint8|int8|int16|int64|bool", "axis=int32")],
      [rank_at_most(6, "kernels/reverse.cc ReverseV2Prepare (kMaxDimensions)")]),
    K("ROUND", "kernels/round.cc RoundPrepare", IO, ["input,output=float32"]),
    K("RSQRT", "kernels/elementwise.cc PrepareAbsRsqrt<IsRsqrtSupportedType> / RsqrtEval", IO,
      [each("input,output", "float32|int8|int16")],
      note="int16: run by the 2026-10 interpreter package (RsqrtEval has the case); IsRsqrtSupportedType at the "
           "2026-08 pin refuses it"),
    K("SELECT_V2", "kernels/select.cc SelectPrepare / SelectEval", "condition=i0 input=i1 input2=i2",
      [each("input,input2", "float32|int8|int16", "condition=bool")]),
    K("SHAPE", "kernels/shape.cc ShapeEval", "output=o0", ["output=int32"]),
    K("SIN", "kernels/elementwise.cc GenericPrepare<IsNumericSupportedType>", IO, ["input,output=float32"]),
    K("SLICE", "kernels/slice.cc SliceEval", "input=i0 begin=i1",
      ["input=float32|int32|int8|int16|bool begin=int32|int64"]),
    K("SOFTMAX", "kernels/softmax_common.cc CalculateSoftmaxParams; kernels/softmax.cc SoftmaxEval", IO,
      ["input,output=float32", "input=int8 output=int8|int16", "input,output=int16"],
      [Check(_softmax_output, "kernels/softmax_common.cc CalculateSoftmaxParams")]),
    K("SPACE_TO_BATCH_ND", "kernels/space_to_batch_nd.cc SpaceToBatchNDPrepare / Eval", IO,
      [each("input,output", "float32|int8")],
      [rank_between(3, 4, "kernels/space_to_batch_nd.cc SpaceToBatchNDPrepare")]),
    K("SPACE_TO_DEPTH", "kernels/space_to_depth.cc Prepare / Eval", IO, [each("input,output", "float32|int8")],
      [_four_d("kernels/space_to_depth.cc Prepare")]),
    K("SPLIT", "kernels/split.cc SplitEval", "axis=i0 input=i1", ["input=float32|int8|int16|int32"]),
    K("SPLIT_V", "kernels/split_v.cc SplitVEval", "input=i0", ["input=float32|int8|int16|int32"]),
    K("SQRT", "kernels/elementwise.cc GenericPrepare<IsNumericSupportedType>", IO, ["input,output=float32"]),
    K("SQUARE", "kernels/elementwise.cc GenericPrepare<IsNumericSupportedType>", IO, ["input,output=float32"]),
    K("SQUARED_DIFFERENCE", "kernels/squared_difference.cc SquaredDifferencePrepare / Eval", BIN,
      [each("input,input2,output", "float32|int32|int8|int16")]),
    K("SQUEEZE", "kernels/squeeze.cc SqueezeEval (any type but string)", IO, [sig_not("string")]),
    K("STRIDED_SLICE", "kernels/strided_slice.cc StridedSliceEval; strided_slice_common.cc StridedSlicePrepare",
      IO, ["output=float32|int8|int16|int32|bool"],
      [rank_at_most(4, "kernels/strided_slice_common.cc StridedSlicePrepare (kMaxDim)"),
       const_inputs((1, 2, 3), "begin, end or strides tensor", "kernels/strided_slice_common.cc StridedSlicePrepare")]),
    K("SUB", "kernels/sub.cc SubEval (output type)", BIN, ["output=float32|int32|int8|int16"]),
    K("SVDF", "kernels/svdf_common.cc PrepareSvdf; kernels/svdf.cc EvalSvdf",
      "input=i0 weights=i1 weights_time=i2 bias=i3 state=i4 output=o0",
      ["input,output=float32 weights,weights_time,state=float32 bias=float32",
       "input,output=int8 weights=int8 weights_time,state=int8|int16 bias=int32"],
      [Check(_svdf_no_bias, "kernels/svdf_common.cc PrepareSvdf / EvalFloatSvdf (TODO #1751)")]),
    K("TANH", "kernels/tanh.cc TanhEval", IO, [each("input,output", "float32|int16|int8")]),
    K("TRANSPOSE", "kernels/transpose_common.cc TransposePrepare; kernels/transpose.cc TransposeEval", IO,
      [each("input,output", "float32|int8|int16")],
      [rank_at_most(5, "kernels/transpose_common.cc TransposePrepare"),
       const_inputs((1,), "permutation", "kernels/transpose_common.cc TransposePrepare")]),
    K("TRANSPOSE_CONV", "kernels/transpose_conv.cc TransposeConvPrepare / TransposeConvEval",
      "output_shape=i0 weights=i1 input=i2 output=o0",
      ["input,output=float32 weights=float32", "input,output=int8 weights=int8", "input,output=int16 weights=int8"]),
    K("UNIDIRECTIONAL_SEQUENCE_LSTM", "kernels/unidirectional_sequence_lstm.cc UnidirectionalSequenceLstmEval",
      "input=i0 weights=i2 output=o0",
      ["input=float32", "input=int8 weights=int8", "input=int16 weights=int8"],
      [Check(_lstm_float_weights, "kernels/unidirectional_sequence_lstm.cc UnidirectionalSequenceLstmEval",
             silent=True)]),
    K("UNPACK", "kernels/unpack.cc UnpackEval", "input=i0", ["input=float32|int32|int16|int8"]),
    K("VAR_HANDLE", "kernels/var_handle.cc VarHandlePrepare"),
    K("WHILE", "kernels/while.cc WhilePrepare"),
    K("ZEROS_LIKE", "kernels/zeros_like.cc ZerosLikeEval", IO, ["input=int64|int32|int8|float32"]),
]}

for _code in FUSING_OPS:
    KERNELS[_code] = replace(KERNELS[_code], checks=KERNELS[_code].checks + (
        Check(ignored_activation, _IGNORED_ACT_SOURCE, silent=True),))

CUSTOM_KERNELS: dict[str, Kernel] = {k.opcode: k for k in [
    K("CUSTOM:TFLite_Detection_PostProcess", "kernels/detection_postprocess.cc DecodeCenterSizeBoxes / "
      "NonMaxSuppressionMultiClass", "boxes=i0 scores=i1", ["boxes=float32 scores=float32"]),
    K("CUSTOM:CIRCULAR_BUFFER", "kernels/circular_buffer_common.cc CircularBufferPrepare", IO,
      ["input,output=int8"]),
]}
