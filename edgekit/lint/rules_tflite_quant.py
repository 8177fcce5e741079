"""Graph rules about int8 quantization (``rule_quant``, int8 graphs only): requantizes and weight
dequantizes inside the graph, float islands, and CONCATENATION inputs whose scales differ from the
output's.

TFLite-Micro's int8 CONCATENATION copies the int8 values of every input as they are: its Prepare
stores the input scales but Eval calls ``EvalUnquantized<int8_t>`` (kernels/concatenation.cc), so
inputs with different scales than the output come out wrong; its Prepare also refuses inputs of
more than 4 dimensions and any fused activation.
"""

from __future__ import annotations

import numpy as np

from edgekit.graph.ir import Op
from edgekit.lint.findings import Finding
from edgekit.lint.rules_tflite_ctx import Ctx

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


def rule_quant(ctx: Ctx) -> list[Finding]:
    """In an int8 graph: QUANTIZE/DEQUANTIZE inside the graph, float ops (islands), and
    CONCATENATION inputs with scales different from the output's."""
    if not ctx.int8:
        return []
    out = _qdq_findings(ctx)
    for ops in _float_islands(ctx):
        out.append(_island_finding(ctx, ops))
    out += _concat_scale_findings(ctx)
    return out


def _qdq_findings(ctx: Ctx) -> list[Finding]:
    """QUANTIZE ops that rescale int8 tensors inside the graph, DEQUANTIZE ops of int8 constants."""
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
    return out


def _float_islands(ctx: Ctx) -> list[list[Op]]:
    """Connected groups of float-computing ops (QUANTIZE/DEQUANTIZE excluded), each sorted by index."""
    g = ctx.g
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
    return list(islands.values())


def _island_finding(ctx: Ctx, ops: list[Op]) -> Finding:
    """One float island, with the DEQUANTIZE/QUANTIZE around it."""
    art, g = ctx.art, ctx.g
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
    return ctx.finding(
        "float-island", sev,
        f"float island in an int8 graph: {' -> '.join(ctx.opc(o) for o in all_ops)}"
        f"{' (touches the model input/output)' if boundary_in or boundary_out else ''}; {why}"
        + (f"; {rt}" if rt else ""),
        fix, all_ops, loc=art.module_of(ops[0]), cost=ctx.cost(dq + q + ops, extra_ops=len(dq) + len(q)),
        float_ops=[o.name for o in ops])


def _concat_scale_findings(ctx: Ctx) -> list[Finding]:
    """int8 CONCATENATIONs whose inputs have other scales than the output."""
    art, g, out = ctx.art, ctx.g, []
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
