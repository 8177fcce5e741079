"""ExecuTorch memory plans (portable kernels, fp32, no delegate): ExecuTorch's vs edgekit's.

    python benchmarks/et_memory_plan.py [--fold-bn] [--no-run] [--models a,b]

For each model, one ``to_edge`` lowering is planned five ways (``to_executorch`` on copies):

- ``lb``: liveness lower bound of the stock graph (ExecuTorch's lifetimes and aligned sizes)
- ``naive``: ExecuTorch's ``naive`` (no reuse) on the stock graph
- ``greedy``: ExecuTorch's stock ``to_executorch()`` (its ``greedy``): the default plan
- ``greedy+fold``: ExecuTorch's greedy after folding weight-only subgraphs
  (``do_quant_fusion_and_const_prop=True``)
- ``ek``: edgekit's planner on the folded graph (out-of-place); ``lb_fold`` its bound
- ``ek+inpl``: edgekit's default (folded, element-wise ops in place); ``lb_inpl`` its bound

``ek+inpl/lb`` compares edgekit's default plan with the stock graph's lower bound. Unless
``--no-run``, the edgekit .pte runs in the ExecuTorch runtime (child process) and its output
is compared with eager PyTorch and with the stock .pte. Prints a table, asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {
    "mobilenet_v2_0.35@96": ("torchvision", "mobilenet_v2", {"width_mult": 0.35}, 96),
    "mcu_mobilenet_v1@96": ("edgekit", "mcu_mobilenet_v1", {}, 96),
    "shufflenet_v2_x0_5@96": ("torchvision", "shufflenet_v2_x0_5", {}, 96),
    "squeezenet1_1@96": ("torchvision", "squeezenet1_1", {}, 96),
}


def build(name: str):
    import torch

    src, fn, kwargs, res = MODELS[name]
    torch.manual_seed(0)
    if src == "torchvision":
        import torchvision

        model = getattr(torchvision.models, fn)(weights=None, **kwargs)
    else:
        from edgekit.models.registry import create_model

        model = create_model(fn, **kwargs)
    return model.eval(), torch.randn(1, 3, res, res)


def plans(model, x) -> tuple[dict, dict]:
    import torch
    from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower
    from executorch.exir.memory_planning import MemoryPlanningAlgorithmSuite, naive
    from executorch.exir.passes.memory_planning_pass import MemoryPlanningPass

    from edgekit.analysis.et_planner import edgekit_memory_planning_pass, planned_lower_bound
    from edgekit.quiet import quiet_native

    def size(prog) -> int:
        return int(sum(prog.executorch_program.execution_plan[0].non_const_buffer_sizes[1:]))

    with torch.no_grad(), quiet_native():
        ep = torch.export.export(model, (x,), strict=False)
        edge = to_edge_transform_and_lower(ep, partitioner=[])
        stock = copy.deepcopy(edge).to_executorch()
        naive_p = copy.deepcopy(edge).to_executorch(ExecutorchBackendConfig(
            memory_planning_pass=MemoryPlanningPass(memory_planning_algo=MemoryPlanningAlgorithmSuite([naive]))))
        folded = copy.deepcopy(edge).to_executorch(ExecutorchBackendConfig(do_quant_fusion_and_const_prop=True))
        oop = edgekit_memory_planning_pass(inplace=False)
        ek = copy.deepcopy(edge).to_executorch(ExecutorchBackendConfig(memory_planning_pass=oop,
                                                                       do_quant_fusion_and_const_prop=True))
        inp = edgekit_memory_planning_pass(inplace=True)
        eki = edge.to_executorch(ExecutorchBackendConfig(memory_planning_pass=inp,
                                                         do_quant_fusion_and_const_prop=True))
    row = {
        "lb": planned_lower_bound(stock.exported_program().graph_module),
        "naive": size(naive_p), "greedy": size(stock), "greedy+fold": size(folded),
        "lb_fold": planned_lower_bound(ek.exported_program().graph_module), "ek": size(ek),
        "lb_inpl": planned_lower_bound(eki.exported_program().graph_module), "ek+inpl": size(eki),
        "et_greedy_inpl": int(sum(inp.edgekit_planner.stats.executorch_greedy_bytes.values())),
        "aliased": inp.aliased,
    }
    return row, {"stock": bytes(stock.buffer), "edgekit": bytes(eki.buffer)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    ap.add_argument("--fold-bn", action="store_true", help="fold BatchNorm first (as `edgekit build` does)")
    ap.add_argument("--no-run", action="store_true", help="skip running the .pte files in the runtime")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    cols = ["lb", "naive", "greedy", "greedy+fold", "lb_fold", "ek", "lb_inpl", "ek+inpl"]
    print(f"{'model':<24}" + "".join(f"{c:>12}" for c in cols) + f"{'ek+inpl/lb':>11}{'greedy/lb':>10}"
          f"{'max|d| eager':>13}{'s':>6}")
    for name in args.models.split(","):
        t0 = time.perf_counter()
        model, x = build(name)
        if args.fold_bn:
            from edgekit.passes.fold_bn import fold_bn

            model = fold_bn(model, (x,)).model.eval()
        row, blobs = plans(model, x)
        diff = ""
        if not args.no_run:
            from edgekit.runtime.executorch import et_run

            with tempfile.TemporaryDirectory() as d, torch.no_grad():
                outs = {}
                for k, b in blobs.items():
                    p = Path(d) / f"{k}.pte"
                    p.write_bytes(b)
                    outs[k] = et_run(p, [[x.numpy()]])[0][0]
                ref = model(x).numpy()
                same = np.array_equal(outs["edgekit"], outs["stock"])
                diff = f"{float(np.abs(outs['edgekit'] - ref).max()):.1e}{'' if same else '*'}"
        print(f"{name:<24}" + "".join(f"{row[c]:>12,}" for c in cols)
              + f"{row['ek+inpl'] / row['lb']:>11.3f}{row['greedy'] / row['lb']:>10.3f}{diff:>13}"
              f"{time.perf_counter() - t0:>6.0f}", flush=True)
        if row["et_greedy_inpl"] != row["ek+inpl"]:
            print(f"{'':<24}ExecuTorch's greedy on edgekit's in-place graph: {row['et_greedy_inpl']:,} B "
                  f"({row['aliased']} outputs aliased)")
    print("bytes of the planned activation arena (sum of non_const_buffer_sizes[1:]); lb = liveness lower "
          "bound on ExecuTorch's lifetimes; * = edgekit .pte output differs from the stock .pte")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
