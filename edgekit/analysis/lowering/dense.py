"""Matrix products and attention.

- nn.Linear (a constant weight): FULLY_CONNECTED on the input as it is, keeping its leading dims
  (the converter's reshapes to 2-D around the matmul fold away: layernorm family,
  FULLY_CONNECTED (1, 8, 8, 24) -> (1, 8, 8, 48)). No bias operand when the bias is absent or all
  zeros (the converter drops a zero bias: probe "fc_zero_bias").
- A product of two activations (bmm, matmul): BATCH_MATMUL.
- scaled_dot_product_attention(q, k, v) without mask, as the converter decomposes it (attention
  family): q and k each MUL by sqrt(1/sqrt(E)), k TRANSPOSE (0, 1, 3, 2), RESHAPEs to 3-D,
  BATCH_MATMUL -> the (N*H, L, S) attention matrix, RESHAPE to 4-D, SOFTMAX, RESHAPE to 3-D,
  BATCH_MATMUL with v, RESHAPE to (N, H, L, E). A mask or ``is_causal`` is not modelled.
"""

from __future__ import annotations

from edgekit.analysis.lowering.builder import Lowering
from edgekit.analysis.lowering.fusion import absorb, set_all
from edgekit.graph.ir import Op


def lower_linear(lw: Lowering, op: Op) -> None:
    acts, consts = lw.acts(op), lw.consts(op)
    if len(acts) == 2:
        return _batch_matmul(lw, op, acts)
    if len(acts) != 1 or not consts:
        return lw.not_modelled(op, "a matrix product of this form")
    y = lw.g.tensors[op.outputs[0]]
    aten = op.attrs.get("aten", "linear")
    weights = [t for t in consts if len(lw.g.tensors[t].shape) == 2]
    biases = [t for t in consts if len(lw.g.tensors[t].shape) == 1]
    if len(weights) != 1:
        return lw.not_modelled(op, "a matrix product without one 2-D weight")
    src = lw.logical(acts[0])
    cin, cout = lw.shape(src)[-1], int(y.shape[-1])
    name = lw.where(op)
    ins = [src, lw.weight(f"{name}.weight", (cout, cin), channels=cout)]
    if biases and not lw.is_zero(biases[0]) and aten in ("linear", "addmm"):
        ins.append(lw.weight(f"{name}.bias", (cout,), channels=cout, bias=True))
    fused, absorbed = absorb(lw, op)
    out = lw.act(lw.g.tensors[absorbed[-1]].name, (*lw.shape(src)[:-1], cout))
    lw.emit("FULLY_CONNECTED", name, ins, [out], source=op.source, fused_activation=fused, out_channels=cout)
    set_all(lw, absorbed, out)


def _batch_matmul(lw: Lowering, op: Op, acts: list[int]) -> None:
    a, b = (lw.logical(t) for t in acts)
    sa, sb = lw.shape(a), lw.shape(b)
    if len(sa) != len(sb) or len(sa) < 2 or sa[:-2] != sb[:-2] or sa[-1] != sb[-2]:
        return lw.not_modelled(op, f"a matmul of shapes {sa} and {sb}")
    out = lw.act(lw.g.tensors[op.outputs[0]].name, (*sa[:-1], sb[-1]))
    lw.emit("BATCH_MATMUL", lw.where(op), [a, b], [out], source=op.source)
    lw.set(op.outputs[0], out)


def lower_attention(lw: Lowering, op: Op) -> None:
    acts = lw.acts(op)
    if len(acts) != 3 or op.attrs.get("masked") or op.attrs.get("causal"):
        return lw.not_modelled(op, "attention with a mask or is_causal")
    q, k, v = (lw.logical(t) for t in acts)
    if not (len(lw.shape(q)) == len(lw.shape(k)) == len(lw.shape(v)) == 4):
        return lw.not_modelled(op, "attention on tensors that are not (N, heads, L, E)")
    n, h, length, e = lw.shape(q)
    s = lw.shape(k)[2]
    name = lw.where(op)
    scale = lw.scalar(("sdpa_scale", e), f"{name}_scale")
    qs = _emit(lw, op, "MUL", [q, scale], (n, h, length, e), "q_scaled")
    ks = _emit(lw, op, "MUL", [k, scale], (n, h, s, e), "k_scaled")
    kt = lw.transpose(ks, (0, 1, 3, 2))
    scores = _emit(lw, op, "BATCH_MATMUL", [lw.reshape(qs, (n * h, length, e)), lw.reshape(kt, (n * h, e, s))],
                   (n * h, length, s), "scores")
    probs = _emit(lw, op, "SOFTMAX", [lw.reshape(scores, (n, h, length, s))], (n, h, length, s), "probs")
    ctx = _emit(lw, op, "BATCH_MATMUL", [lw.reshape(probs, (n * h, length, s)), lw.reshape(v, (n * h, s, e))],
                (n * h, length, e), "context")
    lw.set(op.outputs[0], lw.reshape(ctx, (n, h, length, e)))


def _emit(lw: Lowering, op: Op, opcode: str, ins, shape, what: str) -> int:
    out = lw.act(f"{lw.where(op)}_{what}", shape)
    lw.emit(opcode, f"{lw.where(op)}/{what}", ins, [out], source=op.source)
    return out

