"""Patch-based inference in the build (MCUNetV2): the first stages of the network run one spatial tile
at a time so that only the stage's output map is whole (``edgekit.analysis.patches``).

Before export the search says whether patches are needed (``--patch auto``: only when the model would
not fit otherwise) and which grid and split; after int8 quantization the .tflite is rewritten, and
every output and every tensor of the rest of the graph is compared with the unpatched model in
TFLite-Micro (``runtime.patch_verify``); the offline memory plan then plans the patched model.
"""

from __future__ import annotations

from edgekit.build.context import BuildContext


def search(ctx: BuildContext, budget_bytes: int) -> bool:
    """Over budget before export: can patches make the same model fit? Records the search and the pick
    (``ctx.patch``); True when the pick is predicted to fit."""
    from edgekit.analysis.memory_plans import planning_kernels
    from edgekit.analysis.patch_search import search_graph

    pre, plan = ctx.analysis, ctx.plan
    res = search_graph(pre.runtime_graph, budget_bytes=budget_bytes, plan=plan.memory_plan != "tflm",
                       kernels=planning_kernels(plan.kernels or "cmsis-nn"))
    ctx.report.patches = {"search": res.to_dict()}
    pick = res.pick
    if pick is None or pick.best_arena() > budget_bytes:
        return False
    ctx.patch = (pick.grid, pick.label)
    ctx.report.arena_bytes.predicted_pre_export = pick.best_arena()
    ctx.warn(f"the model fits with patches: {res.suggestion()}")
    return True


def requested(ctx: BuildContext) -> None:
    """``--patch GRIDxGRID@LAYER``: applied whatever the budget."""
    from edgekit.analysis.patches import parse_patch_option

    opt = parse_patch_option(ctx.options.patch)
    if isinstance(opt, tuple):
        ctx.patch = opt


def apply(ctx: BuildContext) -> None:
    """Rewrite the int8 .tflite into patches (shared quantization: bit-identical outputs), verified."""
    from edgekit.errors import EdgekitError
    from edgekit.runtime.patch_verify import make_patched_tflite

    grid, layer = ctx.patch
    out = make_patched_tflite(ctx.artifact.read_bytes(), layer, grid, plan=False, measure=False)
    section = ctx.report.patches or {}
    section["applied"] = out.to_dict()
    ctx.report.patches = section
    if not out.verified:
        raise EdgekitError(f"patch-based inference ({grid[0]}x{grid[1]} up to {layer}) failed verification: "
                           f"{out.reason}; build without --patch")
    ctx.artifact.write_bytes(out.data)
    ctx.report.model_bytes = len(out.data)


def wanted(ctx: BuildContext) -> bool:
    return ctx.patch is not None
