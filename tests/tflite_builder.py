"""Write .tflite files directly with the flatbuffer schema's object API (no TensorFlow).

``ai_edge_litert.schema_py_generated`` (the LiteRT wheel's generated schema; importing it
imports nothing else) gives ``ModelT``/``SubGraphT``/``TensorT``/``OperatorT`` and the
options tables; ``flatbuffers.flexbuffers`` encodes custom-op options. This is how the
tests make models no converter emits on this machine (LSTM, SVDF, signal ops, control flow,
every tensor type), with the shapes and options TFLite-Micro's own kernel tests use.

    m = TfliteModel()
    g = m.main
    x = g.tensor((1, 8), "int8", scale=0.1, zero_point=0)
    w = g.const(np.ones((4, 8), np.int8), scale=[0.01] * 4)
    y = g.tensor((1, 4), "int8", scale=0.2)
    g.op("FULLY_CONNECTED", [x, w, -1], [y], s.FullyConnectedOptionsT())
    g.inputs, g.outputs = [x], [y]
    data = m.to_bytes()
"""

from __future__ import annotations

import numpy as np

# TensorType codes of the schema (schema.fbs enum TensorType)
TENSOR_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "string": 5, "bool": 6,
                "int16": 7, "complex64": 8, "int8": 9, "float64": 10, "complex128": 11, "uint64": 12,
                "resource": 13, "variant": 14, "uint32": 15, "uint16": 16, "int4": 17, "bfloat16": 18,
                "int2": 19, "uint4": 20, "float8_e4m3fn": 21, "float8_e5m2": 22}

_NP = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8, "int64": np.int64,
       "bool": np.bool_, "int16": np.int16, "int8": np.int8, "float64": np.float64, "uint64": np.uint64,
       "uint32": np.uint32, "uint16": np.uint16, "complex64": np.complex64, "complex128": np.complex128}


def schema():
    import ai_edge_litert.schema_py_generated as s

    return s


class Subgraph:
    def __init__(self, model: TfliteModel, name: str):
        self.model = model
        self.sg = schema().SubGraphT()
        self.sg.name = name
        self.sg.tensors, self.sg.operators = [], []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, shape, dtype: str = "float32", *, scale=None, zero_point=None, axis: int = 0,
               variable: bool = False, name: str | None = None, data: bytes | None = None) -> int:
        """A tensor; ``data`` makes it constant (its own buffer). ``scale`` may be a list
        (per-channel on ``axis``); ``zero_point`` defaults to 0 for every scale."""
        s = schema()
        t = s.TensorT()
        t.shape = [int(d) for d in shape]
        t.type = TENSOR_TYPES[dtype]
        t.name = name or f"t{len(self.sg.tensors)}"
        t.isVariable = bool(variable)
        t.buffer = self.model.buffer(data) if data is not None else 0
        if scale is not None:
            q = s.QuantizationParametersT()
            scales = [float(v) for v in np.atleast_1d(scale)]
            zps = zero_point if zero_point is not None else 0
            q.scale = scales
            q.zeroPoint = [int(v) for v in np.atleast_1d(zps)] if np.ndim(zps) else [int(zps)] * len(scales)
            q.quantizedDimension = axis
            t.quantization = q
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def const(self, array, dtype: str | None = None, **kw) -> int:
        a = np.asarray(array)
        if dtype is not None and dtype in _NP:
            a = a.astype(_NP[dtype])
        dtype = dtype or a.dtype.name.replace("bool_", "bool")
        return self.tensor(a.shape, dtype, data=a.tobytes() or b"\0", **kw)

    def op(self, opcode: str, inputs, outputs, options=None, *, custom_options: bytes | None = None,
           intermediates=None) -> None:
        """``opcode``: a BuiltinOperator name, or ``"CUSTOM:<name>"``; ``options`` an
        ``*OptionsT`` object (its BuiltinOptions type is taken from the class name)."""
        s = schema()
        o = s.OperatorT()
        o.opcodeIndex = self.model.opcode(opcode)
        o.inputs, o.outputs = [int(i) for i in inputs], [int(i) for i in outputs]
        if options is not None:
            o.builtinOptionsType = getattr(s.BuiltinOptions, type(options).__name__[:-1])
            o.builtinOptions = options
        if custom_options is not None:
            o.customOptions = list(custom_options)
        if intermediates:
            o.intermediates = list(intermediates)
        self.sg.operators.append(o)


class TfliteModel:
    def __init__(self):
        s = schema()
        self.m = s.ModelT()
        self.m.version = 3
        self.m.description = "edgekit test model"
        self.m.buffers = [s.BufferT()]
        self.m.operatorCodes = []
        self._codes: dict[str, int] = {}
        self.subgraphs = [Subgraph(self, "main")]
        self.metadata: list[tuple[str, bytes]] = []

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def subgraph(self, name: str) -> Subgraph:
        sg = Subgraph(self, name)
        self.subgraphs.append(sg)
        return sg

    def buffer(self, data: bytes) -> int:
        b = schema().BufferT()
        b.data = np.frombuffer(bytes(data), dtype=np.uint8)
        self.m.buffers.append(b)
        return len(self.m.buffers) - 1

    def opcode(self, name: str) -> int:
        if name not in self._codes:
            s = schema()
            oc = s.OperatorCodeT()
            oc.version = 1
            if name.startswith("CUSTOM:"):
                oc.builtinCode = s.BuiltinOperator.CUSTOM
                oc.customCode = name[len("CUSTOM:"):]
            else:
                oc.builtinCode = getattr(s.BuiltinOperator, name)
            oc.deprecatedBuiltinCode = min(oc.builtinCode, 127)
            self.m.operatorCodes.append(oc)
            self._codes[name] = len(self.m.operatorCodes) - 1
        return self._codes[name]

    def to_bytes(self) -> bytes:
        import flatbuffers

        s = schema()
        self.m.subgraphs = []
        for sg in self.subgraphs:
            sg.sg.inputs, sg.sg.outputs = list(sg.inputs), list(sg.outputs)
            self.m.subgraphs.append(sg.sg)
        self.m.metadata = []
        for name, data in self.metadata:
            md = s.MetadataT()
            md.name, md.buffer = name, self.buffer(data)
            self.m.metadata.append(md)
        b = flatbuffers.Builder(1024)
        b.Finish(self.m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def flexbuffer_map(values: dict) -> bytes:
    """Custom-op options as TFLite-Micro's flexbuffer readers expect them (a map)."""
    from flatbuffers import flexbuffers

    fbb = flexbuffers.Builder()
    with fbb.Map():
        for key in sorted(values):
            v = values[key]
            if isinstance(v, bool):
                fbb.Bool(key, v)
            elif isinstance(v, int):
                fbb.Int(key, v)
            elif isinstance(v, float):
                fbb.Float(key, v)
            elif isinstance(v, (list, tuple)):
                fbb.TypedVectorFromElements(key, list(v))
            else:
                raise TypeError(f"{key}: {type(v).__name__}")
    return bytes(fbb.Finish())
