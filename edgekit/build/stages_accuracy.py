"""Build stages for accuracy: the labelled data loaded with the model (so bad data fails before any
slow step), and every runtime scored on it after verification (``edgekit.evaluation``)."""

from __future__ import annotations

from edgekit.build.context import BuildContext


def load_eval_data(ctx: BuildContext) -> None:
    """``--eval DATA``, or the model's own labelled set (the trained default model ships one)."""
    import torch

    from edgekit.evaluation.data import load_eval_data as load

    source = ctx.options.eval_data if ctx.options.eval_data is not None else ctx.loaded.evaluation
    if source is None:
        return
    with torch.no_grad():
        out = ctx.module(ctx.example)
    classes = int(out.shape[-1]) if out.ndim == 2 else None
    ctx.eval_data = load(source, ctx.shape, num_classes=classes)


def evaluate(ctx: BuildContext) -> None:
    """PyTorch fp32 (the reference), then the artifact in its runtime: LiteRT, and for
    microcontrollers TFLite-Micro with the arena the firmware gets; a .pte in ExecuTorch."""
    from edgekit.evaluation.runners import evaluate_build

    arena = ctx.report.arena_bytes.c_constant
    report = evaluate_build(ctx.eval_data, module=ctx.module, artifact=ctx.artifact, runtime=ctx.plan.runtime,
                            arena_size=arena)
    ctx.report.evaluation = report.to_dict()
    if _has_matplotlib():
        from edgekit.report.eval_plots import confusion_matrix_plot

        confusion_matrix_plot(report, ctx.stage_file("confusion.png"))


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def has_eval_data(ctx: BuildContext) -> bool:
    return ctx.eval_data is not None
