"""LiteRT (TensorFlow Lite): which ops its builtin op resolver has a kernel for.

Source: ``tflite/core/kernels/register.cc`` ``BuiltinOpResolver::BuiltinOpResolver`` of
google-ai-edge/LiteRT at f6745779 (2026-08-21), the resolver ``ai_edge_litert``'s Python
interpreter and the Android/iOS runtimes use by default: 172 builtin operators and 5 custom
ops. A builtin opcode outside that list, a custom op it does not register, and a TensorFlow
op carried as a ``Flex*`` custom op (it needs the Select-TF-ops delegate, which the default
runtime does not link) cannot run: the interpreter stops at "Didn't find op for builtin
opcode" / "Encountered unresolved custom op".

One silent fact, shared with TFLite-Micro and measured the same way: a fused TANH, SIGN_BIT
or SIGMOID activation is ignored by LiteRT's kernels too (their CalculateActivationRange has
no case for it), so the model computes wrong results without an error.

Not modelled: the types each LiteRT kernel takes (they cover what the LiteRT converter emits;
``edgekit lint`` runs the model for LiteRT targets), op *versions* beyond the resolver's range
(the Graph IR does not carry them), and XNNPACK delegation (a performance question: lint's
``not-delegated`` findings).
"""

from __future__ import annotations

RUNTIME = "litert"
SOURCE = "LiteRT tflite/core/kernels/register.cc BuiltinOpResolver"

REGISTERED = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE ATAN2 AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND
BIDIRECTIONAL_SEQUENCE_LSTM BIDIRECTIONAL_SEQUENCE_RNN BITCAST BITWISE_XOR BROADCAST_ARGS
BROADCAST_TO BUCKETIZE CALL_ONCE CAST CEIL COMPLEX_ABS CONCATENATION CONV_2D CONV_3D
CONV_3D_TRANSPOSE COS CUMSUM DENSIFY DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DILATE DIV
DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EMBEDDING_LOOKUP_SPARSE EQUAL EXP EXPAND_DIMS FAKE_QUANT
FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GELU GREATER GREATER_EQUAL
HARD_SWISH HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_LOOKUP HASHTABLE_SIZE IF IMAG
L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOCAL_RESPONSE_NORMALIZATION LOG LOGICAL_AND
LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX LSH_PROJECTION LSTM MATRIX_DIAG MATRIX_SET_DIAG MAXIMUM
MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL MULTINOMIAL NEG NON_MAX_SUPPRESSION_V4
NON_MAX_SUPPRESSION_V5 NOT_EQUAL ONE_HOT PACK PAD PADV2 POW PRELU QUANTIZE RANDOM_STANDARD_NORMAL
RANDOM_UNIFORM RANGE RANK READ_VARIABLE REAL REDUCE_ALL REDUCE_ANY REDUCE_MAX REDUCE_MIN REDUCE_PROD
REDUCE_WINDOW RELU RELU6 RELU_0_TO_1 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR
REVERSE_SEQUENCE REVERSE_V2 RFFT2D RIGHT_SHIFT RNN ROUND RSQRT SCATTER_ND SEGMENT_SUM SELECT
SELECT_V2 SHAPE SIGN SIN SKIP_GRAM SLICE SOFTMAX SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPARSE_TO_DENSE
SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STABLEHLO_ADD STABLEHLO_AND STABLEHLO_CASE
STABLEHLO_COMPOSITE STABLEHLO_GATHER STABLEHLO_MAXIMUM STABLEHLO_MINIMUM STABLEHLO_MULTIPLY
STABLEHLO_PAD STABLEHLO_REDUCE_WINDOW STABLEHLO_RNG_BIT_GENERATOR STABLEHLO_SCATTER
STABLEHLO_SHIFT_LEFT STRIDED_SLICE SUB SUM SVDF TANH TILE TOPK_V2 TRANSPOSE TRANSPOSE_CONV
UNIDIRECTIONAL_SEQUENCE_LSTM UNIDIRECTIONAL_SEQUENCE_RNN UNIQUE UNPACK UNSORTED_SEGMENT_MAX
UNSORTED_SEGMENT_MIN UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_SUM VAR_HANDLE WHERE WHILE ZEROS_LIKE
""".split())

# Builtin opcodes of the schema (schema_py_generated BuiltinOperator) LiteRT has no kernel for.
UNREGISTERED = frozenset("""
CALL CONCAT_EMBEDDINGS DELEGATE PLACEHOLDER_FOR_GREATER_OP_CODES STABLEHLO_ABS
STABLEHLO_BROADCAST_IN_DIM STABLEHLO_CBRT STABLEHLO_CLAMP STABLEHLO_COMPARE STABLEHLO_CONCATENATE
STABLEHLO_CONVERT STABLEHLO_CONVOLUTION STABLEHLO_COSINE STABLEHLO_CUSTOM_CALL STABLEHLO_DIVIDE
STABLEHLO_DOT_GENERAL STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_EXPONENTIAL
STABLEHLO_FLOOR STABLEHLO_IOTA STABLEHLO_LOG STABLEHLO_LOGISTIC STABLEHLO_NEGATE STABLEHLO_OR
STABLEHLO_POWER STABLEHLO_REDUCE STABLEHLO_REMAINDER STABLEHLO_RESHAPE STABLEHLO_RSQRT
STABLEHLO_SELECT STABLEHLO_SLICE STABLEHLO_SORT STABLEHLO_SUBTRACT STABLEHLO_TANH
STABLEHLO_TRANSPOSE STABLEHLO_WHILE
""".split())

# every builtin opcode name of the TFLite schema (CUSTOM appears in the IR as "CUSTOM:<name>")
TFLITE_BUILTINS = REGISTERED | UNREGISTERED | {"CUSTOM"}

CUSTOM_REGISTERED = frozenset({"NumericVerify", "Mfcc", "AudioSpectrogram", "TFLite_Detection_PostProcess",
                               "aeq.hadamard_rotation"})


def op_problem(opcode: str) -> str | None:
    """Why LiteRT's default resolver cannot run ``opcode`` (None: it has a kernel)."""
    if opcode.startswith("CUSTOM:"):
        name = opcode.split(":", 1)[1]
        if name in CUSTOM_REGISTERED:
            return None
        if name.startswith("Flex"):
            return "is a TensorFlow op (Flex): it needs the Select-TF-ops delegate, which LiteRT does not link"
        return "is a custom op LiteRT does not register (the app must register its kernel)"
    if opcode in REGISTERED:
        return None
    if opcode in UNREGISTERED:
        return "has no kernel in LiteRT's builtin op resolver"
    return None  # not a TFLite opcode: the caller reports it as unknown
