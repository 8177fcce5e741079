"""What runs inside a .pte's XNNPACK delegate: its nodes and its tensors' ranks, without torch.

An ExecuTorch program hands whole subgraphs to XNNPACK as one ``DelegateCall``; the graph
reader (``pte_reader``) sees only that call. The delegate's payload is an ``XH00`` header
(``executorch/backends/xnnpack/serialization/xnnpack_graph_serialize.py`` ``XNNHeader``:
bytes 4..8 magic, 8..10 header length, 10..14 flatbuffer offset, 14..18 flatbuffer size)
followed by an ``XNNGraph`` FlatBuffer (``runtime_schema.fbs``): ``xnodes`` (a union per
node, e.g. ``XNNStaticTranspose``) and ``xvalues`` (tensors with their ``dims``). This module
decodes those two tables with the bounds-checked reader of ``pte_reader`` so that tests and
lint can see the TRANSPOSEs and rank-5 tensors a delegate would execute.

Where the payload lives: ``Program.execution_plan[0].delegates[i].processed`` is a
``BackendDelegateDataReference`` (``program.fbs``): ``location`` INLINE (0) indexes
``Program.backend_delegate_data``, SEGMENT (1) indexes ``Program.segments`` (bytes after
the program at ``segment_base_offset``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from edgekit.errors import ArtifactError
from edgekit.graph.pte_reader import _extended_header, _Reader, delegate_data, read_pte_bytes

# union XNodeUnion of runtime_schema.fbs (executorch 1.5), in declaration order; type tag = index + 1
XNODE_TYPES = (
    "Add", "FullyConnected", "Softmax", "Sigmoid", "StaticTranspose", "Clamp", "Conv2d", "Div",
    "StaticResizeBilinear2D", "StaticConstantPad", "AvgPooling2d", "Minimum", "DepthwiseConv2d",
    "MaxPooling2d", "Multiply", "Subtract", "Floor", "Convert", "GlobalAvgPooling2d", "StaticReshape",
    "ArgMaxPooling2d", "SquareRoot", "Ceiling", "Hardswish", "LeakyReLU", "Maximum", "Negate", "Square",
    "ELU", "Abs", "PReLU", "Concatenate2", "Concatenate3", "Concatenate4", "StaticSlice",
    "ScaledDotProductAttention", "BatchMatrixMultiply", "Concatenate5", "ConvTranspose2d",
    "ReciprocalSquareRoot", "Log", "Gelu", "Tanh", "Exp", "Sin", "Copy", "Cos",
)
_XVALUE_TENSOR, _XVALUE_QUANTIZED = 1, 2
# single-input nodes that keep the layout: kind -> (input_id field, output_id field) in runtime_schema.fbs
_FLOAT_TYPES = (1, 2, 14)  # XNNDatatype fp32, fp16, bf16
_COPY_LIKE = {"StaticConstantPad": (3, 4), "Clamp": (0, 1), "Convert": (0, 1), "Copy": (0, 1)}
_XNN_MAGIC = b"XH00"


@dataclass
class XnnpackGraph:
    """One XNNPACK delegate: node kinds in order, every tensor value's dims, the transposes."""

    backend: str
    nodes: list[str]
    value_dims: list[tuple[int, ...]]
    transposes: list[dict] = field(default_factory=list)  # {"node", "perm", "input", "output", "dims"}
    external: set = field(default_factory=set)  # value ids of the delegate's inputs and outputs
    copied_from: dict = field(default_factory=dict)  # output id -> input id of pads, clamps, converts
    converts: list[dict] = field(default_factory=list)  # {"node", "input", "output", "float": bool}

    @property
    def interior_converts(self) -> list[dict]:
        """XNNConvert nodes away from the delegate's inputs and outputs: float <-> int8 (``float``:
        the edge of a float island) or int8 -> int8 (a requantization)."""
        return [c for c in self.converts if c["input"] not in self.external and c["output"] not in self.external]

    def _from_input(self, value: int) -> bool:
        """True when ``value`` is a delegate input, possibly padded/clamped/converted on the way."""
        seen = set()
        while value not in self.external and value in self.copied_from and value not in seen:
            seen.add(value)
            value = self.copied_from[value]
        return value in self.external

    @property
    def interior_transposes(self) -> list[dict]:
        """Transposes that move data and neither read a delegate input nor write a delegate output
        (the NCHW<->NHWC conversions at the edges of an XNNPACK delegate are the others, and so is a
        permutation of size-1 dims such as NHWC->NCHW of a pooled 1x1 map, which moves no byte). The
        input's conversion stays an edge when a pad, clamp or convert of the input comes first."""
        return [t for t in self.transposes if not self._from_input(t["input"]) and t["output"] not in self.external
                and moves_data(t["perm"], t["dims"])]

    @property
    def max_rank(self) -> int:
        return max((len(d) for d in self.value_dims), default=0)

    def counts(self) -> Counter:
        return Counter(self.nodes)


def moves_data(perm: list[int], out_dims: tuple[int, ...]) -> bool:
    """False when the transpose only permutes size-1 dims (its output has the input's memory order)."""
    if not out_dims or len(out_dims) != len(perm):
        return True
    in_dims = [0] * len(perm)
    for out_axis, in_axis in enumerate(perm):
        in_dims[in_axis] = out_dims[out_axis]
    order = [p for p in perm if in_dims[p] != 1]
    return order != sorted(order)


def delegate_payloads(path) -> list[tuple[str, bytes]]:
    """(backend id, payload bytes) of every delegate of execution plan 0."""
    data = read_pte_bytes(path)
    hdr = _extended_header(data, path)
    r = _Reader(data, path, hdr["program_size"])
    root = r.table(r.u32(0), "Program")
    plans = root.tables(1, "execution_plan")
    if not plans:
        raise ArtifactError(f"{path} has no execution plan")
    inline = []
    for b in root.tables(3, "backend_delegate_data"):
        start, n = b._vector(0, 1, "delegate data")
        inline.append(data[start:start + n])
    segments = []
    base = hdr["segment_base_offset"]
    for s in root.tables(4, "segments"):
        off, size = s.scalar(0, "u64"), s.scalar(1, "u64")
        if base + off + size > len(data):
            raise ArtifactError(f"{path} is truncated: a segment ends at byte {base + off + size}")
        segments.append(data[base + off:base + off + size])
    return delegate_data(r, plans[0], inline, segments)


def read_xnnpack_payload(payload: bytes, *, backend: str = "XnnpackBackend", path="<delegate>") -> XnnpackGraph:
    """Decode an XNNPACK delegate payload (``XH00`` header + ``XNNGraph`` FlatBuffer)."""
    if len(payload) < 18 or payload[4:8] != _XNN_MAGIC:
        raise ArtifactError(f"{path}: the {backend} payload has no XH00 header (not an XNNPACK graph)")
    fb_off = int.from_bytes(payload[10:14], "little")
    fb_size = int.from_bytes(payload[14:18], "little")
    if fb_off + fb_size > len(payload) or fb_size < 8:
        raise ArtifactError(f"{path}: the XNNPACK graph ({fb_size} B at {fb_off}) is outside its "
                            f"{len(payload)}-B payload")
    fb = payload[fb_off:fb_off + fb_size]
    r = _Reader(fb, path, len(fb))
    root = r.table(r.u32(0), "XNNGraph")
    nodes, transposes, copied_from, converts = [], [], {}, []
    for i, n in enumerate(root.tables(1, "xnodes")):
        tag = n.scalar(0, "u8")
        kind = XNODE_TYPES[tag - 1] if 1 <= tag <= len(XNODE_TYPES) else f"node_type_{tag}"
        nodes.append(kind)
        body = n.table(1, f"xnode {i}")
        if kind == "StaticTranspose" and body is not None:  # num_dims, perm, input_id, output_id, flags
            transposes.append({"node": i, "perm": [int(p) for p in body.scalars(1, "u32", 4, "transpose perm")],
                               "input": body.scalar(2, "u32"), "output": body.scalar(3, "u32")})
        elif kind in _COPY_LIKE and body is not None:
            fin, fout = _COPY_LIKE[kind]
            copied_from[body.scalar(fout, "u32")] = body.scalar(fin, "u32")
            if kind == "Convert":
                converts.append({"node": i, "input": body.scalar(fin, "u32"), "output": body.scalar(fout, "u32")})
    dims, by_id, dtype_of = [], {}, {}
    for i, v in enumerate(root.tables(2, "xvalues")):
        tag = v.scalar(0, "u8")
        body = v.table(1, f"xvalue {i}")
        if body is not None and tag == _XVALUE_QUANTIZED:
            body = body.table(0, f"xvalue {i} tensor")
        if body is None or tag not in (_XVALUE_TENSOR, _XVALUE_QUANTIZED):
            dims.append(())
            continue
        d = tuple(int(x) for x in body.scalars(2, "u32", 4, f"dims of xvalue {i}"))
        dims.append(d)
        by_id[body.scalar(6, "u32")] = d  # id_out: the id nodes refer to
        dtype_of[body.scalar(6, "u32")] = body.scalar(0, "i16")  # XNNDatatype
    for t in transposes:
        t["dims"] = by_id.get(t["output"], ())
    for c in converts:  # xnn_datatype_fp32 = 1, fp16 = 2: one side float
        c["float"] = dtype_of.get(c["input"]) in _FLOAT_TYPES or dtype_of.get(c["output"]) in _FLOAT_TYPES
    external = set(root.scalars(4, "u32", 4, "input ids")) | set(root.scalars(5, "u32", 4, "output ids"))
    return XnnpackGraph(backend=backend, nodes=nodes, value_dims=dims, transposes=transposes, external=external,
                        copied_from=copied_from, converts=converts)


def xnnpack_graphs(path) -> list[XnnpackGraph]:
    """Every XNNPACK delegate of a .pte, decoded (other backends are skipped)."""
    return [read_xnnpack_payload(p, backend=b, path=path) for b, p in delegate_payloads(path)
            if b.lower().startswith("xnnpack")]
