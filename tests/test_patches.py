"""Patch-based inference (MCUNetV2) against the real TFLite-Micro interpreter.

Truth: the unpatched model run in TFLite-Micro with kPreserveAllTensors. A patched model must give the
same bytes in every output, in every tensor of the rest of the graph, and in every per-patch tensor
(compared with its box of the original tensor: ``runtime.patch_verify``); its arena predicted before
it is written must be the one TFLite-Micro measures. The region arithmetic is checked against an
enumeration of every kernel tap written here.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.analysis.patch_rewrite import patch_rewrite, patched_graph
from edgekit.analysis.patches import Box, PatchError, find_stage, parse_patch_name, regions, tiles
from edgekit.analysis.tflm_arena import predict_tflm_arena
from edgekit.errors import UsageError
from edgekit.graph.ir import Graph, Op, Tensor
from edgekit.graph.tflite_reader import parse_tflite

# ---- arithmetic (no interpreter) ------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 7, 8, 12, 15, 31, 48])
def test_tiles_cover_the_map_evenly(size):
    for n in range(1, size + 1):
        t = tiles(size, n)
        assert len(t) == n and t[0][0] == 0 and t[-1][1] == size
        assert all(a[1] == b[0] for a, b in zip(t, t[1:]))
        lengths = [b - a for a, b in t]
        assert max(lengths) - min(lengths) <= 1 and min(lengths) >= 1
    with pytest.raises(PatchError):
        tiles(size, size + 1)


def _t(i, shape, dtype="int8", const=False):
    return Tensor(id=i, name=f"t{i}", shape=tuple(shape), dtype=dtype, is_const=const)


def random_stage(seed: int) -> Graph:
    """A random NHWC int8 chain of convs/depthwise convs (kernel 1/3/5, stride 1/2, dilation 1/2, SAME or
    VALID), explicit PADs, max pools, residual ADDs and channel concats."""
    rng = np.random.default_rng(seed)
    tensors, ops = [], []

    def new(shape, const=False, dtype="int8"):
        tensors.append(_t(len(tensors), shape, dtype, const))
        return len(tensors) - 1

    size = int(rng.integers(17, 40))
    x = new((1, size, size, 4))
    cur = x
    for _ in range(int(rng.integers(3, 9))):
        n, h, w, c = tensors[cur].shape
        kind = rng.choice(["conv", "dw", "pad", "pool", "res", "cat"])
        if kind in ("conv", "dw"):
            k, s, d = int(rng.choice([1, 3, 5])), int(rng.choice([1, 2])), int(rng.choice([1, 1, 2]))
            same = bool(rng.integers(2))
            eff = (k - 1) * d + 1
            oh, ow = (-(-h // s), -(-w // s)) if same else ((h - eff) // s + 1, (w - eff) // s + 1)
            if oh < 2 or ow < 2:
                continue
            oc = c if kind == "dw" else int(rng.choice([4, 8]))
            wt = new((1, k, k, oc) if kind == "dw" else (oc, k, k, c), const=True)
            out = new((n, oh, ow, oc))
            ops.append(Op(len(ops), "conv2d" if kind == "conv" else "depthwise_conv2d", "c", [cur, wt], [out],
                          macs=oh * ow * oc * k * k * (c if kind == "conv" else 1),
                          attrs={"opcode": "CONV_2D" if kind == "conv" else "DEPTHWISE_CONV_2D", "stride": (s, s),
                                 "dilation": (d, d), "padding": "same" if same else "valid"}))
        elif kind == "pad":
            p = [int(v) for v in rng.integers(0, 3, 4)]
            out = new((n, h + p[0] + p[1], w + p[2] + p[3], c))
            ops.append(Op(len(ops), "pad", "p", [cur], [out], attrs={
                "opcode": "PAD", "paddings": ((0, 0), (p[0], p[1]), (p[2], p[3]), (0, 0))}))
        elif kind == "pool" and h >= 4:
            out = new((n, (h - 3) // 2 + 1, (w - 3) // 2 + 1, c))
            ops.append(Op(len(ops), "max_pool", "m", [cur], [out], attrs={
                "opcode": "MAX_POOL_2D", "kernel": (3, 3), "stride": (2, 2), "padding": "valid"}))
        elif kind == "res":  # cur -> dw 3x3 SAME -> add(cur, .)
            wt = new((1, 3, 3, c), const=True)
            mid = new((n, h, w, c))
            ops.append(Op(len(ops), "depthwise_conv2d", "d", [cur, wt], [mid], macs=h * w * c * 9,
                          attrs={"opcode": "DEPTHWISE_CONV_2D", "stride": (1, 1), "padding": "same"}))
            out = new((n, h, w, c))
            ops.append(Op(len(ops), "add", "a", [cur, mid], [out], attrs={"opcode": "ADD"}))
        elif kind == "cat":  # cur -> conv 3x3 VALID-padded-explicitly ... -> concat(cur, .)
            wt = new((4, 3, 3, c), const=True)
            mid = new((n, h, w, 4))
            ops.append(Op(len(ops), "conv2d", "c", [cur, wt], [mid], macs=h * w * 4 * 9 * c,
                          attrs={"opcode": "CONV_2D", "stride": (1, 1), "padding": "same"}))
            out = new((n, h, w, c + 4))
            ops.append(Op(len(ops), "concat", "k", [cur, mid], [out], attrs={"opcode": "CONCATENATION", "axis": 3}))
        else:
            continue
        cur = out
    return Graph(tensors, ops, [x], [cur], "tflite", meta={"subgraphs": 1}).link()


def _taps(g: Graph, op: Op, rows: set[int], cols: set[int]) -> tuple[set[int], set[int]]:
    """The input rows and columns every output pixel of ``rows x cols`` reads, by enumerating the taps
    (TFLite's SAME padding: half the total padding before, rounded down)."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    code = op.attrs["opcode"]
    if code == "PAD":
        p = op.attrs["paddings"]
        return ({r - p[1][0] for r in rows if 0 <= r - p[1][0] < x.shape[1]},
                {c - p[2][0] for c in cols if 0 <= c - p[2][0] < x.shape[2]})
    if code in ("ADD", "CONCATENATION"):
        return set(rows), set(cols)
    if code == "MAX_POOL_2D":
        k, d = (3, 3), 1
    else:
        k, d = g.tensors[op.inputs[1]].shape[1:3], op.attrs.get("dilation", (1, 1))[0]
    s = op.attrs["stride"][0]
    out = []
    for dim, sel in ((1, rows), (2, cols)):
        pad = 0
        if op.attrs.get("padding") == "same":
            pad = max(0, (y.shape[dim] - 1) * s + (k[dim - 1] - 1) * d + 1 - x.shape[dim]) // 2
        out.append({o * s - pad + f * d for o in sel for f in range(k[dim - 1])
                    if 0 <= o * s - pad + f * d < x.shape[dim]})
    return out[0], out[1]


@pytest.mark.parametrize("seed", range(40))
def test_regions_hold_every_tap_and_no_more(seed):
    g = random_stage(seed)
    split = g.outputs[0]
    st = find_stage(g, split)
    h, w = g.tensors[split].shape[1:3]
    for n in (2, 3):
        if n > min(h, w):
            continue
        for (y0, y1) in tiles(h, n):
            for (x0, x1) in tiles(w, n):
                want: dict[int, tuple[set, set]] = {split: (set(range(y0, y1)), set(range(x0, x1)))}
                only_padding = False
                for op in reversed(g.ops):
                    rows, cols = want[op.outputs[0]]
                    for x in [t for t in op.inputs if not g.tensors[t].is_const]:
                        r, c = _taps(g, op, rows, cols)
                        only_padding |= not r or not c
                        old = want.get(x, (set(), set()))
                        want[x] = (old[0] | r, old[1] | c)
                if only_padding:  # a tile that reads nothing but an explicit PAD's rows: refused
                    with pytest.raises(PatchError, match="only the padding"):
                        regions(g, st, Box(y0, y1, x0, x1))
                    continue
                need = regions(g, st, Box(y0, y1, x0, x1))
                gaps = any(op.attrs.get("dilation", (1, 1)) != (1, 1) or (len(op.inputs) > 1 and op.attrs.get(
                    "stride", (1, 1))[0] > g.tensors[op.inputs[1]].shape[1]) for op in g.ops)
                for tid, (rows, cols) in want.items():
                    box, taps = need[tid], Box(min(rows), max(rows) + 1, min(cols), max(cols) + 1)
                    # always every tap; exactly the taps' box unless windows have gaps (a dilated kernel, or a
                    # stride larger than the kernel, may skip the first image row: the region keeps it)
                    assert box.contains(taps), (seed, tid, box, taps)
                    assert gaps or box == taps, (seed, tid, box, taps)


def test_what_cannot_run_on_patches_is_refused():
    g = random_stage(3)
    # a split whose stage tensor is read after the split is not a cut
    res = Graph([_t(0, (1, 8, 8, 4)), _t(1, (1, 3, 3, 4), const=True), _t(2, (1, 8, 8, 4)), _t(3, (1, 8, 8, 4)),
                 _t(4, (1, 8, 8, 4))],
                [Op(0, "depthwise_conv2d", "d", [0, 1], [2], attrs={"opcode": "DEPTHWISE_CONV_2D", "stride": (1, 1),
                                                                      "padding": "same"}),
                 Op(1, "depthwise_conv2d", "d", [2, 1], [3], attrs={"opcode": "DEPTHWISE_CONV_2D", "stride": (1, 1),
                                                                      "padding": "same"}),
                 Op(2, "add", "a", [2, 3], [4], attrs={"opcode": "ADD"})], [0], [4], "tflite").link()
    with pytest.raises(PatchError, match="not a cut"):
        find_stage(res, 3)
    find_stage(res, 4)
    # a SAME average pool averages only the image taps: no PAD reproduces it at the border
    avg = Graph([_t(0, (1, 8, 8, 4)), _t(1, (1, 8, 8, 4))],
                [Op(0, "avg_pool", "p", [0], [1], attrs={"opcode": "AVERAGE_POOL_2D", "kernel": (3, 3),
                                                         "stride": (1, 1), "padding": "same"})],
                [0], [1], "tflite").link()
    with pytest.raises(PatchError, match="averages only the image taps"):
        patch_rewrite(avg, 1, (2, 2))
    for grid, why in (((1, 1), "at least 2"), ((11, 11), "at most 10"), ((9, 9), "cannot cut")):
        with pytest.raises(PatchError, match=why):
            patch_rewrite(g if grid != (9, 9) else avg, g.outputs[0] if grid != (9, 9) else 1, grid)


def test_the_patched_graph_keeps_the_rest_and_counts_the_halos():
    g = random_stage(5)
    split = g.outputs[0]
    rw = patch_rewrite(g, split, (3, 2))
    pg = patched_graph(g, rw)
    assert pg.outputs == [pg.tensors.index(next(t for t in pg.tensors if t.name == g.tensors[split].name))]
    assert pg.macs == g.macs + rw.extra_macs and rw.extra_macs > 0
    # MACs written independently: each conv copy does kernel x in-channels MACs per output element
    macs = 0
    for op in pg.ops:
        if op.attrs["opcode"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = pg.tensors[op.inputs[1]].shape
            per = w[1] * w[2] * (w[3] if op.attrs["opcode"] == "CONV_2D" else 1)
            macs += pg.tensors[op.outputs[0]].numel * per
    assert macs == pg.macs
    names = [parse_patch_name(t.name) for t in pg.tensors if t.name.startswith("edgekit.patch/") and not t.is_const]
    assert names and all(n is not None for n in names)


# ---- the real interpreter ---------------------------------------------------------------------------

tflm_models = pytest.importorskip("tflm_models")


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    return tflm_models.cache_dir_from_env() or tmp_path_factory.mktemp("tflm_models")


@pytest.fixture(scope="module")
def tflite(model_cache):
    pytest.importorskip("tflite_micro")

    def get(name: str) -> bytes:
        for mod in ("torch", "torchvision", "litert_torch", "ai_edge_quantizer"):
            pytest.importorskip(mod)
        return tflm_models.build(name, "int8", model_cache).read_bytes()
    return get


def _measured(data: bytes):
    from edgekit.runtime.patch_verify import measure_tflm

    return measure_tflm(data)


def _op_output(g: Graph, opcode: str, nth: int) -> int:
    return [op for op in g.ops if op.attrs["opcode"] == opcode][nth].outputs[0]


# (model, how to find the split, grid, what the case covers)
CASES = [
    pytest.param("conv_stack", ("CONV_2D", -1), (3, 3), id="conv_stack-stride2-8x8-into-3x3"),
    pytest.param("residual", ("ADD", -1), (3, 3), id="residual-adds-stride2-skip-8x8-into-3x3"),
    pytest.param("fire", ("CONCATENATION", 0), (2, 2), id="fire-split-after-concat-15x15-into-2x2"),
    pytest.param("dw_avgpool", ("CONV_2D", 2), (2, 3), id="dw_avgpool-2x3"),
]


@pytest.mark.export
@pytest.mark.parametrize("name,where,grid", CASES)
def test_patched_models_compute_the_same_bytes(tflite, name, where, grid):
    from edgekit.export.tflite_patch import apply_patches
    from edgekit.runtime.patch_verify import verify_patched

    data = tflite(name)
    g = parse_tflite(data)
    split = _op_output(g, *where)
    patched = apply_patches(data, split, grid, force=True)
    pg = parse_tflite(patched)
    check = verify_patched(data, patched)
    assert check.ok, check.reason
    assert check.outputs_compared == len(g.outputs) and check.input_sets >= 5
    n_patch = sum(1 for t in pg.tensors if t.name.startswith("edgekit.patch/") and not t.is_const)
    assert check.patch_tensors_compared == n_patch > 0
    assert check.rest_tensors_compared >= 1
    # a PAD pads only the sides where its patch's region touches the border of the tensor it is a region of
    n_pads = 0
    for op in pg.ops:
        if op.attrs["opcode"] not in ("PAD", "PADV2") or \
                not pg.tensors[op.outputs[0]].name.startswith("edgekit.patch/"):
            continue
        parsed = parse_patch_name(pg.tensors[op.inputs[0]].name)
        assert parsed is not None, op.name
        _, _, source, box = parsed
        for axis, (before, after) in enumerate(op.attrs["paddings"]):
            lo, hi = box[axis]
            assert before == 0 or lo == 0, (op.name, axis, box)
            assert after == 0 or hi == g.tensors[source].shape[axis], (op.name, axis, box)
        n_pads += 1
    assert n_pads > 0
    # the arena predicted on the graph before it was written is the one TFLite-Micro measures: the head to
    # the byte; the persistent tail to within one 16-byte alignment step (tflm_arena's tail model is off by
    # 16 B on some patched models, e.g. dw_avgpool 2x3; exact on the others)
    rw = patch_rewrite(g, split, grid)
    est, got = predict_tflm_arena(patched_graph(g, rw)), _measured(patched)
    assert est.head_bytes == got.head_bytes
    assert abs(est.total_bytes - got.arena_bytes) <= 16, (est.total_bytes, got)
    # the MACs the reader counts on the written model: the original plus the halos
    assert pg.macs == g.macs + rw.extra_macs


@pytest.mark.export
def test_a_wrong_patch_is_caught(tflite):
    """One SLICE of one patch shifted by a column: the verifier must see it (and the written model
    must still read back as what was asked for, so the check is the run, not the writer)."""
    import struct

    from edgekit.export.tflite_patch import write_rewrite
    from edgekit.runtime.patch_verify import verify_patched

    data = tflite("residual")
    g = parse_tflite(data)
    split = _op_output(g, "ADD", -1)
    rw = patch_rewrite(g, split, (2, 2))
    slices = [op for op in rw.ops if op.opcode == "SLICE" and op.patch == "1.1"]
    begin = rw.tensors[-slices[0].inputs[1] - 1]
    vals = list(struct.unpack(f"<{len(begin.data) // 4}i", begin.data))
    vals[3 if vals[3] else 2] -= 1  # one column (NCHW input) or row earlier
    rw.tensors.append(type(begin)(begin.name + "/wrong", begin.shape, begin.dtype, data=struct.pack(
        f"<{len(vals)}i", *vals)))
    slices[0].inputs[1] = -len(rw.tensors)
    bad = write_rewrite(data, g, rw)
    check = verify_patched(data, bad)
    assert not check.ok and check.mismatches
    assert any(m.name.startswith("edgekit.patch/1.1/") for m in check.mismatches)


@pytest.mark.export
def test_a_grid_that_cannot_help_says_so(tflite):
    """conv_stack is small: the patch ops' persistent data outweighs the activations saved (at its first
    conv always; with the offline plan, everywhere). apply_patches refuses to write the worse model, the
    search picks nothing and says why."""
    from edgekit.analysis.patch_search import search_patches
    from edgekit.export.tflite_patch import apply_patches
    from edgekit.runtime.patch_verify import make_patched_tflite

    data = tflite("conv_stack")
    g = parse_tflite(data)
    split = _op_output(g, "CONV_2D", 0)
    with pytest.raises(UsageError, match="do not help"):
        apply_patches(data, split, (2, 2))
    with pytest.raises(UsageError, match="do not help"):
        make_patched_tflite(data, split, "2x2")
    worse = apply_patches(data, split, (2, 2), force=True)
    assert _measured(worse).arena_bytes > _measured(data).arena_bytes  # the refusal was right
    res = search_patches(data)
    assert res.pick is None and res.candidates
    assert all(c.status.startswith(("cannot help", "MACs")) for c in res.candidates)
    assert "no split and grid lowers the arena" in res.reason


@pytest.mark.export
def test_search_pick_is_built_verified_and_measured(tflite):
    """fire: patches help even against the offline plan. The pick, built with the offline plan: verified,
    and every arena the search predicted is what TFLite-Micro measures (the plan: within 1 %)."""
    from edgekit.analysis.patch_search import search_patches
    from edgekit.runtime.patch_verify import make_patched_tflite

    data = tflite("fire")
    res = search_patches(data)
    pick = res.pick
    assert pick is not None and pick.best_arena() < res.base_arena, res.reason
    assert {c.status for c in res.candidates} >= {"picked"}
    out = make_patched_tflite(data, pick.split, pick.grid)
    assert out.verified and out.check.ok, out.reason
    assert out.original.arena_bytes == res.arena_bytes
    assert out.measured.head_bytes == pick.head_bytes and abs(out.measured.arena_bytes - pick.arena_bytes) <= 16
    assert out.planned is not None and out.planned.verified, out.reason
    assert abs(out.planned_measured.arena_bytes - pick.planned_arena_bytes) <= 0.01 * pick.planned_arena_bytes
    assert out.planned_measured.arena_bytes < out.original.arena_bytes
    assert out.mac_overhead == pytest.approx(pick.mac_overhead)
    # every candidate's --patch spec names its split again
    from edgekit.analysis.patches import parse_grid, resolve_split

    g = parse_tflite(data)
    for c in res.candidates:
        grid, layer = c.spec.split("@", 1)
        assert (resolve_split(g, layer), parse_grid(grid)) == (c.split, c.grid), c.spec
    assert res.suggestion().startswith(f"smallest with {pick.grid[0]}x{pick.grid[1]} patches up to {pick.label}")
    # --patch auto: a budget the unpatched model fits needs no patches; one only the pick fits says so
    roomy = search_patches(data, budget_bytes=res.base_arena, plan=True)
    assert roomy.pick is None and "fits without patches" in roomy.reason
    tight = search_patches(data, budget_bytes=pick.best_arena())
    assert tight.pick.spec == pick.spec and "it fits" in tight.reason
    assert tight.suggestion().startswith("fits with")


@pytest.mark.export
@pytest.mark.parametrize("name", ["fire", "residual"])
def test_lint_does_not_flag_the_patch_ops(tflite, name, tmp_path):
    from edgekit.export.tflite_patch import apply_patches
    from edgekit.lint import lint

    data = tflite(name)
    g = parse_tflite(data)
    patched = apply_patches(data, _op_output(g, "CONCATENATION" if name == "fire" else "ADD", 0), (2, 2),
                            force=True)
    (tmp_path / "a.tflite").write_bytes(data)
    (tmp_path / "b.tflite").write_bytes(patched)
    before = lint(tmp_path / "a.tflite", target="tflite-micro", runtime_checks=False)
    after = lint(tmp_path / "b.tflite", target="tflite-micro", runtime_checks=False)
    codes = lambda r: {(f.code, f.severity) for f in r.findings}  # noqa: E731
    assert codes(after) - {("patches", "info")} == codes(before)
    info = [f for f in after.findings if f.code == "patches"]
    assert len(info) == 1 and info[0].details["patches"] == 4


# ---- the done-when (slow: MobileNetV2 conversions) ---------------------------------------------

@pytest.mark.slow
def test_mobilenet_v2_035_at_96_three_times_smaller(tflite):
    """MobileNetV2-0.35 @96 int8: the planned activation area (arena minus TFLite-Micro's persistent tail)
    at least 3x smaller than today's 230,592 B, measured in TFLite-Micro, outputs bit-identical."""
    from edgekit.analysis.patch_search import search_patches
    from edgekit.runtime.patch_verify import make_patched_tflite

    data = tflite("ek_mobilenet_v2_035")
    res = search_patches(data)
    assert res.pick is not None and res.pick.mac_overhead <= 0.2
    out = make_patched_tflite(data, res.pick.split, res.pick.grid)
    assert out.verified and out.check.ok and out.planned.verified, out.reason
    assert out.original.head_bytes == 230_592
    assert out.planned_measured.head_bytes * 3 <= out.original.head_bytes, out.planned_measured
    assert out.planned_measured.arena_bytes < out.original.arena_bytes
    print(f"\n{res.pick.spec}: head {out.original.head_bytes:,d} -> {out.planned_measured.head_bytes:,d} B, arena "
          f"{out.original.arena_bytes:,d} -> {out.planned_measured.arena_bytes:,d} B, "
          f"MACs +{100 * out.mac_overhead:.1f} %")


@pytest.mark.slow
def test_mobilenet_v2_035_at_144_fits_nrf52840(tflite):
    """At 144 px the offline plan alone is not enough for 256 KiB; patches first, then the plan (CMSIS-NN's
    rules, as the board builds it) fit, verified in TFLite-Micro."""
    from edgekit.analysis.patch_search import search_patches
    from edgekit.runtime.patch_verify import make_patched_tflite

    budget = 256 * 1024
    data = tflite("ek_mobilenet_v2_035_144")
    res = search_patches(data, budget_bytes=budget, kernels="reference+cmsis-nn")
    assert res.planned_arena_bytes > budget  # the plan alone does not fit
    assert res.pick is not None and res.pick.best_arena() <= budget, res.reason
    out = make_patched_tflite(data, res.pick.split, res.pick.grid, kernels="cmsis-nn")
    assert out.verified and out.planned.verified, out.reason
    assert out.planned.plan.kernels == "reference+cmsis-nn"
    assert out.planned_measured.arena_bytes <= budget < out.original.arena_bytes


@pytest.mark.slow
def test_pre_export_search_equals_the_tflite_search(tflite):
    """The search on the lowered PyTorch graph (before export) gives the same table as on the .tflite."""
    pytest.importorskip("torch")
    from edgekit.analysis.api import capture_loaded
    from edgekit.analysis.lowering import lower_for_tflite
    from edgekit.analysis.patch_search import search_graph, search_patches
    from edgekit.loader import load_model, parse_spec

    data = tflite("ek_mobilenet_v2_035")
    loaded = load_model(parse_spec("mobilenet_v2:width=0.35,resolution=96,num_classes=10"))
    lowered = lower_for_tflite(capture_loaded(loaded, dtype="int8"))
    pre, post = search_graph(lowered), search_patches(data)
    row = lambda c: (c.label, c.grid, c.arena_bytes, c.head_bytes, c.planned_arena_bytes, c.extra_macs, c.status)  # noqa: E731
    assert [row(c) for c in pre.candidates] == [row(c) for c in post.candidates]
    assert pre.pick.spec == post.pick.spec


def test_patch_option_parsing():
    from edgekit.analysis.patches import parse_patch_option

    assert parse_patch_option("auto") == "auto" and parse_patch_option(" None ") == "none"
    assert parse_patch_option("2x3@features.5") == ((2, 3), "features.5")
    assert parse_patch_option("4X4@#24") == ((4, 4), "#24")
    for bad in ("2x2", "2x2@", "x2@features.1", "2by2@a"):
        with pytest.raises(UsageError, match="patch"):
            parse_patch_option(bad)


@pytest.mark.export
def test_an_offline_plan_is_dropped_by_the_rewrite_and_made_again_after(tflite):
    """Patches first, then the plan: a model that already carries an OfflineMemoryAllocation entry loses
    it in the rewrite (its offsets are for the old tensors), and the patched model is planned anew."""
    from edgekit.export.tflite_patch import apply_patches
    from edgekit.export.tflite_plan import apply_plan, plan_tflite, read_offline_plan
    from edgekit.runtime.patch_verify import verify_patched

    data = tflite("fire")
    planned = apply_plan(data, plan_tflite(data))
    assert read_offline_plan(planned) is not None
    g = parse_tflite(planned)
    patched = apply_patches(planned, _op_output(g, "CONCATENATION", 0), (2, 2), force=True)
    assert read_offline_plan(patched) is None
    assert verify_patched(data, patched).ok
    again = apply_plan(patched, plan_tflite(patched))
    assert read_offline_plan(again).entries == 1
