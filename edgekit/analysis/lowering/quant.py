"""What ai-edge-quantizer's static int8 recipe does to the graph beyond giving tensors int8 types
(``converter_facts.INT8_OPCODES``, ``SAME_SCALE_OPCODES``):

- an op the recipe does not quantize runs in float32: DEQUANTIZE before it, QUANTIZE after it
  where an int8 op or the model output reads it (probes "relu_after_div": ABS, "clamp_after_conv":
  MINIMUM, "leaky_relu": LEAKY_RELU);
- a CONCATENATION input produced by an op that must keep its input's scale (RESIZE, pooling,
  RESHAPE, TRANSPOSE, SLICE, PAD, ...) is requantized by a QUANTIZE op to the concat's scale
  (upsample families).

edgekit's int8 path then gives a concat and the inputs it joins one range where that costs at most
half a bit of resolution (``export.quant_ranges``), which removes such QUANTIZE ops. Whether it
can depends on the calibration data, which the pre-export graph does not have: the lowering keeps
the requantizes, an upper bound of the arena (one buffer per requantized input).
"""

from __future__ import annotations

from edgekit.analysis.converter_facts import INT8_OPCODES, SAME_SCALE_OPCODES
from edgekit.analysis.lowering.graph_edit import Edit
from edgekit.graph.ir import Op, QuantParams


def _op(opcode: str, src: int, out: int, name: str) -> Op:
    return Op(index=-1, kind=opcode.lower(), name=name, inputs=[src], outputs=[out], attrs={"opcode": opcode})


def _float_op(e: Edit, op: Op, dequantized: dict[int, int]) -> None:
    for i, t in enumerate(op.inputs):
        ten = e.tensors[t]
        if ten.dtype != "int8":
            continue
        if ten.is_const:  # a float op keeps its constants in float
            op.inputs[i] = e.new_tensor(ten.name, ten.shape, "float32", const=True)
            continue
        if t not in dequantized:
            dequantized[t] = e.new_tensor(f"{ten.name}_float", ten.shape, "float32")
            e.insert_before(op, _op("DEQUANTIZE", t, dequantized[t], f"{ten.name}/dequantize"))
        op.inputs[i] = dequantized[t]
    for t in op.outputs:
        e.tensors[t].dtype, e.tensors[t].quant = "float32", None
        int8_readers = [r for r in e.readers(t) if e.opcode(r) in INT8_OPCODES]
        if not int8_readers and t not in e.outputs:
            continue
        q = e.new_tensor(f"{e.tensors[t].name}_int8", e.tensors[t].shape, "int8", quant=QuantParams(num_scales=1))
        e.insert_after(op, _op("QUANTIZE", t, q, f"{e.tensors[t].name}/quantize"))
        for r in int8_readers:
            r.inputs = [q if x == t else x for x in r.inputs]
        e.outputs = [q if x == t else x for x in e.outputs]


def quantize_int8(e: Edit) -> None:
    dequantized: dict[int, int] = {}
    for op in list(e.live()):
        if e.opcode(op) not in INT8_OPCODES:
            _float_op(e, op, dequantized)
    for op in list(e.live()):
        if e.opcode(op) == "CONCATENATION":
            _requantize_inputs(e, op)


def _root(e: Edit, tid: int) -> int | None:
    """The tensor whose scale ``tid`` must keep (through ops that keep their input's scale), or
    None when ``tid``'s producer is free to take the concat's scale."""
    prod = e.producer(tid)
    if e.opcode(prod) not in SAME_SCALE_OPCODES:
        return None
    while e.opcode(prod) in SAME_SCALE_OPCODES:
        tid = prod.inputs[0]
        prod = e.producer(tid)
    return tid


def _requantize_inputs(e: Edit, op: Op) -> None:
    """Inputs that must keep another scale than the concat's get a QUANTIZE; inputs that all
    keep one tensor's scale (the slices of one tensor, probe "split_concat") need none."""
    roots = [_root(e, t) for t in op.inputs]
    if all(r is not None for r in roots) and len(set(roots)) == 1:
        return
    for i, (t, root) in enumerate(zip(list(op.inputs), roots)):
        if root is None:
            continue
        q = e.new_tensor(f"{e.tensors[t].name}_requant", e.shape(t), "int8", quant=QuantParams(num_scales=1))
        e.insert_before(op, _op("QUANTIZE", t, q, f"{e.tensors[t].name}/requantize"))
        op.inputs[i] = q
