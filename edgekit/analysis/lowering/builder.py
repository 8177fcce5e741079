"""The lowering's state: the TFLite graph being built, and where each PyTorch tensor lives in it.

**Layouts, lazily.** litert-torch runs NHWC-only ops (conv, pooling, resize) as
``T_nhwc(op(T_nchw(x)))`` and TFLite's optimizer then sinks transposes through element-wise
ops and cancels inverse pairs (litert_torch/_convert/fx_passes/optimize_layout_transposes_pass,
tensorflow/compiler/mlir/lite/transforms/push_transpose_through_ewise.cc). The net effect is
modelled here directly: every PyTorch tensor maps to a ``Val`` — a TFLite tensor plus a pending
permutation, ``logical = transpose(physical, perm)`` (then reshaped to ``shape`` for the 3-D
tensors of 1-D convs). Element-wise ops run on the physical tensor and keep the permutation;
an op that needs a layout (a conv: NHWC; a reshape, a matmul, LayerNorm: the logical one)
materialises it with a TRANSPOSE (and RESHAPE), once per tensor and layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.graph.ir import Graph, Op, QuantParams, Tensor
from edgekit.graph.kinds import tflite_kind

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)


@dataclass(frozen=True)
class Val:
    """Where a PyTorch tensor lives: ``logical = reshape(transpose(tensors[tid], perm), shape)``."""

    tid: int
    perm: tuple[int, ...] | None = None  # None: the physical tensor is the logical one
    shape: tuple[int, ...] | None = None  # logical shape when it is not the transposed one (1-D convs)
    nhwc: bool = False  # the permutation is the converter's NHWC layout (dim ops may run in it)


def compose(p: tuple[int, ...], q: tuple[int, ...]) -> tuple[int, ...]:
    """transpose(transpose(x, p), q) == transpose(x, compose(p, q))."""
    return tuple(p[i] for i in q)


def permuted(shape, perm) -> tuple[int, ...]:
    return tuple(shape[i] for i in perm)


def is_identity(perm) -> bool:
    return perm is None or tuple(perm) == tuple(range(len(perm)))


class Lowering:
    """Builds the TFLite graph op by op; handlers (``table.LOWER``) call its methods."""

    def __init__(self, g: Graph, *, same_padding: bool = False):
        self.g = g
        self.dtype = g.meta.get("dtype", "fp32")
        self.int8 = self.dtype == "int8"
        self.act_dtype = "int8" if self.int8 else "float32"
        self.same_padding = same_padding
        self.fill: dict[int, float] = dict(g.meta.get("const_fill", {}))
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []
        self.vals: dict[int, Val] = {}
        self.skip: set[int] = set()  # torch op indices absorbed into an earlier handler's ops
        self.unmodelled: list[tuple[str, str, str]] = []  # (layer, op, why)
        self._cache: dict[tuple, int] = {}  # (tid, what) -> tensor holding the conversion
        self._shared: dict[tuple, int] = {}
        self.values: dict[int, tuple[int, ...]] = {}  # int32 constant -> its values
        self.const_like: set[int] = set()  # torch tensors computed from constants only (folded)
        self.nhwc_ops: set[int] = set()  # torch ops the converter's layout pass puts in NHWC (layout.py)

    # ---- tensors and ops ------------------------------------------------------------------------

    def act(self, name: str, shape, dtype: str | None = None) -> int:
        dt = dtype or self.act_dtype
        quant = QuantParams(num_scales=1) if dt == "int8" else None
        return self._tensor(Tensor(id=0, name=name, shape=tuple(shape), dtype=dt, quant=quant))

    def weight(self, name: str, shape, *, channels: int = 0, axis: int = 0, bias: bool = False) -> int:
        """A weight (int8, per-channel scales when ``channels``) or bias (int32) constant."""
        if not self.int8:
            return self.const(name, shape, "float32")
        if bias:
            quant = QuantParams(num_scales=channels, axis=0) if channels else None
            return self.const(name, shape, "int32", quant=quant)
        quant = QuantParams(num_scales=channels, axis=axis) if channels else QuantParams(num_scales=1)
        return self.const(name, shape, "int8", quant=quant)

    def const(self, name: str, shape, dtype: str, *, quant=None) -> int:
        t = Tensor(id=0, name=name, shape=tuple(shape), dtype=dtype, is_const=True, quant=quant)
        t.buffer_bytes = t.nbytes
        return self._tensor(t)

    def shared(self, key: tuple, name: str, shape, dtype: str = "int32") -> int:
        """A small constant stored once however often it is used (perms, shapes, axes, paddings,
        scalars): the converter deduplicates equal constants (measured: one perm tensor for
        every TRANSPOSE with the same permutation)."""
        if key not in self._shared:
            quant = QuantParams(num_scales=1) if dtype == "int8" else None
            self._shared[key] = self.const(name, shape, dtype, quant=quant)
        return self._shared[key]

    def ints(self, values, name: str) -> int:
        values = tuple(int(v) for v in values)
        tid = self.shared(("ints", values), name, (len(values),))
        self.values[tid] = values
        return tid

    def data(self, name: str, shape) -> int:
        """A constant operand of an element-wise op (a scale, a shift) in the model's dtype."""
        return self.const(name, shape, self.act_dtype, quant=QuantParams(num_scales=1) if self.int8 else None)

    def scalar(self, key, name: str) -> int:
        """A scalar operand (``x * 0.5``, LayerNorm's epsilon) in the model's dtype."""
        return self.shared(("scalar", key), name, (), self.act_dtype)

    def _tensor(self, t: Tensor) -> int:
        t.id = len(self.tensors)
        self.tensors.append(t)
        return t.id

    def emit(self, opcode: str, name: str, inputs, outputs, *, source=None, **attrs) -> Op:
        op = Op(index=len(self.ops), kind=tflite_kind(opcode), name=name, inputs=list(inputs),
                outputs=list(outputs), source=source, attrs={"opcode": opcode, **attrs})
        self.ops.append(op)
        return op

    def shape(self, tid: int) -> tuple[int, ...]:
        return self.tensors[tid].shape

    # ---- values and layouts -------------------------------------------------------------------

    def val(self, torch_tid: int) -> Val:
        return self.vals[torch_tid]

    def set(self, torch_tid: int, v: Val | int) -> None:
        self.vals[torch_tid] = v if isinstance(v, Val) else Val(v)

    def set_nhwc(self, torch_tid: int, tid: int) -> None:
        """``tid`` holds a torch tensor in the converter's NHWC layout (a conv's output)."""
        rank = len(self.g.tensors[torch_tid].shape)
        if rank == 4:
            self.vals[torch_tid] = Val(tid, NHWC_TO_NCHW, None, True)
        else:  # a 1-D conv's (N, C, L) held as (N, 1, L, C)
            self.vals[torch_tid] = Val(tid, NHWC_TO_NCHW, tuple(self.g.tensors[torch_tid].shape), True)

    def logical(self, torch_tid: int) -> int:
        """The tensor in PyTorch's own layout, materialised if a permutation is pending."""
        v = self.vals[torch_tid]
        tid = v.tid
        if not is_identity(v.perm):
            tid = self.transpose(tid, v.perm)
        if v.shape is not None and tuple(v.shape) != self.shape(tid):
            tid = self.reshape(tid, v.shape)
        return tid

    def in_nhwc(self, op: Op) -> bool:
        return op.index in self.nhwc_ops

    def held(self, op: Op, torch_tid: int) -> tuple[int, Val]:
        """(tensor, layout) of an input of a dim op (slice, concat, keepdim mean, softmax): NHWC when
        the layout pass put the op there, else PyTorch's layout (``Val(-1)``)."""
        if self.in_nhwc(op) and len(self.g.tensors[torch_tid].shape) == 4:
            tid = self.nhwc(torch_tid)
            return tid, Val(tid, NHWC_TO_NCHW, None, True)
        return self.logical(torch_tid), Val(-1)

    def nhwc(self, torch_tid: int) -> int:
        """The tensor in NHWC (a 3-D (N, C, L) tensor as (N, 1, L, C)) for a conv or a pool."""
        v = self.vals[torch_tid]
        rank = len(self.g.tensors[torch_tid].shape)
        if rank == 4 and v.shape is None and v.perm is not None:
            return self.transpose(v.tid, compose(v.perm, NCHW_TO_NHWC))
        if rank == 3 and v.nhwc and v.shape is not None:
            return v.tid
        x = self.logical(torch_tid)
        if rank == 3:
            n, c, length = self.shape(x)
            x = self.reshape(x, (n, c, 1, length))
        return self.transpose(x, NCHW_TO_NHWC)

    def transpose(self, tid: int, perm) -> int:
        perm = tuple(perm)
        if is_identity(perm):
            return tid
        key = (tid, "T", perm)
        if key not in self._cache:
            out = self.act(f"{self.tensors[tid].name}_t", permuted(self.shape(tid), perm))
            self.emit("TRANSPOSE", f"{self.tensors[tid].name}/transpose", [tid, self.ints(perm, "perm")], [out])
            self._cache[key] = out
        return self._cache[key]

    def reshape(self, tid: int, shape) -> int:
        shape = tuple(int(d) for d in shape)
        if shape == self.shape(tid):
            return tid
        key = (tid, "R", shape)
        if key not in self._cache:
            out = self.act(f"{self.tensors[tid].name}_r", shape)
            self.emit("RESHAPE", f"{self.tensors[tid].name}/reshape", [tid, self.ints(shape, "shape")], [out])
            self._cache[key] = out
        return self._cache[key]

    # ---- the PyTorch graph ----------------------------------------------------------------------

    def acts(self, op: Op) -> list[int]:
        """The op's activation inputs (torch tensor ids), in order."""
        return [i for i in op.inputs if not (self.g.tensors[i].is_const or i in self.const_like)]

    def consts(self, op: Op) -> list[int]:
        return [i for i in op.inputs if self.g.tensors[i].is_const or i in self.const_like]

    def users(self, torch_tid: int) -> list[Op]:
        return [self.g.ops[c] for c in self.g.tensors[torch_tid].consumers]

    def only_user(self, torch_tid: int) -> Op | None:
        """The single op reading ``torch_tid`` (not a graph output), else None."""
        us = self.users(torch_tid)
        if len(us) == 1 and torch_tid not in self.g.outputs:
            return us[0]
        return None

    def is_zero(self, torch_tid: int) -> bool:
        return self.fill.get(torch_tid) == 0.0

    def is_one(self, torch_tid: int) -> bool:
        return self.fill.get(torch_tid) == 1.0

    def out(self, op: Op) -> int:
        return op.outputs[0]

    def where(self, op: Op) -> str:
        return op.source or op.name

    def not_modelled(self, op: Op, why: str) -> None:
        """Record that ``op`` cannot be lowered exactly, and give its outputs stand-in values so the
        rest of the graph can still be walked (every such layer is named at the end)."""
        self.unmodelled.append((op.source or "<model forward>", op.attrs.get("aten", op.kind), why))
        for o in op.outputs:
            if o not in self.vals:
                self.vals[o] = Val(self.act(self.g.tensors[o].name, self.g.tensors[o].shape))
