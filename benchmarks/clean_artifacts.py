"""Clean artifacts (issue 16), before and after, side by side in one run.

    python benchmarks/clean_artifacts.py [--cache DIR] [--runs 50] [--rounds 2] [--only NAME] [--no-latency]

For ShuffleNetV2 0.5 and 1.0 at 96 and 224 and every registered network at 96x96, the .tflite
edgekit built before issue 16 ("before": shuffles computed, PyTorch padding on the MCU networks,
no PAD folding, no shared concat scales) and the one it builds now ("after"), both from
tests/clean_builds.py (cached). "after" is the .tflite edgekit builds for TFLite-Micro (the LiteRT
columns run it on LiteRT too: they are why a LiteRT build keeps ShuffleNet's shuffles). Per network:

- op count and TRANSPOSE / QUANTIZE / DEQUANTIZE / PAD(V2) counts (int8 and fp32), read with
  edgekit's .tflite reader;
- TFLite-Micro arena of the int8 model, measured by the interpreter (``tflm_min_arena``);
- host latency, LiteRT with XNNPACK, 1 thread, int8 and fp32: edgekit's profiler
  (``profile.host.measure_artifact``, a fresh process per artifact); before and after are measured
  alternately, ``--rounds`` times, and the lowest median is kept (the host is shared);
- the MCU latency estimate of the int8 model on a Cortex-M7 (``profile.emulate.estimate``,
  target nucleo-h743zi).

Prints Markdown tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import clean_builds as cb  # noqa: E402

from edgekit.graph.tflite_reader import read_tflite  # noqa: E402

MCU_TARGET = "nucleo-h743zi"


def networks() -> list:
    nets = [cb.Net("shufflenet_v2", w, r) for w in (0.5, 1.0) for r in (96, 224)]
    return nets + [n for n in cb.registered() if n.name != "shufflenet_v2"] + [cb.Net("shufflenet_v2")]


def counts(path) -> dict:
    ops = Counter(op.attrs.get("opcode", op.kind) for op in read_tflite(path).ops)
    return {"ops": sum(ops.values()), "TRANSPOSE": ops["TRANSPOSE"], "QUANTIZE": ops["QUANTIZE"],
            "DEQUANTIZE": ops["DEQUANTIZE"], "PAD": ops["PAD"] + ops["PADV2"]}


def latency(paths: dict, *, runs: int, rounds: int) -> dict:
    from edgekit.profile.host import measure_artifact

    best: dict = {}
    for _ in range(rounds):
        for key, path in paths.items():  # before/after alternate inside each round
            res = measure_artifact(path, runs=runs, warmup=10, threads=1)
            best[key] = min(best.get(key, float("inf")), res["stats"]["median_ms"])
    return best


def row(net, cache, args) -> dict:
    from edgekit.profile.emulate import estimate
    from edgekit.runtime.tflm import tflm_min_arena

    out = {"net": net.spec}
    paths = {(v, dt): cb.build(net, "tflite", dt, v, cache) for v in ("before", "after") for dt in ("int8", "fp32")}
    for (v, dt), p in paths.items():
        out[(v, dt, "counts")] = counts(p)
    for v in ("before", "after"):
        out[(v, "arena")] = tflm_min_arena(paths[(v, "int8")])
        out[(v, "mcu_ms")] = estimate(str(paths[(v, "int8")]), target=MCU_TARGET).total_ms
    if not args.no_latency:
        ms = latency(paths, runs=args.runs, rounds=args.rounds)
        for key, value in ms.items():
            out[key + ("ms",)] = value
    return out


def _pair(b, a, fmt="{:,}") -> str:
    return fmt.format(b) if b == a else f"{fmt.format(b)} → {fmt.format(a)}"


def tables(rows: list, latency_measured: bool) -> str:
    lines = ["| network | dtype | ops | TRANSPOSE | QUANTIZE | DEQUANTIZE | PAD |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        for dt in ("int8", "fp32"):
            b, a = r[("before", dt, "counts")], r[("after", dt, "counts")]
            cells = [_pair(b[k], a[k]) for k in ("ops", "TRANSPOSE", "QUANTIZE", "DEQUANTIZE", "PAD")]
            lines.append(f"| {r['net']} | {dt} | " + " | ".join(cells) + " |")
    lines += ["", "| network | TFLM arena int8 (B) | saved | LiteRT int8 ms | ratio | LiteRT fp32 ms | ratio | "
                  f"MCU est. int8 ms ({MCU_TARGET}) | ratio |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ab, aa = r[("before", "arena")], r[("after", "arena")]
        cells = [_pair(ab, aa), f"{ab - aa:,}"]
        for dt in ("int8", "fp32"):
            if latency_measured:
                b, a = r[("before", dt, "ms")], r[("after", dt, "ms")]
                cells += [f"{b:.3f} → {a:.3f}", f"{b / a:.2f}×"]
            else:
                cells += ["-", "-"]
        b, a = r[("before", "mcu_ms")], r[("after", "mcu_ms")]
        cells += [f"{b:.1f} → {a:.1f}", f"{b / a:.2f}×"]
        lines.append(f"| {r['net']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=str(cb.cache_dir_from_env()))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", help="networks whose spec contains this text")
    ap.add_argument("--no-latency", action="store_true", help="skip the host latency (slow part)")
    args = ap.parse_args(argv)
    rows = []
    for net in networks():
        if args.only and args.only not in net.spec:
            continue
        t0 = time.perf_counter()
        rows.append(row(net, args.cache, args))
        print(f"{net.spec}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print(tables(rows, not args.no_latency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
