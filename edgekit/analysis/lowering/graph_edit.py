"""A small mutable view of the TFLite graph being built, for the rewrite passes of ``cleanup``
and ``quant``: who produces and who reads a tensor, rewire, delete, compact."""

from __future__ import annotations

from edgekit.graph.ir import Graph, Op, Tensor
from edgekit.graph.kinds import tflite_kind


class Edit:
    def __init__(self, tensors: list[Tensor], ops: list[Op], inputs: list[int], outputs: list[int],
                 values: dict[int, tuple[int, ...]] | None = None):
        self.tensors = tensors
        self.values = dict(values or {})  # int32 constant tensor -> its values (perms, shapes, axes)
        self.ops: list[Op | None] = list(ops)
        self.inputs = list(inputs)
        self.outputs = list(outputs)

    # ---- queries ------------------------------------------------------------------------------

    def live(self) -> list[Op]:
        return [op for op in self.ops if op is not None]

    def producer(self, tid: int) -> Op | None:
        for op in self.live():
            if tid in op.outputs:
                return op
        return None

    def readers(self, tid: int) -> list[Op]:
        return [op for op in self.live() if tid in op.inputs]

    def only_reader(self, tid: int) -> Op | None:
        rs = self.readers(tid)
        return rs[0] if len(rs) == 1 and tid not in self.outputs else None

    def opcode(self, op: Op | None) -> str | None:
        return None if op is None else op.attrs.get("opcode")

    def shape(self, tid: int) -> tuple[int, ...]:
        return tuple(self.tensors[tid].shape)

    # ---- changes ------------------------------------------------------------------------------

    def replace_uses(self, old: int, new: int) -> None:
        for op in self.live():
            op.inputs = [new if t == old else t for t in op.inputs]
        self.outputs = [new if t == old else t for t in self.outputs]

    def bypass(self, op: Op, src: int) -> None:
        """Delete a one-output op whose output equals ``src``."""
        self.replace_uses(op.outputs[0], src)
        self.delete(op)

    def delete(self, op: Op) -> None:
        self.ops[self.ops.index(op)] = None

    def set_opcode(self, op: Op, opcode: str) -> None:
        op.attrs["opcode"] = opcode
        op.kind = tflite_kind(opcode)

    def new_tensor(self, name: str, shape, dtype: str, *, const: bool = False, quant=None) -> int:
        t = Tensor(id=len(self.tensors), name=name, shape=tuple(shape), dtype=dtype, is_const=const, quant=quant)
        if const:
            t.buffer_bytes = t.nbytes
        self.tensors.append(t)
        return t.id

    def int_const(self, values, name: str) -> int:
        """An int32 vector constant, shared with an equal one already in the graph."""
        key = tuple(int(v) for v in values)
        for tid, vals in self.values.items():
            if vals == key:
                return tid
        tid = self.new_tensor(name, (len(key),), "int32", const=True)
        self.values[tid] = key
        return tid

    def insert_before(self, anchor: Op, op: Op) -> None:
        self.ops.insert(self.ops.index(anchor), op)

    def insert_after(self, anchor: Op, op: Op) -> None:
        self.ops.insert(self.ops.index(anchor) + 1, op)

    def dead_code(self) -> bool:
        changed = False
        for op in reversed(self.live()):
            if not any(self.readers(t) or t in self.outputs for t in op.outputs):
                self.delete(op)
                changed = True
        return changed

    # ---- result -------------------------------------------------------------------------------

    def _operand_attrs(self, op) -> dict:
        """The constant operands as the .tflite reader records them (``graph.tflite_reader``
        ``_const_operands``), so consumers of a lowered graph (the offline planner's in-place rules)
        read the same attributes as on the built file: TRANSPOSE ``perm``, PAD ``paddings`` pairs."""
        code = op.attrs.get("opcode")
        if code == "TRANSPOSE" and len(op.inputs) > 1 and op.inputs[1] in self.values:
            return {"perm": tuple(int(x) for x in self.values[op.inputs[1]])}
        if code in ("PAD", "PADV2", "MIRROR_PAD"):
            flat = op.attrs.get("paddings")
            if flat is None and len(op.inputs) > 1 and op.inputs[1] in self.values:
                flat = self.values[op.inputs[1]]
            if flat is not None and all(isinstance(x, int) for x in flat):  # (b0, a0, b1, a1, ...) -> pairs
                return {"paddings": tuple(zip(flat[0::2], flat[1::2]))}
        return {}

    def graph(self, *, name: str, meta: dict) -> Graph:
        """Renumber the live ops and the tensors they use into a linked Graph."""
        ops = self.live()
        used: list[int] = []
        seen: set[int] = set()
        for tid in self.inputs + [t for op in ops for t in op.inputs + op.outputs] + self.outputs:
            if tid not in seen:
                seen.add(tid)
                used.append(tid)
        new_id = {old: i for i, old in enumerate(sorted(used))}
        tensors = []
        for old in sorted(used):
            t = self.tensors[old]
            tensors.append(Tensor(id=new_id[old], name=t.name, shape=t.shape, dtype=t.dtype, is_const=t.is_const,
                                  quant=t.quant, buffer_bytes=t.buffer_bytes))
        out_ops = []
        for i, op in enumerate(ops):
            out_ops.append(Op(index=i, kind=op.kind, name=op.name, inputs=[new_id[t] for t in op.inputs],
                              outputs=[new_id[t] for t in op.outputs], source=op.source,
                              attrs={**op.attrs, **self._operand_attrs(op)}))
        return Graph(tensors=tensors, ops=out_ops, inputs=[new_id[t] for t in self.inputs],
                     outputs=[new_id[t] for t in self.outputs], source_format="tflite", name=name,
                     meta=meta).link()

