"""TFLite-Micro arena: prediction (edgekit.analysis.tflm_arena) vs the real interpreter.

    python benchmarks/tflm_arena.py [--cache DIR] [--fast] [--bisect]

Builds (or reuses from the cache) the test models of ``tests/tflm_models.py``, asks the real
TFLite-Micro interpreter for the minimum arena (recorded total confirmed by probes N / N-16,
or with ``--bisect`` a pure bisection on arena_size) and prints one row per model.
Prints a table, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tflm_models  # noqa: E402

from edgekit.analysis.tflm_arena import predict_tflm_arena  # noqa: E402
from edgekit.graph.tflite_reader import read_tflite  # noqa: E402
from edgekit.runtime.tflm import tflm_allocations, tflm_min_arena, tflm_min_arena_bisect  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=str(tflm_models.cache_dir_from_env() or "/tmp/edgekit-tflm-cache"))
    ap.add_argument("--fast", action="store_true", help="skip the torchvision-size models marked slow")
    ap.add_argument("--bisect", action="store_true", help="truth by bisection only (slower)")
    args = ap.parse_args(argv)

    rows = []
    for spec in tflm_models.SPECS.values():
        if args.fast and spec.slow:
            continue
        for dtype in ["int8"] + (["fp32"] if spec.fp32 else []):
            t0 = time.perf_counter()
            path = tflm_models.build(spec.name, dtype, args.cache)
            rep = tflm_allocations(path)
            truth = tflm_min_arena_bisect(path) if args.bisect else tflm_min_arena(path)
            est = predict_tflm_arena(read_tflite(path))
            rows.append((f"{spec.name} {dtype}", truth, est, rep, time.perf_counter() - t0))
            print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    hdr = (f"{'model':26s} {'truth B':>9s} {'predicted':>9s} {'err %':>6s} | {'head':>8s} {'pred':>8s} | "
           f"{'tail':>7s} {'pred':>7s} | {'recorded':>9s}  bound by")
    print(hdr)
    print("-" * len(hdr))
    worst = 0.0
    for name, truth, est, rep, _ in rows:
        err = 100.0 * (est.total_bytes - truth) / truth
        worst = max(worst, abs(err))
        print(f"{name:26s} {truth:9,d} {est.total_bytes:9,d} {err:6.2f} | {rep.head_bytes:8,d} {est.head_bytes:8,d} | "
              f"{rep.tail_bytes:7,d} {est.tail_bytes:7,d} | {rep.total_bytes:9,d}  {est.binding_phase}")
    print("-" * len(hdr))
    print(f"{len(rows)} models, worst |error| {worst:.2f} %  (truth: minimum arena_size accepted by "
          f"tflite_micro's interpreter; recorded: its 'Arena allocation total')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
