"""Eager PyTorch vs LiteRT (XNNPACK) vs ExecuTorch (XNNPACK), fp32, batch 1, on this host,
at 1 and 2 threads, side by side in one run; prints median latencies and ratios.

Every number comes from edgekit's one protocol (edgekit.profile): warm-up runs not timed,
then N timed runs; model loading and the first run never timed. LiteRT and ExecuTorch run
in child processes (runner.py), eager in this process with torch.set_num_threads. The three
runtimes are measured one after the other for each thread count, and the whole sweep is
repeated ``--rounds`` times (the median over rounds is reported), so a noisy neighbour on this
shared 2-core machine hits all of them alike. The host roofline estimate is shown beside.

    .venv/bin/python benchmarks/profile_host.py [--runs 50] [--warmup 10] [--rounds 2]
        [--models mobilenet_v2:width=1.0,resolution=224,default]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="mobilenet_v2:width=1.0,resolution=224;default",
                    help="';'-separated MODEL specs; 'default' is edgekit's default model")
    args = ap.parse_args(argv)

    import torch

    from edgekit.loader import load_model
    from edgekit.models.catalog import DEFAULT_MODEL
    from edgekit.profile import host
    from edgekit.profile.api import _export
    from edgekit.profile.emulate import estimate

    threads_list = [int(t) for t in args.threads.split(",")]
    rows = []
    versions = {}
    for spec in args.models.split(";"):
        spec = DEFAULT_MODEL if spec == "default" else spec
        lm = load_model(spec)
        module, shape = lm.module.eval(), tuple(lm.input_shape)
        with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
            t0 = time.perf_counter()
            tfl = _export(module, shape, "litert", Path(tmp))
            pte = _export(module, shape, "executorch", Path(tmp))
            print(f"{spec}: converted in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            est = {t: estimate(spec, target="host", dtype="fp32", threads=t).total_ms for t in threads_list}
            med = {}
            for rnd in range(args.rounds):
                for t in threads_list:
                    kw = dict(runs=args.runs, warmup=args.warmup, threads=t)
                    r_e = host.measure_eager(module, shape, **kw)
                    r_l = host.measure_artifact(tfl, **kw)
                    r_x = host.measure_artifact(pte, **kw)
                    for name, r in (("eager", r_e), ("litert", r_l), ("executorch", r_x)):
                        med.setdefault((t, name), []).append(r["stats"]["median_ms"])
                        versions.update(r.get("versions") or {})
                    print(f"  round {rnd + 1}, {t} thread(s): eager {r_e['stats']['median_ms']:.2f}, LiteRT "
                          f"{r_l['stats']['median_ms']:.2f}, ExecuTorch {r_x['stats']['median_ms']:.2f} ms",
                          file=sys.stderr)
            for t in threads_list:
                e, lr, x = (statistics.median(med[(t, n)]) for n in ("eager", "litert", "executorch"))
                rows.append((spec, t, e, lr, x, est[t]))
    print(f"\nfp32, batch 1, median of {args.runs} timed runs after {args.warmup} warm-up, median over "
          f"{args.rounds} rounds; torch {torch.__version__}, "
          + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if k != "torch" and v))
    head = (f"{'model':<40} {'thr':>3} {'eager ms':>9} {'LiteRT ms':>10} {'ExecuTorch ms':>14} "
            f"{'eager/LiteRT':>13} {'eager/ET':>9} {'ET/LiteRT':>10} {'estimate ms':>12}")
    print(head)
    print("-" * len(head))
    for spec, t, e, lr, x, es in rows:
        print(f"{spec:<40} {t:>3} {e:>9.2f} {lr:>10.2f} {x:>14.2f} {e / lr:>12.2f}x {e / x:>8.2f}x "
              f"{x / lr:>9.2f}x {es:>12.2f}")
    by_model = {}
    for spec, t, e, lr, x, _es in rows:
        by_model.setdefault(spec, {})[t] = (e, lr, x)
    if len(threads_list) == 2:
        a, b = threads_list
        print(f"\nthread scaling ({a} -> {b} threads, speed-up of the median):")
        for spec, d in by_model.items():
            print(f"  {spec:<40} eager {d[a][0] / d[b][0]:.2f}x  LiteRT {d[a][1] / d[b][1]:.2f}x  "
                  f"ExecuTorch {d[a][2] / d[b][2]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
