"""The graph rules of `edgekit lint` for .tflite artifacts (no torch, no runtime).

Each rule reads the artifact (ops, tensors, small constants, quantization, tensor names)
and returns findings. Runtime facts (which ops TFLite-Micro has kernels for, which ops
XNNPACK takes) come from the real interpreters in ``edgekit.lint.runtimes``.

Facts the rules rely on (sources in the comments where they are used):
- TFLite-Micro's int8 CONCATENATION copies the int8 values of every input as they are: its
  Prepare stores the input scales but Eval calls ``EvalUnquantized<int8_t>`` (kernels/
  concatenation.cc), so inputs with different scales than the output come out wrong; its
  Prepare also refuses inputs of more than 4 dimensions and any fused activation.
- The CMSIS-NN TRANSPOSE kernel used by TFLite-Micro on Cortex-M checks
  ``TF_LITE_ENSURE(context, size <= 4)`` for int8 (kernels/cmsis_nn/transpose.cc); the
  reference kernel (the Python interpreter) accepts rank 5.
- Patch-based inference (``analysis.patches``, ``edgekit build --patch``) adds SLICE, PAD/PADV2,
  CONCATENATION and per-patch copies of the stage's ops, all writing tensors named
  ``edgekit.patch/...``; the final CONCATENATION writes the split tensor (its original name) from
  patch tensors. These are not defects: the rules skip them (``_patch_op``), the per-patch TRANSPOSEs
  of the input count as the input's TRANSPOSE, and ``rule_patches`` says what the stage costs.
- The converter fuses RELU, RELU_N1_TO_1 and RELU6 into CONV_2D, DEPTHWISE_CONV_2D,
  TRANSPOSE_CONV, FULLY_CONNECTED, ADD, SUB, MUL, DIV and the pooling ops (their options'
  fused_activation_function; ``analysis.converter_facts``, measured); XNNPACK takes these fused
  activations (delegates/xnnpack/README.md).
"""

from __future__ import annotations

import re

import numpy as np

from edgekit.analysis.converter_facts import CONVERTER_FUSES_ACT_OPCODES, FUSED_ACT_OPCODES, FUSED_ACTIVATIONS
from edgekit.analysis.patches import is_patch_name, parse_patch_name
from edgekit.graph.ir import Op
from edgekit.graph.names import Location
from edgekit.lint.artifact import Artifact
from edgekit.lint.findings import Cost, Finding

ACT_OPS = {**{opcode: kind for kind, opcode in FUSED_ACTIVATIONS.items()}, "RELU_0_TO_1": "relu0to1"}
# ops the converter fuses a following activation into (a standalone one after them is a missed fusion)
FUSABLE_PRODUCERS = CONVERTER_FUSES_ACT_OPCODES
COMPUTE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}
# PyTorch module classes, then Keras layer classes (a model converted by TensorFlow, edgekit.keras)
_NORM_CLS = re.compile(r"(BatchNorm[123]d|SyncBatchNorm|BatchNorm|Affine|LayerNorm|GroupNorm|InstanceNorm[123]d|"
                       r"LocalResponseNorm|RMSNorm|BatchNormalization|LayerNormalization|GroupNormalization|"
                       r"UnitNormalization|RMSNormalization)$")
_BN_CLS = re.compile(r"(BatchNorm[123]d|SyncBatchNorm|BatchNorm|Affine|BatchNormalization)$")


class Ctx:
    """What every rule gets: the artifact, the target and the estimate of an op's time."""

    def __init__(self, art: Artifact, *, runtime: str | None, target=None):
        self.art = art
        self.g = art.graph
        self.runtime = runtime  # "tflite-micro" | "litert" | None
        self.target = target  # edgekit.targets.Target or None
        self.int8 = _meant_int8(art)
        core = getattr(getattr(target, "cpu", None), "core", "") or ""
        # TFLite-Micro on a Cortex-M runs the CMSIS-NN kernels; without a target, assume it does
        self.cmsis_nn = runtime == "tflite-micro" and (target is None or core.lower().startswith("cortex-m"))

    # ---- cost -------------------------------------------------------------------------------

    def cost(self, ops: list[Op], *, extra_ops: int | None = None) -> Cost:
        n = len(ops) if extra_ops is None else extra_ops
        moved = sum(self.art.act_bytes(op) for op in ops)
        elems = sum(self.g.tensors[t].numel for op in ops for t in op.outputs)
        est, how = None, ""
        t = self.target
        if t is not None and n:
            lat = t.latency
            try:
                if lat.model == "mcu-cycles":
                    cycles = n * (lat.op_overhead_cycles or 0) + elems * lat.cycles_per_mac.elementwise
                    est, how = cycles / t.clock_hz * 1e6, (f"{t.id}: {lat.op_overhead_cycles:g} cycles per op + "
                                                            f"{lat.cycles_per_mac.elementwise:g} cycles per element "
                                                            f"at {t.cpu.freq_mhz:g} MHz")
                else:
                    est = n * (lat.op_overhead_us or 0) + moved / (lat.mem_bandwidth_gbps * 1e3)
                    how = (f"{t.id}: {lat.op_overhead_us:g} us per op + bytes at "
                           f"{lat.mem_bandwidth_gbps:g} GB/s")
            except (AttributeError, TypeError, ZeroDivisionError):
                est, how = None, ""
        return Cost(extra_ops=n, bytes=int(moved), est_us=None if est is None else round(est, 2), how=how)

    # ---- helpers ------------------------------------------------------------------------------

    def finding(self, code: str, severity: str, message: str, fix: str, ops: list[Op], *,
                loc: Location | None = None, tensors: list[int] | None = None, cost: Cost | None = None,
                **details) -> Finding:
        art = self.art
        if loc is None:
            for op in ops:
                loc = art.module_of(op)
                if loc is not None:
                    break
        mods = []
        for op in ops:
            for lc in art.locations(op):
                if lc.path not in mods:
                    mods.append(lc.path)
        tids = tensors if tensors is not None else [t for op in ops for t in op.outputs]
        return Finding(code=code, severity=severity, message=message, fix=fix,
                       ops=[op.index for op in ops], op_names=[op.name for op in ops],
                       tensors=[self.g.tensors[t].name for t in tids],
                       module=loc.path if loc is not None else None, modules=mods,
                       module_type=loc.cls if loc is not None else None,
                       cost=cost if cost is not None else self.cost(ops), details=details)

    def fused(self, op: Op) -> str | None:
        return op.attrs.get("fused_activation")

    def opc(self, op: Op) -> str:
        return self.art.opcode(op)

    def where(self, op: Op) -> str:
        loc = self.art.module_of(op)
        if loc is None:
            return op.name
        return f"{loc.path or '<model forward>'} ({op.name})"


def _patch_op(ctx: Ctx, op: Op) -> bool:
    """An op patch-based inference added or copied: it writes a patch tensor, or it assembles the split
    tensor from patch tensors."""
    if any(is_patch_name(ctx.g.tensors[t].name) for t in op.outputs):
        return True
    acts = ctx.art.act_inputs(op)
    return ctx.opc(op) == "CONCATENATION" and bool(acts) and all(is_patch_name(ctx.g.tensors[t].name) for t in acts)


def _input_patch(ctx: Ctx, t: int) -> bool:
    """``t`` is a patch's SLICE of a graph input."""
    p = ctx.art.producer(t)
    return (p is not None and ctx.opc(p) == "SLICE" and is_patch_name(ctx.g.tensors[t].name)
            and any(x in ctx.g.inputs for x in ctx.art.act_inputs(p)))


def _meant_int8(art: Artifact) -> bool:
    """An int8 model: int8 graph input/output or int8 weights in its compute ops."""
    g = art.graph
    io = [g.tensors[t] for t in list(g.inputs) + list(g.outputs)]
    if any(t.dtype == "int8" for t in io):
        return True
    for op in g.ops:
        if art.opcode(op) in COMPUTE_OPS and len(op.inputs) > 1 and g.tensors[op.inputs[1]].dtype == "int8":
            return any(g.tensors[t].dtype == "int8" for t in op.outputs)
    return False


def _near(v: float | None, target: float, tol: float = 2e-3) -> bool:
    return v is not None and abs(v - target) <= tol * max(1.0, abs(target))


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
    art, out = ctx.art, []
    handled: set[int] = set()
    # clamps built from MINIMUM/MAXIMUM
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
    for op in ctx.g.ops:
        if op.index in handled or ctx.opc(op) not in ACT_OPS:
            continue
        x = art.act_inputs(op)
        src = art.producer(x[0]) if x else None
        name = ctx.opc(op)
        if src is None:
            continue  # an activation on the model input: nothing to fuse into
        sop = ctx.opc(src)
        users = art.consumers(src.outputs[0])
        if sop in FUSABLE_PRODUCERS and ctx.fused(src) is None:
            if len(users) == 1 and not art.is_graph_output(src.outputs[0]):
                same_dtype = ctx.g.tensors[src.outputs[0]].dtype == ctx.g.tensors[op.outputs[0]].dtype
                out.append(ctx.finding(
                    "unfused-activation", "warning",
                    f"{name} runs as its own op after {sop} ({ctx.where(src)}) although {sop} can fuse it"
                    + ("" if same_dtype else " (the two ops run in different dtypes: a float island)"),
                    f"fuse it: keep the activation directly after the {sop.lower()} in forward (no op in between); "
                    "if it is a separate module used twice or a functional call on a view, make it a plain nn.ReLU/"
                    "nn.ReLU6 applied to the layer's output", [op]))
            else:
                others = [ctx.where(u) for u in users if u.index != op.index]
                out.append(ctx.finding(
                    "unfused-activation", "info",
                    f"{name} cannot be fused into {sop} ({ctx.where(src)}): the pre-activation tensor is also "
                    f"used by {', '.join(others) or 'the model output'}",
                    "if the other use does not need the values before the activation, apply the activation "
                    "before the branch so it fuses into the conv", [op]))
        elif sop == "CONCATENATION" and not _patch_op(ctx, src):
            out.append(ctx.finding(
                "unfused-activation", "info",
                f"{name} after CONCATENATION ({ctx.where(src)}) cannot be fused (TFLite-Micro's concat takes no "
                f"fused activation)",
                "apply the activation to each branch before the concatenation: it then fuses into each branch's "
                "conv and costs nothing", [op]))
    return out


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


# ============================================================================ layout

def rule_transposes(ctx: Ctx, delegation: dict | None = None) -> list[Finding]:
    """Every TRANSPOSE: where it sits (on the model input, on the output, inside), its bytes, its
    permutation, and whether the target runs it."""
    art, out = ctx.art, []
    ops = [op for op in ctx.g.ops if ctx.opc(op) == "TRANSPOSE"]
    groups: dict[tuple, list[Op]] = {}
    for op in ops:
        x = art.act_inputs(op)
        pos = ("input" if x and (x[0] in ctx.g.inputs or _input_patch(ctx, x[0])) else
               "output" if any(art.is_graph_output(t) for t in op.outputs) else "interior")
        loc = art.module_of(op)
        groups.setdefault((pos, loc.path if loc else None), []).append(op)
    not_delegated = set((delegation or {}).get("not_delegated", []))
    total = sum(art.tensor(op.outputs[0]).nbytes for op in ops)
    for (pos, _path), gops in groups.items():
        perms = []
        for op in gops:
            p = art.const(op.inputs[1]) if len(op.inputs) > 1 else None
            perms.append([int(v) for v in np.ravel(p)] if p is not None else None)
        nbytes = sum(art.tensor(op.outputs[0]).nbytes for op in gops)
        ranks = sorted({len(art.tensor(op.outputs[0]).shape) for op in gops})
        support = []
        if ctx.runtime == "tflite-micro":
            bad = [op for op in gops if len(art.tensor(op.outputs[0]).shape) > 4]
            support.append("TFLite-Micro has a TRANSPOSE kernel" + (
                "; its CMSIS-NN int8 kernel refuses more than 4 dimensions" if bad and ctx.cmsis_nn else ""))
        if delegation is not None:
            nd = [op for op in gops if op.index in not_delegated]
            support.append("XNNPACK takes all of them" if not nd else
                           f"XNNPACK leaves {len(nd)} of them to the reference kernels")
        where = {"input": "on the model input (NCHW -> NHWC)", "output": "on the model output (NHWC -> NCHW)",
                 "interior": "inside the graph"}[pos]
        msg = (f"{len(gops)} TRANSPOSE {where}, {nbytes:,} B of activations copied (rank {'/'.join(map(str, ranks))}, "
               f"perm {perms[0]}{' ...' if len(perms) > 1 else ''}); {len(ops)} TRANSPOSE / {total:,} B in the "
               f"whole model" + (f"; {'; '.join(support)}" if support else ""))
        if pos in ("input", "output"):
            sev = "info"
            fix = ("export with channels-last I/O (edgekit build --channels-last-io) and feed NHWC data: the "
                   "converter then drops this TRANSPOSE")
        else:
            sev = "warning"
            nxt = art.consumers(gops[-1].outputs[0])
            near5 = False
            for op in gops:
                around = [art.producer(t) for t in art.act_inputs(op)] + art.consumers(op.outputs[0])
                near5 |= any(len(art.tensor(t).shape) > 4 for o in [op] + [a for a in around if a is not None]
                             for t in o.inputs + o.outputs if not art.tensor(t).is_const)
            flatten = bool(nxt) and ctx.opc(nxt[0]) == "RESHAPE" and any(
                ctx.opc(c) == "FULLY_CONNECTED" for c in art.consumers(nxt[0].outputs[0]))
            if near5:
                fix = ("a channel shuffle written with a 5-D view: write it with 4-D tensors, "
                       "x.view(b, g, c // g, h * w).transpose(1, 2).reshape(b, c, h, w), or avoid the shuffle "
                       "with a channel permutation folded into the next conv's weights")
            elif flatten or (nxt and ctx.opc(nxt[0]) == "FULLY_CONNECTED"):
                fix = ("a flatten in NCHW order before a linear layer: pool to 1x1 first (the flatten is then free) "
                       "or flatten channels-last (x.permute(0, 2, 3, 1).flatten(1)) and permute the linear weights "
                       "once")
            else:
                fix = ("an NCHW-specific view/permute in forward: keep tensors 4-D NCHW through reshapes, or "
                       "move the permute to where it is a no-op")
        out.append(ctx.finding("transpose", sev, msg, fix, gops, position=pos, perms=perms, bytes=nbytes))
    return out


def rule_rank(ctx: Ctx) -> list[Finding]:
    """Tensors with more than 4 dimensions; errors where the target's kernels refuse them."""
    art, out = ctx.art, []
    groups: dict[str | None, list[int]] = {}
    for t in ctx.g.tensors:
        if t.is_const or len(t.shape) <= 4 or t.producer is None:
            continue
        loc = art.module_of(ctx.g.ops[t.producer])
        groups.setdefault(loc.path if loc else None, []).append(t.id)
    for _path, tids in groups.items():
        ops_idx = sorted({ctx.g.tensors[t].producer for t in tids} |
                         {c for t in tids for c in ctx.g.tensors[t].consumers})
        ops = [ctx.g.ops[i] for i in ops_idx]
        refusing = []
        if ctx.runtime == "tflite-micro":  # the rank limits of edgekit.analysis.runtime_support
            from edgekit.analysis.runtime_support import op_problems

            kernels = "cmsis-nn" if ctx.cmsis_nn else "reference"
            for op in ops:
                for why, src, _silent in op_problems(op, ctx.g, "tflite-micro", kernels=kernels):
                    if "rank-" in why:
                        lib = "CMSIS-NN (Cortex-M)" if "cmsis_nn" in src else "TFLite-Micro"
                        refusing.append(f"{op.name}: {lib} refuses {ctx.opc(op)} {why}")
        shapes = sorted({tuple(ctx.g.tensors[t].shape) for t in tids})
        sev = "error" if refusing else "warning"
        msg = (f"{len(tids)} tensor(s) of rank {max(len(s) for s in shapes)} ({', '.join(map(str, shapes[:2]))}"
               f"{', ...' if len(shapes) > 2 else ''}) around "
               f"{', '.join(ctx.opc(o) + '_' + str(o.index) for o in ops[:4])}"
               f"{'...' if len(ops) > 4 else ''}")
        if refusing:
            msg += "; " + "; ".join(refusing[:2]) + (f" (+{len(refusing) - 2} more)" if len(refusing) > 2 else "")
        else:
            msg += ("; LiteRT and XNNPACK run them, but GPU/NNAPI delegates and NPUs (Ethos-U/Vela) cap tensors at "
                    "rank 4" if ctx.runtime != "tflite-micro" else "; fine on these ops, but many MCU NPUs cap at 4")
        fix = ("keep tensors 4-D: a channel shuffle is x.view(b, g, c // g, h * w).transpose(1, 2).reshape(b, c, h, w) "
               "(rank 4) instead of the 5-D view(b, g, c // g, h, w)")
        out.append(ctx.finding("rank-gt-4", sev, msg, fix, ops, tensors=tids,
                               cost=ctx.cost([], extra_ops=0), refusing=refusing))
    return out


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


# ============================================================================ quantization

def rule_quant(ctx: Ctx) -> list[Finding]:
    """In an int8 graph: QUANTIZE/DEQUANTIZE inside the graph, float ops (islands), and
    CONCATENATION inputs with scales different from the output's."""
    if not ctx.int8:
        return []
    art, g, out = ctx.art, ctx.g, []
    requant, weight_dq = [], []
    for op in g.ops:
        opc = ctx.opc(op)
        if opc == "QUANTIZE":
            x = art.act_inputs(op)
            if x and g.tensors[x[0]].dtype in ("int8", "uint8", "int16") and x[0] not in g.inputs:
                requant.append(op)
        elif opc == "DEQUANTIZE" and not art.act_inputs(op):
            weight_dq.append(op)
    if requant:
        cats = [c for op in requant for c in art.consumers(op.outputs[0]) if ctx.opc(c) == "CONCATENATION"]
        out.append(ctx.finding(
            "requantize", "warning",
            f"{len(requant)} QUANTIZE op(s) inside the int8 graph rescale int8 tensors to another scale"
            + (f" ({len(cats)} of them feed a CONCATENATION: the quantizer gives every concat input the output's "
               f"scale, and inserts a requantize where the input tensor also feeds other ops)" if cats else ""),
            "give the branch its own producer (e.g. an identity branch through a 1x1 conv is not free either), or "
            "accept the cost; each requantize reads and writes the whole tensor once",
            requant))
    if weight_dq:
        out.append(ctx.finding(
            "weight-dequantize", "warning",
            f"{len(weight_dq)} DEQUANTIZE op(s) turn int8 constants back into float at run time: the layers "
            f"they feed compute in float (weight-only quantization)",
            "use full-integer static quantization (edgekit build --dtype int8) so weights stay int8 in the kernels",
            weight_dq, cost=ctx.cost(weight_dq)))
    # float islands: connected float-computing ops, with the DEQUANTIZE/QUANTIZE around them
    float_ops = [op for op in g.ops if ctx.opc(op) not in ("DEQUANTIZE", "QUANTIZE") and op.outputs and any(
        g.tensors[t].dtype == "float32" for t in op.outputs)]
    fset = {op.index for op in float_ops}
    comp: dict[int, int] = {}
    for op in float_ops:
        if op.index in comp:
            continue
        stack, cid = [op.index], op.index
        while stack:
            i = stack.pop()
            if i in comp:
                continue
            comp[i] = cid
            o = g.ops[i]
            nbrs = [g.tensors[t].producer for t in o.inputs if g.tensors[t].producer is not None] + \
                   [c for t in o.outputs for c in g.tensors[t].consumers]
            stack.extend(n for n in nbrs if n in fset and n not in comp)
    islands: dict[int, list[Op]] = {}
    for i, cid in comp.items():
        islands.setdefault(cid, []).append(g.ops[i])
    for ops in islands.values():
        ops.sort(key=lambda o: o.index)
        dq = [art.producer(t) for o in ops for t in art.act_inputs(o)]
        dq = [p for p in dq if p is not None and ctx.opc(p) == "DEQUANTIZE"]
        q = [c for o in ops for t in o.outputs for c in art.consumers(t) if ctx.opc(c) == "QUANTIZE"]
        boundary_in = any(t in g.inputs for o in ops for t in art.act_inputs(o))
        boundary_out = any(art.is_graph_output(t) for o in ops for t in o.outputs)
        kinds = sorted({ctx.opc(o) for o in ops})
        unsupported = [k for k in kinds if k not in _AEQ_INT8_OPS]
        why = (f"ai-edge-quantizer's static int8 recipe has no int8 rule for {', '.join(unsupported)}" if unsupported
               else "the quantization recipe left it float (a per-op override, or a type the quantizer skipped)")
        fix = ("fuse it away or replace it by an op with an int8 kernel (e.g. a ReLU6 right after a conv fuses into "
               "it)" if unsupported else "remove the override that keeps it float, unless the quantization "
               "debugger shows this layer needs the precision")
        sev = "warning"
        rt = {"tflite-micro": "TFLite-Micro runs float kernels in software on the MCU (slow without an FPU)",
              "litert": "XNNPACK splits the graph at every float/int8 boundary"}.get(ctx.runtime or "", "")
        all_ops = sorted(dq + ops + q, key=lambda o: o.index)
        out.append(ctx.finding(
            "float-island", sev,
            f"float island in an int8 graph: {' -> '.join(ctx.opc(o) for o in all_ops)}"
            f"{' (touches the model input/output)' if boundary_in or boundary_out else ''}; {why}"
            + (f"; {rt}" if rt else ""),
            fix, all_ops, loc=art.module_of(ops[0]), cost=ctx.cost(dq + q + ops, extra_ops=len(dq) + len(q)),
            float_ops=[o.name for o in ops]))
    # concat scales
    for op in g.ops:
        if ctx.opc(op) != "CONCATENATION":
            continue
        oq = art.scales(op.outputs[0])
        if oq is None or g.tensors[op.outputs[0]].dtype != "int8":
            continue
        diffs = []
        for t in art.act_inputs(op):
            iq = art.scales(t)
            if iq is None:
                continue
            if not (np.allclose(iq[0], oq[0], rtol=1e-6) and np.array_equal(iq[1], oq[1])):
                diffs.append((g.tensors[t].name, float(iq[0][0]), int(iq[1][0])))
        if not diffs:
            continue
        tflm = ctx.runtime == "tflite-micro"
        msg = (f"CONCATENATION inputs have scales different from the output's ({float(oq[0][0]):.6g}, zp "
               f"{int(oq[1][0])}): " + ", ".join(f"{s:.6g}/zp {z}" for _, s, z in diffs[:4]))
        if tflm:
            msg += ("; TFLite-Micro's int8 concat copies the int8 values without rescaling them "
                    "(kernels/concatenation.cc), so these inputs come out wrong")
        else:
            msg += ("; LiteRT's builtin kernel rescales them, but its XNNPACK delegate refused such a concat here "
                    "(\"failed to prepare\", measured with ai-edge-litert 2.3)")
        out.append(ctx.finding(
            "concat-scales", "error" if tflm else "warning", msg,
            "quantize with shared scales for concat inputs (edgekit's quantization debugger remedy "
            "'shared_concat_scales', or ai-edge-quantizer's static recipe, which gives concat inputs the output "
            "scale)", [op], cost=ctx.cost([op], extra_ops=0), inputs=diffs))
    return out


# ops ai-edge-quantizer's static int8 recipe quantizes (qtyping.TFLOperationName), plus the data-movement
# ops whose int8 version only copies
_AEQ_INT8_OPS = {
    "FULLY_CONNECTED", "BATCH_MATMUL", "DEPTHWISE_CONV_2D", "CONV_2D", "TRANSPOSE_CONV", "AVERAGE_POOL_2D",
    "RESHAPE", "SOFTMAX", "TANH", "TRANSPOSE", "GELU", "ADD", "SUB", "MUL", "MEAN", "RSQRT", "CONCATENATION",
    "STRIDED_SLICE", "SPLIT", "LOGISTIC", "SLICE", "SUM", "SELECT", "SELECT_V2", "DYNAMIC_UPDATE_SLICE", "PAD",
    "SQUARED_DIFFERENCE", "MAX_POOL_2D", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "GATHER_ND", "PACK",
    "UNPACK", "DIV", "BROADCAST_TO", "SQRT", "GATHER", "HARD_SWISH", "MAXIMUM", "PADV2", "REDUCE_MIN", "EQUAL",
    "NOT_EQUAL", "MIRROR_PAD", "SPACE_TO_DEPTH", "RELU", "EMBEDDING_LOOKUP",
}

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


GRAPH_RULES = (rule_norms, rule_activations, rule_hard_activations, rule_rank, rule_grouped_conv, rule_quant,
               rule_patches)
