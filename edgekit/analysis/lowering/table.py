"""One handler per op kind: how each PyTorch op becomes TFLite ops. A kind missing here is not
modelled: the lowering names the layer and refuses rather than guess (see ``__init__``)."""

from __future__ import annotations

from edgekit.analysis.lowering.conv import lower_conv, lower_conv_transpose
from edgekit.analysis.lowering.dense import lower_attention, lower_linear
from edgekit.analysis.lowering.norm import lower_batch_norm, lower_layer_norm
from edgekit.analysis.lowering.pointwise import (
    BINARY,
    UNARY,
    lower_binary,
    lower_clamp,
    lower_hard_sigmoid,
    lower_silu,
    lower_softmax,
    lower_unary,
)
from edgekit.analysis.lowering.pooling import lower_pool, lower_reduce, lower_resize
from edgekit.analysis.lowering.shapes import lower_concat, lower_copy, lower_pad, lower_pixel_shuffle, lower_view

LOWER = {
    "conv1d": lower_conv, "conv2d": lower_conv, "depthwise_conv2d": lower_conv,
    "conv_transpose": lower_conv_transpose,
    "linear": lower_linear, "attention": lower_attention,
    "batch_norm": lower_batch_norm, "layer_norm": lower_layer_norm,
    **dict.fromkeys(BINARY, lower_binary),
    **dict.fromkeys(UNARY, lower_unary),
    "silu": lower_silu, "hard_sigmoid": lower_hard_sigmoid, "clamp": lower_clamp,
    "softmax": lower_softmax, "log_softmax": lower_softmax,
    "max_pool": lower_pool, "avg_pool": lower_pool, "mean": lower_reduce, "sum": lower_reduce,
    "resize": lower_resize,
    "view": lower_view, "copy": lower_copy, "pad": lower_pad, "concat": lower_concat,
    "pixel_shuffle": lower_pixel_shuffle, "pixel_unshuffle": lower_pixel_shuffle,
}
