"""The one measurement protocol used everywhere: warm-up runs that are not counted, then N
timed runs, summarised as mean, std, min, median, p90, p99, max and throughput.
No torch, no numpy needed: the ssh runner copies this file to the device as is."""

from __future__ import annotations

import math
import sys
import time


def timed_loop(fn, *, warmup: int, runs: int, progress: bool = False) -> list[float]:
    """Call fn() warmup times untimed, then runs times timed; return milliseconds per run."""
    for _ in range(warmup):
        fn()
    times = []
    step = max(1, runs // 20)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if progress and (i % step == 0 or i == runs - 1):
            done = (i + 1) / runs
            bar = "#" * int(30 * done)
            sys.stderr.write(f"\r  timed runs [{bar:<30}] {i + 1}/{runs}")
            sys.stderr.flush()
    if progress:
        sys.stderr.write("\n")
    return times


def percentile(sorted_vals: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_vals:
        return float("nan")
    pos = (len(sorted_vals) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def summarize(times_ms: list[float], *, batch: int = 1) -> dict:
    if not times_ms:
        raise ValueError("no timed runs")
    s = sorted(times_ms)
    n = len(s)
    mean = sum(s) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in s) / (n - 1)) if n > 1 else 0.0
    return {"runs": n, "mean_ms": mean, "std_ms": std, "min_ms": s[0], "median_ms": percentile(s, 50),
            "p90_ms": percentile(s, 90), "p99_ms": percentile(s, 99), "max_ms": s[-1],
            "throughput_per_s": 1000.0 * batch / mean if mean > 0 else float("inf")}


# ---- additions shared by the host and device runners (still stdlib only) -------------------

DEFAULT_WARMUP = 10
DEFAULT_RUNS = 100


def check_counts(*, runs: int, warmup: int, batch: int = 1, threads=None) -> None:
    """Raise ValueError naming the bad value (the callers turn it into their own error type)."""
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise ValueError(f"runs must be at least 1 (got {runs!r})")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise ValueError(f"warmup must not be negative (got {warmup!r})")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be at least 1 (got {batch!r})")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValueError(f"threads must be at least 1 (got {threads!r})")


def measure(fn, *, warmup: int, runs: int, batch: int = 1, progress: bool = False) -> dict:
    """The protocol in one call: ``fn`` has already run once (the untimed first run, after
    loading); warm up, time ``runs`` calls and summarise. Returns summarize(...) plus the raw
    per-run times under ``times_ms``."""
    times = timed_loop(fn, warmup=warmup, runs=runs, progress=progress)
    stats = summarize(times, batch=batch)
    stats["batch"] = batch
    stats["warmup"] = warmup
    stats["times_ms"] = times
    return stats


def platform_info() -> dict:
    import os
    import platform

    return {"python": platform.python_version(), "system": platform.system(), "machine": platform.machine(),
            "node": platform.node(), "cpu_count": os.cpu_count()}
