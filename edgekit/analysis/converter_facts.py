"""What the TFLite converter (litert-torch + TFLite's MLIR optimizer), ai-edge-quantizer and the
runtimes' kernels do to a graph, in one place. The lowering (``analysis.lowering``), liveness
(``analysis.memory``), the ExecuTorch planner (``analysis.et_planner``), the latency emulator
(``profile.emulate``) and lint (``lint.rules_tflite``) all read these tables.

Every fact names its source: a converter/kernel source file, or the measurement that settled it
(the one-op probe models of ``tests/lowering_families.py``, converted with edgekit's own export
and read back with ``graph.tflite_reader``; ``tests/test_lowering_families.py`` checks them).
Versions measured: litert-torch 0.9, ai-edge-quantizer 0.4, tflite-micro 0.dev20261023.
"""

from __future__ import annotations

from edgekit.graph.kinds import FOLDS_BN

# ---- folding ------------------------------------------------------------------------------------
# A BatchNorm whose input is the only use of a conv/linear output folds into it. edgekit's fold_bn
# pass does it on the module before export; the converter does the same on what is left (TFL
# optimize_patterns.td FuseBinaryOpToFollowingAffineOp / FuseMulOrDivWithConv2dOrDepthwiseConv2d,
# measured: probe "bn_after_conv_transpose" has no MUL/ADD left). A BatchNorm anywhere else is a
# per-channel MUL + ADD (probe "bn_after_add").
BN_FOLDS_INTO = FOLDS_BN

# ---- fused activations ----------------------------------------------------------------------------
# kind -> TFLite ActivationFunctionType (schema.fbs): the only clamps an op's options can carry.
FUSED_ACTIVATIONS = {"relu": "RELU", "relu6": "RELU6", "relu1": "RELU_N1_TO_1"}
# Kinds into which the converter fuses a following RELU/RELU6/RELU_N1_TO_1 (measured with the
# probes "relu_after_*": fused into CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED,
# ADD, SUB, MUL, DIV, MAX_POOL_2D and AVERAGE_POOL_2D; a RELU after CONCATENATION stays an op).
FUSES_ACT_INTO = frozenset({"conv1d", "conv2d", "depthwise_conv2d", "conv_transpose", "linear", "add", "sub",
                            "mul", "div", "max_pool", "avg_pool"})
# TFLite opcodes whose builtin options have a fused_activation_function field (schema.fbs:
# Conv2DOptions, DepthwiseConv2DOptions, FullyConnectedOptions, AddOptions, SubOptions, MulOptions,
# DivOptions, Pool2DOptions, ConcatenationOptions, TransposeConvOptions): what a .tflite can carry.
FUSED_ACT_OPCODES = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "DIV",
                               "MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D", "CONCATENATION", "TRANSPOSE_CONV"})
# ... and the opcodes into which the converter really fuses one (FUSES_ACT_INTO, as opcodes)
CONVERTER_FUSES_ACT_OPCODES = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED",
                                         "ADD", "SUB", "MUL", "DIV", "MAX_POOL_2D", "AVERAGE_POOL_2D"})

# ---- in-place element-wise ops --------------------------------------------------------------------
# Kinds whose output element i depends only on input element i of a same-shaped input, so the
# output may overwrite an input that dies at this op. ExecuTorch's portable kernels read in[i] and
# then write out[i] (apply_unary_map_fn, apply_binary_elementwise_fn, the batch-norm loop in
# kernels/portable/cpu/op_native_batch_norm.cpp). Copies are not in it: a contiguous() after a
# permute reads its input in another order than it writes.
INPLACE_ELEMENTWISE = frozenset({"relu", "relu6", "relu1", "clamp", "sigmoid", "tanh", "hard_swish",
                                 "hard_sigmoid", "leaky_relu", "silu", "gelu", "neg", "abs", "exp", "sqrt",
                                 "rsqrt", "batch_norm", "add", "sub", "mul", "div"})

# ---- int8 (ai-edge-quantizer, recipe static_wi8_ai8) ------------------------------------------------
# Ops the static int8 recipe quantizes (ai_edge_quantizer/default_policy.py, "static_wi8_ai8"; the
# recipe's CONV_2D_TRANSPOSE is TRANSPOSE_CONV). Any other op between int8 ops runs in float
# between a DEQUANTIZE and a QUANTIZE (probe "relu_after_div": ABS).
INT8_OPCODES = frozenset({
    "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CONCATENATION", "FULLY_CONNECTED", "CONV_2D", "TRANSPOSE_CONV",
    "DEPTHWISE_CONV_2D", "GELU", "LOGISTIC", "MEAN", "MUL", "RESHAPE", "RSQRT", "SOFTMAX", "SPLIT",
    "STRIDED_SLICE", "SUB", "TANH", "TRANSPOSE", "SLICE", "SUM", "SELECT", "SELECT_V2", "DYNAMIC_UPDATE_SLICE",
    "PAD", "SQUARED_DIFFERENCE", "MAX_POOL_2D", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "GATHER_ND",
    "PACK", "UNPACK", "DIV", "BROADCAST_TO", "SQRT", "GATHER", "HARD_SWISH", "MAXIMUM", "PADV2", "REDUCE_MIN",
    "EQUAL", "NOT_EQUAL", "MIRROR_PAD", "SPACE_TO_DEPTH", "RELU",
    # not in the policy list but quantized through the ops around them (measured: RELU6 and
    # RELU_N1_TO_1 standalone, LEAKY_RELU in probe "leaky_relu")
    "RELU6", "RELU_N1_TO_1",
})
# Ops whose int8 output must have their input's scale (SAME_AS_INPUT_SCALE in
# algorithms/uniform_quantize/common_quantize.py). CONCATENATION wants every input at its output's
# scale: an input produced by one of these ops cannot take it and gets a requantizing QUANTIZE op
# (measured: upsample families, RESIZE -> QUANTIZE -> CONCATENATION; a conv output feeding a concat
# takes the concat's scale, no QUANTIZE: squeezenet).
SAME_SCALE_OPCODES = frozenset({
    "AVERAGE_POOL_2D", "BROADCAST_TO", "GATHER", "GATHER_ND", "MAX_POOL_2D", "MIRROR_PAD", "PAD", "REDUCE_MIN",
    "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SLICE", "SPACE_TO_DEPTH", "SPLIT",
    "STRIDED_SLICE", "TRANSPOSE", "UNPACK",
})
