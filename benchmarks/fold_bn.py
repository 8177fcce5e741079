"""Folded vs unfolded BatchNorm: eager latency at batch 1 (fp32) and peak activation memory.

Latency: warm-up, then the two variants run alternately, run by run, so machine noise
(another process on this shared 2-core box) hits both alike. Median and std in ms.

Memory: NOT measured from the allocator. It is the peak over the graph of live activation
bytes (edgekit.analysis.memory.liveness on the torch.export graph, fp32): "no reuse" counts
every op output as its own buffer; "in-place" lets an element-wise op (ReLU, add, BN, ...)
overwrite an input that dies there, as an arena planner or torchvision's ReLU(inplace=True)
would.

Untrained models (weights=None) get BN statistics re-estimated on one random batch first,
so activations are unit-scale (no denormals slowing one variant down).

    .venv/bin/python benchmarks/fold_bn.py [--runs 100] [--warmup 10] [--models resnet50,...]
"""

from __future__ import annotations

import argparse
import statistics
import time

MODELS = {"resnet50": "ResNet-50", "vgg16_bn": "VGG16-BN", "mobilenet_v2": "MobileNetV2"}


def _peak_bytes(module, shape) -> tuple[int, int, int]:
    """(peak live bytes without reuse, peak with in-place reuse, bytes of all activations)."""
    from edgekit.analysis.memory import liveness
    from edgekit.graph.capture import capture

    g = capture(module, shape, dtype="fp32")
    plain = liveness(g)
    return (plain.peak_live_bytes, liveness(g, inplace=True).peak_live_bytes,
            sum(b.size for b in plain.buffers))


def bench(name: str, *, size: int, runs: int, warmup: int) -> dict:
    import torch
    import torchvision

    from edgekit.passes.bn_stats import reestimate_bn_stats
    from edgekit.passes.fold_bn import fold_bn

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    model = reestimate_bn_stats(model, [torch.randn(2, 3, size, size)], inplace=True).eval()
    x = torch.randn(1, 3, size, size)
    result = fold_bn(model, x)
    folded = result.model
    variants = {"unfolded": model, "folded": folded}
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.inference_mode():
        for _ in range(warmup):
            for m in variants.values():
                m(x)
        for i in range(runs):
            order = list(variants.items()) if i % 2 == 0 else list(variants.items())[::-1]
            for key, m in order:
                t0 = time.perf_counter()
                m(x)
                times[key].append((time.perf_counter() - t0) * 1e3)
    shape = (1, 3, size, size)
    mem_before, mem_before_ip, total_before = _peak_bytes(model, shape)
    mem_after, mem_after_ip, total_after = _peak_bytes(folded, shape)
    ratios = [u / f for u, f in zip(times["unfolded"], times["folded"])]
    return {
        "name": MODELS.get(name, name), "size": size, "bns": len(result.report),
        "folded": result.folded, "err": result.max_rel_error,
        "unfolded_ms": statistics.median(times["unfolded"]), "unfolded_std": statistics.stdev(times["unfolded"]),
        "folded_ms": statistics.median(times["folded"]), "folded_std": statistics.stdev(times["folded"]),
        "speedup": statistics.median(times["unfolded"]) / statistics.median(times["folded"]),
        "pair_ratio": statistics.median(ratios),
        "mem_before": mem_before, "mem_after": mem_after,
        "mem_before_ip": mem_before_ip, "mem_after_ip": mem_after_ip,
        "total_before": total_before, "total_after": total_after,
    }


def main(argv=None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args(argv)
    if args.runs < 2:
        p.error("--runs must be >= 2")
    rows = []
    t0 = time.perf_counter()
    for name in args.models.split(","):
        rows.append(bench(name, size=args.size, runs=args.runs, warmup=args.warmup))
    mib = 1024 * 1024
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1, fp32, "
          f"{args.warmup} warm-up + {args.runs} interleaved runs each; "
          f"memory = liveness peak on the export graph (not measured)")
    head = (f"{'model':12s} {'BN folded':>9s} {'unfolded ms':>14s} {'folded ms':>14s} "
            f"{'speedup':>7s} {'pair med':>8s} {'peak MiB no reuse':>19s} {'peak MiB in-place':>19s} "
            f"{'all acts MiB':>19s} {'max rel err':>11s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['name']:12s} {r['folded']:>4d}/{r['bns']:<4d} "
              f"{r['unfolded_ms']:7.2f}±{r['unfolded_std']:<6.2f} {r['folded_ms']:7.2f}±{r['folded_std']:<6.2f}"
              f"{r['speedup']:6.3f}x {r['pair_ratio']:7.3f}x "
              f"{r['mem_before'] / mib:7.2f}->{r['mem_after'] / mib:<6.2f}"
              f"({r['mem_after'] / r['mem_before']:.2f}) "
              f"{r['mem_before_ip'] / mib:7.2f}->{r['mem_after_ip'] / mib:<6.2f}"
              f"({r['mem_after_ip'] / r['mem_before_ip']:.2f}) "
              f"{r['total_before'] / mib:7.1f}->{r['total_after'] / mib:<6.1f}"
              f"({r['total_after'] / r['total_before']:.2f}) "
              f"{r['err']:11.1e}")
    print("all acts = bytes of every activation buffer written once (no reuse): the traffic BN adds")
    print(f"speedup = median(unfolded) / median(folded); pair med = median of per-pair ratios; "
          f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
