"""Measure on this machine: .tflite in LiteRT, .pte in ExecuTorch (both in a child process
running ``runner.py``, the same file the ssh profiler runs on a device), and PyTorch eager
in this process with ``torch.set_num_threads``.

Every function returns the runner's result dict (see ``runner.py``): runtime, delegate,
threads, stats (summarize(...) + ``times_ms``), batch_stats, first_run_ms, load_ms, ops,
notes, versions, platform.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from edgekit.errors import ArtifactError, RuntimeFailure, UsageError
from edgekit.profile import _proc, protocol

RUNNER = Path(__file__).with_name("runner.py")


def runner_args(artifact: str, *, runs: int, warmup: int, threads, batch: int, xnnpack: bool, ops: bool,
                progress: bool, input_shape=None) -> list[str]:
    """The runner's command-line arguments (after the script path), the same on host and device."""
    args = [artifact, "--runs", str(int(runs)), "--warmup", str(int(warmup)), "--batch", str(int(batch))]
    if threads:
        args += ["--threads", str(int(threads))]
    if not xnnpack:
        args.append("--no-xnnpack")
    if ops:
        args.append("--ops")
    if progress:
        args.append("--progress")
    if input_shape:
        args += ["--input-shape", ",".join(str(int(d)) for d in input_shape)]
    return args


def check_artifact(path) -> str:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"no such file: {path}")
    if p.is_dir():
        raise UsageError(f"{path} is a directory, expected a .tflite or .pte file")
    suffix = p.suffix.lower()
    if suffix not in (".tflite", ".pte"):
        raise UsageError(f"cannot profile {path}: expected a .tflite or .pte file")
    head = p.read_bytes()[:8]
    if suffix == ".tflite" and (len(head) < 8 or head[4:8] != b"TFL3"):
        raise ArtifactError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier); rebuild it")
    if suffix == ".pte" and (len(head) < 8 or head[4:6] != b"ET"):
        raise ArtifactError(f"{path} is not an ExecuTorch program (.pte): no ET identifier; rebuild it")
    if suffix == ".pte" and head[4:8] == b"ET12":  # truncated: say so before starting ExecuTorch
        from edgekit.graph.pte_reader import check_pte_file

        check_pte_file(p)
    return str(p.resolve())


def measure_artifact(path, *, runs: int, warmup: int, threads=None, batch: int = 1, xnnpack: bool = True,
                     ops: bool = False, progress: bool = False, input_shape=None,
                     timeout_s: float = 1800.0) -> dict:
    """Run runner.py on this host in a fresh Python (a crash of the native runtime cannot take
    edgekit down) and return its result."""
    p = check_artifact(path)
    argv = [sys.executable, str(RUNNER)] + runner_args(p, runs=runs, warmup=warmup, threads=threads, batch=batch,
                                                        xnnpack=xnnpack, ops=ops, progress=progress,
                                                        input_shape=input_shape)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(x for x in [str(Path(__file__).resolve().parents[2]),
                                                    env.get("PYTHONPATH", "")] if x)
    done = _proc.run(argv, progress=progress, timeout_s=timeout_s, env=env)
    runtime = "ExecuTorch" if p.endswith(".pte") else "LiteRT"
    if done.timed_out:
        raise RuntimeFailure(f"{runtime} timed out after {timeout_s:g} s on {path}; lower --runs or check the model")
    res = _proc.result_from(done.stdout)
    if res is None:
        how = f"crashed with signal {-done.returncode}" if done.returncode < 0 else f"exited with {done.returncode}"
        raise RuntimeFailure(f"{runtime} {how} on {path} without a result: {_proc.last_line(done.stderr)}; "
                             f"the artifact may be corrupt or unsupported")
    if "error" in res:
        e = res["error"]
        raise RuntimeFailure(f"{runtime} failed on {path}: {e.get('type', 'error')}: {e.get('message', '')}")
    return res


def measure_eager(module, input_shape, *, runs: int, warmup: int, threads=None, batch: int = 1,
                  ops: bool = False, progress: bool = False) -> dict:
    """PyTorch eager in this process, fp32, under torch.no_grad(); the thread count is restored after."""
    import time

    import torch

    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    notes = []
    try:
        module = module.eval()
        x = torch.randn(*input_shape)
        with torch.inference_mode():
            t0 = time.perf_counter()
            module(x)  # the first run is never timed
            first_ms = (time.perf_counter() - t0) * 1e3
            stats = protocol.measure(lambda: module(x), warmup=warmup, runs=runs, progress=progress)
            batch_stats = None
            if batch > 1:
                xb = torch.randn(batch, *input_shape[1:])
                module(xb)
                batch_stats = protocol.measure(lambda: module(xb), warmup=warmup, runs=runs, batch=batch,
                                               progress=progress)
            op_rows = _torch_op_rows(module, x, min(runs, 20)) if ops else []
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)
    if not any(True for _ in module.parameters()) and not op_rows and ops:
        notes.append("no operators recorded")
    import numpy as np

    return {"runtime": "PyTorch eager", "runtime_package": "torch", "delegate": None, "threads": used,
            "stats": stats, "batch_stats": batch_stats, "first_run_ms": first_ms, "load_ms": None, "ops": op_rows,
            "notes": notes, "versions": {"torch": torch.__version__, "numpy": np.__version__},
            "platform": protocol.platform_info(), "input_shapes": [list(input_shape)]}


def _torch_op_rows(module, x, n: int) -> list:
    """Per-operator self CPU time (ms per inference) from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            module(x)
    rows = []
    for ev in prof.key_averages():
        self_us = getattr(ev, "self_cpu_time_total", 0.0)
        if self_us <= 0:
            continue
        rows.append({"name": ev.key, "ms": self_us / n / 1e3})
    total = sum(r["ms"] for r in rows) or 1.0
    for r in rows:
        r["share"] = r["ms"] / total
    rows.sort(key=lambda r: -r["ms"])
    return rows
