"""edgekit profile on the host: the protocol, LiteRT / ExecuTorch / eager / compare, per-op
profiles, batch throughput, JSON, the histogram, and one-line errors for bad input."""

from __future__ import annotations

import json
import math

import pytest
import ssh_server

from edgekit.cli import main
from edgekit.errors import EdgekitError
from edgekit.profile import protocol
from edgekit.profile.api import profile

STAT_KEYS = ("runs", "mean_ms", "std_ms", "min_ms", "median_ms", "p90_ms", "p99_ms", "max_ms", "throughput_per_s")


@pytest.fixture(scope="module")
def tiny():
    return ssh_server.artifacts()


def _cli(capsys, *args):
    code = main(["profile", *args])
    out = capsys.readouterr()
    return code, out.out, [ln for ln in out.err.splitlines() if ln.strip()]


# ---- the protocol ---------------------------------------------------------------------------

def test_timed_loop_counts_warmup_and_runs_and_times_only_runs():
    calls = []
    times = protocol.timed_loop(lambda: calls.append(1), warmup=7, runs=13)
    assert len(calls) == 20 and len(times) == 13


def test_summarize_matches_numpy():
    import numpy as np

    xs = [3.0, 1.0, 2.0, 10.0, 4.0, 4.5, 2.2]
    s = protocol.summarize(xs, batch=4)
    assert s["runs"] == 7 and s["min_ms"] == 1.0 and s["max_ms"] == 10.0
    assert s["mean_ms"] == pytest.approx(np.mean(xs)) and s["std_ms"] == pytest.approx(np.std(xs, ddof=1))
    for q, k in ((50, "median_ms"), (90, "p90_ms"), (99, "p99_ms")):
        assert s[k] == pytest.approx(np.percentile(xs, q))
    assert s["throughput_per_s"] == pytest.approx(4000.0 / np.mean(xs))


def test_check_counts():
    for bad in (dict(runs=0, warmup=1), dict(runs=1, warmup=-1), dict(runs=1, warmup=0, batch=0),
                dict(runs=1, warmup=0, threads=0), dict(runs=True, warmup=0)):
        with pytest.raises(ValueError):
            protocol.check_counts(**bad)


# ---- host measurements ------------------------------------------------------------------------

@pytest.mark.export
def test_tflite_on_host_with_estimate(tiny):
    res = profile(str(tiny["tflite"]), runs=30, warmup=2, threads=1, progress=False)
    measured, estimates = res.measured(), res.estimates()
    assert len(measured) == 1 and len(estimates) == 1
    m = measured[0]
    assert m.runtime == "LiteRT" and m.delegate == "XNNPACK" and m.threads == 1 and m.where == "host"
    assert all(m.stats[k] is not None for k in STAT_KEYS) and m.stats["runs"] == 30 and len(m.times_ms) == 30
    assert m.stats["min_ms"] <= m.stats["median_ms"] <= m.stats["p90_ms"] <= m.stats["p99_ms"] <= m.stats["max_ms"]
    assert m.first_run_ms is not None and m.versions["ai-edge-litert"]
    e = estimates[0]
    assert e.estimate and e.where == "emulated:host" and e.stats["mean_ms"] > 0 and e.layers
    assert any("estimate" in n for n in e.notes)


@pytest.mark.export
def test_tflite_without_xnnpack_and_batch(tiny):
    res = profile(str(tiny["tflite"]), runs=5, warmup=1, xnnpack=False, batch=3, progress=False)
    m = res.measured()[0]
    assert m.delegate.startswith("none")
    assert m.batch_stats is not None and m.batch_stats["batch"] == 3 and m.batch_stats["runs"] == 5
    assert m.batch_stats["throughput_per_s"] == pytest.approx(3000.0 / m.batch_stats["mean_ms"])


@pytest.mark.export
@pytest.mark.slow  # the ExecuTorch Inspector imports executorch.exir in the child (~15 s)
def test_pte_on_host_with_etdump_op_profile(tiny):
    res = profile(str(tiny["pte"]), runs=10, warmup=2, ops=True, batch=2, progress=False)
    m = res.measured()[0]
    assert m.runtime == "ExecuTorch" and m.delegate == "XNNPACK" and m.stats["runs"] == 10
    assert m.ops, m.notes
    names = [o["name"] for o in m.ops]
    assert not {"DELEGATE_CALL", "Method::execute"} & set(names)  # spans, not operators
    assert any("Convolution" in n for n in names)
    assert sum(o["share"] for o in m.ops) == pytest.approx(1.0)
    assert any("static batch" in n for n in m.notes)  # a .pte cannot be re-batched: said, not faked


def test_eager_module_batch_threads_restored():
    import torch
    from artifacts import TINY_CNN

    module, _, _ = TINY_CNN.materialize()  # the module of the converted files, not converted
    before = torch.get_num_threads()
    res = profile(module, input_shape=TINY_CNN.input_shape, runs=8, warmup=1, threads=1, batch=4, ops=True,
                  progress=False)
    m = res.measured()[0]
    assert m.runtime == "PyTorch eager" and m.threads == 1 and m.stats["runs"] == 8
    assert m.batch_stats["batch"] == 4 and m.ops and any("conv" in o["name"] for o in m.ops)
    assert torch.get_num_threads() == before


@pytest.mark.export
@pytest.mark.slow  # converts the model twice (litert-torch, ExecuTorch)
def test_compare_runs_three_runtimes_side_by_side(tiny):
    res = profile(tiny["module"], input_shape=tiny["shape"], compare=True, runs=5, warmup=1, progress=False)
    assert [m.runtime for m in res.measured()] == ["PyTorch eager", "LiteRT", "ExecuTorch"]
    assert all(m.stats["runs"] == 5 for m in res.measured())
    assert res.estimates()


@pytest.mark.export
def test_progress_goes_to_stderr_not_stdout(tiny, capfd):
    res = profile(str(tiny["tflite"]), runs=20, warmup=0, progress=True)
    cap = capfd.readouterr()
    assert "timed runs" in cap.err and "timed runs" not in cap.out and res.measured()


@pytest.mark.export
def test_json_and_histogram(tiny, capsys, tmp_path):
    png = tmp_path / "hist.png"
    code, out, err = _cli(capsys, str(tiny["tflite"]), "--runs", "12", "--warmup", "1", "--json", "--plot", str(png))
    assert code == 0, err
    d = json.loads(out)
    assert d["schema"] == "edgekit.profile/1" and d["protocol"]["runs"] == 12 and d["protocol"]["warmup"] == 1
    m = d["measurements"][0]
    assert set(STAT_KEYS) <= set(m["stats"]) and len(m["times_ms"]) == 12
    assert {"runtime", "where", "threads", "estimate", "ops", "notes", "delegate", "versions",
            "batch_stats"} <= set(m)
    assert d["measurements"][-1]["estimate"] is True
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.export
def test_text_output(tiny, capsys):
    code, out, err = _cli(capsys, str(tiny["tflite"]), "--runs", "5", "--warmup", "0")
    assert code == 0
    assert "LiteRT + XNNPACK" in out and "(estimate)" in out and "per-layer estimate" in out
    assert "first run" in out and "not timed" in out


# ---- emulated --------------------------------------------------------------------------------

def test_mcu_target_is_emulated_int8_and_labelled(capsys):
    res = profile("mcunet_tiny", target="nucleo-h743zi", runs=1, progress=False)
    (m,) = res.measurements
    assert m.estimate and m.where == "emulated:nucleo-h743zi" and m.stats["mean_ms"] > 0
    assert any("int8" in n for n in m.notes) and any("estimated, not measured" in n for n in res.notes)
    assert abs(sum(layer["ms"] for layer in m.layers) - m.stats["mean_ms"]) < 1e-9
    code, out, err = _cli(capsys, "mcunet_tiny", "--target", "nucleo-h743zi")
    assert code == 0 and "MCU cycle model (estimate)" in out and "estimated total" in out


@pytest.mark.export
def test_emulate_flag_on_host_and_phone(tiny):
    res = profile(str(tiny["tflite"]), emulate=True, progress=False)
    assert [m.where for m in res.measurements] == ["emulated:host"]
    res = profile(str(tiny["tflite"]), target="pixel-4", progress=False)
    assert res.measurements[0].where == "emulated:pixel-4" and "--adb" in res.notes[0]


# ---- bad input: one line, exit 2 -------------------------------------------------------------

@pytest.mark.parametrize("args,fragment", [
    (["--runs", "0"], "--runs must be at least 1"),
    (["--warmup", "-1"], "--warmup must not be negative"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--target", "no-such-board"], "no-such-board"),
    (["--runtime", "executorch"], "cannot run"),
    (["--compare"], "--compare needs a PyTorch model"),
    (["--ssh", "pi@host", "--adb"], "choose one of --ssh and --adb"),
])
@pytest.mark.export
def test_cli_bad_input_one_line_exit_2(tiny, capsys, args, fragment):
    code, out, err = _cli(capsys, str(tiny["tflite"]), *args)
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert "Traceback" not in err[0]


def test_cli_corrupt_artifact_and_missing_file(capsys, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    code, out, err = _cli(capsys, str(bad), "--runs", "1")
    assert code == 2 and len(err) == 1 and "TFL3" in err[0]
    code, out, err = _cli(capsys, str(tmp_path / "missing.tflite"))
    assert code == 2 and len(err) == 1 and "no such file" in err[0]


@pytest.mark.export
def test_library_rejects_bad_counts(tiny):
    with pytest.raises(EdgekitError, match="runs must be at least 1"):
        profile(str(tiny["tflite"]), runs=0)
    with pytest.raises(EdgekitError, match="threads"):
        profile(str(tiny["tflite"]), threads=-2)


def test_runner_crash_is_one_clear_error(tmp_path):
    """A .tflite whose header is fine but whose body is garbage: the child fails, edgekit explains."""
    p = tmp_path / "trunc.tflite"
    p.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\xff" * 40)
    with pytest.raises(EdgekitError) as ei:
        profile(str(p), runs=1, warmup=0, progress=False)
    assert "LiteRT" in str(ei.value) and "\n" not in str(ei.value)


def test_estimate_is_finite_for_registered_model():
    res = profile("mobilenet_v2:width=0.35,resolution=96", target="raspberry-pi-4b", progress=False)
    m = res.measurements[0]
    assert math.isfinite(m.stats["mean_ms"]) and m.threads == 4
