"""Graph rules about multi-op structures the lowering produced: grouped convolutions lowered as
split + N convs + concat, or kept as one grouped CONV_2D (``rule_grouped_conv``), and the ops a
patch stage of patch-based inference added (``rule_patches``, information, not a defect).
"""

from __future__ import annotations

from edgekit.analysis.patches import is_patch_name, parse_patch_name
from edgekit.graph.ir import Op
from edgekit.graph.names import Location
from edgekit.lint.findings import Cost, Finding
from edgekit.lint.rules_tflite_ctx import Ctx, _patch_op

# ============================================================================ grouped convolutions

def rule_grouped_conv(ctx: Ctx) -> list[Finding]:
    """Grouped convolutions lowered as SPLIT (or SLICEs) + N convs + CONCATENATION, and native
    grouped CONV_2D (filter in-channels < input channels), which is fine where it is supported."""
    art, out = ctx.art, []
    seen: set[int] = set()
    for op in ctx.g.ops:
        opc = ctx.opc(op)
        branches: list[list[Op]] = []
        splitters: list[Op] = []
        if opc in ("SPLIT", "SPLIT_V"):
            splitters = [op]
            outs = op.outputs
        elif opc in ("SLICE", "STRIDED_SLICE") and op.index not in seen:
            x = art.act_inputs(op)
            if not x:
                continue
            splitters = [c for c in art.consumers(x[0]) if ctx.opc(c) in ("SLICE", "STRIDED_SLICE")]
            if len(splitters) < 2 or any(_patch_op(ctx, c) for c in splitters):
                continue
            outs = [c.outputs[0] for c in splitters]
        else:
            continue
        seen.update(s.index for s in splitters)
        convs = []
        for t in outs:
            cons = art.consumers(t)
            if len(cons) != 1 or ctx.opc(cons[0]) not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                convs = []
                break
            convs.append(cons[0])
        if len(convs) < 2:
            continue
        cat_users = {tuple(c.index for c in art.consumers(cv.outputs[0])) for cv in convs}
        cats = [art.consumers(convs[0].outputs[0])]
        if len(cat_users) != 1 or len(cats[0]) != 1 or ctx.opc(cats[0][0]) != "CONCATENATION":
            continue
        cat = cats[0][0]
        branches = [splitters, convs, [cat]]
        all_ops = [o for b in branches for o in b]
        locs = [art.module_of(c) for c in convs]
        paths = [lc.path for lc in locs if lc is not None]
        common = _common_prefix(paths)
        loc = Location(common, locs[0].cls) if locs and locs[0] is not None else None
        extra = len(splitters) + 1 + len(convs) - 1
        out.append(ctx.finding(
            "grouped-conv-split", "warning",
            f"a grouped convolution runs as {' + '.join(sorted({ctx.opc(s) for s in splitters}))} x{len(splitters)} + "
            f"{len(convs)} {ctx.opc(convs[0])} + CONCATENATION ({extra} ops more than one grouped CONV_2D, "
            f"and the split/concat copy every activation byte once more)",
            "use one nn.Conv2d(..., groups=G): litert-torch keeps it as a single grouped CONV_2D, which LiteRT, "
            "XNNPACK and TFLite-Micro's reference kernels run",
            all_ops, loc=loc, cost=ctx.cost(splitters + [cat], extra_ops=extra), groups=len(convs)))
    for op in ctx.g.ops:
        if ctx.opc(op) != "CONV_2D" or len(op.inputs) < 2:
            continue
        x, w = ctx.g.tensors[op.inputs[0]], ctx.g.tensors[op.inputs[1]]
        if len(x.shape) == 4 and len(w.shape) == 4 and w.shape[3] and x.shape[3] != w.shape[3]:
            groups = x.shape[3] // w.shape[3]
            out.append(ctx.finding(
                "grouped-conv", "info",
                f"grouped CONV_2D (groups={groups}, {x.shape[3]} -> {w.shape[0]} channels) kept as one op",
                "nothing to do for LiteRT/XNNPACK and TFLite-Micro's reference kernels; GPU delegates and some NPUs "
                "do not take grouped CONV_2D: check the target's op list", [op], cost=Cost(), groups=groups))
    return out


def _common_prefix(paths: list[str]) -> str:
    if not paths:
        return ""
    parts = [p.split(".") for p in paths]
    common = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        common.append(items[0])
    return ".".join(common)


# ============================================================================ patch-based inference

def rule_patches(ctx: Ctx) -> list[Finding]:
    """A patch stage (``edgekit build --patch``): what it added, as information, not as a defect."""
    ops = [op for op in ctx.g.ops if _patch_op(ctx, op)]
    if not ops:
        return []
    patches = {p[0] for op in ops for t in op.outputs
               for p in [parse_patch_name(ctx.g.tensors[t].name)] if p is not None and "." in p[0]}
    added = sorted({ctx.opc(op) for op in ops if ctx.opc(op) in ("SLICE", "PAD", "PADV2", "CONCATENATION")})
    n_added = sum(1 for op in ops if ctx.opc(op) in ("SLICE", "PAD", "PADV2", "CONCATENATION"))
    split = next((op for op in reversed(ops) if not any(is_patch_name(ctx.g.tensors[t].name) for t in op.outputs)),
                 None)
    where = ctx.where(split) if split is not None else "the stage"
    return [ctx.finding(
        "patches", "info",
        f"patch-based inference: the layers up to {where} run on {len(patches)} spatial patches ({len(ops)} ops, "
        f"of which {n_added} {'/'.join(added)} ops cut, pad and assemble the patches; the halos recompute some "
        f"MACs)", "nothing to do: this trades recomputed MACs for a smaller arena (edgekit build --patch none "
        "builds without it)", ops, cost=ctx.cost([op for op in ops if ctx.opc(op) in added], extra_ops=n_added),
        patches=len(patches))]

