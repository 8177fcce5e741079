"""``edgekit check`` on a Keras model: the graph TensorFlow's converter makes of it, analysed like a
built ``.tflite`` with the Keras layer names (``edgekit.keras``).

The analysis runs on the ``.tflite`` that ``tf.lite.TFLiteConverter`` writes for the plan's dtype
(in a TensorFlow child process; the file is not kept): the ops, fused activations, folded
BatchNorms and PADs TFLite-Micro and LiteRT will run, so the arena model (``analysis.tflm_arena``)
predicts from the graph it would measure. An int8 analysis converts with 4 seeded random
calibration samples: the int8 graph's ops, tensors and per-channel quantization arrays (what the
arena depends on) do not depend on the calibration values, only its scales do.
"""

from __future__ import annotations

from edgekit.analysis.api import analyze_graph
from edgekit.analysis.result import Analysis, runnability_reason
from edgekit.analysis.runtime_support import unrunnable
from edgekit.errors import UnmodelledError, UsageError
from edgekit.graph.ir import Graph
from edgekit.keras.capture import convert_keras
from edgekit.plan import Plan, resolve

STRUCTURE_SAMPLES = 4  # random calibration samples for an int8 analysis (structure only)


def analyze_keras(spec, *, input_shape=None, dtype: str | None = None, runtime: str | None = None, target=None,
                  sram=None, flash=None, fold: bool = True) -> Analysis:
    """Analyse a ``kind == "keras"`` ModelSpec for the plan ``edgekit.plan.resolve`` makes of the flags."""
    plan = resolve(target=target, runtime=runtime, dtype=dtype, sram=sram, flash=flash)
    conv = convert_keras(spec.path, spec.kwargs["format"], plan.dtype, input_shape=input_shape,
                         calibration=STRUCTURE_SAMPLES if plan.dtype == "int8" else None)
    analysis = analyze_conversion(conv.graph, spec.text, plan)
    if not fold:
        analysis.notes.append("--no-fold does not apply to a Keras model: TensorFlow's converter folds BatchNorm "
                              "itself (see edgekit fold MODEL for what it folded)")
    return analysis


def analyze_conversion(g: Graph, name: str, plan: Plan) -> Analysis:
    """The Analysis of a converted Keras model (``KerasConversion.graph``); a model with ops
    ``plan.runtime`` cannot run whose memory the arena model cannot size either is refused with the
    reason (UsageError)."""
    try:
        analysis = analyze_graph(g, name, plan=plan, fold=True)
    except UnmodelledError:
        problems = unrunnable(g, plan.runtime, kernels=plan.kernels or "reference")
        if not problems:
            raise
        raise UsageError(f"{name}: " + "; ".join(runnability_reason(problems))
                         + " (Keras layers; change or remove them, or pick another --runtime)") from None
    converter = g.meta.get("keras_converter")
    how = f"tf.lite.TFLiteConverter.{converter}" if converter else "tf.lite.TFLiteConverter"
    analysis.notes.insert(0, f"Keras model: the {plan.dtype} graph {how} makes of it (converted in a TensorFlow "
                             "child process, not written), with Keras layer names")
    if plan.dtype == "int8":
        analysis.notes.insert(1, f"int8 graph converted with {STRUCTURE_SAMPLES} random calibration samples: its "
                                 "structure and arena do not depend on them; build calibrates with --calibration")
    return analysis
