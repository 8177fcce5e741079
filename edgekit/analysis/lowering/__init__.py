"""Lower a captured PyTorch graph the way the TFLite converter does (litert-torch, TFLite's MLIR
optimizer, ai-edge-quantizer's static int8 recipe), so that the TFLite-Micro arena model
(``analysis.tflm_arena``) can predict the arena of the .tflite before it exists.

How it is built (one idea per module):

- ``layout``: which ops the converter's layout pass runs in NHWC (its minimum cut, replayed);
- ``builder``: the graph being built and, for every PyTorch tensor, the TFLite tensor holding it
  with its pending layout permutation (the converter's NHWC layout, lazily: see its docstring);
- ``table.LOWER``: one handler per op kind (``conv``, ``dense``, ``norm``, ``pointwise``,
  ``pooling``, ``shapes``), each documenting what the converter emits for it and how that was
  measured; ``fusion``: what an op absorbs (folded BatchNorm, fused activation);
- ``cleanup``: the optimizer's rewrites (transpose/reshape folding, PAD into SAME convs,
  constants into biases, activation fusion); ``quant``: float islands and requantization.

The result is a Graph in TFLite's layout whose ops carry ``attrs["opcode"]``. A layer the
lowering cannot model exactly (an op kind without a handler, or a handler's unsupported case) is
never passed through as a guess: ``lower_for_tflite`` raises ``NotModelledError`` naming every
such layer. Checked op by op against converted models in tests/test_lowering_families.py.
"""

from __future__ import annotations

from edgekit.analysis.lowering.builder import Lowering, Val
from edgekit.analysis.lowering.cleanup import cleanup
from edgekit.analysis.lowering.graph_edit import Edit
from edgekit.analysis.lowering.layout import nhwc_ops
from edgekit.analysis.lowering.quant import quantize_int8
from edgekit.analysis.lowering.table import LOWER
from edgekit.errors import NotModelledError
from edgekit.graph.ir import Graph

__all__ = ["lower_for_tflite", "NotModelledError", "LOWER"]


def lower_for_tflite(g: Graph, *, channels_last_io: bool | None = None, same_padding: bool = False) -> Graph:
    """The .tflite graph the converter makes of ``g`` (a captured PyTorch graph).

    ``channels_last_io`` (default: ``g.meta["channels_last_io"]``): the model takes NHWC input,
    as ``edgekit build --channels-last-io`` exports it, so there is no leading TRANSPOSE.
    ``same_padding``: a what-if: every padded conv as if its padding were TFLite's SAME (no
    explicit PAD); not exact for the model's own symmetric padding, so only for reports.
    Raises ``NotModelledError`` naming the layers it cannot lower exactly."""
    if channels_last_io is None:
        channels_last_io = bool(g.meta.get("channels_last_io", False))
    lw = Lowering(g, same_padding=same_padding)
    inputs = _inputs(lw, channels_last_io)
    folded = _constant_ops(lw)
    lw.nhwc_ops = nhwc_ops(g, folded, lw.const_like)
    for op in g.ops:
        if op.index in lw.skip or op.index in folded:
            continue
        _lower_one(lw, op)
    if lw.unmodelled:
        raise NotModelledError(_refusal(lw.unmodelled), lw.unmodelled)
    outputs = [lw.logical(t) for t in g.outputs if t in lw.vals]
    edit = Edit(lw.tensors, lw.ops, inputs, outputs, lw.values)
    cleanup(edit)
    if lw.int8:
        quantize_int8(edit)
    lowered = edit.graph(name=g.name, meta={"dtype": lw.dtype, "lowered_from": "torch"})
    _count(lowered)
    return lowered


def _lower_one(lw: Lowering, op) -> None:
    handler = LOWER.get(op.kind)
    if handler is None:
        return lw.not_modelled(op, "no TFLite lowering for this op")
    if any(t not in lw.vals for t in lw.acts(op)):
        return lw.not_modelled(op, "it reads an output the lowering does not model")
    try:
        handler(lw, op)
    except (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError) as exc:  # a case no handler foresaw
        lw.not_modelled(op, f"unexpected arguments ({type(exc).__name__}: {exc})"[:160])


def _inputs(lw: Lowering, channels_last_io: bool) -> list[int]:
    ids = []
    for tid in lw.g.inputs:
        t = lw.g.tensors[tid]
        if len(t.shape) == 4 and channels_last_io:
            n, c, h, w = t.shape
            ids.append(lw.act(t.name, (n, h, w, c)))
            lw.set_nhwc(tid, ids[-1])
        else:
            ids.append(lw.act(t.name, t.shape))
            lw.set(tid, Val(ids[-1]))
    return ids


def _constant_ops(lw: Lowering) -> set[int]:
    """Ops computed from constants only (or from nothing: torch.ones in forward): the converter
    folds them into constants."""
    folded = set()
    for op in lw.g.ops:
        if not lw.acts(op):
            folded.add(op.index)
            lw.const_like.update(op.outputs)
    return folded


def _refusal(layers) -> str:
    seen = list(dict.fromkeys(layers))
    shown = "; ".join(f"{layer}: {op} ({why})" for layer, op, why in seen[:5])
    more = f"; and {len(seen) - 5} more" if len(seen) > 5 else ""
    return (f"cannot predict the TFLite-Micro arena before export: {len(seen)} layer(s) are not modelled "
            f"({shown}{more}); check the built .tflite instead (`edgekit build`, then "
            "`edgekit check model.tflite`)")


def _count(g: Graph) -> None:
    """MACs and parameters of the compute ops, from the lowered weights."""
    for op in g.ops:
        if op.attrs.get("opcode") in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"):
            w, out = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
            if op.attrs["opcode"] == "TRANSPOSE_CONV":  # each input element times (cout, kh, kw)
                op.macs = g.tensors[op.inputs[2]].numel * (w.numel // max(w.shape[-1], 1))
            else:
                op.macs = out.numel * (w.numel // max(int(op.attrs.get("out_channels", 1)), 1))
            op.params = sum(g.tensors[i].numel for i in op.inputs if g.tensors[i].is_const)
