"""Issue 5's performance table: edgekit's artifacts against the direct routes a user could take,
fp32 and int8, measured side by side in one run on this host with edgekit's own profiler
(`edgekit.profile`: LiteRT and ExecuTorch in child processes, 10 warm-up runs, then N timed runs; medians in ms).

Rows: MobileNetV2 1.0 @224 and the default model. Columns: eager PyTorch, LiteRT fp32 (direct
litert_torch.convert = what edgekit ships for fp32), LiteRT int8 (edgekit: ai-edge-quantizer
static int8), LiteRT int8 by the direct litert-torch PT2E route, LiteRT int8 with the builtin
(non-XNNPACK) kernels, ExecuTorch XNNPACK fp32 and int8, and the QUANTIZE/DEQUANTIZE op counts.
Usage: python benchmarks/build_latency.py [--runs 50] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median_ms(model_or_path, runs, threads, **kw):
    """edgekit's own profiler (the protocol of `edgekit profile`): the median of the timed runs."""
    from edgekit.profile.api import profile

    res = profile(model_or_path, runs=runs, warmup=10, threads=threads, progress=False, **kw)
    return res.measured()[0].stats["median_ms"]


def pt2e_int8(model, x, cal):
    """The direct route a user would take: litert-torch's PT2E quantizer (per-channel, static)."""
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from torchao.quantization.pt2e import quantize_pt2e

    m = torch.export.export(model, (x,)).module()
    q = pt2e_quantizer.PT2EQuantizer().set_global(pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    m = quantize_pt2e.prepare_pt2e(m, q)
    with torch.no_grad():
        for c in cal:
            m(c)
    m = quantize_pt2e.convert_pt2e(m, fold_quantize=False)  # True fails to convert (litert-torch 0.10)
    edge = litert_torch.convert(m, (x,))
    out = Path(tempfile.mkdtemp(prefix="edgekit-pt2e-")) / "p.tflite"
    edge.export(str(out))
    return out.read_bytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    import torch

    from edgekit.export.executorch import export_pte
    from edgekit.export.tflite import convert_fp32, quantize_int8
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.loader import load_model
    from edgekit.passes.bn_stats import reestimate_bn_stats
    from edgekit.passes.fold_bn import fold_bn

    tmp = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    rows = []
    for spec in ("mobilenet_v2", None):
        lm = load_model(spec)
        shape = lm.input_shape
        torch.manual_seed(0)
        cal = torch.rand(16, *shape) * 4 - 2 if lm.calibration is None else torch.as_tensor(lm.calibration)
        model = reestimate_bn_stats(lm.module, [c for c in cal[:8]])
        model = fold_bn(model, (cal[0],)).model
        x = cal[0]
        t0 = time.perf_counter()
        fp32 = convert_fp32(model, x)
        t_conv = time.perf_counter() - t0
        int8 = quantize_int8(fp32, cal.numpy())
        (tmp / "f.tflite").write_bytes(fp32)
        (tmp / "q.tflite").write_bytes(int8)
        (tmp / "p.tflite").write_bytes(pt2e_int8(model, x, cal[:8]))

        def qdq(name):
            return sum(o.attrs["opcode"] in ("QUANTIZE", "DEQUANTIZE") for o in read_tflite(tmp / name).ops)

        islands, islands_pt2e = qdq("q.tflite"), qdq("p.tflite")
        pte32 = export_pte(model, x)
        (tmp / "f.pte").write_bytes(pte32["bytes"])
        pte8 = export_pte(model, x, dtype="int8", calibration=cal[:8].numpy())
        (tmp / "q.pte").write_bytes(pte8["bytes"])
        for th in args.threads:
            r = {"model": spec or "default (mcu_mobilenet_v1)", "threads": th,
                 "eager": median_ms(model, args.runs, th, input_shape=tuple(shape))}
            for key, path, kw in (("litert_fp32", "f.tflite", {}), ("litert_int8", "q.tflite", {}),
                                  ("litert_pt2e_int8", "p.tflite", {}),
                                  ("litert_int8_builtin", "q.tflite", {"xnnpack": False}),
                                  ("et_fp32", "f.pte", {}), ("et_int8", "q.pte", {})):
                r[key] = median_ms(str(tmp / path), args.runs, th, **kw)
            r["islands"], r["islands_pt2e"] = islands, islands_pt2e
            r["convert_s"] = t_conv
            rows.append(r)
    cols = ["eager", "litert_fp32", "litert_int8", "litert_pt2e_int8", "litert_int8_builtin", "et_fp32", "et_int8"]
    print(f"{'model':26} {'thr':>3} " + " ".join(f"{c:>19}" for c in cols)
          + "  int8/fp32 LiteRT  PT2E int8/fp32  int8/fp32 ET  Q/DQ ops (edgekit, PT2E)")
    for r in rows:
        print(f"{r['model']:26} {r['threads']:>3} " + " ".join(f"{r[c]:>16.3f} ms" for c in cols)
              + f"  {r['litert_fp32'] / r['litert_int8']:>14.2f}x  {r['litert_fp32'] / r['litert_pt2e_int8']:>13.2f}x"
              + f"  {r['et_fp32'] / r['et_int8']:>11.2f}x  {r['islands']:>8}, {r['islands_pt2e']}")
    print("\n(speedup columns: fp32 time / int8 time; > 1 means int8 is faster. litert_int8 is edgekit's "
          "ai-edge-quantizer build; litert_pt2e_int8 the direct litert-torch PT2E route)")


if __name__ == "__main__":
    main()
