"""Patch-based inference (MCUNetV2) in TFLite-Micro: unpatched vs patched, with and without the offline plan.

    python benchmarks/patches.py [--cache DIR] [--fast] [--models a,b] [--no-latency] [--runs N]
                                 [--max-mac-overhead 0.2]

Rows: registered networks at 96-160 px (the ``ek_*`` int8 models of ``tests/tflm_models.py``): MobileNetV2
0.35 and 1.0, mcunet_tiny, ShuffleNetV2-0.5 and the default model (mcu_mobilenet_v1). For each, the
search (``analysis.patch_search``, MAC overhead <= ``--max-mac-overhead``, no budget: the smallest arena)
picks a split and grid, which is built, verified bit-exact in TFLite-Micro and measured:

- ``head``: the planned activation area (RecordingMicroAllocator's head: activations + scratch) —
  the "peak activation" of the model as TFLite-Micro places it; ``arena``: the minimum ``arena_size``
  (bisection), head + the persistent tail (which the patch ops grow: node structs, per-channel data);
- unpatched with TFLite-Micro's own plan / with edgekit's offline plan; patched with each;
- ``head /``: how many times smaller the patched+planned head is than the unpatched own-plan head, the
  figure to set beside MCUNetV2's 4-8x (its peak-memory figures leave the input image out; here the
  whole input stays resident during the patch stage and is counted); ``4x4 /``: the same for a 4x4 grid
  at the pick's split (TFLite-Micro's own plan, predicted: the head prediction is exact), MCUNetV2's
  MobileNetV2 setting, whatever its MAC overhead;
- ``MACs +``: halo recomputation over the model's MACs; ``emu x``: emulated latency ratio on the
  nrf52840-dk cost model (``profile.emulate``); ``host x``: LiteRT int8 on this host (``profile.host``,
  median of ``--runs``, 1 thread, XNNPACK), patched+planned / unpatched.

Prints tables, asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tflm_models  # noqa: E402

from edgekit.graph.tflite_reader import parse_tflite  # noqa: E402

ROWS = [("ek_mobilenet_v2_035", "MobileNetV2-0.35", 96), ("ek_mobilenet_v2_035_144", "MobileNetV2-0.35", 144),
        ("ek_mobilenet_v2_035_160", "MobileNetV2-0.35", 160), ("ek_mobilenet_v2", "MobileNetV2-1.0", 96),
        ("ek_mobilenet_v2_144", "MobileNetV2-1.0", 144), ("ek_mcunet_tiny", "mcunet_tiny", 96),
        ("ek_mcunet_tiny_160", "mcunet_tiny", 160), ("ek_shufflenet_v2_05", "ShuffleNetV2-0.5", 96),
        ("ek_shufflenet_v2_05_144", "ShuffleNetV2-0.5", 144), ("ek_mcu_mobilenet_v1", "mcu_mobilenet_v1*", 96),
        ("ek_mcu_mobilenet_v1_160", "mcu_mobilenet_v1*", 160)]
MCUNETV2 = ("MCUNetV2 (arXiv 2110.15352): 4-8x lower peak memory on existing networks, 8x on MobileNetV2 "
            "with 4x4 patches")


def host_median_ms(data: bytes, runs: int) -> float:
    from edgekit.profile.host import measure_artifact

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.tflite"
        p.write_bytes(data)
        res = measure_artifact(p, runs=runs, warmup=max(3, runs // 10), threads=1)
    return float(res["stats"]["median_ms"])


def bench(name: str, cache: str, *, latency: bool, runs: int, max_mac_overhead: float) -> dict:
    from edgekit.analysis.patch_search import evaluate, search_patches
    from edgekit.profile.emulate import estimate_graph
    from edgekit.runtime.patch_verify import make_patched_tflite, measure_tflm
    from edgekit.runtime.tflm_verify import make_planned_tflite
    from edgekit.targets import load_target

    data = tflm_models.build(name, "int8", cache).read_bytes()
    g = parse_tflite(data)
    nrf = load_target("nrf52840-dk")
    emu = lambda graph: estimate_graph(graph, nrf, dtype="int8").total_ms  # noqa: E731
    t0 = time.perf_counter()
    res = search_patches(data, max_mac_overhead=max_mac_overhead, latency=emu)
    row = {"search_s": time.perf_counter() - t0, "macs": g.macs, "orig": measure_tflm(data), "pick": res.pick,
           "reason": res.reason, "n_cand": len(res.candidates)}
    planned = make_planned_tflite(data)
    row["orig_planned"] = measure_tflm(planned.data) if planned.verified else None
    if res.pick is None:
        return row
    c = res.pick
    try:
        row["x4"] = evaluate(g, c.split, (4, 4), plan=False)
    except Exception:  # noqa: BLE001 - a 4x4 grid may not fit the split
        row["x4"] = None
    t0 = time.perf_counter()
    out = make_patched_tflite(data, c.split, c.grid)
    row["build_s"] = time.perf_counter() - t0
    row["out"] = out
    row["emu"] = (c.latency_ms / res.latency_ms) if c.latency_ms and res.latency_ms else None
    if latency and out.data is not None:
        row["host"] = host_median_ms(out.data, runs) / host_median_ms(data, runs)
    return row


def fmt(n) -> str:
    return "-" if n is None else f"{n:,d}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=str(tflm_models.cache_dir_from_env() or "/tmp/edgekit-tflm-cache"))
    ap.add_argument("--fast", action="store_true", help="only the models tests/tflm_models.py does not mark slow")
    ap.add_argument("--models", default="", help="comma-separated tflm_models names (default: all rows)")
    ap.add_argument("--no-latency", action="store_true", help="no host LiteRT timing")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--max-mac-overhead", type=float, default=0.2)
    args = ap.parse_args(argv)
    wanted = {m for m in args.models.split(",") if m}
    rows = []
    for name, label, px in ROWS:
        if (wanted and name not in wanted) or (args.fast and tflm_models.SPECS[name].slow):
            continue
        try:
            r = bench(name, args.cache, latency=not args.no_latency, runs=args.runs,
                      max_mac_overhead=args.max_mac_overhead)
        except Exception as exc:  # report and go on
            print(f"{name}: FAILED {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
            continue
        r.update(name=name, label=label, px=px)
        rows.append(r)
        print_row(r, header=len(rows) == 1)
    print_summary(rows)
    return 0


_HDR = (f"{'model':18s} {'px':>3s} {'MMACs':>6s} | {'head':>8s} {'arena':>8s} {'+plan':>8s} | {'pick':18s} "
        f"{'MACs+':>6s} | {'head':>8s} {'arena':>8s} {'+plan hd':>8s} {'+plan ar':>8s} | {'head /':>6s} "
        f"{'ar /':>5s} {'4x4 /':>6s} | {'emu x':>5s} {'host x':>6s}  verified")


def print_row(r: dict, header: bool) -> None:
    if header:
        print("unpatched (TFLite-Micro measured) | search pick (max MAC overhead) | patched, measured | ratios")
        print(_HDR)
        print("-" * len(_HDR))
    o, op = r["orig"], r["orig_planned"]
    head = (f"{r['label']:18s} {r['px']:3d} {r['macs'] / 1e6:6.1f} | {o.head_bytes:8,d} {o.arena_bytes:8,d} "
            f"{fmt(op.arena_bytes if op else None):>8s} | ")
    c = r["pick"]
    if c is None:
        print(head + f"no patches: {r['reason']}")
        return
    out = r["out"]
    m, mp = out.measured, out.planned_measured
    best = mp or m
    x4 = r.get("x4")
    x4s = f"{o.head_bytes / x4.head_bytes:5.2f}x" if x4 else "-"
    emu = f"{r['emu']:.2f}" if r.get("emu") else "-"
    host = f"{r['host']:.2f}" if r.get("host") else "-"
    ok = "yes" if out.check and out.check.ok else "NO"
    ok += "" if out.planned and out.planned.verified else " (no plan)"
    print(head + f"{c.spec:18s} {100 * c.mac_overhead:5.1f}% | {fmt(m.head_bytes if m else None):>8s} "
          f"{fmt(m.arena_bytes if m else None):>8s} {fmt(mp.head_bytes if mp else None):>8s} "
          f"{fmt(mp.arena_bytes if mp else None):>8s} | {o.head_bytes / best.head_bytes:5.2f}x "
          f"{o.arena_bytes / best.arena_bytes:4.2f}x {x4s:>6s} | {emu:>5s} {host:>6s}  {ok}"
          f"  [{r['search_s']:.1f} s search, {r['build_s']:.0f} s build+verify]", flush=True)


def print_summary(rows: list[dict]) -> None:
    picked = [r for r in rows if r["pick"] is not None and r["out"].data is not None]
    if not picked:
        return
    heads = [r["orig"].head_bytes / (r["out"].planned_measured or r["out"].measured).head_bytes for r in picked]
    arenas = [r["orig"].arena_bytes / (r["out"].planned_measured or r["out"].measured).arena_bytes for r in picked]
    macs = [100 * r["pick"].mac_overhead for r in picked]
    print("-" * len(_HDR))
    print(f"{len(picked)} of {len(rows)} models patched: head (activation area) "
          f"{statistics.median(heads):.2f}x smaller "
          f"(median; {min(heads):.2f}-{max(heads):.2f}x), whole arena {statistics.median(arenas):.2f}x "
          f"({min(arenas):.2f}-{max(arenas):.2f}x), MACs +{statistics.median(macs):.1f} % (median)")
    print(f"input image counted (resident through the patch stage); {MCUNETV2}")
    print("* the default model")


if __name__ == "__main__":
    sys.exit(main())
