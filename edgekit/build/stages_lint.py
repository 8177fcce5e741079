"""Build stages that say what export did: the quantization debugger and lint."""

from __future__ import annotations

from edgekit.build.context import BuildContext


def quant_debug(ctx: BuildContext) -> None:
    """Per-layer int8 error against fp32 on the calibration data, mapped to module names."""
    from edgekit.lint.quant_debug import quant_debug as run

    cal = ctx.calibration_in
    ctx.report.quant_debug = run(ctx.fp32_tflite, ctx.artifact.read_bytes(), cal, samples=min(8, len(cal)),
                                 expected_input=None, remedies=ctx.options.quant_remedies,
                                 target=ctx.plan.lint_target,
                                 eval_data=ctx.eval_data if ctx.options.quant_remedies else None)


def lint(ctx: BuildContext) -> None:
    """The findings of `edgekit lint`; an error fails the build like an over-budget arena."""
    from edgekit.lint import lint as run

    ctx.lint = run(ctx.artifact, model=ctx.module, target=ctx.plan.lint_target)
    ctx.report.lint = ctx.lint
