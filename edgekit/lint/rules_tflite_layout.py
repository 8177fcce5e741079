"""Graph rules about the memory layout of activations: every TRANSPOSE (``rule_transposes``) and
tensors of more than 4 dimensions (``rule_rank``).

The CMSIS-NN TRANSPOSE kernel used by TFLite-Micro on Cortex-M checks
``TF_LITE_ENSURE(context, size <= 4)`` for int8 (kernels/cmsis_nn/transpose.cc); the reference
kernel (the Python interpreter) accepts rank 5. The per-patch TRANSPOSEs of a patch stage's
input count as the input's TRANSPOSE.
"""

from __future__ import annotations

import numpy as np

from edgekit.graph.ir import Op
from edgekit.lint.findings import Finding
from edgekit.lint.rules_tflite_ctx import Ctx, _input_patch

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
    for tids in groups.values():
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
        near_ops = ", ".join(ctx.opc(o) + "_" + str(o.index) for o in ops[:4])
        msg = (f"{len(tids)} tensor(s) of rank {max(len(s) for s in shapes)} ({', '.join(map(str, shapes[:2]))}"
               f"{', ...' if len(shapes) > 2 else ''}) around {near_ops}"
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

