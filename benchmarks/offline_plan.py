"""Offline memory plans for TFLite-Micro: its own arena vs edgekit's planned arena, side by side.

    python benchmarks/offline_plan.py [--cache DIR] [--fast] [--no-verify] [--no-pre-export] [--big-ops N]

Rows: every registered network at microcontroller resolution (96x96, 10 classes: the ``ek_*`` models of
``tests/tflm_models.py``) and the test-set int8 .tflite files. Columns:

- ``TFLM``: TFLite-Micro's own minimum arena, measured in the interpreter (bisection);
- ``planned``: the offline plan's predicted arena (reference kernels); ``measured``: the planned model's
  minimum arena in the interpreter, verified bit-exact on every intermediate tensor (``ok``), or why not;
- ``pre-exp``: the planned arena predicted from the lowered PyTorch graph (before any export);
- ``cmsis``: the predicted arena of a plan safe for the reference and CMSIS-NN kernels (a Cortex-M build);
- ``plan ms`` / ``verify s``: planning and verification time.

Then the planning time for a synthetic graph of ``--big-ops`` operators (inverted-residual and fire
blocks; median of 5 runs). Prints tables, asserts nothing.
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

from edgekit.analysis.offline_plan import plan_graph  # noqa: E402
from edgekit.graph.ir import Graph, Op, Tensor  # noqa: E402
from edgekit.graph.tflite_reader import parse_tflite  # noqa: E402

REGISTERED = ["ek_mobilenet_v2", "ek_mobilenet_v2_035", "ek_mobilenet_v3_small", "ek_mobilenet_v3_large",
              "ek_shufflenet_v2_05", "ek_squeezenet1_0", "ek_squeezenet1_1", "ek_mcu_mobilenet_v1", "ek_mcunet_tiny"]
TEST_SET = ["ds_cnn", "conv_stack", "residual", "fire", "fc_autoencoder", "dw_avgpool", "mobilenet_v2_035",
            "mobilenet_v3_small", "mnasnet0_5", "squeezenet1_1", "shufflenet_v2_x0_5", "resnet18"]


def measured_min_arena(data: bytes) -> int:
    from edgekit.runtime.tflm import tflm_min_arena

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.tflite"
        p.write_bytes(data)
        return tflm_min_arena(p)


def pre_export_plan(name: str):
    """plan_graph on the lowered PyTorch graph of the same network (what `edgekit check` sees)."""
    import torch

    from edgekit.analysis.api import capture_loaded
    from edgekit.analysis.lowering import lower_for_tflite
    from edgekit.loader import LoadedModel, parse_spec
    from edgekit.passes.fold_bn import fold_bn

    spec = tflm_models.SPECS[name]
    torch.manual_seed(0)
    module = fold_bn(spec.build().eval(), (torch.randn(spec.input_shape),)).model
    g = capture_loaded(LoadedModel(parse_spec("mcu_mobilenet_v1"), module, spec.input_shape), dtype="int8", fold=False)
    return plan_graph(lower_for_tflite(g))


def big_graph(n_ops: int) -> Graph:
    """Alternating MobileNetV2 inverted-residual blocks (expand, depthwise, project, add) and SqueezeNet
    fire modules (squeeze, 1x1 and 3x3 expand, concat, 1x1 back) on 12x12 maps, ~n_ops operators."""
    ts: list[Tensor] = []
    ops: list[Op] = []

    def t(shape, dtype="int8", const=False):
        ts.append(Tensor(len(ts), f"t{len(ts)}", tuple(shape), dtype, is_const=const))
        return len(ts) - 1

    def op(code, ins, out, **attrs):
        ops.append(Op(len(ops), code.lower(), code, ins, [out], attrs={"opcode": code, **attrs}))

    x = cur = t((1, 12, 12, 16))
    b = 0
    while len(ops) < n_ops - 4:
        if b % 2 == 0:
            e = t((1, 12, 12, 64))
            op("CONV_2D", [cur, t((64, 1, 1, 16), const=True)], e, stride=(1, 1))
            d = t((1, 12, 12, 64))
            op("DEPTHWISE_CONV_2D", [e, t((1, 3, 3, 64), const=True)], d, stride=(1, 1))
            p = t((1, 12, 12, 16))
            op("CONV_2D", [d, t((16, 1, 1, 64), const=True)], p, stride=(1, 1))
            a = t((1, 12, 12, 16))
            op("ADD", [cur, p], a)
            cur = a
        else:
            s = t((1, 12, 12, 8))
            op("CONV_2D", [cur, t((8, 1, 1, 16), const=True)], s, stride=(1, 1))
            e1, e3 = t((1, 12, 12, 16)), t((1, 12, 12, 16))
            op("CONV_2D", [s, t((16, 1, 1, 8), const=True)], e1, stride=(1, 1))
            op("CONV_2D", [s, t((16, 3, 3, 8), const=True)], e3, stride=(1, 1))
            c = t((1, 12, 12, 32))
            op("CONCATENATION", [e1, e3], c, axis=3)
            r = t((1, 12, 12, 16))
            op("CONV_2D", [c, t((16, 1, 1, 32), const=True)], r, stride=(1, 1))
            cur = r
        b += 1
    return Graph(ts, ops, [x], [cur], "tflite", meta={"subgraphs": 1}).link()


def bench_model(name: str, cache: str, verify: bool, pre: bool) -> dict:
    from edgekit.runtime.tflm_verify import make_planned_tflite

    data = tflm_models.build(name, "int8", cache).read_bytes()
    g = parse_tflite(data)
    t0 = time.perf_counter()
    plan = plan_graph(g)
    plan_ms = 1000 * (time.perf_counter() - t0)
    cmsis = plan_graph(g, kernels="reference+cmsis-nn")
    row = {"name": name, "ops": len(g.ops), "tflm": measured_min_arena(data), "planned": plan.arena_bytes,
           "tflm_pred": plan.tflm_arena_bytes, "cmsis": cmsis.arena_bytes, "plan_ms": plan_ms,
           "strategy": plan.strategy, "inplace": len(plan.inplace), "measured": None, "status": "-",
           "verify_s": None, "pre": None}
    if verify:
        t0 = time.perf_counter()
        res = make_planned_tflite(data)
        row["verify_s"] = time.perf_counter() - t0
        if res.verified:
            row["measured"], row["status"] = res.check.arena_bytes, f"ok ({res.check.tensors_compared} tensors)"
        else:
            row["status"] = res.reason[:60]
    if pre:
        try:
            row["pre"] = pre_export_plan(name).arena_bytes
        except Exception as exc:  # report and go on
            row["status"] += f"; pre-export failed: {type(exc).__name__}"
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=str(tflm_models.cache_dir_from_env() or "/tmp/edgekit-tflm-cache"))
    ap.add_argument("--fast", action="store_true", help="skip the models tests/tflm_models.py marks slow")
    ap.add_argument("--no-verify", action="store_true", help="no planned-model run (predictions only)")
    ap.add_argument("--no-pre-export", action="store_true", help="no pre-export (PyTorch graph) prediction")
    ap.add_argument("--big-ops", type=int, default=5000)
    args = ap.parse_args(argv)

    rows = []
    for name in REGISTERED + TEST_SET:
        if args.fast and tflm_models.SPECS[name].slow:
            continue
        try:
            rows.append(bench_model(name, args.cache, not args.no_verify, not args.no_pre_export))
        except Exception as exc:  # report and go on
            print(f"{name}: FAILED {type(exc).__name__}: {exc}"[:200], file=sys.stderr)
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print_table(rows)

    g = big_graph(args.big_ops)
    times, plan = [], None
    for _ in range(5):
        t0 = time.perf_counter()
        plan = plan_graph(g)
        times.append(time.perf_counter() - t0)
    print(f"\nsynthetic graph: {len(g.ops):,d} ops, {len(g.tensors):,d} tensors: planning "
          f"{statistics.median(times):.2f} s (median of 5; min {min(times):.2f}, max {max(times):.2f}); head "
          f"{plan.tflm_head_bytes:,d} -> {plan.head_bytes:,d} B, arena {plan.tflm_arena_bytes:,d} -> "
          f"{plan.arena_bytes:,d} B ({plan.candidates} candidates, {plan.strategy})")
    return 0


def print_table(rows: list[dict]) -> None:
    hdr = (f"{'model':22s} {'ops':>4s} {'TFLM B':>9s} {'planned':>9s} {'measured':>9s} {'saving':>7s} "
           f"{'pre-exp':>9s} {'pre err':>7s} {'cmsis':>9s} {'cms sav':>7s} {'plan ms':>7s} {'verify s':>8s}  status")
    print(hdr)
    print("-" * len(hdr))
    savings, cms = [], []
    for r in rows:
        truth = r["measured"] or r["planned"]
        saving = 100.0 * (r["tflm"] - truth) / r["tflm"]
        savings.append(saving)
        cms.append(100.0 * (r["tflm_pred"] - r["cmsis"]) / r["tflm_pred"])
        pre_err = f"{100.0 * (r['pre'] - truth) / truth:+6.2f}%" if r["pre"] else "-"
        print(f"{r['name']:22s} {r['ops']:4d} {r['tflm']:9,d} {r['planned']:9,d} "
              f"{(format(r['measured'], ',d') if r['measured'] else '-'):>9s} {saving:6.1f}% "
              f"{(format(r['pre'], ',d') if r['pre'] else '-'):>9s} {pre_err:>7s} {r['cmsis']:9,d} {cms[-1]:6.1f}% "
              f"{r['plan_ms']:7.0f} {(format(r['verify_s'], '.1f') if r['verify_s'] else '-'):>8s}  {r['status']}")
    print("-" * len(hdr))
    if savings:
        print(f"{len(rows)} models: saving vs TFLite-Micro's own plan median {statistics.median(savings):.1f} % "
              f"(min {min(savings):.1f}, max {max(savings):.1f}); CMSIS-NN-safe plans median "
              f"{statistics.median(cms):.1f} % (predicted)")


if __name__ == "__main__":
    sys.exit(main())
