"""The canonical op kinds of the Graph IR, and how each reader maps its own op names to them.

One vocabulary for the three readers (``capture`` for a torch.export graph, ``pte_reader`` for an
ExecuTorch program, ``tflite_reader`` for a .tflite flatbuffer), so that the analyses, the
emulator, lint and the lowering ask the same question of every graph.

**What a kind means.** A kind names what the op *does in the graph's own runtime*:

- ``view``: no data moves; the output aliases its input (PyTorch's lazy views: reshape, flatten,
  permute, transpose, split, select, dropout in eval, ...). A torch ``permute`` is a ``view`` whose
  ``attrs["perm"]`` says how it transposes; it becomes a copy only where a runtime materialises it.
- ``transpose``, ``reshape``, ``slice``, ``split``, ``copy``: a kernel that writes a new buffer
  (ExecuTorch's ``permute_copy``/``view_copy``-that-is-not-elided, TFLite's TRANSPOSE, RESHAPE,
  SLICE/STRIDED_SLICE, SPLIT). So ExecuTorch's ``permute_copy`` is a ``transpose`` while torch's
  ``permute`` is a ``view``: they agree on the operation, and differ exactly where the runtimes do.
- ``linear``: a matrix product (nn.Linear, ``mm``/``bmm``/``matmul``, TFLite FULLY_CONNECTED and
  BATCH_MATMUL); whether the second operand is a constant (a weight) is in the graph.
- ``relu6`` is a clamp to [0, 6] and ``relu1`` a clamp to [-1, 1] (TFLite's RELU_N1_TO_1); any
  other clamp is ``clamp``. ``capture`` reads the bounds of ``hardtanh``/``clamp`` to decide.
- ``mean`` covers adaptive average pooling to 1 (the converter emits MEAN for it); ``attention``
  is ``scaled_dot_product_attention``; ``log_softmax`` is not ``softmax`` (another kernel).

A name none of the maps knows keeps its own (lower-case) name as its kind: nothing is lost, and
whoever needs to know every kind (the TFLite lowering) sees it as unknown.
"""

from __future__ import annotations

# aten operator name (overload stripped, as in ``torch.ops.aten.X``) -> kind
ATEN_KINDS = {
    "conv1d": "conv1d", "conv2d": "conv2d", "conv3d": "conv3d", "convolution": "conv2d",
    "conv_transpose1d": "conv_transpose", "conv_transpose2d": "conv_transpose", "conv_transpose3d": "conv_transpose",
    "linear": "linear", "addmm": "linear", "mm": "linear", "matmul": "linear", "bmm": "linear",
    "batch_norm": "batch_norm", "_native_batch_norm_legit_no_training": "batch_norm",
    "_native_batch_norm_legit": "batch_norm", "native_batch_norm": "batch_norm",
    "layer_norm": "layer_norm", "native_layer_norm": "layer_norm", "group_norm": "group_norm",
    "instance_norm": "instance_norm",
    "relu": "relu", "relu_": "relu", "hardtanh": "relu6", "hardtanh_": "relu6", "relu6": "relu6", "clamp": "clamp",
    "hardswish": "hard_swish", "hardswish_": "hard_swish", "hardsigmoid": "hard_sigmoid",
    "hardsigmoid_": "hard_sigmoid", "sigmoid": "sigmoid", "silu": "silu", "silu_": "silu",
    "gelu": "gelu", "tanh": "tanh", "leaky_relu": "leaky_relu", "elu": "elu", "prelu": "prelu",
    "_prelu_kernel": "prelu", "softplus": "softplus",
    "softmax": "softmax", "_softmax": "softmax", "log_softmax": "log_softmax", "_log_softmax": "log_softmax",
    "add": "add", "add_": "add", "sub": "sub", "rsub": "sub", "mul": "mul", "mul_": "mul", "div": "div",
    "neg": "neg", "abs": "abs", "exp": "exp", "sqrt": "sqrt", "rsqrt": "rsqrt", "pow": "pow",
    "cat": "concat", "concat": "concat",
    "max_pool1d": "max_pool", "max_pool2d": "max_pool", "max_pool2d_with_indices": "max_pool",
    "avg_pool1d": "avg_pool", "avg_pool2d": "avg_pool", "adaptive_max_pool2d": "max_pool",
    "adaptive_avg_pool1d": "mean", "adaptive_avg_pool2d": "mean", "_adaptive_avg_pool2d": "mean", "mean": "mean",
    "sum": "sum", "amax": "reduce_max",
    "pad": "pad", "constant_pad_nd": "pad",
    "clone": "copy", "contiguous": "copy", "_to_copy": "copy",
    "view": "view", "_unsafe_view": "view", "reshape": "view", "flatten": "view",
    "unsqueeze": "view", "squeeze": "view", "permute": "view", "transpose": "view",
    "t": "view", "expand": "view", "split": "view", "split_with_sizes": "view", "chunk": "view",
    "slice": "view", "select": "view", "narrow": "view", "unflatten": "view", "alias": "view",
    "getitem": "view", "dropout": "view", "dropout_": "view", "detach": "view",
    "upsample_nearest2d": "resize", "upsample_bilinear2d": "resize",
    "pixel_shuffle": "pixel_shuffle", "pixel_unshuffle": "pixel_unshuffle",
    "scaled_dot_product_attention": "attention",
}

# torch views that permute dimensions (a copy wherever a runtime materialises them)
TRANSPOSING_VIEWS = frozenset({"permute", "transpose", "t"})
# torch views that take part of a tensor (SLICE/SPLIT when a runtime materialises them)
SLICING_VIEWS = frozenset({"split", "split_with_sizes", "chunk", "slice", "select", "narrow"})

# Kinds whose per-output-channel result an inference BatchNorm right after them folds into (the
# BN's scale and shift become the layer's weight scale and bias): edgekit.passes.fold_bn does it
# to the module (its _LAYER table: Conv1d/2d/3d, ConvTranspose1d/2d/3d, Linear), the TFLite
# converter to the graph it converts (see edgekit.analysis.converter_facts).
FOLDS_BN = frozenset({"conv1d", "conv2d", "conv3d", "depthwise_conv2d", "conv_transpose", "linear"})

# ExecuTorch operator base name (``aten::X.out`` -> X) -> kind
PTE_KINDS = {
    "convolution": "conv2d", "addmm": "linear", "mm": "linear", "bmm": "linear", "linear": "linear",
    "_native_batch_norm_legit_no_training": "batch_norm", "native_batch_norm": "batch_norm",
    "relu": "relu", "hardtanh": "relu6", "clamp": "clamp", "hardswish": "hard_swish",
    "hardsigmoid": "hard_sigmoid", "sigmoid": "sigmoid", "silu": "silu", "gelu": "gelu", "tanh": "tanh",
    "leaky_relu": "leaky_relu", "_softmax": "softmax", "softmax": "softmax", "_log_softmax": "log_softmax",
    "add": "add", "sub": "sub", "mul": "mul", "div": "div", "cat": "concat",
    "neg": "neg", "abs": "abs", "exp": "exp", "sqrt": "sqrt", "rsqrt": "rsqrt",
    "max_pool2d_with_indices": "max_pool", "max_pool2d": "max_pool", "avg_pool2d": "avg_pool",
    "mean": "mean", "_adaptive_avg_pool2d": "mean", "constant_pad_nd": "pad",
    "view_copy": "view", "_unsafe_view": "view", "view": "view", "squeeze_copy": "view",
    "unsqueeze_copy": "view", "expand_copy": "copy", "permute_copy": "transpose",
    "transpose_copy": "transpose", "clone": "copy", "_to_copy": "copy", "_to_dim_order_copy": "copy",
    "_clone_dim_order": "copy", "split_with_sizes_copy": "split", "split_copy": "split",
    "slice_copy": "slice", "select_copy": "slice", "upsample_nearest2d": "resize",
    "upsample_bilinear2d": "resize", "sum": "sum", "full": "fill", "amax": "reduce_max",
    "pixel_shuffle": "pixel_shuffle",
}

# TFLite builtin operator name -> kind
TFLITE_KINDS = {
    "CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d", "FULLY_CONNECTED": "linear",
    "TRANSPOSE_CONV": "conv_transpose", "CONV_3D": "conv3d", "BATCH_MATMUL": "linear",
    "ADD": "add", "SUB": "sub", "MUL": "mul", "DIV": "div", "CONCATENATION": "concat",
    "PAD": "pad", "PADV2": "pad", "MIRROR_PAD": "pad", "TRANSPOSE": "transpose",
    "RESHAPE": "reshape", "SQUEEZE": "reshape", "EXPAND_DIMS": "reshape",
    "MEAN": "mean", "SUM": "sum", "REDUCE_MAX": "reduce_max", "AVERAGE_POOL_2D": "avg_pool",
    "MAX_POOL_2D": "max_pool", "QUANTIZE": "quantize", "DEQUANTIZE": "dequantize", "HARD_SWISH": "hard_swish",
    "LOGISTIC": "sigmoid", "RELU": "relu", "RELU6": "relu6", "RELU_N1_TO_1": "relu1",
    "SOFTMAX": "softmax", "LOG_SOFTMAX": "log_softmax", "TANH": "tanh", "LEAKY_RELU": "leaky_relu",
    "GELU": "gelu", "PRELU": "prelu", "ELU": "elu", "NEG": "neg", "ABS": "abs", "EXP": "exp", "SQRT": "sqrt",
    "RSQRT": "rsqrt", "POW": "pow", "SQUARED_DIFFERENCE": "squared_difference",
    "MINIMUM": "minimum", "MAXIMUM": "maximum", "SPLIT": "split", "SPLIT_V": "split",
    "SLICE": "slice", "STRIDED_SLICE": "slice", "GATHER": "gather", "RESIZE_BILINEAR": "resize",
    "RESIZE_NEAREST_NEIGHBOR": "resize", "DEPTH_TO_SPACE": "pixel_shuffle", "CAST": "cast",
}


def aten_kind(name: str) -> str:
    """The kind of an aten operator (``name`` without the overload, e.g. ``"conv2d"``)."""
    return ATEN_KINDS.get(name, name)


def pte_kind(name: str) -> str:
    """The kind of an ExecuTorch operator (base name of ``aten::X.out``)."""
    return PTE_KINDS.get(name, name)


def tflite_kind(opcode: str) -> str:
    """The kind of a TFLite builtin operator (``"CONV_2D"``); custom and unknown ones lower-cased."""
    return TFLITE_KINDS.get(opcode, opcode.lower())


def clamp_kind(lo: float | None, hi: float | None) -> str:
    """``relu``/``relu6``/``relu1`` when a clamp's bounds are those of a TFLite activation, else ``clamp``."""
    if lo == 0.0 and hi is None:
        return "relu"
    if lo == 0.0 and hi == 6.0:
        return "relu6"
    if lo == -1.0 and hi == 1.0:
        return "relu1"
    return "clamp"
