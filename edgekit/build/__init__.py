"""`edgekit build`: load -> eval -> fold BN -> predict and check the budget (fail fast) ->
quantize -> export -> verify in the real runtime -> measure the arena -> check again ->
write artifact(s) + report.json, atomically.

The stages are listed per runtime in ``edgekit.build.pipeline.STAGES``; each is one function of
``edgekit/build/stages_*.py`` over a shared ``BuildContext``. This module runs them inside a
staging folder and moves the results into the output folder only when the build succeeded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.build.compare import check_verification, compare
from edgekit.build.context import BuildContext, BuildOptions, BuildStop, Progress
from edgekit.build.pipeline import run_stages
from edgekit.build.report import ArenaFigures, BuildReport
from edgekit.errors import UsageError
from edgekit.fileio import output_folder
from edgekit.plan import Plan, resolve
from edgekit.types import CalibrationLike, ModelLike, Shape, Size, TargetLike

__all__ = ["build", "BuildResult", "BuildReport", "compare", "resolve"]


@dataclass
class BuildResult:
    fits: bool
    written: bool
    output: Path
    artifacts: dict[str, str]  # file name -> final path (empty when nothing was written)
    report: BuildReport
    timings: dict[str, float] = field(default_factory=dict)


def build(model: ModelLike = None, *, target: TargetLike | None = "tflite", sram: Size | None = None,
          flash: Size | None = None, dtype: str | None = None, calibration: CalibrationLike = None,
          input_shape: Shape | None = None, channels_last_io: bool = False, backend: str | None = None,
          fold: bool = True, output: str | os.PathLike = "out", force: bool = False, progress: Progress | None = None,
          verify_samples: int = 8, quant_remedies: tuple[str, ...] = (), memory_plan: str | None = None,
          eval_data=None, patch: str = "auto") -> BuildResult:
    """Build ``model`` (a MODEL spec, None for the default model, or an nn.Module in eval mode).

    ``target``: a format (``tflite``, ``executorch``) or a device (``nrf52840-dk`` or a .toml);
    ``sram``/``flash``/``dtype``/``backend``/``memory_plan`` as resolved by ``edgekit.plan.resolve``.
    ``eval_data``: labelled data (a folder of class folders, an .npz with x and y) scored in PyTorch and
    in the artifact's runtime (the default model's own held-out set when None). ``patch``: TFLite-Micro
    int8: ``auto`` (patch-based inference only when the model would not fit otherwise), ``none``, or
    ``GRIDxGRID@LAYER``.
    Returns a BuildResult; ``fits`` False means over budget (nothing written unless ``force``).
    """
    source = "tflite" if isinstance(model, (str, Path)) and str(model).lower().endswith(".tflite") else "torch"
    plan = resolve(target=target or "tflite", sram=sram, flash=flash, dtype=dtype, backend=backend,
                   memory_plan=memory_plan, artifact_format="tflite" if source == "tflite" else None)
    if source == "tflite" and plan.runtime != "tflite-micro":
        raise UsageError("building from a .tflite re-plans it for TFLite-Micro: give --target <microcontroller> "
                         "or an --sram budget of a microcontroller's size (<= 2 MiB)")
    options = BuildOptions(calibration=calibration, input_shape=tuple(input_shape) if input_shape else None,
                           channels_last_io=bool(channels_last_io), fold=fold, force=force,
                           verify_samples=verify_samples, quant_remedies=tuple(quant_remedies),
                           eval_data=eval_data, patch=patch)
    _check_options(plan, options)
    # the output folder and its missing parents are created at the end, only for a finished build;
    # staging goes into the nearest folder that exists (same file system: the final moves are renames)
    out_dir, parent = output_folder(output)
    if not os.access(parent, os.W_OK) or (out_dir.exists() and not os.access(out_dir, os.W_OK)):
        raise UsageError(f"cannot write to {output}: permission denied; choose another -o OUTDIR")
    with _sigterm_as_interrupt():
        try:
            staging = Path(tempfile.mkdtemp(prefix=".edgekit-build-", dir=parent))
        except OSError as exc:
            raise UsageError(f"cannot write to {output}: {exc.strerror or exc}; choose another -o OUTDIR") from None
        try:
            ctx = BuildContext(plan=plan, options=options, staging=staging, report=_empty_report(plan),
                               progress=progress or (lambda *a, **k: None), model=model, source=source)
            return _run(ctx, out_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _check_options(plan: Plan, options: BuildOptions) -> None:
    from edgekit.analysis.patches import parse_patch_option

    if options.patch not in ("auto", "none"):
        parse_patch_option(options.patch)  # a bad value fails here, before any slow step
        if not (plan.runtime == "tflite-micro" and plan.dtype == "int8"):
            raise UsageError("--patch applies to int8 TFLite-Micro builds (a microcontroller target or --sram)")
    if options.quant_remedies:
        if not (plan.format == "tflite" and plan.dtype == "int8"):
            raise UsageError("--quant-remedy applies to int8 .tflite builds (add --dtype int8 or pick an MCU target)")
        from edgekit.lint.quant_debug import check_remedy_names

        check_remedy_names(options.quant_remedies)


def _empty_report(plan: Plan) -> BuildReport:
    return BuildReport(model="", target=plan.target_name, format=plan.format, runtime=plan.runtime,
                       dtype=plan.dtype, backend=plan.backend, input_shape=[], params=0, macs=0,
                       budget={"sram_bytes": plan.sram_bytes, "flash_bytes": plan.flash_bytes},
                       arena_bytes=ArenaFigures(predicted_pre_export=0), peak_activation_bytes=0)


def _run(ctx: BuildContext, out_dir: Path) -> BuildResult:
    from edgekit.build.stages_model import measured_verdict

    report = ctx.report
    try:
        timings = run_stages(ctx)
    except BuildStop:
        return BuildResult(False, False, out_dir, {}, report, dict(report.timings_s))
    finally:
        if ctx.loaded is not None:
            report.model, report.input_shape = ctx.loaded.spec.text, list(ctx.shape)
    report.verdict = measured_verdict(ctx)
    report.versions = tool_versions(ctx.plan)
    check_verification(report.verification, ctx.plan.dtype)
    if not report.verdict.fits and not ctx.options.force:
        return BuildResult(False, False, out_dir, {}, report, timings)
    ctx.stage_file("report.json").write_text(json.dumps(report.to_dict(), indent=2, default=_json_default))
    out_dir.mkdir(parents=True, exist_ok=True)
    final = {}
    for name, path in ctx.artifacts.items():
        dst = out_dir / name
        os.replace(path, dst)  # atomic per file: a reader sees the old or the new file, never half
        final[name] = str(dst)
    return BuildResult(report.verdict.fits, True, out_dir, final, report, timings)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM behaves like Ctrl-C during a build, so clean-up runs in both cases."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def tool_versions(plan: Plan) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    names = ["edgekit", "torch", "numpy"]
    names += ["litert-torch", "ai-edge-litert", "ai-edge-quantizer"] if plan.format == "tflite" else ["executorch"]
    if plan.runtime == "tflite-micro":
        names.append("tflite-micro")
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    return str(o)
