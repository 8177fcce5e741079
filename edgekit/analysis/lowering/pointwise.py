"""Element-wise ops: binary arithmetic, activations, softmax.

They run in whatever layout their inputs are in (the converter sinks transposes through
element-wise ops). Operands in different layouts meet in PyTorch's layout (probe
"bn_after_add": ADD of a conv output and the NCHW model input runs in NCHW, with a TRANSPOSE
of the conv output before it and one after it) unless the other operand only needs a
unit-dim transpose, i.e. a RESHAPE (a squeeze-excite scale of shape (N, C, 1, 1)).

What each activation becomes (probes and the registered CNNs):
ReLU/ReLU6/ReLU1 fuse into the op before them where it can carry them, else RELU / RELU6 /
RELU_N1_TO_1; sigmoid LOGISTIC; tanh TANH; hard-swish HARD_SWISH; SiLU LOGISTIC + MUL;
hard-sigmoid ADD 3 (fused RELU6) + MUL 1/6, where the ADD folds into a conv before it
(mobilenet_v3: the SE conv carries RELU6, then one MUL); clamp(lo, hi) MAXIMUM + MINIMUM;
leaky ReLU LEAKY_RELU; GELU GELU; softmax SOFTMAX on the last dim.
"""

from __future__ import annotations

from edgekit.analysis.lowering.builder import Lowering, Val, is_identity, permuted
from edgekit.analysis.lowering.fusion import absorb
from edgekit.graph.ir import Op

BINARY = {"add": "ADD", "sub": "SUB", "mul": "MUL", "div": "DIV"}
UNARY = {"relu": "RELU", "relu6": "RELU6", "relu1": "RELU_N1_TO_1", "sigmoid": "LOGISTIC", "tanh": "TANH",
         "hard_swish": "HARD_SWISH", "gelu": "GELU", "leaky_relu": "LEAKY_RELU", "abs": "ABS", "neg": "NEG",
         "exp": "EXP", "sqrt": "SQRT", "rsqrt": "RSQRT"}


def _unit_only(shape, perm) -> bool:
    """A transpose that only moves size-1 dims (the converter makes it a RESHAPE)."""
    moved = [d for d in perm if shape[d] != 1]
    return moved == sorted(moved)


def _common_layout(lw: Lowering, tids: list[int]) -> tuple[list[int], Val]:
    """The operands' tensors in one layout, and the layout (a Val with tid unset) they share."""
    vals = [lw.val(t) for t in tids]
    first = vals[0]
    if all((v.perm, v.shape) == (first.perm, first.shape) for v in vals):
        return [v.tid for v in vals], first
    target = next((v for v in vals if v.nhwc and v.shape is None), None)
    if target is not None and all(_reaches(lw, v, t, target) for v, t in zip(vals, tids)):
        return [_to(lw, v, t, target) for v, t in zip(vals, tids)], target
    return [lw.logical(t) for t in tids], Val(-1)


def _reaches(lw: Lowering, v: Val, torch_tid: int, target: Val) -> bool:
    if (v.perm, v.shape) == (target.perm, target.shape):
        return True
    shape = lw.g.tensors[torch_tid].shape
    if v.shape is not None or len(shape) != len(target.perm):
        return False
    inv = tuple(target.perm.index(i) for i in range(len(target.perm)))  # logical -> physical of target
    return is_identity(v.perm) and _unit_only(shape, inv)


def _to(lw: Lowering, v: Val, torch_tid: int, target: Val) -> int:
    if (v.perm, v.shape) == (target.perm, target.shape):
        return v.tid
    inv = tuple(target.perm.index(i) for i in range(len(target.perm)))
    return lw.reshape(v.tid, permuted(lw.g.tensors[torch_tid].shape, inv))


def _const_operand(lw: Lowering, op: Op, layout: Val, rank: int) -> int | None:
    """The op's constant operand (a tensor, or a Python scalar such as ``x * 0.5``) in ``layout``."""
    consts = lw.consts(op)
    if not consts:
        return lw.scalar((op.kind, op.name), f"{lw.where(op)}_scalar")
    c = lw.g.tensors[consts[0]]
    shape = tuple(c.shape)
    if len(shape) == rank and layout.perm is not None and layout.shape is None:
        inv = tuple(layout.perm.index(i) for i in range(rank))
        shape = permuted(shape, inv)
    if c.numel == 1:
        return lw.scalar(("const", consts[0]), c.name)
    return lw.data(c.name, shape)


def lower_binary(lw: Lowering, op: Op) -> None:
    """add / sub / mul / div with a tensor, a constant or a Python scalar."""
    acts = lw.acts(op)
    y = lw.g.tensors[op.outputs[0]]
    if len(acts) == 2:
        ins, layout = _common_layout(lw, acts)
    elif len(acts) == 1:
        v = lw.val(acts[0])
        low_rank = any(0 < len(lw.g.tensors[c].shape) < len(y.shape) and lw.g.tensors[c].numel > 1
                       for c in lw.consts(op))
        if low_rank and not is_identity(v.perm):
            ins, layout = [lw.logical(acts[0])], Val(-1)
        else:
            ins, layout = [v.tid], v
        c = _const_operand(lw, op, layout, len(y.shape))
        ins = [c, ins[0]] if op.attrs.get("aten") == "rsub" else [ins[0], c]
    else:
        return lw.not_modelled(op, "an element-wise op on constants only")
    fused, absorbed = absorb(lw, op)
    shape = _broadcast([lw.shape(t) for t in ins])
    out = lw.act(lw.g.tensors[absorbed[-1]].name, shape)
    lw.emit(BINARY[op.kind], lw.where(op), ins, [out], source=op.source, fused_activation=fused)
    for t in absorbed:
        _keep(lw, t, out, layout)


def _broadcast(shapes) -> tuple[int, ...]:
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        out.append(max(dims))
    return tuple(out)


def _unary(lw: Lowering, op: Op, opcode: str, src: int, name: str, **attrs) -> int:
    out = lw.act(name, lw.shape(src))
    lw.emit(opcode, lw.where(op), [src, *attrs.pop("extra", [])], [out], source=op.source, **attrs)
    return out


def _keep(lw: Lowering, torch_tid: int, tid: int, layout: Val) -> None:
    lw.set(torch_tid, Val(tid, layout.perm, layout.shape, layout.nhwc))


def lower_unary(lw: Lowering, op: Op) -> None:
    """Activations that are one TFLite op (a ReLU no op before it could take as fused activation)."""
    v = lw.val(lw.acts(op)[0])
    out = _unary(lw, op, UNARY[op.kind], v.tid, lw.g.tensors[op.outputs[0]].name)
    _keep(lw, op.outputs[0], out, v)


def lower_silu(lw: Lowering, op: Op) -> None:
    """x * sigmoid(x): LOGISTIC + MUL (silu_se family)."""
    v = lw.val(lw.acts(op)[0])
    gate = _unary(lw, op, "LOGISTIC", v.tid, f"{lw.where(op)}_sigmoid")
    out = lw.act(lw.g.tensors[op.outputs[0]].name, lw.shape(v.tid))
    lw.emit("MUL", lw.where(op), [v.tid, gate], [out], source=op.source)
    _keep(lw, op.outputs[0], out, v)


def lower_hard_sigmoid(lw: Lowering, op: Op) -> None:
    """relu6(x + 3) / 6: ADD (fused RELU6) + MUL; ``cleanup`` folds the ADD into a conv before it."""
    v = lw.val(lw.acts(op)[0])
    name = lw.where(op)
    shifted = _unary(lw, op, "ADD", v.tid, f"{name}_plus3", fused_activation="relu6",
                     extra=[lw.scalar(3.0, "three")])
    out = _unary(lw, op, "MUL", shifted, lw.g.tensors[op.outputs[0]].name, extra=[lw.scalar(1 / 6, "sixth")])
    _keep(lw, op.outputs[0], out, v)


def lower_clamp(lw: Lowering, op: Op) -> None:
    """clamp(lo, hi) with other bounds than a fused activation's: MAXIMUM then MINIMUM (probe
    "clamp_after_conv")."""
    v = lw.val(lw.acts(op)[0])
    lo, hi = op.attrs.get("min"), op.attrs.get("max")
    if "min" not in op.attrs or lw.consts(op):
        return lw.not_modelled(op, "clamp with tensor bounds")
    cur, name = v.tid, lw.where(op)
    for opcode, bound in (("MAXIMUM", lo), ("MINIMUM", hi)):
        if bound is not None:
            cur = _unary(lw, op, opcode, cur, f"{name}_{opcode.lower()}",
                         extra=[lw.scalar((opcode, bound), f"{name}_{opcode.lower()}_bound")])
    _keep(lw, op.outputs[0], cur, v)


def lower_softmax(lw: Lowering, op: Op) -> None:
    """SOFTMAX / LOG_SOFTMAX on the last dim of the tensor as stored; other dims go through
    TRANSPOSEs (probe "softmax_channels": softmax over channels of an NHWC tensor is one op)."""
    x_t = lw.acts(op)[0]
    rank = len(lw.g.tensors[x_t].shape)
    dim = op.attrs.get("dim", -1) % rank
    opcode = "LOG_SOFTMAX" if op.kind == "log_softmax" else "SOFTMAX"
    name = lw.g.tensors[op.outputs[0]].name
    src, layout = lw.held(op, x_t)
    if layout.perm is not None and layout.perm[dim] == rank - 1:
        _keep(lw, op.outputs[0], _unary(lw, op, opcode, src, name), layout)
        return
    src = lw.logical(x_t)
    if dim == rank - 1:
        lw.set(op.outputs[0], _unary(lw, op, opcode, src, name))
        return
    perm = tuple(d for d in range(rank) if d != dim) + (dim,)
    moved = _unary(lw, op, opcode, lw.transpose(src, perm), name)
    lw.set(op.outputs[0], Val(moved, tuple(perm.index(i) for i in range(rank))))
