"""The .tflite facts lint needs beyond the Graph IR: small constant values (a BN's scale,
h-swish's 3 and 1/6, a TRANSPOSE's permutation), every scale of a quantized tensor, and
the op -> PyTorch module mapping. No torch here."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgekit.graph.ir import Graph, Op, Tensor
from edgekit.graph.names import Location, ModuleTable, primary
from edgekit.graph.tflite_reader import read_tflite, read_tflite_bytes, schema

_NP = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64, "int8": np.int8,
       "uint8": np.uint8, "int16": np.int16, "bool": np.bool_, "float64": np.float64}
MAX_CONST_ELEMS = 4096  # constants larger than this are not decoded (weights): lint never needs them


@dataclass
class Artifact:
    path: str
    graph: Graph
    data: bytes
    modules: ModuleTable = field(default_factory=ModuleTable)
    _consts: dict = field(default_factory=dict)
    _scales: dict = field(default_factory=dict)
    _model: object = None

    # ---- constants and quantization --------------------------------------------------------

    def _fb(self):
        if self._model is None:
            self._model = schema().Model.GetRootAsModel(self.data, 0)
        return self._model

    def const(self, tid: int) -> np.ndarray | None:
        """Values of a small constant tensor (dequantized when quantized), else None."""
        if tid in self._consts:
            return self._consts[tid]
        t = self.graph.tensors[tid]
        val = None
        if t.is_const and t.numel <= MAX_CONST_ELEMS and t.dtype in _NP:
            try:
                model = self._fb()
                ft = model.Subgraphs(0).Tensors(tid)
                buf = model.Buffers(int(ft.Buffer()))
                raw = buf.DataAsNumpy() if buf.DataLength() else None
                if raw is not None and not isinstance(raw, int):
                    arr = np.frombuffer(raw.tobytes(), dtype=_NP[t.dtype])
                    if arr.size == t.numel:
                        arr = arr.reshape(t.shape) if t.shape else arr.reshape(())
                        q = self.scales(tid)
                        if q is not None and t.dtype in ("int8", "uint8", "int16", "int32"):
                            sc, zp = q
                            if len(sc) == 1:
                                arr = (arr.astype(np.float64) - zp[0]) * sc[0]
                            elif t.quant and t.quant.axis is not None and len(sc) == t.shape[t.quant.axis]:
                                shape = [1] * len(t.shape)
                                shape[t.quant.axis] = len(sc)
                                arr = (arr.astype(np.float64) - np.reshape(zp, shape)) * np.reshape(sc, shape)
                        val = np.asarray(arr)
            except Exception:  # a constant we cannot decode is simply not used by the rules
                val = None
        self._consts[tid] = val
        return val

    def scales(self, tid: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(scales, zero points) of a quantized tensor, every channel; None if not quantized."""
        if tid in self._scales:
            return self._scales[tid]
        out = None
        t = self.graph.tensors[tid]
        if t.quant is not None:
            try:
                q = self._fb().Subgraphs(0).Tensors(tid).Quantization()
                sc = q.ScaleAsNumpy() if q.ScaleLength() else None
                zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else None
                if sc is not None and not isinstance(sc, int):
                    sc = np.asarray(sc, dtype=np.float64)
                    zp = np.asarray(zp, dtype=np.int64) if zp is not None and not isinstance(zp, int) \
                        else np.zeros(len(sc), dtype=np.int64)
                    out = (sc, zp)
            except Exception:
                out = None
        self._scales[tid] = out
        return out

    def scalar(self, tid: int) -> float | None:
        """The value of a constant that holds one number (or the same number everywhere)."""
        v = self.const(tid)
        if v is None or v.size == 0:
            return None
        flat = np.asarray(v, dtype=np.float64).ravel()
        if np.allclose(flat, flat[0], rtol=1e-6, atol=1e-9):
            return float(flat[0])
        return None

    # ---- structure -------------------------------------------------------------------------

    def opcode(self, op: Op) -> str:
        return op.attrs.get("opcode", op.kind.upper())

    def producer(self, tid: int) -> Op | None:
        p = self.graph.tensors[tid].producer
        return self.graph.ops[p] if p is not None else None

    def consumers(self, tid: int) -> list[Op]:
        return [self.graph.ops[i] for i in self.graph.tensors[tid].consumers]

    def act_inputs(self, op: Op) -> list[int]:
        """Non-constant inputs of an op."""
        return [t for t in op.inputs if not self.graph.tensors[t].is_const]

    def const_inputs(self, op: Op) -> list[int]:
        return [t for t in op.inputs if self.graph.tensors[t].is_const]

    def is_graph_output(self, tid: int) -> bool:
        return tid in self.graph.outputs

    def act_bytes(self, op: Op) -> int:
        """Activation bytes an op reads and writes (its memory traffic)."""
        g = self.graph
        return sum(g.tensors[t].nbytes for t in self.act_inputs(op)) + sum(g.tensors[t].nbytes for t in op.outputs)

    # ---- PyTorch modules --------------------------------------------------------------------

    def locations(self, op: Op) -> list[Location]:
        out: list[Location] = []
        for tid in op.outputs:
            out += [loc for loc in self.modules.locations(self.graph.tensors[tid].name) if loc not in out]
        if not out:  # a graph output is named after the signature: the weights still carry the module
            for tid in self.const_inputs(op):
                out += [loc for loc in self.modules.locations(self.graph.tensors[tid].name) if loc not in out]
        return out

    def module_of(self, op: Op) -> Location | None:
        return primary(self.locations(op), op.kind)

    def tensor(self, tid: int) -> Tensor:
        return self.graph.tensors[tid]


def load_artifact(path, *, modules: ModuleTable | None = None) -> Artifact:
    data = read_tflite_bytes(path)
    g = read_tflite(path)
    return Artifact(path=str(path), graph=g, data=data, modules=modules or ModuleTable())
