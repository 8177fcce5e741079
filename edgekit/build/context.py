"""What the build stages share: the plan, the options, and what each stage leaves for the next."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.build.report import BuildReport, BuildVerdict
from edgekit.plan import Plan

Progress = Callable[[str, "float | None", str], None]  # (stage, seconds or None when it starts, detail)


@dataclass(frozen=True)
class BuildOptions:
    calibration: Any = None  # folder, .npy path, "random", an array, or None (the model's shipped set)
    input_shape: tuple[int, ...] | None = None
    channels_last_io: bool = False
    fold: bool = True
    force: bool = False
    verify_samples: int = 8
    quant_remedies: tuple[str, ...] = ()
    eval_data: Any = None  # labelled data (--eval): a folder of class folders, an .npz; None: the model's own set
    patch: str = "auto"  # TFLite-Micro: auto | none | GRIDxGRID@LAYER (patch-based inference)


class BuildStop(Exception):
    """A stage decided the build ends here without writing anything (over budget, fail fast)."""


@dataclass
class BuildContext:
    plan: Plan
    options: BuildOptions
    staging: Path  # the folder the artifacts are written to before the final atomic moves
    report: BuildReport
    progress: Progress
    model: Any = None  # what the user gave: a MODEL spec string, None, an nn.Module, or a .tflite path
    source: str = "torch"  # "torch", or the format of a built file the build starts from ("tflite")
    # filled in by the stages, in order
    loaded: Any = None  # edgekit.loader.LoadedModel
    module: Any = None  # the nn.Module being built (folded)
    example: Any = None  # an example input tensor of the model's shape
    graph: Any = None  # the captured graph (pre-export analysis)
    analysis: Any = None  # the pre-export Analysis
    calibration: Any = None  # np.ndarray of calibration samples, NCHW
    calibration_in: Any = None  # the samples as the exported model takes them (NHWC with --channels-last-io)
    fp32_tflite: bytes | None = None
    artifact: Path | None = None  # the built .tflite / .pte in the staging folder
    samples: Any = None  # verification inputs (NCHW float)
    reference: list = field(default_factory=list)  # PyTorch outputs on the samples
    feed: list = field(default_factory=list)  # the samples as the .tflite takes them (quantized, layout)
    tflm_outputs: list = field(default_factory=list)
    lint: Any = None  # LintResult
    eval_data: Any = None  # edgekit.evaluation.EvalData, loaded as soon as the model is
    patch: Any = None  # (grid, layer) to apply after quantization, when patches are needed or asked for
    artifacts: dict[str, Path] = field(default_factory=dict)  # file name in the output folder -> staged path

    @property
    def pipeline(self) -> str:
        """The key of ``pipeline.STAGES`` this build runs."""
        return self.plan.runtime if self.source == "torch" else f"{self.plan.runtime}:{self.source}"

    @property
    def model_name(self) -> str:
        return self.loaded.spec.name if self.loaded is not None else Path(str(self.model)).stem

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.loaded.input_shape)

    def stage_file(self, name: str) -> Path:
        """A file the build will deliver: written in staging now, moved to the output at the end."""
        path = self.staging / name
        self.artifacts[name] = path
        return path

    def warn(self, message: str) -> None:
        self.progress("warning", None, message)

    def stop_unless_fits(self, verdict, stage: str, *, suggestions: list | None = None) -> None:
        """End the build here (BuildStop: nothing is written) when ``verdict``, made before any slow
        step, does not fit, unless --force."""
        if verdict.fits or self.options.force:
            return
        self.report.verdict = BuildVerdict(fits=False, stage=stage, reasons=verdict.reasons,
                                           summary=verdict.summary(), suggestions=suggestions)
        raise BuildStop
