"""The build as a list of stages, chosen once per runtime.

Each stage is a function ``(BuildContext) -> None`` that reads what earlier stages left in
the context and adds its own part; ``STAGES[runtime]`` lists them in order, each with the
line the user sees and an optional condition (int8 only, fp16 only, ...). Adding a stage to
the build is one function and one entry here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from edgekit.build import stages_accuracy as ac
from edgekit.build import stages_artifact as ar
from edgekit.build import stages_export as ex
from edgekit.build import stages_keras as ke
from edgekit.build import stages_lint as li
from edgekit.build import stages_model as mo
from edgekit.build import stages_patches as pa
from edgekit.build import stages_verify as ve
from edgekit.build.context import BuildContext
from edgekit.errors import UsageError

Condition = Callable[[BuildContext], bool]


def _int8(ctx: BuildContext) -> bool:
    return ctx.plan.dtype == "int8"


def _fp16(ctx: BuildContext) -> bool:
    return ctx.plan.dtype == "fp16"


@dataclass(frozen=True)
class Stage:
    title: str | Callable[[BuildContext], str]  # the progress line
    run: Callable[[BuildContext], None]
    when: Condition | None = None
    detail: str = ""  # shown while it runs ("~10-20 s")

    def label(self, ctx: BuildContext) -> str:
        return self.title(ctx) if callable(self.title) else self.title


def _labelled(ctx: BuildContext) -> bool:
    return ctx.options.eval_data is not None or getattr(ctx.loaded, "evaluation", None) is not None


_FRONT = [
    Stage("load model", mo.load),
    Stage("labelled data for accuracy", ac.load_eval_data, when=_labelled),
    Stage("fold BatchNorm", mo.fold),
    Stage("channel shuffles into the conv weights", mo.shuffle_free, when=lambda ctx: ctx.plan.runtime != "litert"),
    Stage("predict and check budget", mo.predict),
    Stage("calibration data", mo.calibrate, when=_int8),
]
_TFLITE = [
    Stage("export .tflite (litert-torch)", ex.export_tflite, detail="~10-20 s"),
    Stage("quantize int8 (ai-edge-quantizer)", ex.quantize_int8, when=_int8),
    Stage("fp16 weights (ai-edge-quantizer)", ex.quantize_fp16, when=_fp16),
]
_ACCURACY = Stage("accuracy on the labelled data (PyTorch and the artifact's runtime)", ac.evaluate,
                  when=ac.has_eval_data, detail="a few seconds per runtime")
_QUANT_DEBUG = Stage("per-layer int8 error (quantization debugger)", li.quant_debug, when=_int8)
_LINT = Stage("lint the artifact", li.lint)

_MEASURE_AND_PLAN = [
    Stage("measure arena in TFLite-Micro", ve.measure_tflm),
    Stage("offline memory plan (every tensor verified in TFLite-Micro)", ve.memory_plan,
          when=lambda ctx: ctx.plan.memory_plan != "tflm"),
]
_MCU_FILES = [
    Stage("C array (model_data.h/.cc)", ve.c_source),
    Stage("op resolver (checked against TFLite-Micro)", ve.op_resolver),
]

# keyed by BuildContext.pipeline: the runtime, or "<runtime>:<source>" for sources other than PyTorch
STAGES: dict[str, list[Stage]] = {
    "tflite-micro": _FRONT + _TFLITE + [
        Stage("patch-based inference (verified in TFLite-Micro)", pa.apply, when=pa.wanted),
        *_MEASURE_AND_PLAN,        Stage("verify in TFLite-Micro (arena as on the device)", ve.verify_tflm),
        Stage("compare with LiteRT's reference kernels", ve.cross_check_litert),
        *_MCU_FILES, _ACCURACY, _QUANT_DEBUG, _LINT,
    ],
    "tflite-micro:tflite": [
        Stage("read the .tflite and check the budget", ar.read_artifact),
        *_MEASURE_AND_PLAN,
        Stage("verify against the original .tflite in TFLite-Micro", ar.verify_against_original),
        *_MCU_FILES, _LINT,
    ],
    "litert": _FRONT + _TFLITE + [
        Stage("verify in LiteRT", ve.verify_litert),
        Stage("measure runtime memory (LiteRT + XNNPACK)", ve.runtime_memory),
        _ACCURACY, _QUANT_DEBUG, _LINT,
    ],
    "executorch": _FRONT + [
        Stage(lambda ctx: f"export .pte (ExecuTorch, {ctx.plan.backend})", ex.export_pte, detail="~10-30 s"),
        Stage("verify in ExecuTorch", ve.verify_executorch),
        Stage("measure runtime memory (ExecuTorch)", ve.runtime_memory),
        _ACCURACY, _LINT,
    ],
}
# Not a progress line of their own: verification inputs are prepared as soon as the artifact exists.
_AFTER_EXPORT = ve.prepare_samples

# A Keras model (.keras, .h5, SavedModel): TensorFlow's converter in a child makes the .tflite, then
# the .tflite stages of the PyTorch build run (lint with the Keras layer names).
_KERAS_FRONT = [
    Stage("load Keras model (TensorFlow, in a child process)", ke.load, detail="~10-30 s"),
    Stage("calibration data", ke.calibrate, when=_int8),
    Stage(lambda ctx: f"convert with tf.lite.TFLiteConverter ({ctx.plan.dtype}, in a child process)", ke.convert,
          detail="~20-60 s"),
    Stage("predict and check budget", ke.predict),
    Stage("BatchNorm folded by the converter", ke.fold),
]
_KERAS_LINT = Stage("lint the artifact (Keras layer names)", ke.lint)
for _rt in ("tflite-micro", "litert"):
    STAGES[f"{_rt}:keras"] = _KERAS_FRONT + [_KERAS_LINT if s is _LINT else s
                                             for s in STAGES[_rt][len(_FRONT) + len(_TFLITE):]]


def _pipeline(ctx: BuildContext):
    """(stages, what prepares the verification inputs once the artifact exists) for this build."""
    if ctx.source == "torch" and ke.is_keras(ctx.model):
        ctx.source = "keras"
    if ctx.source == "keras":
        if ctx.pipeline not in STAGES:
            raise UsageError(f"a Keras model builds to .tflite (LiteRT or TFLite-Micro); {ctx.plan.runtime} takes "
                             "PyTorch models")
        return STAGES[ctx.pipeline], ke.prepare_samples
    return STAGES[ctx.pipeline], _AFTER_EXPORT


def run_stages(ctx: BuildContext) -> dict[str, float]:
    """Run the runtime's stages in order; returns seconds per stage (``BuildStop`` propagates)."""
    timings: dict[str, float] = {}
    prepared = False
    stages, after_export = _pipeline(ctx)
    for stage in stages:
        if stage.when is not None and not stage.when(ctx):
            continue
        if ctx.artifact is not None and not prepared and ctx.loaded is not None:
            after_export(ctx)
            prepared = True
        name = stage.label(ctx)
        ctx.progress(name, None, stage.detail)
        t0 = time.perf_counter()
        try:
            stage.run(ctx)
        finally:
            timings[name] = round(time.perf_counter() - t0, 3)
            ctx.report.timings_s = dict(timings)
        ctx.progress(name, timings[name], "")
    return timings
