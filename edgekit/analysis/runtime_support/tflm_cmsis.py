"""TFLite-Micro on Cortex-M: where the CMSIS-NN kernels accept less than the reference ones.

A Cortex-M build (``OPTIMIZED_KERNEL_DIR=cmsis_nn``) replaces the kernels of 14 files by those in
``tensorflow/lite/micro/kernels/cmsis_nn/`` (tflite-micro 90b983c2, CMSIS-NN 4ab83cc3); every
other op runs the reference kernel of :mod:`.tflm`. Read side by side, the replacements accept
the same types as the reference kernels (TRANSPOSE_CONV's stricter Prepare check
refuses int16 weights, which the reference kernel refuses later, in kernel_util.cc
PopulateConvolutionQuantizationParams) except (paths relative to ``kernels/cmsis_nn/``):

- TRANSPOSE: int8 takes at most 4 dimensions (transpose.cc TransposeEvalInt8
  ``TF_LITE_ENSURE(context, size <= 4)``); the reference kernel takes 5.
- BATCH_MATMUL: both inputs at most rank 4 (batch_matmul.cc Prepare); the reference takes 5.
- FULLY_CONNECTED with int16 input and an int32 bias: arm_fully_connected_s16 reads the bias
  as int64 (fully_connected.cc EvalQuantizedInt16), so the output is wrong; the reference
  kernel accumulates an int32 bias in int32. Reported as unrunnable: it does not fail, it
  computes nonsense.
- UNIDIRECTIONAL_SEQUENCE_LSTM: weights and biases must be constant tensors
  (unidirectional_sequence_lstm.cc UnidirectionalSequenceLstmPrepare ``IsConstantTensor``).

These facts come from the sources only: the interpreter edgekit can run (the ``tflite_micro``
Python package) has the reference kernels.
"""

from __future__ import annotations

from dataclasses import replace

from edgekit.analysis.runtime_support.facts import Check, Kernel
from edgekit.analysis.runtime_support.tflm import KERNELS, rank_between
from edgekit.graph.ir import Graph, Op


def _transpose_int8_rank(op: Op, g: Graph) -> str | None:
    if not op.inputs:
        return None
    t = g.tensors[op.inputs[0]]
    if t.dtype == "int8" and len(t.shape) > 4:
        return f"with a rank-{len(t.shape)} int8 input (CMSIS-NN's int8 transpose takes at most 4)"
    return None


def _fc_int16_int32_bias(op: Op, g: Graph) -> str | None:
    if len(op.inputs) < 3:
        return None
    i, b = g.tensors[op.inputs[0]], g.tensors[op.inputs[2]]
    if i.dtype == "int16" and b.dtype == "int32":
        return "with int16 input and int32 bias (CMSIS-NN reads the bias as int64: wrong results, no error)"
    return None


def _lstm_const(op: Op, g: Graph) -> str | None:
    # inputs 1..8 are the weights, 12..15 the biases (lstm_shared.h); absent optional inputs
    # (-1) are dropped by the reader, so look at every int8/float tensor past the input
    if any(not g.tensors[t].is_const and g.tensors[t].producer is not None
           and len(g.tensors[t].shape) == 2 for t in op.inputs[1:9]):
        return "with non-constant weights (CMSIS-NN needs constant LSTM weights and biases)"
    return None


_OVERRIDES = {
    "TRANSPOSE": [Check(_transpose_int8_rank, "kernels/cmsis_nn/transpose.cc TransposeEvalInt8")],
    "BATCH_MATMUL": [rank_between(2, 4, "kernels/cmsis_nn/batch_matmul.cc Prepare", inputs=(0, 1))],
    "FULLY_CONNECTED": [Check(_fc_int16_int32_bias, "kernels/cmsis_nn/fully_connected.cc EvalQuantizedInt16",
                              silent=True)],
    "UNIDIRECTIONAL_SEQUENCE_LSTM": [Check(_lstm_const, "kernels/cmsis_nn/unidirectional_sequence_lstm.cc "
                                           "UnidirectionalSequenceLstmPrepare")],
}


_REPLACED = {"BATCH_MATMUL"}  # its CMSIS-NN rank check replaces the reference one


def _cmsis_kernels() -> dict[str, Kernel]:
    out = dict(KERNELS)
    for code, extra in _OVERRIDES.items():
        k = out[code]
        kept = () if code in _REPLACED else k.checks
        out[code] = replace(k, checks=kept + tuple(extra), source=k.source + "; cmsis_nn/ replacement")
    return out


KERNELS_CMSIS = _cmsis_kernels()
