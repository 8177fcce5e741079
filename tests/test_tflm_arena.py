"""The TFLite-Micro arena model against the real TFLite-Micro interpreter, and the child runner.

Truth is the smallest ``arena_size`` with which ``tflite_micro``'s interpreter allocates the
model (``tflm_min_arena``: the recorded "Arena allocation total", confirmed by probing N and
N-16 in child processes, bisected when they disagree). The prediction
(``predict_tflm_arena(read_tflite(path))``) must be within 2 % of it and never more than 1 %
under it. Converted models are cached for the session (``EDGEKIT_TFLM_CACHE`` keeps them
across sessions); the torchvision-size models are ``slow``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

pytest.importorskip("tflite_micro")

import artifacts  # noqa: E402
import tflm_models  # noqa: E402  (tests/ is on sys.path under pytest)
from artifacts import Net  # noqa: E402

from edgekit.analysis.tflm_arena import (  # noqa: E402
    planned_buffers,
    predict_tflm_arena,
    tflm_greedy_plan,
)
from edgekit.errors import ArtifactError, MissingExtraError, RuntimeFailure, UsageError  # noqa: E402
from edgekit.graph.tflite_reader import read_tflite  # noqa: E402
from edgekit.isolate import ChildFailure, run_isolated  # noqa: E402
from edgekit.runtime import tflm  # noqa: E402

FAST = [("conv_stack", "int8"), ("conv_stack", "fp32"), ("residual", "int8"), ("residual", "fp32"),
        ("fire", "int8"), ("fire", "fp32"), ("fc_autoencoder", "int8"), ("fc_autoencoder", "fp32"),
        ("dw_avgpool", "int8"), ("dw_avgpool", "fp32"), ("mobilenet_v2_035", "int8")]
SLOW = [("mobilenet_v2_035", "fp32"), ("mobilenet_v3_small", "int8"), ("mnasnet0_5", "int8"),
        ("squeezenet1_1", "int8"), ("resnet18", "int8"),
        # Finding: torchvision ShuffleNetV2's channel shuffle converts to rank-5 RESHAPE/TRANSPOSE
        # (50 TRANSPOSE, 32 RESHAPE, 26 SLICE, 13 QUANTIZE ops) and this TFLite-Micro build
        # accepts and plans it: it is in the accuracy set, not excluded.
        ("shufflenet_v2_x0_5", "int8")]
CASES = [pytest.param(n, d, id=f"{n}-{d}") for n, d in FAST] + \
        [pytest.param(n, d, id=f"{n}-{d}", marks=pytest.mark.slow) for n, d in SLOW]


# ---- session caches -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def model_cache():
    return artifacts.default_cache_dir()  # EDGEKIT_TFLM_CACHE, or one folder for the whole session


@pytest.fixture(scope="session")
def build(model_cache):
    built: dict = {}

    def _build(name: str, dtype: str):
        if (name, dtype) not in built:
            for mod in ("torch", "torchvision", "litert_torch", "ai_edge_quantizer"):
                pytest.importorskip(mod)
            built[(name, dtype)] = tflm_models.build(name, dtype, model_cache)
        return built[(name, dtype)]
    return _build


@pytest.fixture(scope="session")
def truth(build):
    """(min arena, allocation report) of a model from the real interpreter, once per session."""
    known: dict = {}

    def _truth(name: str, dtype: str):
        if (name, dtype) not in known:
            path = build(name, dtype)
            rep = tflm.tflm_allocations(path)
            known[(name, dtype)] = (tflm.tflm_min_arena(path, report=rep), rep)
        return known[(name, dtype)]
    return _truth


# ---- accuracy against the real interpreter -------------------------------------------------

@pytest.mark.parametrize("name,dtype", CASES)
@pytest.mark.export
def test_prediction_matches_tflite_micro(name, dtype, build, truth):
    path = build(name, dtype)
    true_min, rep = truth(name, dtype)
    est = predict_tflm_arena(read_tflite(path))
    err = (est.total_bytes - true_min) / true_min
    detail = (f"{name} {dtype}: truth {true_min:,d} B (recorded total {rep.total_bytes:,d}, head "
              f"{rep.head_bytes:,d}, tail {rep.tail_bytes:,d}); predicted {est.total_bytes:,d} B "
              f"(head {est.head_bytes:,d}, tail {est.tail_bytes:,d}, bound by {est.binding_phase}) "
              f"{est.breakdown}")
    assert abs(err) <= 0.02, detail
    assert est.total_bytes >= 0.99 * true_min, detail
    assert sum(est.breakdown.values()) == est.total_bytes


@pytest.mark.parametrize("name,dtype", CASES)
@pytest.mark.export
def test_head_and_tail_match_recording_allocator(name, dtype, build, truth):
    """Stricter than the 2 %: the model replays MicroAllocator, so head and tail are exact.
    A failure here after a tflite-micro upgrade means a struct or kernel changed size."""
    _, rep = truth(name, dtype)
    est = predict_tflm_arena(read_tflite(build(name, dtype)))
    assert (est.head_bytes, est.tail_bytes) == (rep.head_bytes, rep.tail_bytes), rep.raw


@pytest.mark.parametrize("name,dtype", [("conv_stack", "int8"), ("mobilenet_v2_035", "int8")])
@pytest.mark.export
def test_recorded_total_is_the_minimum_by_bisection(name, dtype, build, truth):
    """For these models "Arena allocation total" is the true minimum: a bisection on
    arena_size (no use of the report) lands on it: N works and N-16 fails."""
    path = build(name, dtype)
    _, rep = truth(name, dtype)
    lo, hi = int(rep.total_bytes * 0.95), int(rep.total_bytes * 1.05)
    assert not tflm.tflm_probe(path, lo) and tflm.tflm_probe(path, hi)
    assert tflm.tflm_min_arena_bisect(path, lo=lo, hi=hi) == rep.total_bytes


@pytest.mark.export
def test_recorded_total_understates_a_small_model(build, truth):
    """The int8 FC autoencoder reports 6,848 B but needs 8,720: per-channel FC weights cost
    temporary quantization arrays while the kernel prepares. The model predicts that phase."""
    path = build("fc_autoencoder", "int8")
    true_min, rep = truth("fc_autoencoder", "int8")
    assert true_min > rep.total_bytes
    assert not tflm.tflm_probe(path, rep.total_bytes)
    est = predict_tflm_arena(read_tflite(path))
    assert est.binding_phase.startswith("prepare FULLY_CONNECTED")
    assert true_min <= est.total_bytes <= true_min + 32
    assert est.breakdown["prepare_or_planning_temporaries"] > 0


@pytest.mark.export
def test_predicted_arena_runs_and_gives_the_same_output(build):
    """The number a user writes into the firmware works for Invoke, not just allocation."""
    path = build("residual", "int8")
    est = predict_tflm_arena(read_tflite(path))
    x = np.random.default_rng(0).integers(-128, 128, size=(1, 3, 32, 32), dtype=np.int8)
    ref = tflm.tflm_run(path, [x])[0]
    out = tflm.tflm_run(path, [x], est.total_bytes)[0]
    assert out.dtype == np.int8 and out.shape == (1, 10)
    np.testing.assert_array_equal(out, ref)


# ---- the runner on bad input ------------------------------------------------------------------

@pytest.mark.export
def test_too_small_arena_is_a_clear_failure(build, truth):
    path = build("conv_stack", "int8")
    true_min, _ = truth("conv_stack", "int8")
    assert not tflm.tflm_probe(path, true_min - 16)
    x = np.zeros((1, 3, 32, 32), dtype=np.int8)
    with pytest.raises(RuntimeFailure) as err:
        tflm.tflm_run(path, [x], true_min - 1024)
    msg = str(err.value)
    assert "TFLite-Micro" in msg and path.name in msg and "tflm_min_arena" in msg and "\n" not in msg


@pytest.mark.export
def test_corrupt_and_foreign_files(build, tmp_path):
    good = build("conv_stack", "int8").read_bytes()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(good[:5000])
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    for bad in (truncated, garbage):
        for call in (tflm.tflm_allocations, tflm.tflm_min_arena):
            with pytest.raises(ArtifactError, match=bad.name):
                call(bad)
        with pytest.raises(ArtifactError):
            tflm.tflm_run(bad, [np.zeros((1, 3, 32, 32), np.int8)])
    with pytest.raises(UsageError, match="no such file"):
        tflm.tflm_allocations(tmp_path / "missing.tflite")


@pytest.mark.export
def test_wrong_input_is_a_usage_error(build):
    path = build("conv_stack", "int8")
    with pytest.raises(UsageError, match=r"int8\[1, 3, 32, 32\]"):
        tflm.tflm_run(path, [np.zeros((1, 3, 32, 32), np.float32)])


@pytest.mark.export
def test_unsupported_operator_is_reported(artifact):
    torch = pytest.importorskip("torch")

    class TopK(torch.nn.Module):
        def forward(self, x):
            return torch.topk(x.flatten(1), 3).values

    path = artifact(Net("tflm_topk", TopK, (1, 4, 4, 4)))
    ops = tflm.tflm_ops(path)
    missing = [k for k, ok in ops.items() if not ok]
    assert missing == ["STABLEHLO_SORT"], ops
    with pytest.raises(ChildFailure, match="STABLEHLO_SORT") as err:
        tflm.tflm_allocations(path)
    assert err.value.kind == "error"


@pytest.mark.export
def test_supported_operators_of_a_cnn(build):
    ops = tflm.tflm_ops(build("residual", "int8"))
    assert ops and all(ops.values()) and "CONV_2D" in ops


@pytest.mark.export
def test_missing_tflite_micro_names_the_extra(monkeypatch, build):
    path = build("conv_stack", "int8")
    monkeypatch.setitem(sys.modules, "tflite_micro.python.tflite_micro.runtime", None)
    with pytest.raises(MissingExtraError, match=r"edgekit\[micro\]"):
        tflm.tflm_allocations(path)


# ---- the child-process runner itself ----------------------------------------------------------

def _child(func, **kw):
    return run_isolated("tests.tflm_models", func, kw, timeout_s=kw.pop("_timeout", 60),
                        runtime="TestRuntime", artifact="model.bin", hint="do this")


def test_isolate_round_trips_numpy_arrays():
    a, b = np.arange(6, dtype=np.int16).reshape(2, 3), np.ones(4, np.float32)
    res = _child("child_echo", a=a, nested=[1, {"b": b}], s="text")
    np.testing.assert_array_equal(res.value["a"], a)
    assert res.value["a"].dtype == np.int16
    np.testing.assert_array_equal(res.value["nested"][1]["b"], b)
    assert res.value["nested"][0] == 1 and res.value["s"] == "text"


@pytest.mark.parametrize("func,kw,kind,words", [
    ("child_segfault", {}, "crash", ["crashed with SIGSEGV"]),
    ("child_raise", {"message": "boom"}, "error", ["ValueError: boom"]),
    ("child_sleep", {"seconds": 30, "_timeout": 1}, "timeout", ["timed out after 1 s"]),
])
def test_isolate_turns_failures_into_one_line(func, kw, kind, words):
    with pytest.raises(ChildFailure) as err:
        _child(func, **kw)
    e = err.value
    assert isinstance(e, RuntimeFailure) and e.kind == kind
    msg = str(e)
    assert "\n" not in msg and "TestRuntime" in msg and "model.bin" in msg and msg.endswith("do this")
    for w in words:
        assert w in msg
    assert os.getpid() > 0  # we are still here


# ---- the planner replica -----------------------------------------------------------------------

def test_planner_reproduces_tflite_micro_planner_tests():
    """Expected offsets from TFLite-Micro's greedy_memory_planner_test.cc."""
    offs, size = tflm_greedy_plan([10, 20], [0, 2], [1, 3])  # TestGreedyBasics
    assert (offs, size) == ([0, 0], 20)
    offs, size = tflm_greedy_plan([10, 20, 30, 40, 50], [0, 1, 2, 3, 0], [1, 2, 3, 4, 1])  # TestGreedyMedium
    assert (offs, size) == ([50, 70, 40, 0, 0], 90)
    assert tflm_greedy_plan([100, 50, 20], [0, 2, 1], [1, 3, 2])[1] == 120  # TestOverlapCase


def test_planner_ties_go_to_the_latest_added_buffer():
    # equal sizes: the later-added buffer is placed first (offset 0)
    offs, _ = tflm_greedy_plan([16, 16], [0, 0], [1, 1])
    assert offs == [16, 0]


def test_planner_never_overlaps():
    hyp = pytest.importorskip("hypothesis")
    st = hyp.strategies

    @hyp.given(st.lists(st.tuples(st.integers(1, 64), st.integers(0, 20), st.integers(0, 6)),
                        min_size=1, max_size=40))
    @hyp.settings(max_examples=200, deadline=None)
    def check(spec):
        sizes = [16 * s for s, _, _ in spec]
        firsts = [f for _, f, _ in spec]
        lasts = [f + d for _, f, d in spec]
        offs, arena = tflm_greedy_plan(sizes, firsts, lasts)
        for i in range(len(spec)):
            assert offs[i] % 16 == 0 and offs[i] + sizes[i] <= arena
            for j in range(i):
                if firsts[i] <= lasts[j] and firsts[j] <= lasts[i]:
                    assert offs[i] + sizes[i] <= offs[j] or offs[j] + sizes[j] <= offs[i]
    check()


@pytest.mark.export
def test_planned_buffers_follow_tflite_micro_lifetimes(build):
    g = read_tflite(build("residual", "int8"))
    bufs = {b.id: b for b in planned_buffers(g)}
    (inp,), (out,) = g.inputs, g.outputs
    assert bufs[inp].first == 0  # graph inputs exist before the first op
    assert bufs[out].last == len(g.ops)  # outputs live to the end
    assert all(t.id not in bufs for t in g.tensors if t.is_const)
    assert all(b.size % 16 == 0 for b in bufs.values())
    scratch = [b for b in bufs.values() if b.id < 0]  # MEAN (int8) asks for 3 scratch buffers
    assert len(scratch) == 3 and all(b.first == b.last for b in scratch)


# ---- one kernel at a time --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["int8", "fp32"])
@pytest.mark.parametrize("op", tflm_models.OP_NAMES)
@pytest.mark.export
def test_single_operator_models(op, dtype, model_cache):
    """Each kernel's Init/Prepare data and scratch buffers, checked in isolation (the
    per-op constants of edgekit.analysis.tflm_arena come from these measurements)."""
    for mod in ("torch", "litert_torch", "ai_edge_quantizer"):
        pytest.importorskip(mod)
    path = tflm_models.build_op(op, dtype, model_cache)
    rep = tflm.tflm_allocations(path)
    true_min = tflm.tflm_min_arena(path, report=rep)
    est = predict_tflm_arena(read_tflite(path))
    assert (est.head_bytes, est.tail_bytes, est.total_bytes) == (rep.head_bytes, rep.tail_bytes, true_min), rep.raw
