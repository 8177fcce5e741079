"""Build stages on the PyTorch side: load, fold BatchNorm, predict the budget, calibration data."""

from __future__ import annotations

from edgekit.analysis.api import analyze_graph, capture_loaded
from edgekit.analysis.result import verdict_for
from edgekit.build.context import BuildContext
from edgekit.build.report import BuildVerdict
from edgekit.errors import UsageError
from edgekit.loader import LoadedModel, from_module, load_model, parse_spec, probe_input


def load(ctx: BuildContext) -> None:
    import torch

    if isinstance(ctx.model, torch.nn.Module):
        loaded = from_module(ctx.model, ctx.options.input_shape, what="building an nn.Module")
    else:
        spec = parse_spec(ctx.model)
        if spec.is_artifact:
            raise UsageError(f"{spec.text} is already built; build takes a PyTorch model, or a .tflite to re-plan "
                             "for a microcontroller (see edgekit build --help)")
        loaded = load_model(spec, input_shape=ctx.options.input_shape)
    if loaded.module.training:
        raise UsageError("the model is in training mode; call model.eval() before building it")
    ctx.loaded, ctx.module = loaded, loaded.module
    ctx.example = torch.randn(*ctx.shape, generator=torch.Generator().manual_seed(0))
    probe_input(ctx.module, ctx.shape)


def fold(ctx: BuildContext) -> None:
    if not ctx.options.fold:
        return
    from edgekit.passes.fold_bn import fold_bn

    result = fold_bn(ctx.module, (ctx.example,))
    ctx.module = result.model
    ctx.report.fold_bn = {"folded": result.folded, "kept": result.kept}


def shuffle_free(ctx: BuildContext) -> None:
    """Channel shuffles moved into the conv weights where that pays (exact; a no-op without shuffles):
    edgekit.passes.shuffle_free.layout_for says where (not on LiteRT: XNNPACK's TRANSPOSE is faster)."""
    from edgekit.passes.shuffle_free import layout_for
    from edgekit.passes.shuffle_free import shuffle_free as run

    layout = layout_for(ctx.plan.format, ctx.plan.runtime)
    if layout is None:
        return
    result = run(ctx.module, (ctx.example,), layout=layout)
    ctx.module = result.model
    ctx.report.shuffle_free = result.to_dict()


def predict(ctx: BuildContext) -> None:
    """The pre-export analysis of the folded model and its verdict: over budget (or unrunnable) ends
    the build here, before any slow step (unless --force). A model the lowering cannot model exactly
    is not guessed: no early verdict, the built artifact is measured instead."""
    from dataclasses import replace

    from edgekit.errors import NotModelledError

    plan = ctx.plan
    folded = LoadedModel(ctx.loaded.spec, ctx.module, ctx.shape)
    # a fp16 .tflite has fp16 weights but computes in fp32: its activations are fp32
    act_dtype = "fp32" if plan.format == "tflite" and plan.dtype == "fp16" else plan.dtype
    graph = capture_loaded(folded, dtype=act_dtype, fold=False)
    graph.meta["channels_last_io"] = bool(ctx.options.channels_last_io and plan.format == "tflite")
    r = ctx.report
    try:
        pre = analyze_graph(graph, ctx.loaded.spec.text, plan=plan)
    except NotModelledError as exc:
        as_litert = replace(plan, runtime="litert", memory_plan=None, kernels=None)  # counts only: no arena model
        pre = analyze_graph(graph, ctx.loaded.spec.text, plan=as_litert)
        r.arena_bytes.not_modelled_before_export = [{"layer": layer, "op": op, "why": why}
                                                    for layer, op, why in exc.layers]
    ctx.graph, ctx.analysis = graph, pre
    r.params, r.macs, r.peak_activation_bytes = pre.params, pre.macs, pre.peak_activation_bytes
    if r.arena_bytes.not_modelled_before_export:
        r.arena_bytes.predicted_pre_export = None
        return
    r.arena_bytes.predicted_pre_export = pre.arena_bytes
    if plan.runtime == "tflite-micro" and plan.dtype == "int8":
        from edgekit.build import stages_patches

        stages_patches.requested(ctx)
    if plan.runtime == "tflite-micro":
        from edgekit.analysis.export_options import memory_options

        # the what-ifs compare TFLite-Micro's own plans of both layouts
        r.memory_options = memory_options(graph, channels_last_io=ctx.options.channels_last_io,
                                          arena_bytes=pre.memory_plans["tflm_arena_bytes"])
    verdict = pre.check(suggest=False)
    if verdict.fits or ctx.options.force:
        return
    if _patches_fit(ctx, verdict):
        return
    suggestions = None
    if ctx.loaded.spec.kind == "registered" and not pre.runnability:
        pre.variants_of = ctx.loaded
        verdict = pre.check()
        suggestions = [s.__dict__ for s in verdict.suggestions]
    ctx.stop_unless_fits(verdict, "predicted before export", suggestions=suggestions)


def _patches_fit(ctx: BuildContext, verdict) -> bool:
    """--patch auto on an int8 TFLite-Micro build that is over its SRAM budget (and only that)."""
    plan = ctx.plan
    only_sram = verdict.over_sram_bytes and not verdict.over_flash_bytes and not ctx.analysis.runnability
    if ctx.options.patch != "auto" or plan.runtime != "tflite-micro" or plan.dtype != "int8" or not only_sram:
        return False
    from edgekit.build import stages_patches

    return stages_patches.search(ctx, plan.sram_bytes)


def calibrate(ctx: BuildContext) -> None:
    from edgekit.calibration import load_calibration

    source = ctx.options.calibration if ctx.options.calibration is not None else ctx.loaded.calibration
    cal, desc, warns = load_calibration(source, ctx.shape)
    ctx.calibration = cal
    # the samples as the exported model takes them (NHWC with --channels-last-io)
    ctx.calibration_in = cal.transpose(0, 1, 3, 4, 2) if ctx.options.channels_last_io and cal.ndim == 5 else cal
    ctx.report.calibration = {"source": desc, "samples": int(len(cal)), "warnings": warns}
    for w in warns:
        ctx.warn(w)


def measured_verdict(ctx: BuildContext) -> BuildVerdict:
    """The verdict on the artifact: the measured arena (TFLite-Micro), the planned one (.pte) or
    the prediction, the artifact's bytes, and lint errors that make it unusable on the target."""
    r, plan = ctx.report, ctx.plan
    arena = r.arena_bytes.measured
    if arena is None:
        arena = r.arena_bytes.planned_by_executorch or r.arena_bytes.predicted_pre_export or 0
    reasons = []
    if ctx.lint is not None and ctx.lint.unusable:
        errs = ctx.lint.errors
        reasons.append(f"lint: {len(errs)} error(s) make the artifact unusable on {plan.target_name} "
                       f"(first: {errs[0].code}: {errs[0].message}); see `edgekit lint`")
    label = "measured arena" if r.arena_bytes.measured is not None else "arena"
    v = verdict_for(arena_bytes=arena, model_bytes=r.model_bytes, sram_bytes=plan.sram_bytes,
                    flash_bytes=plan.flash_bytes, arena_label=label, extra_reasons=reasons)
    return BuildVerdict(fits=v.fits, stage="measured on the artifact", reasons=v.reasons, summary=v.summary())
