"""Normalization layers.

- A BatchNorm after a conv or linear folds into it (``fusion.absorb``). Anywhere else it is a
  per-channel MUL + ADD (the converter's batch-norm decomposition; lint's "unfolded-norm" rule
  reads the same pair back from .tflite files).
- LayerNorm over the last dim is the converter's batch-norm-style decomposition (measured,
  layernorm and attention families): the input as (1, M, C), MEAN over axes (0, 2) -> (M,),
  RESHAPE (1, M, 1), SQUARED_DIFFERENCE, MEAN -> variance, ADD epsilon, RSQRT, MUL (mean * rstd),
  SUB (0 - that), x * rstd + shift through two more RESHAPE (1, M, 1), then MUL weight and
  ADD bias (each dropped when the weight is all ones / the bias all zeros, as the converter
  folds them), and a RESHAPE back when the input was not (1, M, C).
"""

from __future__ import annotations

import math

from edgekit.analysis.lowering.builder import Lowering, Val
from edgekit.graph.ir import Op


def lower_batch_norm(lw: Lowering, op: Op) -> None:
    """A BatchNorm no conv or linear absorbed: MUL by the scale, ADD the shift, per channel."""
    x_t = lw.acts(op)[0]
    v = lw.val(x_t)
    y = lw.g.tensors[op.outputs[0]]
    name = lw.where(op)
    c = y.shape[1] if len(y.shape) > 1 else y.shape[0]
    shape = [1] * len(y.shape)
    if len(shape) > 1:
        shape[1] = c
    if v.perm is not None and v.shape is None:
        inv = tuple(v.perm.index(i) for i in range(len(shape)))
        shape = [shape[i] for i in inv]
    cur = v.tid
    for opcode, what in (("MUL", "scale"), ("ADD", "shift")):
        k = lw.data(f"{name}.{what}", tuple(shape))
        out = lw.act(f"{name}_{what}", lw.shape(cur))
        lw.emit(opcode, f"{name}/{what}", [cur, k], [out], source=op.source)
        cur = out
    lw.set(op.outputs[0], Val(cur, v.perm, v.shape, v.nhwc))


def lower_layer_norm(lw: Lowering, op: Op) -> None:
    x_t = lw.acts(op)[0]
    x = lw.g.tensors[x_t]
    consts = lw.consts(op)
    c = x.shape[-1]
    if any(len(lw.g.tensors[t].shape) > 1 for t in consts):
        return lw.not_modelled(op, "LayerNorm over more than the last dim")
    m = math.prod(x.shape[:-1])
    name = lw.where(op)
    src = lw.reshape(lw.logical(x_t), (1, m, c))
    axes = lw.ints((0, 2), "axes")
    mean = _op(lw, op, "MEAN", [src, axes], (m,), "mean")
    sq = _op(lw, op, "SQUARED_DIFFERENCE", [src, _r(lw, mean, m)], (1, m, c), "sqdiff")
    var = _op(lw, op, "MEAN", [sq, axes], (m,), "var")
    var_eps = _op(lw, op, "ADD", [var, lw.scalar(("eps", op.attrs.get("eps", 1e-5)), f"{name}_eps")], (m,), "var_eps")
    rstd = _op(lw, op, "RSQRT", [var_eps], (m,), "rstd")
    mr = _op(lw, op, "MUL", [mean, rstd], (m,), "mean_rstd")
    shift = _op(lw, op, "SUB", [lw.scalar(0.0, f"{name}_zero"), mr], (m,), "shift")
    scaled = _op(lw, op, "MUL", [src, _r(lw, rstd, m)], (1, m, c), "scaled")
    cur = _op(lw, op, "ADD", [scaled, _r(lw, shift, m)], (1, m, c), "normed")
    for t, opcode in zip(consts, ("MUL", "ADD")):
        if (opcode == "MUL" and lw.is_one(t)) or (opcode == "ADD" and lw.is_zero(t)):
            continue
        cur = _op(lw, op, opcode, [cur, lw.data(lw.g.tensors[t].name, (c,))], (1, m, c),
                  "weight" if opcode == "MUL" else "bias")
    lw.set(op.outputs[0], lw.reshape(cur, x.shape))


def _op(lw: Lowering, op: Op, opcode: str, ins, shape, what: str) -> int:
    out = lw.act(f"{lw.where(op)}_{what}", shape)
    lw.emit(opcode, f"{lw.where(op)}/{what}", ins, [out], source=op.source)
    return out


def _r(lw: Lowering, tid: int, m: int) -> int:
    """(M,) -> (1, M, 1): a RESHAPE of its own for each use (measured: three of them)."""
    out = lw.act(f"{lw.tensors[tid].name}_r", (1, m, 1))
    lw.emit("RESHAPE", f"{lw.tensors[tid].name}/reshape", [tid, lw.ints((1, m, 1), "shape")], [out])
    return out

