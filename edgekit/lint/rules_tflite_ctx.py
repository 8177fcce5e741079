"""What every .tflite graph rule shares: the rule context ``Ctx`` (the artifact, the target, the cost
of a group of ops, how a finding is built) and the op tables and small predicates the rules use.

Patch-based inference (``analysis.patches``, ``edgekit build --patch``) adds SLICE, PAD/PADV2,
CONCATENATION and per-patch copies of the stage's ops, all writing tensors named
``edgekit.patch/...``; the final CONCATENATION writes the split tensor (its original name) from
patch tensors. These are not defects: the rules skip them (``_patch_op``), and the per-patch
TRANSPOSEs of the input count as the input's TRANSPOSE (``_input_patch``).
"""

from __future__ import annotations

from edgekit.analysis.converter_facts import CONVERTER_FUSES_ACT_OPCODES, FUSED_ACTIVATIONS
from edgekit.analysis.patches import is_patch_name
from edgekit.graph.ir import Op
from edgekit.graph.names import Location
from edgekit.lint.artifact import Artifact
from edgekit.lint.findings import Cost, Finding

ACT_OPS = {**{opcode: kind for kind, opcode in FUSED_ACTIVATIONS.items()}, "RELU_0_TO_1": "relu0to1"}
# ops the converter fuses a following activation into (a standalone one after them is a missed fusion)
FUSABLE_PRODUCERS = CONVERTER_FUSES_ACT_OPCODES
COMPUTE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}


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

