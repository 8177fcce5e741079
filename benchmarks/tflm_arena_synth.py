"""TFLite-Micro arena on hand-built models: prediction vs the real interpreter.

    python benchmarks/tflm_arena_synth.py [--cache DIR] [--all] [NAME ...]

Builds (or reuses from the cache) the models of ``tests/tflm_synth.py`` — recurrent and stateful
models, control flow, the signal-library audio front end, every tensor type, and with ``--all``
one model per registered kernel — measures the minimum arena in the ``tflite_micro`` interpreter
(``tests/tflm_truth.py``) and prints one row per model: measured, predicted, error, and what the
prediction refuses to model. Prints a table, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tflm_synth  # noqa: E402
import tflm_truth  # noqa: E402

from edgekit.analysis.tflm_arena import predict_tflm_arena  # noqa: E402
from edgekit.graph.tflite_reader import read_tflite  # noqa: E402
from edgekit.isolate import ChildFailure  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=str(tflm_synth.cache_dir_from_env() or "/tmp/edgekit-tflm-cache"))
    ap.add_argument("--all", action="store_true", help="also the one-kernel models (~250 interpreter runs)")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    names = args.names or (list(tflm_synth.MODELS) if args.all else [n for n in tflm_synth.MODELS
                                                                      if n not in tflm_synth.SINGLE_OPS])
    hdr = f"{'model':34s} {'measured':>9s} {'predicted':>9s} {'err %':>6s} {'head/tail':>9s}  notes"
    print(hdr)
    print("-" * len(hdr))
    worst = 0.0
    for name in names:
        path = tflm_synth.build(name, args.cache)
        est = predict_tflm_arena(read_tflite(path))
        try:
            truth, rep = tflm_truth.measure(path)
        except ChildFailure as exc:
            print(f"{name:34s} {'refused':>9s} {est.total_bytes:9,d} {'':>6s} {'':>9s}  "
                  f"TFLite-Micro: {exc.exc_message[:60]!r}; unmodelled: {', '.join(est.unmodelled) or '-'}")
            continue
        err = 100.0 * (est.total_bytes - truth) / truth
        exact = "exact" if (est.head_bytes, est.tail_bytes) == (rep.head_bytes, rep.tail_bytes) else "differs"
        if not est.unmodelled:
            worst = max(worst, abs(err))
        print(f"{name:34s} {truth:9,d} {est.total_bytes:9,d} {err:6.2f} {exact:>9s}  "
              + (f"unmodelled: {', '.join(est.unmodelled)}" if est.unmodelled else est.binding_phase))
    print("-" * len(hdr))
    print(f"{len(names)} models, worst |error| of the modelled ones {worst:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
