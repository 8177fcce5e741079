"""The patch rewrite (MCUNetV2): the first stage of a graph, up to a split tensor, run once per
spatial patch of a grid — each patch SLICEd from the stage input with its receptive field,
zero-padded where it runs past the border, computed with VALID windows, and the patch outputs
CONCATENATed back — as new tensors and ops (``patch_rewrite``), and as the Graph the arena model
reads (``patched_graph``). The region arithmetic it rests on is ``analysis.patches``; the .tflite
rewrite that writes it is ``export.tflite_patch``."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from edgekit.analysis.patches import (
    MAX_GRID,
    PAD_OPS,
    PREFIX,
    WINDOW_OPS,
    Box,
    PatchError,
    Stage,
    _extent,
    _opcode,
    find_stage,
    regions,
    requirement,
    tiles,
)
from edgekit.graph.ir import Graph, Op, Tensor


@dataclass
class NewTensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    like: int | None = None  # original tensor whose quantization this one takes
    data: bytes | None = None  # constant contents, little-endian; None: an activation
    source: int | None = None  # original tensor this one is a region of
    box: tuple[tuple[int, int], ...] | None = None  # per-axis [lo, hi) in ``source``'s coordinates


@dataclass
class NewOp:
    """One op of the patched stage. Tensor references: ``>= 0`` original tensor ids, ``-(k + 1)`` the
    k-th new tensor. ``like``: original op whose options are copied (window ops made VALID)."""

    opcode: str
    inputs: list[int]
    outputs: list[int]
    like: int | None = None
    options: dict = field(default_factory=dict)  # axis (CONCATENATION), new_shape (RESHAPE)
    patch: str = ""
    macs: int = 0


@dataclass
class PatchRewrite:
    """How the stage of ``split`` becomes ``grid`` patches (see the module doc)."""

    split: int
    grid: tuple[int, int]
    stage: Stage
    tensors: list[NewTensor]
    ops: list[NewOp]
    removed: set[int]  # original tensors that no longer exist (the stage's inner tensors, their padding consts)
    macs: int  # MACs of the patched stage (halos recomputed)

    @property
    def extra_macs(self) -> int:
        return self.macs - self.stage.macs


class _Builder:
    def __init__(self, g: Graph, st: Stage):
        self.g, self.st = g, st
        self.tensors: list[NewTensor] = []
        self.ops: list[NewOp] = []
        self.consts: dict[tuple, int] = {}
        self.crops: dict[tuple, int] = {}

    def tensor(self, nt: NewTensor) -> int:
        self.tensors.append(nt)
        return -len(self.tensors)

    def const(self, kind: str, dtype: str, values: list, shape: tuple) -> int:
        fmt = {"int32": "i", "int8": "b", "int16": "h", "uint8": "B", "float32": "f"}[dtype]
        data = struct.pack(f"<{len(values)}{fmt}", *values)
        key = (dtype, shape, data)
        if key not in self.consts:
            self.consts[key] = self.tensor(NewTensor(f"{PREFIX}const/{kind}/{len(self.consts)}", shape, dtype,
                                                     data=data))
        return self.consts[key]

    def shape_of(self, ref: int) -> tuple[int, ...]:
        return self.tensors[-ref - 1].shape if ref < 0 else self.g.tensors[ref].shape

    def region_tensor(self, patch: str, kind: str, source: int, box: Box, like: int,
                      lay: tuple[int, int] | None = None) -> int:
        g, lay = self.g, lay or self.st.layout[source]
        t = g.tensors[source]
        shape, full = list(t.shape), [(0, d) for d in t.shape]
        shape[lay[0]], shape[lay[1]] = box.h, box.w
        full[lay[0]], full[lay[1]] = (box.y0, box.y1), (box.x0, box.x1)
        text = ",".join(f"{a}:{b}" for a, b in full)
        return self.tensor(NewTensor(f"{PREFIX}{patch}/{kind}/t{source}/{text}", tuple(shape),
                                     g.tensors[like].dtype, like=like, source=source, box=tuple(full)))

    def crop(self, patch: str, ref: int, have: Box, source: int, want: Box) -> int:
        """``ref`` holds ``have`` of ``source``: a SLICE of ``want`` from it (``ref`` itself if equal)."""
        if want == have:
            return ref
        key = (ref, want)
        if key not in self.crops:
            lay = self.st.layout[source]
            shape = self.shape_of(ref)
            begin, size = [0] * len(shape), list(shape)
            begin[lay[0]], begin[lay[1]] = want.y0 - have.y0, want.x0 - have.x0
            size[lay[0]], size[lay[1]] = want.h, want.w
            out = self.region_tensor(patch, "slice", source, want, source)
            self.ops.append(NewOp("SLICE", [ref, self.const("begin", "int32", begin, (len(begin),)),
                                            self.const("size", "int32", size, (len(size),))], [out], patch=patch))
            self.crops[key] = out
        return self.crops[key]

    def pad(self, patch: str, ref: int, lay: tuple[int, int], pads: list[list[int]], opcode: str,
            value_ref: int | None, source: int, box: Box, like: int) -> int:
        """``opcode`` (PAD/PADV2) of ``ref`` by ``pads`` (per axis [before, after]); the result is ``box``
        of ``source`` (named so)."""
        flat = [v for p in pads for v in p]
        out = self.region_tensor(patch, "pad", source, box, like, lay=lay)
        ins = [ref, self.const("paddings", "int32", flat, (len(pads), 2))]
        if value_ref is not None:
            ins.append(value_ref)
        self.ops.append(NewOp(opcode, ins, [out], patch=patch))
        return out


_LOWEST = {"int8": -128, "int16": -32768, "uint8": 0, "float32": -3.4028234663852886e38}


def _fill(b: _Builder, op: Op, x: int) -> tuple[str, int | None]:
    """How a window op's padding is reproduced on a patch's border: (PAD opcode, constant value ref)."""
    code = _opcode(op)
    dtype = b.g.tensors[x].dtype
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return "PAD", None  # the zero point (0.0 for float): a skipped tap
    if code == "MAX_POOL_2D" and dtype in _LOWEST:
        return "PADV2", b.const("lowest", dtype, [_LOWEST[dtype]], (1,))
    raise PatchError(f"{code} #{op.index} pads past the image border with SAME padding, which no PAD "
                     f"reproduces (it averages only the image taps): split before it or use fewer patches")


def _emit_patch(b: _Builder, patch: str, tile: Box) -> int:
    """The ops of one patch; returns the reference of its tile of the split."""
    g, st = b.g, b.st
    need = regions(g, st, tile)
    have: dict[int, tuple[int, Box]] = {}
    for x in st.inputs:
        h, w = _extent(g, st.layout, x)
        have[x] = (x, Box(0, h, 0, w))
    for i in st.ops:
        op = g.ops[i]
        code, y = _opcode(op), op.outputs[0]
        out_box = need[y]
        req = requirement(g, op, out_box, st.layout[y])
        ins = []
        for x in op.inputs:
            if g.tensors[x].is_const:
                ins.append(x)
                continue
            ref, hb = have[x]
            inside = req.clip(*_extent(g, st.layout, x))
            ref = b.crop(patch, ref, hb, x, inside)
            if code in WINDOW_OPS and inside != req:
                opcode, value = _fill(b, op, x)
                lay = st.layout[x]
                pads = [[0, 0] for _ in g.tensors[x].shape]
                pads[lay[0]] = [inside.y0 - req.y0, req.y1 - inside.y1]
                pads[lay[1]] = [inside.x0 - req.x0, req.x1 - inside.x1]
                ref = b.pad(patch, ref, lay, pads, opcode, value, x, req, x)
            ins.append(ref)
        if code in PAD_OPS:
            have[y] = (_emit_pad(b, patch, op, ins, req, out_box), out_box)
            continue
        out = b.region_tensor(patch, "op", y, out_box, y)
        opts = {}
        if code == "RESHAPE":
            shape = b.shape_of(out)
            opts["new_shape"] = list(shape)
            ins = [ins[0]] + ([b.const("shape", "int32", list(shape), (len(shape),))] if len(ins) > 1 else [])
        n_out = 1
        for d in b.shape_of(out):
            n_out *= d
        macs = op.macs * n_out // max(g.tensors[y].numel, 1)
        b.ops.append(NewOp(code, ins, [out], like=i, options=opts, patch=patch, macs=macs))
        have[y] = (out, out_box)
    return have[st.split][0]


def _emit_pad(b: _Builder, patch: str, op: Op, ins: list[int], req: Box, out_box: Box) -> int:
    """An explicit PAD/PADV2 of the graph on one patch: its own padding where the patch touches the
    border, none (no op at all) inside."""
    g, st = b.g, b.st
    x, y = op.inputs[0], op.outputs[0]
    inside = req.clip(*_extent(g, st.layout, x))
    lay = st.layout[x]
    pads = [list(p) for p in op.attrs["paddings"]]
    pads[lay[0]] = [inside.y0 - req.y0, req.y1 - inside.y1]
    pads[lay[1]] = [inside.x0 - req.x0, req.x1 - inside.x1]
    if not any(v for p in pads for v in p):
        return ins[0]
    value = op.inputs[2] if len(op.inputs) > 2 else None
    return b.pad(patch, ins[0], lay, pads, _opcode(op), value, y, out_box, y)


def _concat(b: _Builder, name: str, refs: list[int], axis: int, out: int | None, box: Box) -> int:
    if len(refs) == 1:
        return refs[0]
    split = b.st.split
    if out is None:
        out = b.region_tensor(name, "concat", split, box, split)
    b.ops.append(NewOp("CONCATENATION", list(refs), [out], options={"axis": axis}, patch=name))
    return out


def patch_rewrite(g: Graph, split: int, grid: tuple[int, int]) -> PatchRewrite:
    """The patched stage of ``split`` cut into ``grid`` = (rows, columns) patches (see the module doc).
    Raises PatchError when the split is not a patchable cut or the grid does not fit it."""
    n, m = int(grid[0]), int(grid[1])
    if n < 1 or m < 1 or n * m < 2:
        raise PatchError(f"a patch grid needs at least 2 patches, got {n}x{m}")
    if max(n, m) > MAX_GRID:
        raise PatchError(f"grid {n}x{m}: at most {MAX_GRID} patches per row or column (TFLite-Micro's "
                         f"CONCATENATION takes at most {MAX_GRID} inputs)")
    st = find_stage(g, split)
    h, w = _extent(g, st.layout, split)
    rows, cols = tiles(h, n), tiles(w, m)
    lay = st.layout[split]
    b = _Builder(g, st)
    row_refs = []
    for r, (y0, y1) in enumerate(rows):
        tile_refs = [_emit_patch(b, f"{r}.{c}", Box(y0, y1, x0, x1)) for c, (x0, x1) in enumerate(cols)]
        row_refs.append(_concat(b, f"row{r}", tile_refs, lay[1], split if n == 1 else None, Box(y0, y1, 0, w)))
    _concat(b, "rows", row_refs, lay[0], split, Box(0, h, 0, w))
    stage = set(st.ops)
    used = {r for op in b.ops for r in op.inputs + op.outputs if r >= 0}
    removed = {g.ops[i].outputs[0] for i in st.ops} - {split}
    for i in st.ops:
        for x in g.ops[i].inputs:
            t = g.tensors[x]
            if t.is_const and x not in used and all(c in stage for c in t.consumers):
                removed.add(x)
    return PatchRewrite(split, (n, m), st, b.tensors, b.ops, removed, sum(op.macs for op in b.ops))



_KINDS = {"SLICE": "slice", "PAD": "pad", "PADV2": "pad", "CONCATENATION": "concat"}


def patched_graph(g: Graph, rw: PatchRewrite) -> Graph:
    """The Graph of the patched model, as ``graph.tflite_reader`` reads the rewritten .tflite back:
    the original tensors that remain (in order), then the new ones; the original ops with the stage
    replaced by the patch ops where the split's producer was."""
    keep = [t.id for t in g.tensors if t.id not in rw.removed]
    idx = {old: new for new, old in enumerate(keep)}

    def ref(r: int) -> int:
        return idx[r] if r >= 0 else len(keep) - r - 1

    tensors = [replace(g.tensors[o], id=idx[o], producer=None, consumers=[]) for o in keep]
    for k, nt in enumerate(rw.tensors):
        like = g.tensors[nt.like] if nt.like is not None else None
        quant = replace(like.quant) if like is not None and like.quant is not None else None
        tensors.append(Tensor(id=len(keep) + k, name=nt.name, shape=tuple(nt.shape), dtype=nt.dtype,
                              is_const=nt.data is not None, quant=quant,
                              buffer_bytes=len(nt.data) if nt.data is not None else None))
    stage, at = set(rw.stage.ops), g.tensors[rw.split].producer
    ops: list[Op] = []
    for op in g.ops:
        if op.index == at:
            for nop in rw.ops:
                ops.append(_ir_op(g, rw, nop, len(ops), ref, tensors))
        if op.index in stage:
            continue
        ops.append(replace(op, index=len(ops), name=f"{_opcode(op)}_{len(ops)}", inputs=[ref(t) for t in op.inputs],
                           outputs=[ref(t) for t in op.outputs], attrs=dict(op.attrs)))
    meta = dict(g.meta)
    meta["patches"] = {"split": rw.split, "grid": list(rw.grid)}
    return Graph(tensors=tensors, ops=ops, inputs=[ref(t) for t in g.inputs], outputs=[ref(t) for t in g.outputs],
                 source_format=g.source_format, name=g.name, meta=meta).link()


def _ir_op(g: Graph, rw: PatchRewrite, nop: NewOp, index: int, ref, tensors: list[Tensor]) -> Op:
    ins, outs = [ref(t) for t in nop.inputs], [ref(t) for t in nop.outputs]
    if nop.like is not None:
        src = g.ops[nop.like]
        attrs = dict(src.attrs)
        if nop.opcode in WINDOW_OPS:
            attrs["padding"] = "valid"
        params = sum(tensors[t].numel for t in ins if tensors[t].is_const)
        return Op(index=index, kind=src.kind, name=f"{nop.opcode}_{index}", inputs=ins, outputs=outs,
                  macs=nop.macs, params=params, attrs=attrs, source=src.source)
    attrs = {"opcode": nop.opcode}
    consts = [_int32s(rw.tensors[-r - 1].data) if r < 0 and rw.tensors[-r - 1].data is not None else []
              for r in nop.inputs[1:]]
    if nop.opcode in PAD_OPS:
        flat = consts[0]
        attrs["paddings"] = tuple((flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2))
    elif nop.opcode == "SLICE":
        attrs["begin"], attrs["size"] = tuple(consts[0]), tuple(consts[1])
    elif nop.opcode == "CONCATENATION":
        attrs["axis"], attrs["fused_activation"] = nop.options["axis"], None
    params = sum(tensors[t].numel for t in ins if tensors[t].is_const)
    return Op(index=index, kind=_KINDS.get(nop.opcode, nop.opcode.lower()), name=f"{nop.opcode}_{index}",
              inputs=ins, outputs=outs, params=params, attrs=attrs)


def _int32s(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 4}i", data))
