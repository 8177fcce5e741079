"""Patch-based inference (MCUNetV2): which region of each tensor a spatial patch needs, and the patched graph.

MCUNetV2 (Lin et al., NeurIPS 2021, arXiv 2110.15352) runs the first, high-resolution stage of a CNN
one spatial patch at a time, so that only the stage's output is ever held whole. Here a graph is split
at one tensor S (the *split*): the *patch stage* is every op S depends on, the rest reads S only. S is
cut into an n x m grid of tiles (rows and columns as even as integers allow: ``tiles``); for each tile
the stage is run on the smallest input region that produces it, and CONCATENATIONs assemble S.

**Regions, backwards** (``regions``). A region is a box of rows and columns of a tensor, in that
tensor's own coordinates. From the tile (S's region), each op's output region gives its inputs':

- CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D: output rows ``[a, b)`` read input rows
  ``[a*s - p, (b-1)*s - p + (k-1)*d + 1)``, with kernel k, stride s, dilation d and p the padding
  before: 0 for VALID, TFLite's SAME rule otherwise (kernels/padding.h ``ComputePaddingWithOffset``:
  ``max(0, (out-1)*s + (k-1)*d + 1 - in) // 2``); columns alike.
- PAD/PADV2: the output region shifted by the padding before.
- element-wise ops, ADD/SUB/MUL of same-shaped tensors, CONCATENATION along channels, TRANSPOSE and
  RESHAPE that keep the spatial dimensions whole: the same region.

A tensor read by several ops of the stage (a residual's input, a concat's) must provide the bounding box
of what each needs (the union); each op then reads the part it needs (a SLICE when that is less).
Regions are clipped to the tensor; what a window op needs beyond the border is its padding.

**The patched ops, forwards** (``patch_rewrite``), per tile in row-major order: SLICE of the resident
input region (the whole graph input stays in memory through the stage, and every figure counts it),
the stage's ops on the patch with VALID padding, and a PAD only on the sides where the patch's window
runs past the image border — with the value the unpatched op pads with, so every output is the same
integer: a SAME convolution skips taps outside the image (reference integer_ops/conv.h and
depthwise_conv.h ``is_point_inside_image``; CMSIS-NN arm_convolve_s8's im2col writes ``0`` for
``x + input_offset`` there), and an int8 PAD without a constant writes the output zero point
(micro/kernels/pad.cc and cmsis_nn/pad.cc: ``pad_value = output_zero_point``), whose
``x + input_offset`` is 0 too: the accumulators are identical. A SAME max pool gets the type's lowest
value (a SAME window always holds an image tap, so it never wins); a SAME average pool divides by the
number of image taps, which no padding reproduces: a stage whose tile needs it past the border is
refused. An explicit PAD op pads only where its patch touches the border, with its own value.
After each row of tiles, a CONCATENATION along the width assembles the row, and one along the height
assembles S (TFLite-Micro's CONCATENATION takes at most 10 inputs, micro/kernels/concatenation.cc
``kMaxInputNum``: grids are at most 10 x 10). Every new tensor takes the quantization of the tensor it
is a region of: nothing is recalibrated, so the patched model computes the same integers.

New tensors are named ``edgekit.patch/<patch>/<kind>/t<id>/<box>`` (``PREFIX``): ``id`` is the original
tensor the new one is a region of and ``box`` its per-axis ``lo:hi`` in that tensor's coordinates
(rows or columns beyond the border where a PAD added them). The verifier compares each against the
original model's tensor; the lint recognises the patch ops by it.

Works on any Graph whose ops carry ``attrs["opcode"]`` (a .tflite read by ``graph.tflite_reader``, or the
lowered pre-export graph of ``analysis.lowering``); ``patched_graph`` gives the Graph the rewritten
.tflite reads back as, for the arena models (``tflm_arena``, ``offline_plan``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgekit.graph.ir import Graph, Op, hw_pair

PREFIX = "edgekit.patch/"
MAX_GRID = 10  # TFLite-Micro CONCATENATION: kMaxInputNum inputs

WINDOW_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"}
PAD_OPS = {"PAD", "PADV2"}
UNARY_OPS = {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "HARD_SWISH", "LOGISTIC", "TANH", "LEAKY_RELU",
             "QUANTIZE", "DEQUANTIZE", "ABS", "NEG", "ELU", "EXP", "SQRT", "RSQRT", "SQUARE", "CAST", "GELU"}
BINARY_OPS = {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE"}
LAYOUT_OPS = {"TRANSPOSE", "RESHAPE"}
STAGE_OPS = WINDOW_OPS | PAD_OPS | UNARY_OPS | BINARY_OPS | LAYOUT_OPS | {"CONCATENATION"}
_NAME = re.compile(r"^edgekit\.patch/([^/]+)/(\w+)/t(\d+)/(-?\d+:-?\d+(?:,-?\d+:-?\d+)*)$")


class PatchError(ValueError):
    """The graph cannot be patched at this split with this grid (the message says why)."""


# ---- boxes and tiles ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Box:
    """Rows ``[y0, y1)`` and columns ``[x0, x1)`` of a tensor (may run past its border)."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    def union(self, o: Box | None) -> Box:
        if o is None:
            return self
        return Box(min(self.y0, o.y0), max(self.y1, o.y1), min(self.x0, o.x0), max(self.x1, o.x1))

    def clip(self, h: int, w: int) -> Box:
        return Box(max(self.y0, 0), min(self.y1, h), max(self.x0, 0), min(self.x1, w))

    def contains(self, o: Box) -> bool:
        return self.y0 <= o.y0 and o.y1 <= self.y1 and self.x0 <= o.x0 and o.x1 <= self.x1


def tiles(size: int, n: int) -> list[tuple[int, int]]:
    """``n`` half-open ranges covering ``[0, size)``, as even as integers allow (the first ones smaller)."""
    if not 1 <= n <= size:
        raise PatchError(f"cannot cut {size} rows or columns into {n} patches")
    edges = [i * size // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


def parse_patch_name(name: str) -> tuple[str, str, int, tuple[tuple[int, int], ...]] | None:
    """(patch, kind, original tensor id, per-axis box) of a patch tensor's name, or None."""
    m = _NAME.match(name)
    if not m:
        return None
    box = tuple(tuple(int(v) for v in part.split(":")) for part in m.group(4).split(","))
    return m.group(1), m.group(2), int(m.group(3)), box


def is_patch_name(name: str) -> bool:
    return name.startswith(PREFIX)


# ---- the stage ------------------------------------------------------------------------------------

@dataclass
class Stage:
    """The ops that compute ``split`` from the graph inputs, and where each tensor keeps its rows/columns."""

    split: int
    ops: list[int]  # original op indices, in graph order
    layout: dict[int, tuple[int, int]]  # activation tensor id -> (row axis, column axis)
    inputs: list[int]  # graph inputs the stage reads (resident during the stage)
    macs: int = 0


def _opcode(op: Op) -> str:
    return op.attrs.get("opcode") or op.kind.upper()


def _acts(g: Graph, op: Op) -> list[int]:
    return [t for t in op.inputs if not g.tensors[t].is_const]


def find_stage(g: Graph, split: int) -> Stage:
    """The patch stage of ``split`` (a tensor id), or PatchError saying why there is none."""
    if not 0 <= split < len(g.tensors):
        raise PatchError(f"no tensor {split}")
    t = g.tensors[split]
    if t.producer is None or t.is_const:
        raise PatchError(f"tensor {split} ({t.name}) is not computed by an op")
    ops, todo = set(), [t.producer]
    while todo:
        i = todo.pop()
        if i in ops:
            continue
        ops.add(i)
        for x in _acts(g, g.ops[i]):
            p = g.tensors[x].producer
            if p is not None:
                todo.append(p)
            elif x not in g.inputs:
                raise PatchError(f"the stage reads tensor {x} ({g.tensors[x].name}), neither computed nor an input")
    stage_ops = sorted(ops)
    for i in stage_ops:
        op = g.ops[i]
        if len(op.outputs) != 1:
            raise PatchError(f"{_opcode(op)} #{i} has {len(op.outputs)} outputs (not supported in a patch stage)")
        out = op.outputs[0]
        if out == split:
            continue
        outside = [c for c in g.tensors[out].consumers if c not in ops]
        if outside or out in g.outputs:
            where = f"{_opcode(g.ops[outside[0]])} #{outside[0]}" if outside else "a graph output"
            raise PatchError(f"tensor {out} ({g.tensors[out].name[:60]}) of the stage is also read after the "
                             f"split (by {where}): the split is not a cut of the graph")
    inputs = sorted({x for i in stage_ops for x in _acts(g, g.ops[i]) if g.tensors[x].producer is None})
    stage = Stage(split, stage_ops, {}, inputs, sum(g.ops[i].macs for i in stage_ops))
    _layouts(g, stage)
    return stage


def _layouts(g: Graph, st: Stage) -> None:
    """Row/column axes of every stage tensor: NHWC for the window ops' tensors, carried through
    element-wise ops and permuted by TRANSPOSE; an input read by a TRANSPOSE is laid out as the
    TRANSPOSE's inverse (the converter's leading NCHW->NHWC)."""
    lay = st.layout
    for x in st.inputs:
        perms = [g.ops[c].attrs.get("perm") for c in g.tensors[x].consumers
                 if c in st.ops and _opcode(g.ops[c]) == "TRANSPOSE"]
        if perms and perms[0] is not None and len(perms[0]) == 4:
            lay[x] = (perms[0][1], perms[0][2])
        elif len(g.tensors[x].shape) == 4:
            lay[x] = (1, 2)
        else:
            raise PatchError(f"input {x} ({g.tensors[x].name[:60]}) is not an image (shape {g.tensors[x].shape})")
    for i in st.ops:
        op = g.ops[i]
        code = _opcode(op)
        if code not in STAGE_OPS:
            raise PatchError(f"{code} #{i} cannot run on patches (supported: {', '.join(sorted(STAGE_OPS))})")
        y = op.outputs[0]
        ins = _acts(g, op)
        if not ins:
            raise PatchError(f"{code} #{i} reads no activation")
        lx = lay[ins[0]]
        ty, tx = g.tensors[y], g.tensors[ins[0]]
        if code == "TRANSPOSE":
            perm = op.attrs.get("perm")
            if perm is None or len(perm) != len(tx.shape):
                raise PatchError(f"TRANSPOSE #{i}: its permutation is not a constant")
            lay[y] = (list(perm).index(lx[0]), list(perm).index(lx[1]))
        elif code == "RESHAPE":
            keep = max(lx) + 1
            if tuple(ty.shape[:keep]) != tuple(tx.shape[:keep]):
                raise PatchError(f"RESHAPE #{i} changes the spatial dimensions {tx.shape} -> {ty.shape}")
            lay[y] = lx
        else:
            if code in WINDOW_OPS and (lx != (1, 2) or len(tx.shape) != 4):
                raise PatchError(f"{code} #{i} reads a tensor that is not NHWC")
            lay[y] = lx
        _check_operands(g, op, code, lay)
    if len(g.tensors[st.split].shape) < 3:
        raise PatchError(f"the split tensor {st.split} has no rows and columns")


def _check_operands(g: Graph, op: Op, code: str, lay: dict) -> None:
    y = g.tensors[op.outputs[0]]
    ly = lay[op.outputs[0]]
    for x in op.inputs:
        t = g.tensors[x]
        if t.is_const:
            if code in BINARY_OPS and len(t.shape) == len(y.shape) and \
                    (t.shape[ly[0]] != 1 or t.shape[ly[1]] != 1):
                raise PatchError(f"{code} #{op.index} has a constant operand with rows and columns")
            continue
        if code == "CONCATENATION":
            axis = op.attrs.get("axis")
            axis = axis + len(y.shape) if axis is not None and axis < 0 else axis
            if axis is None or axis in ly or lay[x] != ly:
                raise PatchError(f"CONCATENATION #{op.index} joins along rows or columns")
        elif code in BINARY_OPS and tuple(t.shape) != tuple(y.shape):
            raise PatchError(f"{code} #{op.index} broadcasts {t.shape} to {y.shape}")
        elif code in PAD_OPS and op.attrs.get("paddings") is None:
            raise PatchError(f"{code} #{op.index}: its paddings are not a constant")
        elif code in ("AVERAGE_POOL_2D", "MAX_POOL_2D") and op.attrs.get("kernel") is None:
            raise PatchError(f"{code} #{op.index}: pooling window unknown")


# ---- windows and regions ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Win:
    k: int
    s: int
    d: int
    pad: int  # padding before (rows or columns)


def window(g: Graph, op: Op) -> tuple[_Win, _Win]:
    """(rows, columns) window of a conv or pool op, with TFLite's SAME padding before."""
    code = _opcode(op)
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = g.tensors[op.inputs[1]].shape
        k = (w[1], w[2])
        d = hw_pair(op.attrs.get("dilation"))
    else:
        k = hw_pair(op.attrs["kernel"])
        d = (1, 1)
    s = hw_pair(op.attrs.get("stride"))
    same = op.attrs.get("padding", "valid") == "same"
    out = []
    for dim in range(2):
        n_in, n_out = x.shape[1 + dim], y.shape[1 + dim]
        eff = (k[dim] - 1) * d[dim] + 1
        pad = max(0, (n_out - 1) * s[dim] + eff - n_in) // 2 if same else 0
        out.append(_Win(k[dim], s[dim], d[dim], pad))
    return out[0], out[1]


def _span_window(lo: int, hi: int, w: _Win) -> tuple[int, int]:
    return lo * w.s - w.pad, (hi - 1) * w.s - w.pad + (w.k - 1) * w.d + 1


def requirement(g: Graph, op: Op, out_box: Box, layout: tuple[int, int] = (1, 2)) -> Box:
    """The box of the op's (first) activation input that produces ``out_box`` of its output, before
    clipping to the input (rows/columns past the border are the op's padding). ``layout``: the row and
    column axes of the op's output (PAD's paddings are per axis)."""
    code = _opcode(op)
    if code in WINDOW_OPS:
        wy, wx = window(g, op)
        y0, y1 = _span_window(out_box.y0, out_box.y1, wy)
        x0, x1 = _span_window(out_box.x0, out_box.x1, wx)
        return Box(y0, y1, x0, x1)
    if code in PAD_OPS:
        pads = op.attrs["paddings"]
        py, px = pads[layout[0]][0], pads[layout[1]][0]
        return Box(out_box.y0 - py, out_box.y1 - py, out_box.x0 - px, out_box.x1 - px)
    return out_box


def _extent(g: Graph, lay: dict, tid: int) -> tuple[int, int]:
    t = g.tensors[tid]
    a = lay[tid]
    return t.shape[a[0]], t.shape[a[1]]


def regions(g: Graph, st: Stage, tile: Box) -> dict[int, Box]:
    """{stage tensor id: the box of it one patch needs} for the tile ``tile`` of the split (clipped;
    the union over the tensor's readers)."""
    need: dict[int, Box] = {st.split: tile}
    for i in reversed(st.ops):
        op = g.ops[i]
        out = need.get(op.outputs[0])
        if out is None:
            continue
        req = requirement(g, op, out, st.layout[op.outputs[0]])
        for x in dict.fromkeys(_acts(g, op)):
            inside = req.clip(*_extent(g, st.layout, x))
            if inside.h <= 0 or inside.w <= 0:
                raise PatchError(f"the patch {tile} of the split would read only the padding of "
                                 f"{_opcode(op)} #{i}: use fewer patches")
            need[x] = inside.union(need.get(x))
    return need


# ---- naming a split and a grid ------------------------------------------------------------------

_GRID = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_grid(grid) -> tuple[int, int]:
    """(rows, columns) from ``(n, m)``, ``n`` (square) or ``"NxM"``."""
    from edgekit.errors import UsageError

    if isinstance(grid, int):
        return grid, grid
    if isinstance(grid, (tuple, list)) and len(grid) == 2:
        return int(grid[0]), int(grid[1])
    m = _GRID.match(str(grid))
    if not m:
        raise UsageError(f"bad patch grid {grid!r}: expected ROWSxCOLUMNS, e.g. 2x2")
    return int(m.group(1)), int(m.group(2))


def layer_path(g: Graph, op: Op) -> str:
    """The module path an op belongs to: its ``source`` (pre-export graphs), else ``graph.names.primary``
    of its output's name (a .tflite: the conv for a conv with its fused BatchNorm and activation), ""
    when the name says none."""
    from edgekit.graph.names import locations, primary

    if op.source:  # a captured or lowered PyTorch graph knows the module
        return op.source
    loc = primary(locations(g.tensors[op.outputs[0]].name), op.kind) if op.outputs else None
    return loc.path if loc is not None else ""


def resolve_split(g: Graph, split) -> int:
    """The tensor id a split names: an int or ``"#N"`` (a tensor id), a tensor name, or a layer (module
    path, ``"features.5"``): the output of the last op (in graph order) that belongs to that layer or to
    one of its sub-layers."""
    from edgekit.errors import UsageError

    text = str(split).strip()
    m = re.fullmatch(r"(?:#|tensor\s+)(\d+)", text)
    if isinstance(split, int) or m:
        tid = int(split) if isinstance(split, int) else int(m.group(1))
        if not 0 <= tid < len(g.tensors):
            raise UsageError(f"no tensor {tid} in the model ({len(g.tensors)} tensors)")
        return tid
    named = [t.id for t in g.tensors if t.name == text and t.producer is not None]
    if named:
        return named[-1]
    layer = text.strip(".")
    last = None
    for op in g.ops:
        path = layer_path(g, op) if len(op.outputs) == 1 else ""
        if path == layer or path.startswith(layer + "."):
            last = op.outputs[0]
    if last is None:
        raise UsageError(f"no layer or tensor named {text!r} in the model")
    return last


def split_label(g: Graph, tid: int) -> str:
    """A short name for a split: the deepest common layer of its tensor's name, else the tensor id."""
    t = g.tensors[tid]
    path = layer_path(g, g.ops[t.producer]) if t.producer is not None else ""
    if not path:
        return f"tensor {tid}"
    parts = path.split(".")
    # a block's last op (the residual add, the projection) names the block: "features.5"
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else path


def parse_patch_option(text: str) -> str | tuple[tuple[int, int], str]:
    """``--patch`` value: ``"auto"``, ``"none"``, or ``((rows, columns), layer)`` from ``"2x2@features.5"``
    (the layer as ``resolve_split`` takes it: a module path, a tensor name or ``#N``)."""
    from edgekit.errors import UsageError

    t = str(text).strip()
    if t.lower() in ("auto", "none"):
        return t.lower()
    grid, sep, layer = t.partition("@")
    if not sep or not layer.strip():
        raise UsageError(f"bad --patch value {text!r}: expected auto, none or GRIDxGRID@LAYER, e.g. 2x2@features.5")
    return parse_grid(grid), layer.strip()
