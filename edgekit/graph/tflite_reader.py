"""Read a .tflite flatbuffer into the Graph IR without importing torch.

Parsing is defensive: the file identifier, every vector length and every index is
checked against the file before use, so a truncated or corrupt file becomes an
ArtifactError instead of a crash or a hang in the flatbuffers decoder.
"""

from __future__ import annotations

import math
from pathlib import Path

from edgekit.errors import ArtifactError, UsageError, checked_path, require
from edgekit.graph.ir import DTYPE_BYTES, Graph, Op, QuantParams, Tensor
from edgekit.graph.kinds import TFLITE_KINDS, tflite_kind
from edgekit.graph.tflite_offline import offline_entry

# TensorType -> (IR dtype, bytes per element); 0 for types without a fixed size (string, resource)
_TYPES = {0: ("float32", 4), 1: ("float16", 2), 2: ("int32", 4), 3: ("uint8", 1), 4: ("int64", 8),
          5: ("string", 0), 6: ("bool", 1), 7: ("int16", 2), 8: ("complex64", 8), 9: ("int8", 1),
          10: ("float64", 8), 11: ("complex128", 16), 12: ("uint64", 8), 13: ("resource", 0), 14: ("variant", 0),
          15: ("uint32", 4), 16: ("uint16", 2), 17: ("int4", 1), 18: ("bfloat16", 2), 19: ("int2", 1),
          20: ("uint4", 1), 21: ("float8_e4m3fn", 1), 22: ("float8_e5m2", 1)}


_FUSED_ACT = {0: None, 1: "relu", 2: "relu1", 3: "relu6", 4: "tanh", 5: "sign_bit", 6: "sigmoid"}


def schema():
    return require("ai_edge_litert.schema_py_generated", "tflite")


def opcode_names() -> dict[int, str]:
    s = schema()
    return {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def read_tflite_bytes(path) -> bytes:
    p = checked_path(path, "file name")
    if not p.exists():
        raise UsageError(f"no such file: {path}")
    if p.is_dir():
        raise UsageError(f"{path} is a directory, expected a .tflite file")
    data = p.read_bytes()
    if len(data) < 16:
        raise ArtifactError(f"{path} is empty or truncated ({len(data)} bytes): not a .tflite model")
    if data[4:8] != b"TFL3":
        raise ArtifactError(f"{path} is not a .tflite model (no TFL3 identifier); rebuild it or check the file")
    return data


class _Checked:
    """Wraps vector/index access with bounds checks against the file size."""

    def __init__(self, path, size: int):
        self.path = path
        self.size = size

    def length(self, n: int, what: str) -> int:
        if n < 0 or n > self.size:
            raise ArtifactError(f"{self.path} is corrupt: {what} has {n} entries in a {self.size}-byte file")
        return n

    def index(self, i: int, n: int, what: str) -> int:
        if not 0 <= i < n:
            raise ArtifactError(f"{self.path} is corrupt: {what} index {i} out of range 0..{n - 1}")
        return i


def read_tflite(path, *, name: str | None = None) -> Graph:
    data = read_tflite_bytes(path)
    return parse_tflite(data, name=name or Path(path).stem, where=path)


def parse_tflite(data: bytes, *, name: str = "model", where="the .tflite data") -> Graph:
    """The Graph of a .tflite held in memory (``where`` names it in error messages)."""
    if len(data) < 16 or data[4:8] != b"TFL3":
        raise ArtifactError(f"{where} is not a .tflite model (no TFL3 identifier)")
    try:
        return _parse(data, where, name)
    except ArtifactError:
        raise
    except Exception as exc:  # the flatbuffer decoder failed on corrupt data
        raise ArtifactError(f"{where} is corrupt or not a .tflite model ({type(exc).__name__}: {exc}"[:300]
                            + ")") from None


def _parse(data: bytes, path, name: str) -> Graph:
    s = schema()
    chk = _Checked(path, len(data))
    model = s.Model.GetRootAsModel(data, 0)
    n_sub = chk.length(model.SubgraphsLength(), "subgraphs")
    if n_sub < 1:
        raise ArtifactError(f"{path} has no subgraph")
    names = opcode_names()
    n_codes = chk.length(model.OperatorCodesLength(), "operator codes")
    codes = []
    for i in range(n_codes):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == 32:  # CUSTOM
            custom = oc.CustomCode()
            codes.append("CUSTOM:" + (custom.decode(errors="replace") if custom else "?"))
        else:
            codes.append(names.get(code, f"OP_{code}"))
    n_buf = chk.length(model.BuffersLength(), "buffers")
    buffer_bytes = []
    for i in range(n_buf):
        b = model.Buffers(i)
        n = b.DataLength()
        if n == 0 and hasattr(b, "Size"):
            n = int(b.Size() or 0)  # out-of-line buffer (offset/size)
        buffer_bytes.append(int(n))
    graphs = [_parse_subgraph(model, k, codes, buffer_bytes, chk, path, s) for k in range(n_sub)]
    g = graphs[0]
    g.name = name
    g.subgraphs = graphs[1:]
    g.meta = {"subgraphs": n_sub, "file_bytes": len(data), "opcodes": sorted(set(codes)),
              "offline_buffers": any(model.Buffers(i).DataLength() == 0 and buffer_bytes[i] > 0
                                     for i in range(n_buf)),
              "metadata": [_text(model.Metadata(i).Name())
                           for i in range(chk.length(model.MetadataLength(), "metadata"))],
              "offline_plan": offline_entry(model)}  # an OfflineMemoryAllocation entry, or None
    return g


def _text(b) -> str:
    return b.decode(errors="replace") if b else ""


def _parse_subgraph(model, index: int, codes: list[str], buffer_bytes: list[int], chk: _Checked, path, s) -> Graph:
    sg = model.Subgraphs(index)
    n_codes, where = len(codes), (f"subgraph {index} " if index else "")
    type_names = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_") and isinstance(v, int)}
    n_t = chk.length(sg.TensorsLength(), "tensors")
    tensors: list[Tensor] = []
    for i in range(n_t):
        t = sg.Tensors(i)
        shape = tuple(int(d) for d in (t.ShapeAsNumpy() if t.ShapeLength() else []))
        chk.length(len(shape), "tensor shape")
        if any(d < 0 for d in shape):
            shape = tuple(max(d, 1) for d in shape)  # dynamic batch: analyse batch 1
        code = int(t.Type())
        if code not in _TYPES:
            if code not in type_names:  # not a TensorType of this schema at all
                raise ArtifactError(f"{path} is corrupt: {where}tensor {i} has type code {code}, "
                                    f"not a TFLite tensor type")
            dtype, esize = type_names[code].lower(), 1  # a newer type: its size is a guess
        else:
            dtype, esize = _TYPES[code]
        bidx = int(t.Buffer())
        const_bytes = buffer_bytes[bidx] if 0 < bidx < len(buffer_bytes) else 0
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength() > 0:
            nsc = chk.length(q.ScaleLength(), "quantization scales")
            quant = QuantParams(num_scales=nsc, axis=int(q.QuantizedDimension()) if nsc > 1 else None,
                                scale=float(q.Scale(0)),
                                zero_point=int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0,
                                num_zero_points=int(q.ZeroPointLength()))
        tname = t.Name().decode(errors="replace") if t.Name() else f"t{i}"
        stored = const_bytes if const_bytes > 0 else None
        if stored is None and dtype not in DTYPE_BYTES:  # the IR has no size for it: say it here
            stored = (math.prod(shape) if shape else 1) * esize
        tensors.append(Tensor(id=i, name=tname, shape=shape, dtype=dtype, is_const=const_bytes > 0,
                              quant=quant, buffer_bytes=stored, is_variable=bool(t.IsVariable())))
    n_ops = chk.length(sg.OperatorsLength(), "operators")
    ops: list[Op] = []
    for i in range(n_ops):
        o = sg.Operators(i)
        opcode = codes[chk.index(int(o.OpcodeIndex()), n_codes, "opcode")]
        slots = [int(x) for x in (o.InputsAsNumpy() if o.InputsLength() else [])]
        outs = [int(x) for x in (o.OutputsAsNumpy() if o.OutputsLength() else [])]
        ins = [chk.index(x, n_t, "operator input") for x in slots if x >= 0]  # -1: optional absent
        outs = [chk.index(x, n_t, "operator output") for x in outs if x >= 0]
        kind = tflite_kind(opcode)
        if opcode in TFLITE_KINDS and not outs:  # every op of these kinds computes a tensor
            raise ArtifactError(f"{path} is corrupt: {where}operator {i} ({opcode}) has no output tensor")
        op = Op(index=i, kind=kind, name=f"{opcode}_{i}" if not index else f"{opcode}_{index}.{i}",
                inputs=ins, outputs=outs, attrs={"opcode": opcode})
        if len(ins) != len(slots):  # kernels address inputs by position: keep where the gaps are
            op.attrs["input_slots"] = tuple(slots)
        _options(op, o, s)
        _annotate(op, o, tensors, s)
        _const_operands(op, model, sg, tensors)
        ops.append(op)
    g_in = [chk.index(int(x), n_t, "graph input") for x in (sg.InputsAsNumpy() if sg.InputsLength() else [])]
    g_out = [chk.index(int(x), n_t, "graph output") for x in (sg.OutputsAsNumpy() if sg.OutputsLength() else [])]
    name = sg.Name().decode(errors="replace") if sg.Name() else f"subgraph{index}"
    return Graph(tensors=tensors, ops=ops, inputs=g_in, outputs=g_out, source_format="tflite", name=name).link()


def _options(op: Op, o, s) -> None:
    """``attrs["options"]``: the op's builtin options as a dict of the schema's field names
    (object API), ``attrs["custom_options"]``: a custom op's option bytes (a flexbuffer)."""
    if o.CustomOptionsLength():
        op.attrs["custom_options"] = bytes(o.CustomOptionsAsNumpy().tobytes())
    table = o.BuiltinOptions()
    if table is None:
        return
    name = _OPTION_NAMES.get(int(o.BuiltinOptionsType())) or _option_names(s).get(int(o.BuiltinOptionsType()))
    cls, cls_t = getattr(s, name or "", None), getattr(s, f"{name}T", None)
    if cls is None or cls_t is None:
        return
    raw = cls()
    raw.Init(table.Bytes, table.Pos)
    fields = vars(cls_t.InitFromObj(raw))
    op.attrs["options"] = {k: (v.decode(errors="replace") if isinstance(v, bytes) else v) for k, v in fields.items()}


_OPTION_NAMES: dict[int, str] = {}


def _option_names(s) -> dict[int, str]:
    if not _OPTION_NAMES:
        _OPTION_NAMES.update({v: k for k, v in vars(s.BuiltinOptions).items()
                              if not k.startswith("_") and isinstance(v, int) and k != "NONE"})
    return _OPTION_NAMES


def _annotate(op: Op, o, tensors: list[Tensor], s) -> None:
    out = tensors[op.outputs[0]] if op.outputs else None
    consts = [tensors[t] for t in op.inputs if tensors[t].is_const]
    op.params = sum(t.numel for t in consts)
    if out is None:
        return
    opts_type = int(o.BuiltinOptionsType())
    if op.kind in ("conv2d", "depthwise_conv2d", "linear", "conv_transpose") and len(op.inputs) >= 2:
        w = tensors[op.inputs[1]]
        if op.kind == "conv2d" and len(w.shape) == 4:
            op.macs = out.numel * w.shape[1] * w.shape[2] * w.shape[3]
            op.attrs.update(kernel=(w.shape[1], w.shape[2]), out_channels=w.shape[0])
        elif op.kind == "depthwise_conv2d" and len(w.shape) == 4:
            op.macs = out.numel * w.shape[1] * w.shape[2]
            op.attrs.update(kernel=(w.shape[1], w.shape[2]), out_channels=w.shape[3])
        elif op.kind == "linear" and w.shape:
            op.macs = out.numel * w.shape[-1]
            op.attrs.update(out_channels=w.shape[0])
        elif op.kind == "conv_transpose" and len(tensors[op.inputs[1]].shape) == 4:
            wt = tensors[op.inputs[1]]  # TRANSPOSE_CONV inputs: output_shape, weights, input
            inp = tensors[op.inputs[2]] if len(op.inputs) > 2 else wt
            op.macs = inp.numel * wt.shape[0] * wt.shape[1] * wt.shape[2]
    # fused activation and padding mode where the options carry them
    table = o.BuiltinOptions()
    if table is None:
        return
    cls = {s.BuiltinOptions.Conv2DOptions: s.Conv2DOptions,
           s.BuiltinOptions.DepthwiseConv2DOptions: s.DepthwiseConv2DOptions,
           s.BuiltinOptions.FullyConnectedOptions: s.FullyConnectedOptions,
           s.BuiltinOptions.AddOptions: s.AddOptions, s.BuiltinOptions.MulOptions: s.MulOptions,
           s.BuiltinOptions.SubOptions: s.SubOptions, s.BuiltinOptions.DivOptions: s.DivOptions,
           s.BuiltinOptions.TransposeConvOptions: s.TransposeConvOptions,
           s.BuiltinOptions.Pool2DOptions: s.Pool2DOptions,
           s.BuiltinOptions.ConcatenationOptions: s.ConcatenationOptions}.get(opts_type)
    if cls is None:
        return
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    if hasattr(opts, "FusedActivationFunction"):
        op.attrs["fused_activation"] = _FUSED_ACT.get(int(opts.FusedActivationFunction()))
    if hasattr(opts, "Padding"):
        op.attrs["padding"] = "same" if int(opts.Padding()) == 0 else "valid"
    if hasattr(opts, "StrideH"):
        op.attrs["stride"] = (int(opts.StrideH()), int(opts.StrideW()))
    if hasattr(opts, "FilterHeight"):
        op.attrs["kernel"] = (int(opts.FilterHeight()), int(opts.FilterWidth()))
    if hasattr(opts, "DilationHFactor"):
        op.attrs["dilation"] = (int(opts.DilationHFactor()), int(opts.DilationWFactor()))
    if hasattr(opts, "DepthMultiplier"):
        op.attrs["depth_multiplier"] = int(opts.DepthMultiplier())
    if op.kind == "concat" and hasattr(opts, "Axis"):
        op.attrs["axis"] = int(opts.Axis())


# constant operands that fix an op's data movement: {opcode: ((input index, attribute name), ...)}
_CONST_OPERANDS = {"PAD": ((1, "paddings"),), "PADV2": ((1, "paddings"),), "MIRROR_PAD": ((1, "paddings"),),
                   "TRANSPOSE": ((1, "perm"),), "SLICE": ((1, "begin"), (2, "size"))}


def _const_operands(op: Op, model, sg, tensors: list[Tensor]) -> None:
    """Record small int32/int64 constant operands (paddings, perm, begin/size) as attributes,
    e.g. ``attrs["paddings"] = ((0, 0), (1, 1), (1, 1), (0, 0))`` for a PAD."""
    import numpy as np

    for pos, attr in _CONST_OPERANDS.get(op.attrs.get("opcode"), ()):
        if pos >= len(op.inputs) or not tensors[op.inputs[pos]].is_const:
            continue
        t = tensors[op.inputs[pos]]
        if t.dtype not in ("int32", "int64") or t.numel > 64:
            continue
        raw = model.Buffers(int(sg.Tensors(t.id).Buffer())).DataAsNumpy()
        vals = np.frombuffer(raw.tobytes(), dtype="<i4" if t.dtype == "int32" else "<i8")
        if vals.size != t.numel:
            continue
        if attr == "paddings":
            op.attrs[attr] = tuple((int(a), int(b)) for a, b in vals.reshape(-1, 2))
        else:
            op.attrs[attr] = tuple(int(v) for v in vals)
