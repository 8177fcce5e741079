"""Profile on an Android phone over adb with the runtimes' own native benchmark tools.

* .tflite: LiteRT's ``benchmark_model`` in ``/data/local/tmp`` (``--warmup_runs=W --num_runs=N``
  with the minimum-seconds limits set to 0, so the counts are ours), parsed from its output:
  the ``count=... avg=... std=...`` line of the regular runs, and the summary line
  ``Inference timings in us: Init: ..., First inference: ..., Warmup (avg): ..., Inference (avg): ...``.
  ``--enable_op_profiling=true`` with ``ops=True`` gives the per-operator table.
* .pte: ExecuTorch's ``executor_runner`` in ``/data/local/tmp``. It only prints a total
  ("Model executed successfully N time(s) in X ms."), first run included and no warm-up, so it
  is run twice, with 1+W and with 1+W+N executions: the timed mean is the difference over N.
  No spread or percentiles are available from it, and the result says so.

The artifact is pushed under a fixed name (never the user's file name) and removed after.
Errors (no adb, no device, unknown serial, missing binary) are one line saying what to do.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import uuid
from pathlib import Path

from edgekit.errors import EdgekitError, RuntimeFailure, UsageError
from edgekit.profile.host import check_artifact

REMOTE_DIR = "/data/local/tmp"
BENCHMARK_MODEL = f"{REMOTE_DIR}/benchmark_model"
EXECUTOR_RUNNER = f"{REMOTE_DIR}/executor_runner"
_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"


class AdbError(EdgekitError):
    """adb missing, no device, or the device lacks the benchmark binary."""


# ---- parsing -------------------------------------------------------------------------------

def parse_benchmark_model(text: str) -> dict:
    """Parse LiteRT/TFLite ``benchmark_model`` output into the runner's result keys (ms).

    Accepts the plain, the ``INFO:``-prefixed and the logcat-prefixed forms. The regular runs
    are the last ``count=`` line with ``first=`` before the summary (the warm-up line comes first)."""
    summary = re.search(r"Inference timings in us: Init: " + _NUM + r", First inference: " + _NUM
                        + r", Warmup \(avg\): " + _NUM + r", Inference \(avg\): " + _NUM, text)
    if not summary:
        raise RuntimeFailure("benchmark_model printed no 'Inference timings in us' line: "
                             + _last_line(text))
    init_us, first_us, warm_us, infer_us = (float(x) for x in summary.groups())
    runs_line = None
    # the count= lines before the summary: warm-up, then regular runs (op profiling, after the
    # summary, prints its own "Timings (microseconds): count=..." lines)
    for line in text[:summary.start()].splitlines():
        if re.search(r"\bcount=\d+", line) and "first=" in line:
            runs_line = line
    fields = dict(re.findall(r"\b(count|first|curr|min|max|avg|std|p5|median|p95)=" + _NUM, runs_line or ""))
    ms = {k: float(v) / 1e3 for k, v in fields.items() if k != "count"}
    mean = ms.get("avg", infer_us / 1e3)
    stats = {"runs": int(float(fields["count"])) if "count" in fields else None, "mean_ms": mean,
             "std_ms": ms.get("std"), "min_ms": ms.get("min"), "median_ms": ms.get("median"), "p90_ms": None,
             "p99_ms": None, "max_ms": ms.get("max"), "throughput_per_s": 1000.0 / mean if mean > 0 else None,
             "p5_ms": ms.get("p5"), "p95_ms": ms.get("p95"), "batch": 1}
    threads = re.search(r"(?:#threads used for CPU inference|Num threads): \[(\d+)\]", text)
    xnn = re.search(r"Use xnnpack: \[(\d)\]", text)
    delegate = None
    if "XNNPACK delegate" in text or "TfLiteXNNPackDelegate" in text or (xnn and xnn.group(1) == "1"):
        delegate = "XNNPACK"
    elif xnn and xnn.group(1) == "0":
        delegate = "none (builtin kernels)"
    return {"stats": stats, "first_run_ms": first_us / 1e3, "load_ms": init_us / 1e3,
            "warmup_mean_ms": warm_us / 1e3, "threads": int(threads.group(1)) if threads else None,
            "delegate": delegate, "ops": parse_op_profile(text)}


def parse_op_profile(text: str) -> list:
    """The last "Summary by node type" table of ``--enable_op_profiling=true`` (regular runs)."""
    blocks = text.split("Summary by node type")
    if len(blocks) < 2:
        return []
    rows = []
    for line in blocks[-1].splitlines()[1:]:
        if "=====" in line or (rows and not line.strip()):
            break
        cols = [c.strip() for c in re.split(r"\t+|\s{2,}", line.strip()) if c.strip()]
        if len(cols) < 4 or cols[0].startswith("["):
            continue
        try:
            avg_ms = float(cols[2])
            share = float(cols[3].rstrip("%")) / 100.0
        except ValueError:
            continue
        rows.append({"name": cols[0], "ms": avg_ms, "share": share, "count": int(float(cols[1]))})
    rows.sort(key=lambda r: -r["ms"])
    return rows


def parse_executor_runner(text: str) -> tuple[int, float]:
    """(executions, total ms) from "Model executed successfully N time(s) in X ms."."""
    m = re.search(r"Model executed successfully (\d+) time\(s\) in " + _NUM + r" ms", text)
    if not m:
        raise RuntimeFailure("executor_runner printed no 'Model executed successfully N time(s) in X ms' line "
                             "(an older executor_runner without --num_executions timing?): " + _last_line(text))
    return int(m.group(1)), float(m.group(2))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


# ---- adb -------------------------------------------------------------------------------------

def _adb(args: list[str], *, serial: str | None = None, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    argv = ["adb"] + (["-s", serial] if serial else []) + args
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError:
        raise AdbError("adb is not installed: apt-get install adb (or install Android platform-tools and put adb "
                       "on PATH)") from None
    except subprocess.TimeoutExpired:
        raise AdbError(f"adb {' '.join(args[:2])} timed out after {timeout_s:g} s") from None


def devices() -> list[tuple[str, str]]:
    """[(serial, state)] from ``adb devices``."""
    p = _adb(["devices"])
    if p.returncode != 0:
        raise AdbError(f"adb devices failed: {_last_line(p.stderr or p.stdout)}")
    out = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*")):
            continue
        parts = line.split()
        if len(parts) >= 2:
            out.append((parts[0], parts[1]))
    return out


def pick_device(serial: str | None) -> str:
    devs = devices()
    ready = [s for s, st in devs if st == "device"]
    if serial:
        states = dict(devs)
        if serial not in states:
            listed = ", ".join(f"{s} ({st})" for s, st in devs) or "none"
            raise AdbError(f"device {serial!r} is not attached (adb devices lists: {listed})")
        if states[serial] != "device":
            why = {"unauthorized": "accept the USB debugging prompt on the phone",
                   "offline": "reconnect the cable or restart adb (adb kill-server)"}.get(states[serial], "")
            raise AdbError(f"device {serial} is {states[serial]}" + (f": {why}" if why else ""))
        return serial
    if not ready:
        raise AdbError("no Android device attached (adb devices lists none ready): connect a phone with USB "
                       "debugging on" + (f"; seen: {', '.join(f'{s} ({st})' for s, st in devs)}" if devs else ""))
    if len(ready) > 1:
        raise AdbError(f"several devices attached ({', '.join(ready)}): choose one with --adb SERIAL")
    return ready[0]


def _has_binary(serial: str, path: str) -> bool:
    p = _adb(["shell", f"test -x {shlex.quote(path)} && echo edgekit-ok"], serial=serial)
    return "edgekit-ok" in p.stdout


def _shell(serial: str, argv: list[str], *, timeout_s: float) -> subprocess.CompletedProcess:
    return _adb(["shell", " ".join(shlex.quote(a) for a in argv)], serial=serial, timeout_s=timeout_s)


def profile_adb(artifact, *, serial: str | None = None, runs: int, warmup: int, threads=None, xnnpack: bool = True,
                ops: bool = False, timeout_s: float = 1800.0) -> dict:
    check_serial(serial)
    local = Path(check_artifact(artifact))
    suffix = local.suffix.lower()
    dev = pick_device(serial)
    binary = BENCHMARK_MODEL if suffix == ".tflite" else EXECUTOR_RUNNER
    if not _has_binary(dev, binary):
        if suffix == ".tflite":
            raise AdbError(f"{binary} is not on {dev}: get LiteRT's benchmark_model for Android (the prebuilt "
                           "android_aarch64_benchmark_model, or bazel build //tflite/tools/benchmark:benchmark_model "
                           f"--config=android_arm64), then: adb -s {dev} push android_aarch64_benchmark_model "
                           f"{binary} && adb -s {dev} shell chmod +x {binary}")
        raise AdbError(f"{binary} is not on {dev}: build ExecuTorch's executor_runner for Android with the XNNPACK "
                       f"backend (cmake -DANDROID_ABI=arm64-v8a ...), then: adb -s {dev} push executor_runner "
                       f"{binary} && adb -s {dev} shell chmod +x {binary}")
    remote = f"{REMOTE_DIR}/edgekit-{uuid.uuid4().hex[:12]}{suffix}"
    push = _adb(["push", str(local), remote], serial=dev, timeout_s=timeout_s)
    if push.returncode != 0:
        raise AdbError(f"adb push of {local.name} to {dev} failed: {_last_line(push.stderr or push.stdout)}")
    try:
        if suffix == ".tflite":
            argv = [binary, f"--graph={remote}", f"--warmup_runs={warmup}", f"--num_runs={runs}", "--min_secs=0",
                    "--warmup_min_secs=0", f"--max_secs={int(timeout_s)}",
                    f"--use_xnnpack={'true' if xnnpack else 'false'}"]
            if threads:
                argv.append(f"--num_threads={int(threads)}")
            if ops:
                argv.append("--enable_op_profiling=true")
            p = _shell(dev, argv, timeout_s=timeout_s)
            text = p.stdout + "\n" + p.stderr
            if p.returncode != 0 and "Inference timings" not in text:
                raise RuntimeFailure(f"benchmark_model failed on {dev}: {_last_line(text)}")
            res = parse_benchmark_model(text)
            res.update(runtime="LiteRT", runtime_package="benchmark_model", notes=[],
                       versions={"benchmark_model": _version_line(text)})
            if res["delegate"] is None:
                res["delegate"] = "XNNPACK" if xnnpack else "none (builtin kernels)"
            if res["stats"]["runs"] != runs:
                res["notes"].append(f"benchmark_model ran {res['stats']['runs']} timed runs (asked for {runs})")
            res["notes"].append("benchmark_model reports mean, std, min, max (and p5/median/p95 in newer builds); "
                                "p90/p99 are not available from it")
        else:
            def total(n):
                q = _shell(dev, [binary, f"--model_path={remote}", f"--num_executions={n}"], timeout_s=timeout_s)
                return parse_executor_runner(q.stdout + "\n" + q.stderr)

            n_a, t_a = total(1 + warmup)
            n_b, t_b = total(1 + warmup + runs)
            mean = (t_b - t_a) / runs if t_b > t_a else t_b / n_b
            stats = {"runs": runs, "mean_ms": mean, "std_ms": None, "min_ms": None, "median_ms": None, "p90_ms": None,
                     "p99_ms": None, "max_ms": None, "throughput_per_s": 1000.0 / mean if mean > 0 else None,
                     "batch": 1}
            res = {"runtime": "ExecuTorch", "runtime_package": "executor_runner", "delegate": None, "threads": threads,
                   "stats": stats, "first_run_ms": None, "load_ms": None, "ops": [], "versions": {},
                   "notes": [f"executor_runner prints only a total time: mean = (time of {n_b} executions - time of "
                             f"{n_a}) / {runs}; no spread or percentiles, delegate as built into the .pte"]}
            if ops:
                res["notes"].append("per-operator profile over adb needs an ETDump-enabled executor_runner; not done")
        res["batch_stats"] = None
        res["serial"] = dev
        return res
    finally:
        try:
            _adb(["shell", f"rm -f {shlex.quote(remote)}"], serial=dev)
        except EdgekitError:
            pass


def _version_line(text: str):
    m = re.search(r"(?:TensorFlow Lite|LiteRT)[^\n]*?version[:\s]+([\w.\-]+)", text)
    return m.group(1) if m else None


def check_serial(serial: str | None) -> None:
    if serial and (serial.startswith("-") or not re.fullmatch(r"[\w.:\-]+", serial)):
        raise UsageError(f"bad adb serial {serial!r}")
