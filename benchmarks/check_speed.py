"""How fast `edgekit check` answers, and how the planners scale.

Prints one table: cold `edgekit check` on a .tflite (no torch), on a registered model, and
greedy/naive planning of a synthetic 5,000-op graph, each the median of several runs.
Usage: python benchmarks/check_speed.py
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cold(args, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        assert p.returncode in (0, 1), p.stderr
    return statistics.median(times)


def synthetic_buffers(n_ops: int, seed: int = 0):
    from edgekit.analysis.planners import Buffer

    rng = random.Random(seed)
    bufs = []
    for i in range(n_ops):
        life = 1 if rng.random() < 0.8 else rng.randint(2, 40)  # most die at the next op, some are skips
        bufs.append(Buffer(i, rng.randint(64, 200_000), i, min(i + life, n_ops)))
    return bufs


def main():
    import torch

    from edgekit.analysis.planners import lower_bound, plan_greedy_by_size, plan_naive, verify_plan
    from edgekit.export.tflite import convert_fp32
    from edgekit.models import create_model

    tmp = Path(tempfile.mkdtemp())
    tfl = tmp / "mnv2.tflite"
    m = create_model("mobilenet_v2", width=0.35, resolution=96)
    tfl.write_bytes(convert_fp32(m, torch.randn(1, 3, 96, 96)))
    rows = []
    t_help = cold(["--help"])
    rows.append(("edgekit --help (cold process)", t_help, "-"))
    rows.append(("edgekit check mnv2.tflite (cold, no torch)", cold(["check", str(tfl)]), "goal < 1 s"))
    rows.append(("edgekit check mobilenet_v2 (cold)", cold(["check", "mobilenet_v2"], repeats=2), "goal < 10 s"))
    bufs = synthetic_buffers(5000)
    for name, fn in (("greedy-by-size plan, 5,000 ops", plan_greedy_by_size), ("naive plan, 5,000 ops", plan_naive)):
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            plan = fn(bufs)
            ts.append(time.perf_counter() - t0)
        verify_plan(plan)
        rows.append((name, statistics.median(ts), f"arena/lower bound {plan.arena_bytes / lower_bound(bufs):.3f}"))
    print(f"{'what':48} {'seconds':>9}  note")
    for what, sec, note in rows:
        print(f"{what:48} {sec:9.3f}  {note}")
    print(f"\nratio check(.tflite) / --help: {rows[1][1] / t_help:.2f}x")


if __name__ == "__main__":
    main()
