"""The adb profiler: the benchmark_model / executor_runner parsers on real output formats, and
the failure modes against a FAKE ``adb`` script put first on PATH. The fake is a stand-in for
the phone that this machine does not have: it answers ``adb devices``, ``push``, ``shell``
like adb does, and prints benchmark_model output in the real format.
"""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from edgekit.errors import EdgekitError
from edgekit.profile import adb

# benchmark_model output as printed by recent LiteRT/TFLite builds (INFO: prefix, percentiles)
BENCH_NEW = textwrap.dedent("""\
    INFO: STARTING!
    INFO: Log parameter values verbosely: [0]
    INFO: Num threads: [4]
    INFO: Min warmup runs: [10]
    INFO: Graph: [/data/local/tmp/edgekit-abc.tflite]
    INFO: #threads used for CPU inference: [4]
    INFO: Use xnnpack: [1]
    INFO: Loaded model /data/local/tmp/edgekit-abc.tflite
    INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
    INFO: The input model file size (MB): 3.49
    INFO: Initialized session in 41.2ms.
    INFO: Running benchmark for at least 10 iterations and at least 0 seconds but terminate if exceeding 1800 seconds.
    INFO: count=10 first=9120 curr=7011 min=6950 max=9120 avg=7264.1 std=611 p5=6950 median=7050 p95=9120

    INFO: Running benchmark for at least 100 iterations and at least 0 seconds but terminate if exceeding 1800 seconds.
    INFO: count=100 first=7002 curr=6987 min=6871 max=8342 avg=7012.35 std=188 p5=6890 median=6979 p95=7391

    INFO: Inference timings in us: Init: 41200, First inference: 12480, Warmup (avg): 7264.1, Inference (avg): 7012.35
    INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
    INFO: Memory footprint delta from the start of the tool (MB): init=12.3 overall=19.8
    """)  # noqa: E501 (verbatim benchmark_model output)

# the older format: no prefix, no percentiles, scientific notation for large values, op profiling on
BENCH_OLD = textwrap.dedent("""\
    STARTING!
    Num threads: [4]
    Graph: [/data/local/tmp/m.tflite]
    Enable op profiling: [1]
    #threads used for CPU inference: [4]
    Loaded model /data/local/tmp/m.tflite
    Initialized session in 17.5ms.
    Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
    count=1 curr=2512391

    Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
    count=50 first=2190275 curr=2113402 min=2027568 max=2289954 avg=2.15034e+06 std=109798

    Inference timings in us: Init: 17500, First inference: 2512391, Warmup (avg): 2.51239e+06, Inference (avg): 2.15034e+06
    Profiling Info for Benchmark Initialization:
    ============================== Summary by node type ==============================
    \t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t[times called]
    \t         AllocateTensors\t        1\t     1.356\t   100.000%\t   100.000%\t     0.000\t        1

    Operator-wise Profiling Info for Regular Benchmark Runs:
    ============================== Summary by node type ==============================
    \t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t[times called]
    \t                 CONV_2D\t       15\t  1900.100\t    88.400%\t    88.400%\t     0.000\t       15
    \t       DEPTHWISE_CONV_2D\t       13\t   230.500\t    10.700%\t    99.100%\t     0.000\t       13
    \t         AVERAGE_POOL_2D\t        1\t    15.200\t     0.700%\t    99.800%\t     0.000\t        1
    \t                 SOFTMAX\t        1\t     4.300\t     0.200%\t   100.000%\t     0.000\t        1

    Timings (microseconds): count=50 first=2150000 curr=2100000 min=2000000 max=2300000 avg=2.15e+06 std=100000
    """)  # noqa: E501 (verbatim benchmark_model output)

# ExecuTorch executor_runner (logcat-style prefix as printed on Android)
RUNNER_OUT = ("I 00:00:00.002 executorch:executor_runner.cpp:88] Model file /data/local/tmp/edgekit-1.pte is loaded.\n"
              "I 00:00:00.431 executorch:executor_runner.cpp:160] Model executed successfully 111 time(s) in "
              "555.500000 ms.\n")


def test_parse_new_benchmark_model_output():
    r = adb.parse_benchmark_model(BENCH_NEW)
    s = r["stats"]
    assert s["runs"] == 100
    assert s["mean_ms"] == pytest.approx(7.01235) and s["std_ms"] == pytest.approx(0.188)
    assert s["min_ms"] == pytest.approx(6.871) and s["max_ms"] == pytest.approx(8.342)
    assert s["median_ms"] == pytest.approx(6.979) and s["p95_ms"] == pytest.approx(7.391)
    assert s["throughput_per_s"] == pytest.approx(1000 / 7.01235)
    assert r["first_run_ms"] == pytest.approx(12.48) and r["load_ms"] == pytest.approx(41.2)
    assert r["warmup_mean_ms"] == pytest.approx(7.2641)
    assert r["threads"] == 4 and r["delegate"] == "XNNPACK" and r["ops"] == []


def test_parse_old_benchmark_model_output_with_op_profile():
    r = adb.parse_benchmark_model(BENCH_OLD)
    s = r["stats"]
    assert s["runs"] == 50 and s["mean_ms"] == pytest.approx(2150.34) and s["std_ms"] == pytest.approx(109.798)
    assert s["median_ms"] is None and s["p90_ms"] is None
    assert r["first_run_ms"] == pytest.approx(2512.391)
    names = [o["name"] for o in r["ops"]]
    assert names == ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "SOFTMAX"]  # regular runs, not init
    assert r["ops"][0]["share"] == pytest.approx(0.884) and r["ops"][0]["ms"] == pytest.approx(1900.1)


def test_parse_summary_only_and_garbage():
    r = adb.parse_benchmark_model("I tflite  : Inference timings in us: Init: 92318, First inference: 187533, "
                                  "Warmup (avg): 211669, Inference (avg): 145528\n")
    assert r["stats"]["mean_ms"] == pytest.approx(145.528) and r["stats"]["std_ms"] is None
    with pytest.raises(EdgekitError, match="Inference timings"):
        adb.parse_benchmark_model("Segmentation fault\n")


def test_parse_executor_runner():
    assert adb.parse_executor_runner(RUNNER_OUT) == (111, pytest.approx(555.5))
    with pytest.raises(EdgekitError, match="executed successfully"):
        adb.parse_executor_runner("Model executed successfully.\n")


# ---- the fake adb -----------------------------------------------------------------------------

FAKE_ADB = r'''#!{python}
import os, sys
args = sys.argv[1:]
mode = os.environ["FAKE_ADB_MODE"]
with open(os.environ["FAKE_ADB_LOG"], "a") as f:
    f.write(repr(args) + "\n")
serial = None
if args[:1] == ["-s"]:
    serial, args = args[1], args[2:]
if args[:1] == ["devices"]:
    print("List of devices attached")
    if mode == "unauthorized":
        print("R58M123\tunauthorized")
    elif mode != "none":
        print("R58M123\tdevice")
        if mode == "two":
            print("emulator-5554\tdevice")
    print()
    sys.exit(0)
if args[:1] == ["push"]:
    print(f"{{args[1]}}: 1 file pushed")
    sys.exit(0)
if args[:1] == ["shell"]:
    cmd = " ".join(args[1:])
    if cmd.startswith("test -x"):
        if mode != "nobin":
            print("edgekit-ok")
        sys.exit(0)
    if cmd.startswith("rm -f"):
        sys.exit(0)
    if "benchmark_model" in cmd:
        sys.stdout.write(open(os.environ["FAKE_ADB_OUTPUT"]).read())
        sys.exit(0)
    if "executor_runner" in cmd:
        n = int(cmd.split("--num_executions=")[1].split()[0])
        print(f"I 00:00:00.431 executorch:executor_runner.cpp:160] Model executed successfully {{n}} "
              f"time(s) in {{2.0 + 5.0 * n:f}} ms.")
        sys.exit(0)
print("fake adb: unexpected " + repr(args), file=sys.stderr)
sys.exit(1)
'''


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "adb"
    exe.write_text(FAKE_ADB.format(python=sys.executable))
    exe.chmod(0o755)
    out = tmp_path / "bench.txt"
    out.write_text(BENCH_NEW)
    log = tmp_path / "adb.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    monkeypatch.setenv("FAKE_ADB_OUTPUT", str(out))

    def use(mode):
        monkeypatch.setenv("FAKE_ADB_MODE", mode)
        return log

    return use


@pytest.fixture
def tflite(tmp_path):
    """Any file with a TFL3 identifier passes the artifact check; the fake never reads it."""
    p = tmp_path / "m m;$(x).tflite"
    p.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    return p


@pytest.fixture
def pte(tmp_path):
    p = tmp_path / "m.pte"
    p.write_bytes(b"\x00\x00\x00\x00ET12" + b"\x00" * 64)
    return p


def test_adb_missing(monkeypatch, tmp_path, tflite):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EdgekitError, match="apt-get install adb"):
        adb.profile_adb(tflite, runs=5, warmup=1)


def test_no_device(fake_adb, tflite):
    fake_adb("none")
    with pytest.raises(EdgekitError, match="no Android device attached"):
        adb.profile_adb(tflite, runs=5, warmup=1)


def test_serial_not_attached(fake_adb, tflite):
    fake_adb("one")
    with pytest.raises(EdgekitError, match="'XYZ' is not attached .*R58M123"):
        adb.profile_adb(tflite, serial="XYZ", runs=5, warmup=1)


def test_unauthorized_and_several_devices(fake_adb, tflite):
    fake_adb("unauthorized")
    with pytest.raises(EdgekitError, match="accept the USB debugging prompt"):
        adb.profile_adb(tflite, serial="R58M123", runs=5, warmup=1)
    fake_adb("two")
    with pytest.raises(EdgekitError, match="--adb SERIAL"):
        adb.profile_adb(tflite, runs=5, warmup=1)


def test_missing_benchmark_binary_says_how_to_push_it(fake_adb, tflite, pte):
    fake_adb("nobin")
    with pytest.raises(EdgekitError) as ei:
        adb.profile_adb(tflite, runs=5, warmup=1)
    assert "adb -s R58M123 push" in str(ei.value) and "/data/local/tmp/benchmark_model" in str(ei.value)
    with pytest.raises(EdgekitError, match="executor_runner"):
        adb.profile_adb(pte, runs=5, warmup=1)


def test_benchmark_model_through_fake_adb(fake_adb, tflite):
    log = fake_adb("one")
    res = adb.profile_adb(tflite, runs=100, warmup=10, threads=4)
    assert res["stats"]["runs"] == 100 and res["stats"]["mean_ms"] == pytest.approx(7.01235)
    calls = log.read_text()
    assert "--num_runs=100" in calls and "--warmup_runs=10" in calls and "--num_threads=4" in calls
    shell = [ln for ln in calls.splitlines() if "'shell'" in ln]
    assert shell and not any("$(x)" in ln for ln in shell)  # the user's file name never reaches the device
    pushed = [ln for ln in calls.splitlines() if "'push'" in ln]
    assert pushed and "/data/local/tmp/edgekit-" in pushed[0]
    assert any("rm -f /data/local/tmp/edgekit-" in ln for ln in calls.splitlines())  # cleaned up


def test_executor_runner_through_fake_adb(fake_adb, pte):
    fake_adb("one")
    res = adb.profile_adb(pte, runs=20, warmup=5)
    # the fake takes 2 ms + 5 ms per execution: the difference method must recover 5 ms
    assert res["stats"]["mean_ms"] == pytest.approx(5.0) and res["stats"]["runs"] == 20
    assert any("only a total" in n for n in res["notes"])


def test_cli_adb_errors_are_one_line(fake_adb, tflite, capsys):
    from edgekit.cli import main

    fake_adb("none")
    code = main(["profile", str(tflite), "--adb", "--runs", "3"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and "no Android device" in err[0]
    fake_adb("one")
    code = main(["profile", str(tflite), "--adb", "NOPE", "--runs", "3"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and "not attached" in err[0]


def test_cli_adb_json(fake_adb, tflite, capsys):
    import json

    from edgekit.cli import main

    fake_adb("one")
    code = main(["profile", str(tflite), "--adb", "R58M123", "--runs", "100", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    d = json.loads(out)
    m = d["measurements"][0]
    assert m["where"] == "adb:R58M123" and m["stats"]["runs"] == 100 and m["delegate"] == "XNNPACK"
