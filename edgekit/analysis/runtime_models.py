"""Runtime arena models: what each runtime will really allocate for a graph.

- tflite-micro: a .tflite graph goes to the TFLite-Micro arena model (planned head +
  persistent tail); a PyTorch graph is first lowered the way the TFLite converter lowers
  it (NHWC transposes, explicit PADs, fused activations) and then goes the same way.
- litert / executorch: greedy-by-size plan of the activations (both runtimes plan
  greedily); ExecuTorch's own plan of a .pte is read from the file.
"""

from __future__ import annotations

from edgekit.analysis.memory import liveness
from edgekit.analysis.planners import plan_greedy_by_size
from edgekit.graph.ir import Graph


def predict_arena(g: Graph, runtime: str) -> tuple[int, dict[str, int], list[str]]:
    notes: list[str] = []
    if runtime == "tflite-micro":
        tg = g
        if g.source_format == "torch":
            from edgekit.analysis.lowering import lower_for_tflite

            tg = lower_for_tflite(g)
            notes.append("pre-export prediction: the PyTorch graph lowered as the TFLite converter does")
        from edgekit.analysis.tflm_arena import predict_tflm_arena

        est = predict_tflm_arena(tg)
        return est.total_bytes, dict(est.breakdown), notes
    if runtime == "executorch" and g.source_format == "pte" and g.meta.get("planned_bytes") is not None:
        return int(g.meta["planned_bytes"]), {"planned_non_const": int(g.meta["planned_bytes"])}, \
            ["ExecuTorch's own memory plan, read from the .pte"]
    plan = plan_greedy_by_size(liveness(g).buffers, alignment=64 if runtime == "litert" else 16)
    return plan.arena_bytes, {"planned_activations": plan.arena_bytes}, \
        [f"{runtime}: greedy-by-size plan of activations (estimate)"]
