"""`edgekit sweep`: grids refused before any work, the analytic rows against `analyze` and the
emulator, Pareto fronts against an independent computation, the verified builds' arenas against
TFLite-Micro itself, a real local Ray (2 workers) giving the serial run's results, resume.

The verified sweep is 12 candidates (mcu_mobilenet_v1, widths 0.25/0.35/0.5 × resolutions
32/40/48/56, fp32: an untrained int8 net at 32 px can miss the build's int8 verification floor)
on two boards. Its objectives minimise arena, latency and MACs, so each front is the one smallest
candidate and the verified builds stay two per run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.errors import UsageError
from edgekit.sweep import make_grid, sweep
from edgekit.sweep.config import make_config
from edgekit.sweep.pareto import front
from edgekit.sweep.result import Row

FAMILY = "mcu_mobilenet_v1"
GRID = ["width=0.25,0.35,0.5", "resolution=32,40,48,56"]
TARGETS = ["nrf52840-dk", "nucleo-h743zi"]
SMALLEST = ["arena_bytes:min", "latency_ms:min", "macs:min"]
KW = dict(targets=TARGETS, dtype="fp32", objectives=SMALLEST)


# ---- refused before any work ----------------------------------------------------------------------

BAD = [
    (["--grid", "width=0.25,x", "--targets", "nrf52840-dk"], "not a number"),
    (["--grid", "depth=1,2", "--targets", "nrf52840-dk"], "unknown grid axis 'depth'"),
    (["--grid", "width=0.25,0.25", "--targets", "nrf52840-dk"], "lists 0.25 twice"),
    (["--grid", "resolution=16", "--targets", "nrf52840-dk"], "resolution must be >= 32"),
    (["--grid", "width=", "--targets", "nrf52840-dk"], "empty value"),
    (["--grid", "width=0.25", "width=0.5", "--targets", "nrf52840-dk"], "given twice"),
    (["--grid", "width=0.25", "--targets", "nrf52840-dkk"], "unknown target 'nrf52840-dkk'"),
    (["--grid", "width=0.25", "--targets", "nrf52840-dk,nrf52840-dk"], "twice"),
    (["--grid", "width=0.25", "--targets", "tflite"], "is a format, not a device"),
    (["--grid", "width=0.25", "--targets", "nrf52840-dk", "--dtype", "fp16"], "applies to none of the targets"),
    (["--grid", "width=0.25", "--targets", "raspberry-pi-4b", "--memory-plan", "tflm"], "applies to none"),
    (["--grid", "width=0.25", "--targets", "nrf52840-dk", "--objective", "speed:max"], "bad objective"),
    (["--grid", "width=0.25", "--targets", "nrf52840-dk", "--calibration", "/no/such/dir"], "no such calibration"),
    (["--grid", "width=0.25"], "required: --targets"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m for _, m in BAD])
def test_bad_grids_and_targets_are_refused_with_one_line(args, message, tmp_path, capsys):
    out = tmp_path / "sweep"
    try:
        rc = main(["sweep", "mcu_mobilenet_v1", *args, "-o", str(out)])
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("edgekit: error:") and message in err, err
    assert not out.exists()  # nothing written


def test_unknown_family_refused_and_nothing_heavy_imported(tmp_path):
    """Refused before any work: no torch, no Ray imported, no folder created."""
    argv = ["sweep", "nosuch", "--grid", "width=0.5", "--targets", "nrf52840-dk", "-o", str(tmp_path / "s")]
    code = ("import sys; from edgekit.cli import main; "
            f"rc = main({argv!r}); "
            "print(rc, 'torch' in sys.modules, 'ray' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.stdout.split() == ["2", "False", "False"], (p.stdout, p.stderr)
    assert "unknown model family 'nosuch'" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_grid_enumerates_candidates_in_axis_order():
    g = make_grid(FAMILY, ["width=0.5,0.25", "resolution=64,32"], dtype="int8,fp32")
    cands = g.candidates()
    assert g.size == len(cands) == 8
    assert [c.id for c in cands[:3]] == ["width=0.5,resolution=64,dtype=int8", "width=0.5,resolution=64,dtype=fp32",
                                         "width=0.5,resolution=32,dtype=int8"]
    assert cands[0].spec == "mcu_mobilenet_v1:width=0.5,resolution=64" and cands[0].dtype == "int8"
    assert len({c.slug for c in cands}) == 8
    assert make_grid(FAMILY, {"width": [0.25, 0.5]}).candidates()[1].spec == "mcu_mobilenet_v1:width=0.5"
    with pytest.raises(UsageError, match="applies to none"):
        make_config(FAMILY, ["width=0.25"], targets=["raspberry-pi-4b"], memory_plan="offline")


# ---- Pareto fronts against an independent computation --------------------------------------------

def independent_front(rows: list[dict], objectives: list[str]) -> set[str]:
    """Written apart from edgekit.sweep.pareto: a candidate is on the front unless another fitting
    one is no worse on every objective and better on at least one (objectives as signed keys)."""
    def key(r):
        return [(r[o.split(":")[0]] if o.endswith(":min") else -r[o.split(":")[0]]) for o in objectives]

    ok = [r for r in rows if r["status"] == "ok" and r["fits"]]
    out = set()
    for r in ok:
        kr = key(r)
        beaten = False
        for s in ok:
            ks = key(s)
            if s is not r and all(a <= b for a, b in zip(ks, kr)) and ks != kr:
                beaten = True
                break
        if not beaten:
            out.add(r["candidate"])
    return out


def test_front_on_random_points_matches_the_independent_computation():
    import random

    rnd = random.Random(7)
    objectives = ["arena_bytes:min", "latency_ms:min", "macs:max"]
    for trial in range(50):
        rows = [{"candidate": f"c{i}", "target": "t", "status": "ok", "fits": rnd.random() > 0.2,
                 "arena_bytes": rnd.randint(1, 6), "latency_ms": float(rnd.randint(1, 6)), "macs": rnd.randint(1, 6)}
                for i in range(rnd.randint(1, 30))]
        got = {r.candidate for r in front([Row.from_dict(r) for r in rows], objectives)}
        assert got == independent_front(rows, objectives), trial


# ---- the verified sweep: serial, then a real local Ray with 2 workers -----------------------------

@pytest.fixture(scope="module")
def tflm_cache(tmp_path_factory):
    os.environ.setdefault("EDGEKIT_TFLM_CACHE", str(tmp_path_factory.mktemp("tflm-cache")))


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory, tflm_cache):
    out = tmp_path_factory.mktemp("serial") / "sweep"
    return sweep(FAMILY, GRID, output=out, executor="serial", **KW)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is the optional extra edgekit[sweep]")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {k: os.environ[k] for k in ("PYTHONPATH", "EDGEKIT_TFLM_CACHE")
                                       if k in os.environ}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory, local_ray, tflm_cache):
    out = tmp_path_factory.mktemp("ray") / "sweep"
    return sweep(FAMILY, GRID, output=out, executor="ray", **KW)


@pytest.mark.slow
@pytest.mark.export
def test_serial_sweep_rows_fronts_and_files(serial_run):
    r = serial_run
    d = json.loads((Path(r.output) / "sweep.json").read_text())
    assert len(d["candidates"]) == 12 and len(d["rows"]) == 24 and not d["failures"]
    for t in TARGETS:
        rows = [x for x in d["rows"] if x["target"] == t]
        assert set(d["fronts"][t]) == independent_front(rows, SMALLEST)
        assert d["fronts"][t] == ["width=0.25,resolution=32,dtype=fp32"]
    csv_lines = (Path(r.output) / "sweep.csv").read_text().splitlines()
    assert len(csv_lines) == 25 and csv_lines[0].startswith("width,resolution,dtype,candidate,target")
    for t in TARGETS:
        assert (Path(r.output) / f"pareto-{t}.png").read_bytes()[:4] == b"\x89PNG"
    html = (Path(r.output) / "sweep.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "Pareto front: 1 candidate" in html


@pytest.mark.slow
@pytest.mark.export
def test_rows_are_what_analyze_and_the_emulator_say(serial_run):
    """Two candidates re-analysed through the public entry points, each with its own capture."""
    from edgekit.analysis.api import analyze
    from edgekit.profile.emulate import estimate_graph, graph_for
    from edgekit.targets import load_target

    for cid, spec in [("width=0.35,resolution=48,dtype=fp32", "mcu_mobilenet_v1:width=0.35,resolution=48"),
                      ("width=0.5,resolution=56,dtype=fp32", "mcu_mobilenet_v1:width=0.5,resolution=56")]:
        for t in TARGETS:
            row = next(x for x in serial_run.rows if x.candidate == cid and x.target == t)
            a = analyze(spec, target=t, dtype="fp32")
            v = a.check(suggest=False)
            assert (row.arena_bytes, row.model_bytes, row.macs, row.params, row.fits) == \
                (a.arena_bytes, a.model_bytes, a.macs, a.params, v.fits)
            assert row.sram_bytes == v.sram_bytes and row.reasons == v.reasons
    # the latency: the emulator on its own capture of the same model in the same dtype
    for t in TARGETS:
        g, dt, _ = graph_for("mcu_mobilenet_v1:width=0.35,resolution=48", dtype="fp32", target=load_target(t))
        row = next(x for x in serial_run.rows if x.candidate == "width=0.35,resolution=48,dtype=fp32" and x.target == t)
        assert row.latency_ms == pytest.approx(estimate_graph(g, t, dtype=dt).total_ms, abs=5e-7)  # rounded to 1 ns


def _tflm_allocates(path: Path, arena: int) -> bool:
    """TFLite-Micro itself, in a child process (a too-small arena may segfault)."""
    code = ("import sys\nfrom tflite_micro.python.tflite_micro import runtime\n"
            "try:\n    runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))\n"
            "except RuntimeError:\n    print('fail')\nelse:\n    print('ok')\n")
    p = subprocess.run([sys.executable, "-c", code, str(path), str(arena)], capture_output=True, text=True,
                       timeout=300)
    return p.returncode == 0 and p.stdout.strip().endswith("ok")


@pytest.mark.slow
@pytest.mark.export
def test_verified_builds_measured_arena_is_tflite_micro_s_minimum(serial_run):
    vs = serial_run.verified
    assert {(v.candidate, v.target) for v in vs} == {(serial_run.fronts[t][0], t) for t in TARGETS}
    for v in vs:
        assert v.status == "ok" and v.fits and v.verification["tflite-micro"]["cosine"] > 0.999
        model = Path(serial_run.output) / next(a for a in v.artifacts if a.endswith("model.tflite"))
        report = json.loads((model.parent / "report.json").read_text())
        assert report["arena_bytes"]["measured"] == v.measured_arena_bytes
        n = v.measured_arena_bytes
        assert _tflm_allocates(model, n) and not _tflm_allocates(model, n - 16), (v.candidate, v.target, n)
        row = next(x for x in serial_run.rows if x.candidate == v.candidate and x.target == v.target)
        assert v.predicted_arena_bytes == row.arena_bytes


@pytest.mark.slow
@pytest.mark.export
def test_local_ray_gives_the_serial_results(serial_run, ray_run):
    assert ray_run.executor == "ray" and ray_run.workers == 2
    assert ray_run.to_dict(timings=False) == serial_run.to_dict(timings=False)
    for v in ray_run.verified:  # the artifacts themselves, byte for byte; the build reports but their timings
        for a in v.artifacts:
            got, want = (Path(ray_run.output) / a).read_bytes(), (Path(serial_run.output) / a).read_bytes()
            if a.endswith("report.json"):
                got, want = (_without_wall_times(json.loads(b)) for b in (got, want))
            assert got == want, (a, _differences(got, want))


def _differences(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"[:300]]


def _without_wall_times(d):
    """A build report without what the clock decides: its stage timings and the planner's wall time."""
    if isinstance(d, dict):
        return {k: _without_wall_times(v) for k, v in d.items() if k not in ("timings_s", "planning_s", "elapsed_s")}
    return [_without_wall_times(v) for v in d] if isinstance(d, list) else d


@pytest.mark.slow
@pytest.mark.export
def test_a_finished_sweep_resumes_without_redoing_anything(serial_run, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(serial_run.output, out)
    events = []
    again = sweep(FAMILY, GRID, output=out, executor="serial", progress=events.append, **KW)
    assert again.reused == {"analyse": 12, "verify": 2}
    assert all(e.last is None for e in events)  # no task ran
    assert again.to_dict(timings=False) == serial_run.to_dict(timings=False)


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_from_what_is_done(tmp_path, tflm_cache):
    out = tmp_path / "sweep"
    grid = ["width=0.25,0.35", "resolution=32,40,48"]

    def stop_after_two(e):
        if e.phase == "analyse" and e.done == 2 and e.last is not None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(FAMILY, grid, output=out, executor="serial", verify="none", progress=stop_after_two, **KW)
    files = sorted((out / "state" / "analyse").iterdir())
    assert len(files) == 2 and not (out / "sweep.json").exists()
    stamps = {f.name: f.stat().st_mtime_ns for f in files}
    ran = []
    done = sweep(FAMILY, grid, output=out, executor="serial", verify="none",
                 progress=lambda e: ran.append(e.last) if e.last else None, **KW)
    assert done.reused["analyse"] == 2 and len(ran) == 4
    assert {f.name: f.stat().st_mtime_ns for f in files} == stamps  # finished candidates untouched
    fresh = sweep(FAMILY, grid, output=tmp_path / "fresh", executor="serial", verify="none", **KW)
    assert done.to_dict(timings=False) == fresh.to_dict(timings=False)


@pytest.mark.slow
def test_failed_candidates_are_reported_and_the_sweep_goes_on(tmp_path, local_ray, tflm_cache):
    """shufflenet_v2 takes widths 0.5/1.0/1.5/2.0 only: width 0.35 fails in its task, on Ray too."""
    r = sweep("shufflenet_v2", ["width=0.35,0.5", "resolution=32"], targets=["raspberry-pi-4b"], verify="none",
              output=tmp_path / "s", executor="ray")
    by = {x.candidate: x for x in r.rows}
    assert by["width=0.35,resolution=32"].status == "error"
    assert "valid widths" in by["width=0.35,resolution=32"].error
    assert by["width=0.5,resolution=32"].status == "ok" and r.fronts["raspberry-pi-4b"] == ["width=0.5,resolution=32"]
    assert [f["candidate"] for f in r.failures()] == ["width=0.35,resolution=32"]


def test_without_ray_the_sweep_runs_serially_and_says_how_to_get_parallelism(monkeypatch):
    import importlib.util

    from edgekit.sweep import executors

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    ex, notes = executors.make_executor("auto")
    assert ex.name == "serial" and "edgekit[sweep]" in notes[0]
    from edgekit.errors import MissingExtraError

    with pytest.raises(MissingExtraError, match=r"edgekit\[sweep\]"):
        executors.make_executor("auto", address="ray://head:10001")


def digits_accuracy(req):
    """A user's evaluator: top-1 of the PyTorch model on scikit-learn's digits (real data in the
    wheel), upscaled to the model's input. Module-level, so Ray can pickle it."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = x[:200].reshape(-1, 1, 8, 8) / 16.0, y[:200]
    side = req.input_shape[-1]
    t = torch.nn.functional.interpolate(torch.tensor(x, dtype=torch.float32), size=(side, side)).repeat(1, 3, 1, 1)
    with torch.no_grad():
        pred = req.module(t).argmax(1).numpy()
    return float(np.mean(pred == y))


@pytest.mark.slow
def test_the_accuracy_hook_fills_the_column_and_becomes_an_objective(tmp_path):
    from edgekit.loader import load_model, parse_spec
    from edgekit.sweep.accuracy import EvalRequest

    r = sweep(FAMILY, ["width=0.25,0.5", "resolution=32"], targets=["nucleo-h743zi"], verify="none",
              evaluator=digits_accuracy, output=tmp_path / "s", executor="serial")
    assert r.objectives == ["arena_bytes:min", "latency_ms:min", "accuracy:max"]
    for row in r.rows:
        spec = f"{FAMILY}:{row.candidate}"
        m = load_model(parse_spec(spec))
        assert row.accuracy == digits_accuracy(EvalRequest(None, spec, m.module, m.input_shape))
    assert set(r.fronts["nucleo-h743zi"]) == independent_front([x.to_dict() for x in r.rows], r.objectives)


@pytest.mark.slow  # ~7-30 s: CLI processes that import torch; `make test` runs it
def test_cli_sweep_json_and_exit_code(tmp_path, capsys):
    out = tmp_path / "s"
    rc = main(["sweep", FAMILY, "--grid", "width=0.25", "resolution=32,40", "--targets", "nucleo-h743zi",
               "--verify", "none", "--serial", "--json", "-o", str(out)])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["executor"] == "serial" and len(d["rows"]) == 2
    assert d["best"]["nucleo-h743zi"] == "width=0.25,resolution=32"  # the faster of two that fit
    assert json.loads((out / "sweep.json").read_text())["rows"] == d["rows"]
    # nothing fits a 1 KiB board: exit 1, the page and the table are still written
    tiny = tmp_path / "tiny.toml"
    src = (Path(__file__).resolve().parent.parent / "targets" / "nucleo-h743zi.toml").read_text()
    tiny.write_text(src.replace('id = "nucleo-h743zi"', 'id = "tiny"').replace("arena_budget_kib = 512",
                                                                              "arena_budget_kib = 1"))
    rc = main(["sweep", FAMILY, "--grid", "resolution=32", "--targets", str(tiny), "--verify", "none", "--serial",
               "-o", str(tmp_path / "t")])
    assert rc == 1 and "pick none" in capsys.readouterr().out and (tmp_path / "t" / "sweep.html").is_file()


def test_a_task_whose_process_dies_is_a_failed_candidate_and_the_sweep_goes_on():
    """A real crash (SIGABRT) in the serial executor's child: that task fails, the next one runs."""
    from edgekit.sweep.config import make_config
    from edgekit.sweep.executors import SerialExecutor
    from edgekit.sweep.tasks import Task

    cfg = make_config(FAMILY, ["width=0.25,0.5"], targets=["nucleo-h743zi"])
    ex = SerialExecutor(function=_abort_first)
    got = {}
    try:
        ex.run([Task("analyse", c) for c in cfg.grid.candidates()], cfg, got.__setitem__)
    finally:
        ex.close()
    assert got[0][0].status == "error" and "process died" in got[0][0].error
    assert got[1] == "ran width=0.5"


def _abort_first(task, config):
    import os

    if task.candidate.index == 0:
        os.abort()
    return f"ran {task.candidate.id}"
