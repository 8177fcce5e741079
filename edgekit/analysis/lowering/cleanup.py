"""The rewrites TFLite's MLIR optimizer applies after legalization, on the graph the handlers built
(tensorflow/compiler/mlir/lite/transforms/optimize_patterns.td, optimize.cc and the canonicalizers
of tfl.transpose / tfl.reshape), each checked against converted models:

- a TRANSPOSE of a TRANSPOSE is one TRANSPOSE; an identity TRANSPOSE or RESHAPE is removed;
- a TRANSPOSE that only moves size-1 dims is a RESHAPE; a RESHAPE of a RESHAPE is one RESHAPE;
- a rank-5 TRANSPOSE between reshapes that add and drop one unit dim is a rank-4 TRANSPOSE
  (litert-torch ReduceViewRankPass; nn.MultiheadAttention's packed q/k/v split);
- MEAN/SUM with keep_dims followed by a RESHAPE that drops the reduced dims is MEAN without
  keep_dims; a RESHAPE that only drops unit dims before a MEAN folds into it;
- a RESHAPE that only regroups the leading dims before FULLY_CONNECTED is dropped (the FC keeps
  the leading dims); one that only adds leading unit dims before a broadcasting ADD/SUB/MUL/DIV
  is dropped;
- a PAD that equals TFLite's SAME padding before a VALID conv becomes a SAME conv;
- ADD/SUB/MUL by a constant after a conv or fully-connected op without a fused activation folds
  into its bias/weights (hard-sigmoid's ``+ 3`` after mobilenet_v3's SE conv);
- RELU/RELU6/RELU_N1_TO_1 fuse into the op before them (``converter_facts``).
"""

from __future__ import annotations

from edgekit.analysis.converter_facts import CONVERTER_FUSES_ACT_OPCODES, FUSED_ACTIVATIONS
from edgekit.analysis.lowering.builder import compose, is_identity, permuted
from edgekit.analysis.lowering.graph_edit import Edit
from edgekit.padding import same_pads

ACT_OPCODES = {v: k for k, v in FUSED_ACTIVATIONS.items()}  # RELU -> relu
AFFINE = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}
BROADCASTING = {"ADD", "SUB", "MUL", "DIV"}


def _perm(e: Edit, op) -> tuple[int, ...]:
    return e.values[op.inputs[1]]


def _unit_only(shape, perm) -> bool:
    moved = [d for d in perm if shape[d] != 1]
    return moved == sorted(moved)


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def transposes(e: Edit) -> bool:
    """Compose TRANSPOSE chains, drop identities, turn unit-dim transposes into RESHAPEs."""
    changed = False
    for op in e.live():
        if e.opcode(op) != "TRANSPOSE":
            continue
        inner = e.producer(op.inputs[0])
        perm = _perm(e, op)
        if e.opcode(inner) == "TRANSPOSE":
            perm = compose(_perm(e, inner), perm)
            op.inputs = [inner.inputs[0], e.int_const(perm, "perm")]
            changed = True
        if is_identity(perm):
            e.bypass(op, op.inputs[0])
            changed = True
        elif _unit_only(e.shape(op.inputs[0]), perm):
            e.set_opcode(op, "RESHAPE")
            op.inputs = [op.inputs[0], e.int_const(e.shape(op.outputs[0]), "shape")]
            changed = True
    return changed


def reshapes(e: Edit) -> bool:
    """Merge RESHAPE chains and drop RESHAPEs to the same shape."""
    changed = False
    for op in e.live():
        if e.opcode(op) != "RESHAPE":
            continue
        inner = e.producer(op.inputs[0])
        if e.opcode(inner) == "RESHAPE":
            op.inputs = [inner.inputs[0], op.inputs[1]]
            changed = True
        if e.shape(op.inputs[0]) == e.shape(op.outputs[0]) and op.inputs[0] not in e.inputs:
            e.bypass(op, op.inputs[0])
            changed = True
    return changed


def rank5_transposes(e: Edit) -> bool:
    """RESHAPE(+unit dim) -> rank-5 TRANSPOSE -> RESHAPE(-unit dim) as one rank-4 TRANSPOSE."""
    for op in e.live():
        if e.opcode(op) != "TRANSPOSE" or len(e.shape(op.inputs[0])) <= 4:
            continue
        shape, perm = e.shape(op.inputs[0]), _perm(e, op)
        reader = e.only_reader(op.outputs[0])
        if e.opcode(reader) != "RESHAPE" or len(e.shape(reader.outputs[0])) != len(shape) - 1:
            continue
        for u in (i for i, d in enumerate(shape) if d == 1):
            p4 = tuple(p - (p > u) for p in perm if p != u)
            s4 = tuple(d for i, d in enumerate(shape) if i != u)
            if permuted(s4, p4) == e.shape(reader.outputs[0]):
                src = e.new_tensor(f"{e.tensors[op.inputs[0]].name}_r4", s4, e.tensors[op.inputs[0]].dtype,
                                   quant=e.tensors[op.inputs[0]].quant)
                _reshape_op(e, op, op.inputs[0], src)
                op.inputs = [src, e.int_const(p4, "perm")]
                e.bypass(reader, op.outputs[0])
                e.tensors[op.outputs[0]].shape = permuted(s4, p4)
                return True
    return False


def _reshape_op(e: Edit, anchor, src: int, out: int) -> None:
    from edgekit.graph.ir import Op

    op = Op(index=-1, kind="reshape", name=f"{e.tensors[src].name}/reshape", inputs=[src, e.int_const(
        e.shape(out), "shape")], outputs=[out], attrs={"opcode": "RESHAPE"})
    e.insert_before(anchor, op)


def reductions(e: Edit) -> bool:
    """MEAN/SUM + RESHAPE(drop reduced dims) -> MEAN without keep_dims; RESHAPE(drop unit dims)
    + MEAN -> MEAN on the unreshaped input."""
    changed = False
    for op in e.live():
        if e.opcode(op) not in ("MEAN", "SUM"):
            continue
        x, y = e.shape(op.inputs[0]), e.shape(op.outputs[0])
        reader = e.only_reader(op.outputs[0])
        if len(x) == len(y) and e.opcode(reader) == "RESHAPE" and _squeezed(e.shape(reader.outputs[0])) == \
                _squeezed(y) and len(e.shape(reader.outputs[0])) < len(y):
            e.replace_uses(reader.outputs[0], op.outputs[0])
            e.tensors[op.outputs[0]].shape = e.shape(reader.outputs[0])
            e.delete(reader)
            changed = True
        inner = e.producer(op.inputs[0])
        if e.opcode(inner) == "RESHAPE" and len(e.shape(op.outputs[0])) < len(x) and \
                e.only_reader(op.inputs[0]) is op:
            changed |= _fold_squeeze(e, op, inner)
    return changed


def keep_dims(e: Edit) -> bool:
    """MEAN/SUM followed only by a RESHAPE that puts the reduced dims back as 1s: keep_dims."""
    changed = False
    for op in e.live():
        if e.opcode(op) not in ("MEAN", "SUM"):
            continue
        reader = e.only_reader(op.outputs[0])
        x = e.shape(op.inputs[0])
        if e.opcode(reader) != "RESHAPE" or len(e.shape(reader.outputs[0])) != len(x):
            continue
        axes = set(e.values.get(op.inputs[1], ()))
        if e.shape(reader.outputs[0]) == tuple(1 if i in axes else d for i, d in enumerate(x)):
            e.tensors[op.outputs[0]].shape = e.shape(reader.outputs[0])
            e.bypass(reader, op.outputs[0])
            changed = True
    return changed


def _align(big, small):
    """(small dim -> big dim, dropped big dims) when ``small`` is ``big`` without some unit dims."""
    mapping, dropped, j = {}, [], 0
    for i, d in enumerate(big):
        if j < len(small) and d == small[j]:
            mapping[j] = i
            j += 1
        elif d == 1:
            dropped.append(i)
        else:
            return None
    return (mapping, dropped) if j == len(small) else None


def _fold_squeeze(e: Edit, op, inner) -> bool:
    big, y = e.shape(inner.inputs[0]), e.shape(op.outputs[0])
    aligned = _align(big, e.shape(op.inputs[0]))
    if aligned is None:
        return False
    mapping, dropped = aligned
    axes = sorted({mapping[a] for a in e.values.get(op.inputs[1], ())} | set(dropped))
    if tuple(d for i, d in enumerate(big) if i not in axes) != y:
        return False
    op.inputs = [inner.inputs[0], e.int_const(axes, "axes")]
    return True


def fc_reshapes(e: Edit) -> bool:
    """Drop a RESHAPE that keeps the last dim before FULLY_CONNECTED, and one that only adds
    leading unit dims before a broadcasting binary op."""
    changed = False
    for op in e.live():
        code = e.opcode(op)
        if code == "FULLY_CONNECTED":
            inner = e.producer(op.inputs[0])
            if e.opcode(inner) != "RESHAPE" or e.shape(inner.inputs[0])[-1:] != e.shape(op.inputs[0])[-1:] \
                    or len(e.shape(inner.inputs[0])) < len(e.shape(op.inputs[0])):
                continue
            src, flat = e.shape(inner.inputs[0]), e.shape(op.inputs[0])
            if all(e.opcode(r) == "RESHAPE" for r in e.readers(op.outputs[0])) and op.outputs[0] not in e.outputs:
                op.inputs = [inner.inputs[0], *op.inputs[1:]]
                e.tensors[op.outputs[0]].shape = (*src[:-1], e.shape(op.outputs[0])[-1])
                changed = True
            elif len(flat) == 2 and _prod(src[:-1]) == flat[0]:
                # (1, 1, 1, C) -> (1, C) into a 2-D FULLY_CONNECTED: it flattens its input to rows
                # itself and its output keeps its shape (the converter drops the RESHAPE: DS-CNN's
                # average pool + flatten)
                op.inputs = [inner.inputs[0], *op.inputs[1:]]
                changed = True
        elif code in BROADCASTING:
            changed |= _broadcast_reshape(e, op)
    return changed


def _prod(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _broadcast_reshape(e: Edit, op) -> bool:
    out = e.shape(op.outputs[0])
    for i, t in enumerate(op.inputs):
        inner = e.producer(t)
        if e.opcode(inner) != "RESHAPE":
            continue
        src = e.shape(inner.inputs[0])
        full = e.shape(t)
        if len(full) > len(src) and full[len(full) - len(src):] == src and all(d == 1 for d in full[:-len(src)]) \
                and any(e.shape(o) == out for j, o in enumerate(op.inputs) if j != i):
            op.inputs[i] = inner.inputs[0]
            return True
    return False


def pads_into_convs(e: Edit) -> bool:
    changed = False
    for op in e.live():
        if e.opcode(op) not in ("CONV_2D", "DEPTHWISE_CONV_2D") or op.attrs.get("padding") != "valid":
            continue
        if _nchw_pad_through_transpose(e, op):
            changed = True
            continue
        pad = e.producer(op.inputs[0])
        if e.opcode(pad) != "PAD" or e.only_reader(pad.outputs[0]) is not op:
            continue
        w = pad.attrs.get("paddings", ())
        x = e.shape(pad.inputs[0])
        if len(w) != 8 or w[:2] != (0, 0) or w[6:] != (0, 0) or len(x) != 4:
            continue
        k, s, d = op.attrs["kernel"], op.attrs["stride"], op.attrs.get("dilation", (1, 1))
        if all(same_pads(x[1 + i], k[i], s[i], d[i]) == (w[2 + 2 * i], w[3 + 2 * i]) for i in range(2)):
            op.inputs = [pad.inputs[0], *op.inputs[1:]]
            op.attrs["padding"] = "same"
            e.delete(pad)
            changed = True
    return changed


def _flat(pairs) -> tuple[int, ...]:
    return tuple(x for p in pairs for x in (p if isinstance(p, (tuple, list)) else (p,)))


def _nchw_pad_through_transpose(e: Edit, conv) -> bool:
    """PAD of an NCHW tensor (the model input's, before the layout TRANSPOSE) -> TRANSPOSE to NHWC ->
    VALID conv, where the pad is exactly the conv's SAME padding: the TRANSPOSE reads the unpadded
    tensor and the conv pads SAME (what edgekit.export.fold_pad does to the converted file)."""
    tr = e.producer(conv.inputs[0])
    if e.opcode(tr) != "TRANSPOSE" or tuple(_perm(e, tr)) != (0, 2, 3, 1) \
            or e.only_reader(tr.outputs[0]) is not conv:
        return False
    pad = e.producer(tr.inputs[0])
    if e.opcode(pad) != "PAD" or e.only_reader(pad.outputs[0]) is not tr:
        return False
    w, x = _flat(pad.attrs.get("paddings", ())), e.shape(pad.inputs[0])
    if len(w) != 8 or w[:4] != (0, 0, 0, 0) or len(x) != 4:
        return False
    k, s, d = conv.attrs["kernel"], conv.attrs["stride"], conv.attrs.get("dilation", (1, 1))
    if not all(same_pads(x[2 + i], k[i], s[i], d[i]) == (w[4 + 2 * i], w[5 + 2 * i]) for i in range(2)):
        return False
    old = e.tensors[tr.outputs[0]]
    n, c, h, wd = x
    new = e.new_tensor(old.name, (n, h, wd, c), old.dtype, quant=old.quant)
    tr.inputs = [pad.inputs[0], *tr.inputs[1:]]
    tr.outputs = [new]
    conv.inputs = [new, *conv.inputs[1:]]
    conv.attrs["padding"] = "same"
    e.delete(pad)
    return True


def constants_into_affine(e: Edit) -> bool:
    changed = False
    for op in e.live():
        if e.opcode(op) not in ("ADD", "SUB", "MUL") or len(op.inputs) != 2:
            continue
        x, c = op.inputs
        if not e.tensors[c].is_const or e.tensors[x].is_const:
            continue
        prod = e.producer(x)
        if e.opcode(prod) not in AFFINE or prod.attrs.get("fused_activation") or e.only_reader(x) is not op:
            continue
        if e.tensors[c].numel not in (1, e.shape(x)[-1]):
            continue
        prod.outputs = [op.outputs[0]]
        prod.attrs["fused_activation"] = op.attrs.get("fused_activation")
        e.delete(op)
        changed = True
    return changed


def constants_into_next_fc(e: Edit) -> bool:
    """MUL/ADD by a per-feature constant whose only reader is FULLY_CONNECTED folds into the FC's
    weights/bias (a LayerNorm's affine before a linear layer: attention family)."""
    changed = False
    for op in e.live():
        if e.opcode(op) not in ("ADD", "MUL") or len(op.inputs) != 2 or op.attrs.get("fused_activation"):
            continue
        x, c = op.inputs
        reader = e.only_reader(op.outputs[0])
        if not e.tensors[c].is_const or e.opcode(reader) != "FULLY_CONNECTED" or reader.inputs[0] != op.outputs[0]:
            continue
        if e.tensors[c].numel not in (1, e.shape(x)[-1]) or e.tensors[x].is_const:
            continue
        reader.inputs[0] = x
        e.delete(op)
        changed = True
    return changed


def scalar_ops_first(e: Edit) -> bool:
    """An ADD/SUB/MUL/DIV by a scalar constant moves before the RESHAPE/TRANSPOSE feeding it (the
    optimizer sinks layout ops below element-wise ops: attention family, the q and k scaling
    MULs run on the sliced projections)."""
    changed = False
    for op in e.live():
        if e.opcode(op) not in BROADCASTING or len(op.inputs) != 2 or op.attrs.get("fused_activation"):
            continue
        x, c = op.inputs
        if not e.tensors[c].is_const or e.tensors[c].numel != 1:
            continue
        layout = e.producer(x)
        if e.opcode(layout) not in ("RESHAPE", "TRANSPOSE") or e.only_reader(x) is not op:
            continue
        src = layout.inputs[0]
        moved = e.new_tensor(f"{e.tensors[op.outputs[0]].name}_early", e.shape(src), e.tensors[x].dtype,
                             quant=e.tensors[x].quant)
        old_out = op.outputs[0]
        op.inputs, op.outputs = [src, c], [moved]
        layout.inputs, layout.outputs = [moved, *layout.inputs[1:]], [old_out]
        e.ops.remove(op)
        e.insert_before(layout, op)
        changed = True
    return changed


def activations(e: Edit) -> bool:
    changed = False
    for op in e.live():
        kind = ACT_OPCODES.get(e.opcode(op))
        if kind is None:
            continue
        prod = e.producer(op.inputs[0])
        if e.opcode(prod) in CONVERTER_FUSES_ACT_OPCODES and not prod.attrs.get("fused_activation") and \
                e.only_reader(op.inputs[0]) is op:
            prod.outputs = [op.outputs[0]]
            prod.attrs["fused_activation"] = kind
            e.delete(op)
            changed = True
    return changed


def common_ops(e: Edit) -> bool:
    """Two ops of the same kind on the same inputs and constants compute one tensor (MLIR's CSE:
    probe "relu_after_concat" calls one conv twice on the same input, the .tflite has one)."""
    seen: dict[tuple, object] = {}
    changed = False
    for op in e.live():
        key = (e.opcode(op), tuple(_operand_key(e, t) for t in op.inputs),
               tuple(sorted((k, str(v)) for k, v in op.attrs.items())),
               tuple(e.shape(t) for t in op.outputs))
        first = seen.get(key)
        if first is None:
            seen[key] = op
            continue
        for old, new in zip(op.outputs, first.outputs):
            e.replace_uses(old, new)
        e.delete(op)
        changed = True
    return changed


def _operand_key(e: Edit, tid: int):
    t = e.tensors[tid]  # a weight is known by its name (one module's parameter); everything else by id
    return ("const", t.name, t.shape, t.dtype) if t.is_const and tid not in e.values and t.shape else tid


PASSES = (common_ops, transposes, reshapes, rank5_transposes, reductions, fc_reshapes, pads_into_convs,
          constants_into_affine, constants_into_next_fc, scalar_ops_first, activations, keep_dims)


def cleanup(e: Edit) -> None:
    """Apply every rewrite until none applies."""
    for _ in range(100):
        changed = False
        for rewrite in PASSES:
            changed |= bool(rewrite(e))
        changed |= e.dead_code()
        if not changed:
            return
