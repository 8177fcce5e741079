"""Graph rules about what the converter did not fold or fuse: normalizations left in the graph
(``rule_norms``), standalone activations and ReLU6 spelled as a MIN/MAX clamp
(``rule_activations``), h-swish / h-sigmoid spelled out elementwise (``rule_hard_activations``).

The converter fuses RELU, RELU_N1_TO_1 and RELU6 into CONV_2D, DEPTHWISE_CONV_2D,
TRANSPOSE_CONV, FULLY_CONNECTED, ADD, SUB, MUL, DIV and the pooling ops (their options'
fused_activation_function; ``analysis.converter_facts``, measured); XNNPACK takes these fused
activations (delegates/xnnpack/README.md). TFLite-Micro's CONCATENATION refuses any fused
activation (kernels/concatenation.cc).
"""

from __future__ import annotations

import re

from edgekit.analysis.converter_facts import FUSED_ACT_OPCODES
from edgekit.graph.ir import Op
from edgekit.graph.names import Location
from edgekit.lint.findings import Finding
from edgekit.lint.rules_tflite_ctx import ACT_OPS, COMPUTE_OPS, FUSABLE_PRODUCERS, Ctx, _near, _patch_op

# PyTorch module classes, then Keras layer classes (a model converted by TensorFlow, edgekit.keras)
_NORM_CLS = re.compile(r"(BatchNorm[123]d|SyncBatchNorm|BatchNorm|Affine|LayerNorm|GroupNorm|InstanceNorm[123]d|"
                       r"LocalResponseNorm|RMSNorm|BatchNormalization|LayerNormalization|GroupNormalization|"
                       r"UnitNormalization|RMSNormalization)$")
_BN_CLS = re.compile(r"(BatchNorm[123]d|SyncBatchNorm|BatchNorm|Affine|BatchNormalization)$")


# ============================================================================ normalization

def rule_norms(ctx: Ctx) -> list[Finding]:
    """Normalization ops left in the graph: a BatchNorm the converter could not fold (its ops carry
    the BN's name), per-input norms (LayerNorm/GroupNorm/InstanceNorm) decomposed into MEAN/SUB/
    MUL/RSQRT..., and, in graphs without names, a per-channel MUL+ADD pair (an affine/BN)."""
    art, out = ctx.art, []
    groups: dict[str, tuple[Location, list[Op]]] = {}
    for op in ctx.g.ops:
        if ctx.opc(op) in COMPUTE_OPS or _patch_op(ctx, op):
            continue  # a conv whose folded BN shares its name; the patch assembly takes the split's name
        for loc in art.locations(op):
            if _NORM_CLS.search(loc.short_cls):
                groups.setdefault(loc.path, (loc, []))[1].append(op)
                break
    for path, (loc, ops) in groups.items():
        kinds = sorted({ctx.opc(o) for o in ops})
        if _BN_CLS.search(loc.short_cls):
            first = ops[0]
            src = art.producer(art.act_inputs(first)[0]) if art.act_inputs(first) else None
            why, fix = _bn_reason(ctx, src)
            msg = (f"{loc.short_cls} '{path}' was not folded: it runs as {len(ops)} op(s) "
                   f"({', '.join(kinds)}) on the activations; {why}")
        else:
            msg = (f"{loc.short_cls} '{path}' is in the graph as {len(ops)} ops ({', '.join(kinds)}): it "
                   f"normalizes with statistics of each input, so nothing can fold it")
            fix = (f"for deployment prefer BatchNorm2d (folds into the conv before it at export); if you need "
                   f"{loc.short_cls}, expect {len(ops)} extra ops per use" +
                   ("; in int8 its MEAN/RSQRT chain loses accuracy: check it with edgekit's quantization debugger"
                    if ctx.int8 else ""))
        out.append(ctx.finding("unfolded-norm", "warning", msg, fix, ops, loc=loc, norm=loc.short_cls))
    claimed = {op.index for _, ops in groups.values() for op in ops}
    # structural fallback: per-channel MUL by a constant vector followed by ADD of a constant vector
    for op in ctx.g.ops:
        if op.index in claimed or ctx.opc(op) != "MUL" or len(art.const_inputs(op)) != 1:
            continue
        c = art.const(art.const_inputs(op)[0])
        if c is None or c.size < 2 or art.locations(op):
            continue
        cons = art.consumers(op.outputs[0])
        if len(cons) == 1 and ctx.opc(cons[0]) == "ADD" and len(art.const_inputs(cons[0])) == 1:
            ops = [op, cons[0]]
            src = art.producer(art.act_inputs(op)[0]) if art.act_inputs(op) else None
            why, fix = _bn_reason(ctx, src)
            out.append(ctx.finding("unfolded-norm", "warning",
                                   f"a per-channel scale and shift (an unfolded BatchNorm?) runs as MUL + ADD; {why}",
                                   fix, ops, norm="affine"))
    return out


def _bn_reason(ctx: Ctx, src: Op | None) -> tuple[str, str]:
    if src is None:
        return ("it reads the model input",
                "fold it into the input normalization (mean/std) of your data pipeline, or into the first conv")
    act = ctx.fused(src) if ctx.opc(src) in FUSED_ACT_OPCODES else None
    if ctx.opc(src) in ACT_OPS or act:
        what = ctx.opc(src) if ctx.opc(src) in ACT_OPS else f"{ctx.opc(src)} with fused {act}"
        return (f"it comes after an activation ({what} at {ctx.where(src)}), so the conv before it cannot absorb it",
                "put BatchNorm before the activation (conv -> bn -> act), or, if the next layer is a conv without "
                "zero padding, fold it forward into that conv (edgekit fold does both)")
    if len(ctx.art.consumers(src.outputs[0])) > 1:
        return (f"its producer {ctx.where(src)} feeds other ops too",
                "give the BN its own conv, or fold it forward into the next conv (edgekit fold)")
    return (f"its producer is {ctx.opc(src)} ({ctx.where(src)}), which cannot absorb a per-channel affine map",
            "move the BatchNorm directly after a conv or linear layer, or fold it forward (edgekit fold)")


# ============================================================================ activations

def _is_relu6_producer(ctx: Ctx, op: Op | None) -> bool:
    if op is None:
        return False
    if ctx.opc(op) == "RELU6" or ctx.fused(op) == "relu6":
        return True
    if ctx.opc(op) == "MINIMUM" and any(_near(ctx.art.scalar(t), 6.0) for t in ctx.art.const_inputs(op)):
        return True
    return False


def rule_activations(ctx: Ctx) -> list[Finding]:
    """Standalone RELU/RELU6/RELU_N1_TO_1 that could have been fused into their producer, and
    ReLU6 written as MINIMUM + RELU / MAXIMUM + MINIMUM (two ops instead of a fused clamp)."""
    handled: set[int] = set()
    out = _clamp_findings(ctx, handled)
    for op in ctx.g.ops:
        if op.index in handled or ctx.opc(op) not in ACT_OPS:
            continue
        f = _standalone_activation(ctx, op)
        if f is not None:
            out.append(f)
    return out


def _clamp_findings(ctx: Ctx, handled: set[int]) -> list[Finding]:
    """ReLU6 built from MINIMUM/MAXIMUM clamps; adds the ops it reports to ``handled``."""
    art, out = ctx.art, []
    for op in ctx.g.ops:
        if op.index in handled or ctx.opc(op) not in ("MINIMUM", "MAXIMUM"):
            continue
        c = [art.scalar(t) for t in art.const_inputs(op)]
        if len(c) != 1 or c[0] is None:
            continue
        x = art.act_inputs(op)
        if not x:
            continue
        nxt = art.consumers(op.outputs[0])
        prev = art.producer(x[0])
        pair = None
        if ctx.opc(op) == "MINIMUM" and _near(c[0], 6.0):
            if len(nxt) == 1 and (ctx.opc(nxt[0]) == "RELU" or (ctx.opc(nxt[0]) == "MAXIMUM" and
                                                              _near(art.scalar(art.const_inputs(nxt[0])[0])
                                                                    if art.const_inputs(nxt[0]) else None, 0.0))):
                pair = [op, nxt[0]]
            elif prev is not None and (ctx.opc(prev) == "RELU" or ctx.fused(prev) == "relu"):
                pair = [prev, op] if ctx.opc(prev) == "RELU" else [op]
        elif ctx.opc(op) == "MAXIMUM" and _near(c[0], 0.0) and len(nxt) == 1 and ctx.opc(nxt[0]) == "MINIMUM" and \
                art.const_inputs(nxt[0]) and _near(art.scalar(art.const_inputs(nxt[0])[0]), 6.0):
            pair = [op, nxt[0]]
        if pair:
            handled.update(o.index for o in pair)
            out.append(ctx.finding(
                "unfused-activation", "warning",
                f"ReLU6 was lowered as {' + '.join(ctx.opc(o) for o in pair)} ({len(pair)} op(s)) instead of a "
                f"RELU6 fused into the op before it",
                "use nn.ReLU6 / F.relu6 (or torch.clamp(x, 0, 6) in one call) right after the conv/linear, so the "
                "converter emits a fused RELU6", pair))
    return out


def _standalone_activation(ctx: Ctx, op: Op) -> Finding | None:
    """An activation op ``op`` that runs on its own: fusable into its producer, or why not."""
    art = ctx.art
    x = art.act_inputs(op)
    src = art.producer(x[0]) if x else None
    name = ctx.opc(op)
    if src is None:
        return None  # an activation on the model input: nothing to fuse into
    sop = ctx.opc(src)
    users = art.consumers(src.outputs[0])
    if sop in FUSABLE_PRODUCERS and ctx.fused(src) is None:
        if len(users) == 1 and not art.is_graph_output(src.outputs[0]):
            same_dtype = ctx.g.tensors[src.outputs[0]].dtype == ctx.g.tensors[op.outputs[0]].dtype
            return ctx.finding(
                "unfused-activation", "warning",
                f"{name} runs as its own op after {sop} ({ctx.where(src)}) although {sop} can fuse it"
                + ("" if same_dtype else " (the two ops run in different dtypes: a float island)"),
                f"fuse it: keep the activation directly after the {sop.lower()} in forward (no op in between); "
                "if it is a separate module used twice or a functional call on a view, make it a plain nn.ReLU/"
                "nn.ReLU6 applied to the layer's output", [op])
        else:
            others = [ctx.where(u) for u in users if u.index != op.index]
            return ctx.finding(
                "unfused-activation", "info",
                f"{name} cannot be fused into {sop} ({ctx.where(src)}): the pre-activation tensor is also "
                f"used by {', '.join(others) or 'the model output'}",
                "if the other use does not need the values before the activation, apply the activation "
                "before the branch so it fuses into the conv", [op])
    elif sop == "CONCATENATION" and not _patch_op(ctx, src):
        return ctx.finding(
            "unfused-activation", "info",
            f"{name} after CONCATENATION ({ctx.where(src)}) cannot be fused (TFLite-Micro's concat takes no "
            f"fused activation)",
            "apply the activation to each branch before the concatenation: it then fuses into each branch's "
            "conv and costs nothing", [op])
    return None


# ============================================================================ h-swish / h-sigmoid

def _is_sixth(ctx: Ctx, op: Op) -> bool:
    """MUL by 1/6 or DIV by 6 (h-sigmoid's scale)."""
    consts = ctx.art.const_inputs(op)
    if len(consts) != 1 or len(ctx.art.act_inputs(op)) != 1:
        return False
    c = ctx.art.scalar(consts[0])
    return (ctx.opc(op) == "MUL" and _near(c, 1 / 6, 5e-3)) or (ctx.opc(op) == "DIV" and _near(c, 6.0, 5e-3))


def _relu6_after(ctx: Ctx, op: Op) -> list[Op] | None:
    """The ops that clamp ``op``'s output to [0, 6]: [] when fused, [RELU6] or a MIN/MAX pair."""
    if ctx.fused(op) == "relu6":
        return []
    cons = ctx.art.consumers(op.outputs[0])
    if len(cons) != 1:
        return None
    c = cons[0]
    if ctx.opc(c) == "RELU6":
        return [c]
    if ctx.opc(c) in ("MINIMUM", "MAXIMUM", "RELU"):
        nxt = ctx.art.consumers(c.outputs[0])
        if len(nxt) == 1 and ctx.opc(nxt[0]) in ("MINIMUM", "MAXIMUM", "RELU") and ctx.opc(nxt[0]) != ctx.opc(c):
            return [c, nxt[0]]
    return None


def rule_hard_activations(ctx: Ctx) -> list[Finding]:
    """h-swish and h-sigmoid spelled out as ADD(+3) / RELU6 / MUL(1/6) / MUL instead of one HARD_SWISH
    (the converter matches only the exact pattern: a rounded 0.1667 or a reordered expression defeats it)."""
    art, out, used = ctx.art, [], set()
    for op in ctx.g.ops:
        if op.index in used or ctx.opc(op) != "ADD" or len(art.const_inputs(op)) != 1 or len(art.act_inputs(op)) != 1:
            continue
        if not _near(art.scalar(art.const_inputs(op)[0]), 3.0):
            continue
        clamp = _relu6_after(ctx, op)
        if clamp is None:
            continue
        y = art.act_inputs(op)[0]
        chain = [op] + clamp
        last = chain[-1]
        cons = art.consumers(last.outputs[0])
        sixth = None
        if len(cons) == 1 and _is_sixth(ctx, cons[0]):
            sixth = cons[0]
            chain.append(sixth)
            cons = art.consumers(sixth.outputs[0])
        swish = next((c for c in cons if ctx.opc(c) == "MUL" and y in c.inputs), None)
        if swish is not None:
            chain.append(swish)
            after = art.consumers(swish.outputs[0])
            if sixth is None and len(after) == 1 and _is_sixth(ctx, after[0]):
                sixth = after[0]
                chain.append(sixth)
        used.update(o.index for o in chain)
        const_note = ""
        if sixth is not None:
            c = art.scalar(art.const_inputs(sixth)[0])
            exact = 1 / 6 if ctx.opc(sixth) == "MUL" else 6.0
            if c is not None and abs(c - exact) > 1e-6 and not ctx.int8:
                const_note = f" (its constant is {c:.6g}, not exactly {'1/6' if exact < 1 else '6'})"
        elif swish is not None:
            const_note = " (the 1/6 was folded into the next layer)"
        _report_hard(ctx, out, chain, swish is not None, const_note, conv_fed=False)
    # h-sigmoid whose +3 the converter folded into the conv's bias: CONV(relu6) -> MUL(1/6)
    for op in ctx.g.ops:
        if op.index in used or not _is_sixth(ctx, op):
            continue
        p = art.producer(art.act_inputs(op)[0])
        if p is None or ctx.opc(p) not in COMPUTE_OPS or ctx.fused(p) != "relu6":
            continue
        used.add(op.index)
        _report_hard(ctx, out, [op], False, "", conv_fed=True, conv=p)
    return out


def _report_hard(ctx: Ctx, out: list, chain: list[Op], swish: bool, note: str, *, conv_fed: bool, conv=None):
    art = ctx.art
    locs = [lc for o in chain + ([conv] if conv is not None else []) for lc in art.locations(o)]
    names = " -> ".join(ctx.opc(o) + ("(" + ctx.fused(o) + ")" if ctx.fused(o) else "") for o in chain)
    if swish:
        loc = next((lc for lc in locs if lc.short_cls == "Hardswish"), None) or art.module_of(chain[-1])
        out.append(ctx.finding(
            "decomposed-hswish", "warning",
            f"h-swish runs as {len(chain)} ops ({names}) instead of one HARD_SWISH{note}; TFLite-Micro, XNNPACK "
            f"and LiteRT all have the builtin",
            "use nn.Hardswish / F.hardswish, or write exactly x * F.relu6(x + 3) / 6 (the converter matches that "
            "pattern to HARD_SWISH)", chain, loc=loc, cost=ctx.cost(chain, extra_ops=len(chain) - 1)))
    else:
        loc = next((lc for lc in locs if lc.short_cls == "Hardsigmoid"), None) or art.module_of(chain[-1])
        out.append(ctx.finding(
            "decomposed-hsigmoid", "info",
            f"h-sigmoid runs as {'CONV(relu6) -> ' if conv_fed else ''}{names}{note}: TFLite has no hard-sigmoid "
            f"builtin" + (f" (the +3 is already folded into the bias of {ctx.where(conv)})" if conv_fed else ""),
            "fold the 1/6 into the weights of the layer that consumes the gated tensor (a conv or linear after "
            "x * gate), or accept one elementwise op per gate",
            chain, loc=loc, cost=ctx.cost(chain[-1:], extra_ops=1)))

