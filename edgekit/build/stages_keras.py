"""Build stages for a Keras model (``.keras``, ``.h5``, a SavedModel folder): load and convert with
TensorFlow's own converter in a child process, then the same stages as a PyTorch build (verify in
LiteRT and TFLite-Micro against the Keras model's outputs, the measured arena, the offline memory
plan, the C array, the op resolver, lint with Keras layer names).

The order differs from PyTorch's in one way: the pre-export prediction is made on the graph the
converter wrote (``edgekit.analysis.keras``), so conversion comes before the budget check; the
staged ``model.tflite`` is deleted with the staging folder when the budget check stops the build.
The context's ``module`` holds the :class:`edgekit.keras.capture.KerasModel` (there is no
nn.Module) and ``samples`` are channels-last, as the Keras model takes them. No torch and no
TensorFlow are imported in this process.
"""

from __future__ import annotations

import os

import numpy as np

from edgekit.build.context import BuildContext
from edgekit.errors import UsageError


def is_keras(model) -> bool:
    """True when the MODEL a build was given is a Keras/TensorFlow model."""
    if not isinstance(model, (str, os.PathLike)):
        return False
    from edgekit.loader import parse_spec

    return parse_spec(str(model)).kind == "keras"


def load(ctx: BuildContext) -> None:
    from edgekit.keras.capture import describe_keras
    from edgekit.loader import LoadedModel, parse_spec

    if ctx.plan.format != "tflite":
        raise UsageError(f"a Keras model builds to .tflite (LiteRT or TFLite-Micro); {ctx.plan.runtime} takes "
                         "PyTorch models")
    spec = parse_spec(str(ctx.model))
    if ctx.options.channels_last_io:
        ctx.warn("--channels-last-io does not apply: a Keras model takes channels-last input already")
    keras = describe_keras(spec.path, spec.kwargs["format"], input_shape=ctx.options.input_shape)
    ctx.loaded = LoadedModel(spec, None, keras.input_shape)
    ctx.module = keras
    ctx.report.params = keras.params or 0


def calibrate(ctx: BuildContext) -> None:
    """Calibration samples in the Keras model's layout (N, 1, H, W, C). A .npy array is taken as the
    model takes it; a folder of images is read as for PyTorch (resized, ImageNet mean/std) and made
    channels-last, with a warning: Keras models often expect another scaling (MobileNet: [-1, 1])."""
    from edgekit.calibration import load_calibration

    source, shape = ctx.options.calibration, ctx.shape
    images = isinstance(source, (str, os.PathLike)) and os.path.isdir(source)
    if images and len(shape) == 4:
        nchw = (shape[0], shape[3], shape[1], shape[2])
        cal, desc, warns = load_calibration(source, nchw)
        cal = np.ascontiguousarray(cal.transpose(0, 1, 3, 4, 2))
        warns = warns + ["images scaled with ImageNet mean/std as for PyTorch models; if the Keras model expects "
                         "other input scaling, pass --calibration FILE.npy in its own input format"]
    else:
        cal, desc, warns = load_calibration(source, shape)
    ctx.calibration = ctx.calibration_in = cal
    ctx.report.calibration = {"source": desc, "samples": int(len(cal)), "warnings": warns}
    for w in warns:
        ctx.warn(w)


def convert(ctx: BuildContext) -> None:
    """tf.lite.TFLiteConverter in the child (fp32, fp16 weights, or full-integer int8 calibrated on
    the calibration samples) and the Keras model's outputs on the verification samples."""
    from edgekit.keras.capture import convert_keras

    plan, keras = ctx.plan, ctx.module
    n = ctx.options.verify_samples
    if ctx.calibration is not None:
        samples = ctx.calibration[:n]
    else:
        samples = np.random.default_rng(0).standard_normal((n, *ctx.shape)).astype(np.float32)
    conv = convert_keras(keras.path, keras.kind, plan.dtype, input_shape=ctx.shape, calibration=ctx.calibration,
                         samples=samples, want_fp32=plan.dtype == "int8")
    ctx.samples, ctx.reference, ctx.graph = samples, conv.outputs, conv.graph
    ctx.fp32_tflite = conv.fp32_tflite if conv.fp32_tflite is not None else (
        conv.tflite if plan.dtype == "fp32" else None)
    ctx.artifact = ctx.stage_file("model.tflite")
    ctx.artifact.write_bytes(conv.tflite)
    ctx.report.model_bytes = len(conv.tflite)


def predict(ctx: BuildContext) -> None:
    """The analysis of the converted graph and its verdict: over budget ends the build here."""
    from edgekit.analysis.keras import analyze_conversion

    plan = ctx.plan
    pre = analyze_conversion(ctx.graph, ctx.loaded.spec.text, plan)
    ctx.analysis = pre
    r = ctx.report
    r.params, r.macs, r.peak_activation_bytes = pre.params, pre.macs, pre.peak_activation_bytes
    r.arena_bytes.predicted_pre_export = pre.arena_bytes
    ctx.stop_unless_fits(pre.check(suggest=False), "predicted before export")


def fold(ctx: BuildContext) -> None:
    """What the converter did with each BatchNormalization, per Keras layer."""
    from edgekit.keras.fold import keras_bn_fates

    if not ctx.options.fold:
        ctx.warn("--no-fold does not apply to a Keras model: TensorFlow's converter folds BatchNorm itself")
    res = keras_bn_fates(ctx.graph, ctx.module.table)
    ctx.report.fold_bn = {"folded": res.folded, "kept": res.kept,
                          "by": f"{res.method}.{ctx.graph.meta.get('keras_converter') or 'convert'}",
                          "report": [f.__dict__ for f in res.report]}


def prepare_samples(ctx: BuildContext) -> None:
    """The verification samples as the .tflite takes them (quantized for int8 input)."""
    from edgekit.runtime.litert import input_details, quantize_to

    ind = input_details(ctx.artifact)[0]
    ctx.feed = [[quantize_to(s, ind)] for s in ctx.samples]


def lint(ctx: BuildContext) -> None:
    """`edgekit lint` with the Keras layer names; an error fails the build."""
    from edgekit.graph.names import ModuleTable
    from edgekit.lint import lint as run

    ctx.lint = run(ctx.artifact, model=ModuleTable(keras=ctx.module.table), target=ctx.plan.lint_target)
    ctx.report.lint = ctx.lint
