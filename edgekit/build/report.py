"""The build report: typed while the build runs, ``report.json`` when it is written.

``BuildReport.to_dict()`` is the report.json schema (README, "edgekit build"): the keys a
build did not produce (no ``executorch`` section for a .tflite, ...) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ArenaFigures:
    """Every arena figure of one build, in bytes."""

    predicted_pre_export: int | None  # the pre-export model (what `edgekit check` says); None: not modelled
    measured: int | None = None  # TFLite-Micro's minimum, bisected on the artifact
    measured_tflm_plan: int | None = None  # the same, with TFLite-Micro's own plan (when edgekit's was written)
    predicted: int | None = None  # the arena model on the artifact
    c_constant: int | None = None  # kTensorArenaSize written into model_data.h
    predicted_breakdown: dict[str, int] | None = None
    planned_by_executorch: int | None = None  # a .pte's planned non-constant buffers
    # layers the pre-export lowering cannot model exactly ({"layer", "op", "why"}): measured instead
    not_modelled_before_export: list[dict] | None = None

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if v is not None}
        d.setdefault("predicted_pre_export", None)
        return d


@dataclass
class BuildVerdict:
    fits: bool
    stage: str  # "predicted before export" | "measured on the artifact"
    reasons: list[str]
    summary: str
    suggestions: list[dict] | None = None  # only for the pre-export verdict of a registered model

    def to_dict(self) -> dict:
        d = {"fits": self.fits, "stage": self.stage, "reasons": self.reasons, "summary": self.summary}
        if self.suggestions is not None:
            d["suggestions"] = self.suggestions
        return d


@dataclass
class BuildReport:
    model: str
    target: str  # the device id, else the format
    format: str
    runtime: str
    dtype: str
    backend: str | None
    input_shape: list[int]
    params: int
    macs: int
    budget: dict[str, int | None]
    arena_bytes: ArenaFigures
    peak_activation_bytes: int
    fold_bn: dict | None = None  # {"folded": n, "kept": n} or None with --no-fold
    shuffle_free: dict | None = None  # channel shuffles moved into conv weights (TFLite-Micro, .pte)
    memory_options: dict | None = None  # TFLite-Micro: what --channels-last-io and the PADs cost
    memory_plan: dict | None = None  # TFLite-Micro: the offline plan written (or why not), what was verified
    patches: dict | None = None  # TFLite-Micro: the patch search before export and the patched model
    evaluation: dict | None = None  # --eval (or the model's own labelled set): accuracy per runtime
    calibration: dict | None = None  # int8: source, samples, warnings
    model_bytes: int | None = None
    executorch: dict | None = None  # .pte: delegates, operators, buffers, selective build
    verification: dict[str, dict] = field(default_factory=dict)  # runtime -> compare()
    runtime_memory: dict | None = None  # LiteRT/ExecuTorch: RSS growth at load and first run (Footprint)
    op_resolver: dict | None = None
    quant_debug: Any = None  # QuantDebugResult
    lint: Any = None  # LintResult
    verdict: BuildVerdict | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            "model": self.model, "target": self.target, "format": self.format, "runtime": self.runtime,
            "dtype": self.dtype, "backend": self.backend, "input_shape": list(self.input_shape),
            "params": self.params, "macs": self.macs, "flops": self.flops, "fold_bn": self.fold_bn,
            "shuffle_free": self.shuffle_free,
            "budget": self.budget, "arena_bytes": self.arena_bytes.to_dict(),
            "peak_activation_bytes": self.peak_activation_bytes,
        }
        optional = {"memory_options": self.memory_options, "memory_plan": self.memory_plan,
                    "patches": self.patches, "calibration": self.calibration,
                    "model_bytes": self.model_bytes, "executorch": self.executorch}
        d.update({k: v for k, v in optional.items() if v is not None})
        if self.model_bytes is not None:  # built: the artifact was verified (possibly in no runtime)
            d["verification"] = self.verification
        if self.evaluation is not None:
            d["evaluation"] = self.evaluation
        if self.runtime_memory is not None:
            d["runtime_memory"] = self.runtime_memory
        if self.op_resolver is not None:
            d["op_resolver"] = self.op_resolver
        if self.quant_debug is not None:
            d["quant_debug"] = self.quant_debug.to_dict()
        if self.lint is not None:
            d["lint"] = {**self.lint.to_dict(), "artifact": f"model.{self.format}"}  # not the staging path
        if self.verdict is not None:
            d["verdict"] = self.verdict.to_dict()
        if self.model_bytes is not None:
            d["timings_s"] = self.timings_s
            d["versions"] = self.versions
        return d
