"""Issue 19's performance table: a verified sweep serial vs a local Ray on this machine, Ray's
per-task overhead, the per-task costs of the two phases, and from them the time of a large sweep
on a cluster (computed, not run).

1. The same 24-candidate sweep (mcu_mobilenet_v1, widths 0.25/0.35/0.5 × 8 resolutions, fp32, on
   nucleo-h743zi; objectives arena:min, latency:min, params:max -> a front of one candidate per width,
   each built and verified for real) run twice in one process, each in a fresh folder: serial, then a
   local Ray on every core. Wall times side by side and their ratio.
2. Ray's overhead per task: N empty tasks through a warm local Ray (submit -> result), and the
   first task on a fresh worker (the worker's start and imports, paid once per worker).
3. The cluster estimate: T = ceil(C·A / W) · a + ceil(B / W) · b (+ startup), with C candidates, A the
   analytic cost per candidate for K targets (one export + K target analyses), B builds (the fronts),
   W workers, b the cost of one verified build and the Ray overhead added to each task.

Usage: python benchmarks/sweep.py [--workers N] [--nodes 32 --cores-per-node 8] [--quick]
Needs the extra edgekit[sweep] (Ray). Prints the machine's load: the host is shared.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FAMILY = "mcu_mobilenet_v1"
OBJECTIVES = ["arena_bytes:min", "latency_ms:min", "params:max"]


def timed_sweep(executor: str, grid, targets, workers=None):
    from edgekit.sweep import sweep

    out = Path(tempfile.mkdtemp(prefix=f"edgekit-bench-sweep-{executor}-")) / "sweep"
    t0 = time.perf_counter()
    r = sweep(FAMILY, grid, targets=targets, dtype="fp32", objectives=OBJECTIVES, output=out, executor=executor,
              workers=workers)
    return r, time.perf_counter() - t0


def analytic_costs(reps: int = 3) -> dict:
    """Seconds for the two parts of one candidate's analysis (warm process, medians of ``reps``):
    the export (paid once per candidate) and one target's analysis (resolve, the IR in the target's
    dtype, analyze_graph, the latency estimate), timed apart."""
    import statistics

    from edgekit.loader import LoadedModel, load_model, parse_spec
    from edgekit.sweep.analytic import _export, _row
    from edgekit.sweep.config import make_config

    targets = ["nucleo-h743zi", "nrf52840-dk", "raspberry-pi-4b"]
    cfg = make_config(FAMILY, ["width=0.35", "resolution=64"], targets=targets)
    cand = cfg.grid.candidates()[0]
    exports, per_target = [], []
    for _ in range(reps + 1):  # the first round warms up
        t0 = time.perf_counter()
        loaded = load_model(parse_spec(cand.spec))
        ep = _export(loaded)
        exports.append(time.perf_counter() - t0)
        exported = LoadedModel(loaded.spec, loaded.module, loaded.input_shape, exported=ep)
        for t in cfg.targets:
            t0 = time.perf_counter()
            _row(cand, t.id, cfg.plan_for(cand, t), exported, None)
            per_target.append(time.perf_counter() - t0)
    return {"export_s": statistics.median(exports[1:]), "per_target_s": statistics.median(per_target[len(targets):])}


def _noop(i):
    return i


def ray_overhead(n: int = 200, workers: int | None = None) -> dict:
    import ray

    ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        f = ray.remote(num_cpus=1)(_noop)
        t0 = time.perf_counter()
        ray.get(f.remote(0))
        first = time.perf_counter() - t0  # a worker starts and imports this module
        ray.get([f.remote(i) for i in range(4)])
        t0 = time.perf_counter()
        for i in range(n):  # one at a time: the latency a task pays
            ray.get(f.remote(i))
        serial_rt = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        ray.get([f.remote(i) for i in range(n)])  # all in flight: the throughput of the scheduler
        batch = (time.perf_counter() - t0) / n
        # a worker's cold start with torch and edgekit (what every new worker pays once)
        g = ray.remote(num_cpus=1)(_import_stack)
        t0 = time.perf_counter()
        imports = max(ray.get([g.remote() for _ in range(int(ray.cluster_resources()["CPU"]))]))
        cold = time.perf_counter() - t0
    finally:
        ray.shutdown()
    return {"first_task_s": first, "round_trip_s": serial_rt, "per_task_in_batch_s": batch,
            "worker_imports_s": imports, "cold_workers_s": cold}


def _import_stack():
    t0 = time.perf_counter()
    import torch  # noqa: F401

    import edgekit.analysis.api  # noqa: F401
    import edgekit.build  # noqa: F401

    return time.perf_counter() - t0


def cluster_estimate(*, candidates: int, targets: int, nodes: int, cores: int, export_s: float, per_target_s: float,
                     build_s: float, front_fraction: float, overhead_s: float, worker_start_s: float) -> dict:
    w = nodes * cores
    a = export_s + targets * per_target_s + overhead_s
    builds = math.ceil(candidates * front_fraction) * targets
    b = build_s + overhead_s
    analyse = math.ceil(candidates / w) * a
    verify = math.ceil(builds / w) * b
    return {"workers": w, "analyse_s": analyse, "builds": builds, "verify_s": verify,
            "total_s": worker_start_s + analyse + verify,
            "serial_one_core_s": candidates * a + builds * b}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=None, help="local Ray CPUs (default: all cores)")
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--cores-per-node", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="12 candidates instead of 24")
    args = ap.parse_args()
    res = "32,40,48,56" if args.quick else "32,40,48,56,64,72,80,96"
    grid = ["width=0.25,0.35,0.5", f"resolution={res}"]
    targets = ["nucleo-h743zi"]
    print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared with other jobs)")

    costs = analytic_costs()
    print(f"analytic phase, one candidate (warm): export {costs['export_s']:.2f} s + {costs['per_target_s']:.3f} s "
          "per target")
    rs, ts = timed_sweep("serial", grid, targets)
    rr, tr = timed_sweep("ray", grid, targets, workers=args.workers)
    same = rs.to_dict(timings=False) == rr.to_dict(timings=False)
    n = len(rs.candidates)
    nb = len(rs.verified)
    print(f"\n{n}-candidate verified sweep on {targets[0]} ({nb} builds), wall seconds:")
    print(f"{'':24}{'serial':>10}{'local Ray':>12}{'ratio':>8}")
    for phase in ("analyse", "verify", "render"):
        a, b = rs.timings.get(phase, 0.0), rr.timings.get(phase, 0.0)
        print(f"{phase:24}{a:10.1f}{b:12.1f}{(a / b if b else float('nan')):8.2f}")
    print(f"{'total (incl. Ray start)':24}{ts:10.1f}{tr:12.1f}{ts / tr:8.2f}")
    print(f"Ray workers: {rr.workers}; identical results: {same}")

    ov = ray_overhead(workers=args.workers)
    print("\nRay per-task overhead (local, warm workers): "
          f"round trip {ov['round_trip_s'] * 1e3:.2f} ms, in a batch {ov['per_task_in_batch_s'] * 1e3:.2f} ms/task; "
          f"first task on a new worker {ov['first_task_s']:.2f} s; torch+edgekit imports in a worker "
          f"{ov['worker_imports_s']:.1f} s")

    build_s = rs.timings["verify"] / max(nb, 1)
    front_fraction = nb / n
    est = cluster_estimate(candidates=1000, targets=10, nodes=args.nodes, cores=args.cores_per_node,
                           export_s=costs["export_s"], per_target_s=costs["per_target_s"], build_s=build_s,
                           front_fraction=front_fraction, overhead_s=ov["round_trip_s"],
                           worker_start_s=ov["worker_imports_s"])
    print(f"\n1,000 candidates x 10 targets on {args.nodes} nodes x {args.cores_per_node} cores "
          f"({est['workers']} workers), from these costs: analytic {costs['export_s']:.2f} s + 10 x "
          f"{costs['per_target_s']:.3f} s per candidate, {build_s:.1f} s per verified build, front "
          f"{front_fraction:.1%} of the candidates per target ({est['builds']} builds):")
    print(f"  analyse {est['analyse_s'] / 60:.1f} min + verify {est['verify_s'] / 60:.1f} min + worker start "
          f"{ov['worker_imports_s']:.0f} s = {est['total_s'] / 60:.1f} min "
          f"(one core: {est['serial_one_core_s'] / 3600:.1f} h)")


if __name__ == "__main__":
    main()
