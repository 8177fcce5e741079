"""What `edgekit lint` finds in the reference networks, and what it costs to run.

Builds each network as `edgekit build` does (BN statistics re-estimated on the synthetic
calibration set, BN folded, litert-torch fp32, ai-edge-quantizer int8), lints the int8 artifact
for TFLite-Micro (nucleo-h743zi) and for LiteRT/XNNPACK, and prints one row per model and target:
findings by severity, TRANSPOSE count, extra ops, XNNPACK partitions, lint wall time, and the
int8 output error from the quantization debugger (8 samples).

    .venv/bin/python benchmarks/lint_reference.py [model ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    "mcu_mobilenet_v1": {},
    "mcunet_tiny": {},
    "mobilenet_v2": {"width": 0.35, "resolution": 96},
    "mobilenet_v3_small": {"resolution": 96},
    "squeezenet1_1": {"resolution": 96},
    "shufflenet_v2": {"width": 0.5, "resolution": 96},
}


def build(name: str, kw: dict, root: Path):
    from edgekit.export.tflite import convert_fp32, quantize_int8
    from edgekit.models import create_model
    from edgekit.models.calibration import calibration_data
    from edgekit.passes.bn_stats import reestimate_bn_stats
    from edgekit.passes.fold_bn import fold_bn

    res = kw.get("resolution", 96)
    cal = calibration_data(name, n=32, resolution=res)
    m = reestimate_bn_stats(create_model(name, **kw).eval(), [cal[i:i + 8] for i in range(0, 32, 8)])
    folded = fold_bn(m, (cal[:1],)).model
    try:
        folded = folded.eval()
    except NotImplementedError:  # fold_bn fell back to torch.export: its module has no eval()
        folded = m
    fp32 = convert_fp32(folded, cal[:1])
    calib = cal[:, None].numpy()
    (root / f"{name}_fp32.tflite").write_bytes(fp32)
    (root / f"{name}_int8.tflite").write_bytes(quantize_int8(fp32, calib))
    return root / f"{name}_fp32.tflite", root / f"{name}_int8.tflite", calib


def main(names):
    from edgekit.lint import lint
    from edgekit.lint.quant_debug import quant_debug

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            fp32, int8, cal = build(name, MODELS[name], Path(tmp))
            qd = quant_debug(fp32, int8, cal, samples=8)
            worst = qd.layers[0]
            for target in ("nucleo-h743zi", "litert"):
                t0 = time.perf_counter()
                r = lint(int8, target=target)
                dt = time.perf_counter() - t0
                c = r.to_dict()["counts"]
                rows.append((name, target, c["error"], c["warning"], c["info"], r.summary["transposes"]["count"],
                             r.summary["extra_ops"], r.summary.get("xnnpack_partitions", "-"), f"{dt:.1f}",
                             f"{qd.output_cosine:.3f}", f"{worst.module or worst.op} ({worst.added_sqnr_db} dB)"))
    head = ("model", "target", "err", "warn", "info", "transp", "extra ops", "xnn parts", "lint s",
            "int8 cos", "worst layer (added SQNR)")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in (head, *rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))


if __name__ == "__main__":
    main(sys.argv[1:] or list(MODELS))
