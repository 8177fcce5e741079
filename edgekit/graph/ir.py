"""The small graph IR every reader produces and every analysis consumes (no torch here).

Ops are in execution order. Tensors carry shape, dtype and bytes, their producer op and
their consumer ops. Constant tensors (weights, biases, quantization data) have
``is_const=True`` and are not part of the activation arena.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DTYPE_BYTES = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2,
    "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "int4": 1,
    "uint64": 8, "uint32": 4, "uint16": 2, "complex64": 8, "complex128": 16,
    "float8_e4m3fn": 1, "float8_e5m2": 1,
}


# a model's dtype (what the user asks for: --dtype) -> the IR dtype of its activations and weights
MODEL_DTYPES = {"fp32": "float32", "fp16": "float16", "int8": "int8"}


def model_dtype_bytes(dtype: str) -> int:
    """Bytes per element of a model dtype (``"fp32"``, ``"fp16"``, ``"int8"``)."""
    return DTYPE_BYTES[MODEL_DTYPES[dtype]]


def dtype_nbytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(f"unknown tensor dtype {dtype!r}") from None


@dataclass
class QuantParams:
    """Affine quantization of a tensor: one scale/zero point per tensor or per channel."""

    num_scales: int = 1
    axis: int | None = None
    num_zero_points: int = 1  # 0: scales without zero points (TFLite-Micro then ignores both)
    scale: float | None = None  # first (or only) scale, for display
    zero_point: int | None = None


@dataclass
class Tensor:
    id: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    is_const: bool = False
    producer: int | None = None  # op index
    consumers: list[int] = field(default_factory=list)  # op indices
    quant: QuantParams | None = None
    buffer_bytes: int | None = None  # stored size of a constant (None: computed from shape)
    is_variable: bool = False  # a .tflite variable tensor (state kept across invocations)

    @property
    def numel(self) -> int:
        return int(math.prod(self.shape)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        if self.buffer_bytes is not None:
            return self.buffer_bytes
        return self.numel * dtype_nbytes(self.dtype)


@dataclass
class Op:
    index: int
    kind: str  # canonical kind: conv2d, depthwise_conv2d, linear, add, mul, concat, pad, ...
    name: str  # where it came from: a PyTorch module path, a node name or "OPCODE_i"
    inputs: list[int] = field(default_factory=list)  # tensor ids (activations and constants)
    outputs: list[int] = field(default_factory=list)
    macs: int = 0
    params: int = 0
    attrs: dict = field(default_factory=dict)
    source: str | None = None  # PyTorch module path, where known


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    source_format: str  # "torch", "tflite", "pte"
    name: str = "model"
    meta: dict = field(default_factory=dict)
    # the other subgraphs of a .tflite (index 1, 2, ...: WHILE/IF bodies, CALL_ONCE
    # initialisers), each a Graph of its own; analyses that read only ``ops`` see the main one
    subgraphs: list[Graph] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(op.params for op in self.ops)

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    def const_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors if t.is_const)

    def link(self) -> Graph:
        """Recompute producer/consumers from the ops' inputs and outputs."""
        for t in self.tensors:
            t.producer = None
            t.consumers = []
        for op in self.ops:
            for tid in op.outputs:
                self.tensors[tid].producer = op.index
            for tid in op.inputs:
                if op.index not in self.tensors[tid].consumers:
                    self.tensors[tid].consumers.append(op.index)
        return self


def hw_pair(v, default: int = 1) -> tuple[int, int]:
    """(height, width) of an op attribute given as one int, a pair or a longer list (first and last)."""
    if v is None:
        return (default, default)
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))
