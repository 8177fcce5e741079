"""The emulated Cortex-M side by side with the published numbers, the cost model and the host arena.

    python benchmarks/emulator.py [--cache DIR] [--core cortex-m4] [--target nucleo-l4r5zi]
                                  [--models tiny,registered] [--fit] [--cost-fit] [--no-arena]

Builds (or reuses from ``tests/tflm_models.py``'s cache, ``EDGEKIT_TFLM_CACHE``) the MLPerf Tiny
re-implementations and every registered network at 96x96 int8, runs each in the emulator
(TFLite-Micro + CMSIS-NN, ``--core``), and prints per model: instructions per inference, the host
seconds one emulated inference took, the estimated ms on ``--target`` (instructions x its fitted
cycles/instruction / clock), the published ms where the target has a row, the cost model's ms
(``edgekit/profile/emulate.py`` on the .tflite), and the arena: the minimum with CMSIS-NN bisected in
the emulator, the host interpreter's (``tflm_min_arena``), and the pre-export Cortex-M prediction
(``tflm_cortex_m``). ``--fit``: cycles/instruction fitted on the calibration rows (IC, VWW), the
held-out rows (KWS, AD), and the same fit on the microTVM + CMSIS-NN context rows for comparison.
``--cost-fit``: the cost model's per-class cycles refitted on the emulator's per-operator counts.
Prints tables, asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tflm_models  # noqa: E402

from edgekit.emulator import emulate, emulated_min_arena  # noqa: E402

# spec of each tests/tflm_models.py MLPerf Tiny model in targets/nucleo-l4r5zi.toml
TINY = {"tiny_ic": "resnet8:resolution=32,num_classes=10",
        "tiny_vww": "mobilenet_v1:width=0.25,resolution=96,num_classes=2",
        "tiny_kws": "ds_cnn:input=49x10,num_classes=12", "tiny_ad": "fc_autoencoder:input=640"}
CALIBRATION = ("tiny_ic", "tiny_vww")


def _published(target, spec: str, runtime_prefix: str) -> float | None:
    for p in target.published:
        if p.model == spec and (p.runtime or "").startswith(runtime_prefix):
            return p.latency_ms
    return None


def _models(which: str) -> list[str]:
    out = []
    for part in which.split(","):
        out += list(TINY) if part == "tiny" else tflm_models.REGISTERED if part == "registered" else [part]
    return out


def measure(names, cache, core, arena: bool) -> list[dict]:
    from edgekit.analysis.tflm_cortex_m import predict_cortex_m_arena
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.runtime.tflm import tflm_min_arena

    rows = []
    for name in names:
        path = tflm_models.build(name, "int8", cache)
        t0 = time.perf_counter()
        res = emulate(path, core=core, warmup=0, runs=1)
        wall = time.perf_counter() - t0
        g = read_tflite(path)
        row = {"name": name, "path": path, "res": res, "wall_s": wall, "graph": g,
               "macs": sum(op.macs for op in g.ops)}
        if arena:
            row["arena_cmsis"] = emulated_min_arena(path, core=core)
            row["arena_host"] = tflm_min_arena(path)
            row["arena_pred"] = predict_cortex_m_arena(g).total_bytes
        rows.append(row)
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def print_latency(rows, target) -> None:
    from edgekit.profile.emulate import estimate
    from edgekit.profile.mcu_emulated import cycles_per_instruction

    cpi, how = cycles_per_instruction(target)
    print(f"\n## {target.id}: {how}\n")
    print("| model | MACs | instructions | instr/MAC | emulation s | estimated ms | published ms | error % | "
          "cost model ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        n = r["res"].instructions
        est = n * cpi / target.clock_hz * 1e3 if cpi else None
        pub = _published(target, TINY.get(r["name"], "-"), "tflite-micro")
        err = f"{100 * (est - pub) / pub:+.1f}" if est and pub else ""
        cost = estimate(r["path"], target=target).total_ms
        print(f"| {r['name']} | {r['macs'] / 1e6:.2f} M | {n:,d} | {n / max(r['macs'], 1):.2f} | {r['wall_s']:.2f} | "
              f"{est:.2f} | {pub if pub else '-'} | {err} | {cost:.2f} |" if est else
              f"| {r['name']} | {r['macs'] / 1e6:.2f} M | {n:,d} | - | {r['wall_s']:.2f} | - | - | | {cost:.2f} |")


def print_arena(rows) -> None:
    print("\n## arena: CMSIS-NN (emulated, bisected) vs host interpreter vs Cortex-M prediction\n")
    print("| model | CMSIS-NN B | host B | CMSIS-NN / host | predicted B | prediction error % |")
    print("|---|---:|---:|---:|---:|---:|")
    worst = 0.0
    for r in rows:
        c, h, p = r["arena_cmsis"], r["arena_host"], r["arena_pred"]
        worst = max(worst, abs(100 * (p - c) / c))
        print(f"| {r['name']} | {c:,d} | {h:,d} | {100 * (c - h) / h:+.1f} % | {p:,d} | {100 * (p - c) / c:+.2f} |")
    print(f"\nworst |prediction error| {worst:.2f} %")


def print_fit(rows, target) -> None:
    from edgekit.profile.mcu_emulated import fit_cpi

    by = {r["name"]: r["res"].instructions for r in rows}
    if not all(n in by for n in TINY):
        print("\n--fit needs the tiny models (--models tiny)")
        return
    for label, prefix in (("TFLite-Micro 2.3.1 (calibration split)", "tflite-micro"),
                          ("microTVM + CMSIS-NN (context rows)", "microtvm")):
        pub = {n: _published(target, TINY[n], prefix) for n in TINY}
        cpi = fit_cpi([(by[n], pub[n], target.clock_hz) for n in CALIBRATION])
        print(f"\n## cycles/instruction fitted on IC + VWW, {label}: {cpi:.3f}\n")
        print("| model | split | instructions | published ms | emulated ms | error % |")
        print("|---|---|---:|---:|---:|---:|")
        for n in TINY:
            est = by[n] * cpi / target.clock_hz * 1e3
            split = "calibration" if n in CALIBRATION else "validation"
            print(f"| {n} | {split} | {by[n]:,d} | {pub[n]} | {est:.2f} | {100 * (est - pub[n]) / pub[n]:+.1f} |")


def print_cost_fit(rows, target) -> None:
    """Per class: cycles per MAC (dense kinds), per output element (elementwise), per input element
    (pool) as the MAC/element-weighted mean of the emulated per-op cycles; the per-op overhead as the
    median of the view-like ops (RESHAPE, ...). Then the refitted cost model's total vs the emulation."""
    from edgekit.profile.emulate import _elements, classify
    from edgekit.profile.mcu_emulated import cycles_per_instruction

    cpi, _ = cycles_per_instruction(target)
    work: dict[str, list[tuple[float, float, str]]] = {}
    overhead = []
    for r in rows:
        g = r["graph"]
        for op, ck, oc in zip(g.ops, classify(g), r["res"].ops):
            cycles = oc.instructions * cpi
            if ck == "dispatch":
                overhead.append(cycles)
            elif ck in ("conv2d", "depthwise_conv2d", "linear"):
                work.setdefault(ck, []).append((cycles, op.macs, oc.name))
            elif ck == "pool":
                work.setdefault(f"pool ({oc.name})", []).append((cycles, _elements(g, op.inputs), oc.name))
            elif ck == "elementwise":
                work.setdefault(f"elementwise ({oc.name})", []).append((cycles, _elements(g, op.outputs), oc.name))
    print(f"\n## cost-model classes refitted on emulated per-op cycles ({target.id}, {cpi:.3f} cycles/instr)\n")
    print(f"current: {dict(vars(target.latency.cycles_per_mac))}, op_overhead_cycles "
          f"{target.latency.op_overhead_cycles}\n")
    print("| class | ops | cycles per unit (weighted) | per-op min | per-op max |")
    print("|---|---:|---:|---:|---:|")
    for k, v in sorted(work.items()):
        per = [c / u for c, u, _ in v if u]
        print(f"| {k} | {len(v)} | {sum(c for c, _, _ in v) / max(sum(u for _, u, _ in v), 1):.2f} | "
              f"{min(per):.2f} | {max(per):.2f} |")
    if overhead:
        print(f"\ndispatch-only ops (RESHAPE): median {statistics.median(overhead):.0f} cycles over {len(overhead)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=str(tflm_models.cache_dir_from_env() or "/tmp/edgekit-tflm-cache"))
    ap.add_argument("--core", default="cortex-m4")
    ap.add_argument("--target", default="nucleo-l4r5zi")
    ap.add_argument("--models", default="tiny,registered", help="tiny, registered, or tests/tflm_models.py names")
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--cost-fit", action="store_true")
    ap.add_argument("--no-arena", action="store_true")
    args = ap.parse_args(argv)

    from edgekit.targets import load_target

    target = load_target(args.target)
    rows = measure(_models(args.models), args.cache, args.core, not args.no_arena)
    print_latency(rows, target)
    if not args.no_arena:
        print_arena(rows)
    if args.fit:
        print_fit(rows, target)
    if args.cost_fit:
        print_cost_fit(rows, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
