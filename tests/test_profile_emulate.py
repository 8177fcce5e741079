"""Emulated latency: the cost formulas on hand-made graphs, and the estimate against the
targets' published measurements (held-out validation rows; bounds stated in docs/latency.md)."""

from __future__ import annotations

import pytest

from edgekit.graph.ir import Graph, Op, Tensor
from edgekit.profile import emulate
from edgekit.profile.emulate import estimate_graph
from edgekit.targets import load_target


def _graph(ops_spec, dtype="int8"):
    """ops_spec: [(kind, macs, out_numel, weight_numel)] chained one after the other."""
    tensors = [Tensor(0, "x", (1, 1000), dtype)]
    ops = []
    prev = 0
    for i, (kind, macs, out_n, w_n) in enumerate(ops_spec):
        ins = [prev]
        if w_n:
            tensors.append(Tensor(len(tensors), f"w{i}", (w_n, 1), dtype, is_const=True))
            ins.append(len(tensors) - 1)
        tensors.append(Tensor(len(tensors), f"y{i}", (1, out_n), dtype))
        prev = len(tensors) - 1
        ops.append(Op(i, kind, f"op{i}", inputs=ins, outputs=[prev], macs=macs))
    return Graph(tensors, ops, [0], [prev], "tflite").link()


def test_fusion_rules():
    g = _graph([("conv2d", 10, 1000, 10), ("batch_norm", 0, 1000, 0), ("relu6", 0, 1000, 0),
                ("add", 0, 1000, 0), ("relu", 0, 1000, 0), ("hard_swish", 0, 1000, 0), ("view", 0, 1000, 0),
                ("relu", 0, 1000, 0), ("mean", 0, 10, 0), ("linear", 100, 10, 100), ("reshape", 0, 10, 0)])
    assert emulate.classify(g) == ["conv2d", "fused", "fused", "elementwise", "fused", "elementwise", "free",
                                   "elementwise", "pool", "linear", "dispatch"]


def test_mcu_cycles_formula():
    t = load_target("nucleo-l4r5zi")
    cpm, over, f = t.latency.cycles_per_mac, t.latency.op_overhead_cycles, t.clock_hz
    g = _graph([("conv2d", 1000, 1000, 10), ("relu", 0, 1000, 0), ("depthwise_conv2d", 500, 1000, 9),
                ("add", 0, 1000, 0), ("avg_pool", 0, 10, 0), ("linear", 100, 10, 100)])
    e = estimate_graph(g, t, dtype="int8")
    want = (1000 * cpm.conv2d + 500 * cpm.depthwise_conv2d + 1000 * cpm.elementwise + 1000 * cpm.pool
            + 100 * cpm.linear + 5 * over) / f * 1e3
    assert e.total_ms == pytest.approx(want) and e.ops_counted == 5 and e.cost_model == "mcu-cycles"


def test_roofline_compute_memory_overhead_and_threads():
    t = load_target("raspberry-pi-4b")
    lat = t.latency
    big = _graph([("conv2d", 10**9, 1000, 1000)], dtype="float32")  # compute-bound
    e = estimate_graph(big, t, dtype="fp32")
    assert e.layers[0].bound == "compute"
    assert e.total_ms == pytest.approx(1e9 / (lat.peak_gmacs_fp32 * 1e9) * 1e3 + lat.op_overhead_us / 1e3)
    e1 = estimate_graph(big, t, dtype="fp32", threads=1)  # 1 of the 4 threads the peak was fitted with
    assert e1.layers[0].compute_ms == pytest.approx(4 * e.layers[0].compute_ms)
    wide = _graph([("add", 0, 10**8, 0)], dtype="float32")  # 400 MB in, 400 MB out: memory-bound
    ew = estimate_graph(wide, t, dtype="fp32")
    assert ew.layers[0].bound == "memory"
    assert ew.total_ms == pytest.approx((1000 * 4 + 4 * 10**8) / (lat.mem_bandwidth_gbps * 1e9) * 1e3
                                        + lat.op_overhead_us / 1e3)
    dw = _graph([("depthwise_conv2d", 10**9, 1000, 9)], dtype="float32")
    ed = estimate_graph(dw, t, dtype="fp32")
    assert ed.layers[0].compute_ms == pytest.approx(
        e.layers[0].compute_ms / emulate.ROOFLINE_EFFICIENCY["depthwise_conv2d"])


def test_every_target_gives_a_positive_estimate():
    from edgekit.targets import list_targets

    g = _graph([("conv2d", 10**6, 1000, 100), ("depthwise_conv2d", 10**5, 1000, 9), ("linear", 10**4, 10, 100)])
    for t in list_targets():
        e = estimate_graph(g, t, dtype="int8")
        assert e.total_ms > 0 and len(e.layers) == 3, t.id


# What docs/latency.md states (measured: 26 validation rows, median |error| 9.7 %, max 63.8 %,
# 23 of 26 within 30 %; calibration: 24 rows, median 4.8 %). The bounds add a small margin.
VALIDATION_ROWS = 26
MEDIAN_ABS_ERROR_PCT = 12.0
MAX_ABS_ERROR_PCT = 70.0
WITHIN_30_PCT_SHARE = 0.85


@pytest.mark.slow  # builds and captures ~25 published networks (~1 min)
def test_estimates_against_published_measurements():
    from edgekit.profile.published import compare, error_summary

    rows = compare()
    val = [r for r in rows if r.split == "validation" and r.error_pct is not None]
    assert len(val) == VALIDATION_ROWS, "a validation row stopped being compared (builder missing?)"
    summary = error_summary(rows, "validation")
    assert summary["median_abs_pct"] <= MEDIAN_ABS_ERROR_PCT, summary
    assert summary["max_abs_pct"] <= MAX_ABS_ERROR_PCT, summary
    within = sum(abs(r.error_pct) <= 30 for r in val) / len(val)
    assert within >= WITHIN_30_PCT_SHARE, within
    cal = error_summary(rows, "calibration")
    assert cal["median_abs_pct"] <= 6.0, cal
    # MAC counts of the re-implemented architectures match the published ones
    for r in rows:
        if r.published_macs and r.macs:
            assert abs(r.macs - r.published_macs) / r.published_macs < 0.02, (r.model, r.macs, r.published_macs)
