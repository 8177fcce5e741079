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


def predict_arena(g: Graph, runtime: str, *, core: str | None = None) -> tuple[int, dict[str, int], list[str]]:
    """``core``: the target's ``[cpu] core``; a Cortex-M core predicts the board's TFLite-Micro build
    (32-bit, CMSIS-NN kernels: edgekit/analysis/tflm_cortex_m.py) instead of the host's."""
    notes: list[str] = []
    if runtime == "tflite-micro":
        tg = g
        if g.source_format == "torch":
            from edgekit.analysis.lowering import lower_for_tflite

            tg = lower_for_tflite(g)
            notes.append("pre-export prediction: the PyTorch graph lowered as the TFLite converter does")
        try:
            from edgekit.analysis.tflm_arena import predict_tflm_arena
        except ImportError:  # pragma: no cover - during bring-up
            plan = plan_greedy_by_size(liveness(tg).buffers)
            return plan.arena_bytes, {"planned_head": plan.arena_bytes}, notes + ["tail not modelled"]
        build = _tflm_build(core)
        if build is not None:
            notes.append(f"arena of the board's build: {build.name}")
        est = predict_tflm_arena(tg) if build is None else predict_tflm_arena(tg, build=build)
        return est.total_bytes, dict(est.breakdown), notes
    if runtime == "executorch" and g.source_format == "pte" and g.meta.get("planned_bytes") is not None:
        return int(g.meta["planned_bytes"]), {"planned_non_const": int(g.meta["planned_bytes"])}, \
            ["ExecuTorch's own memory plan, read from the .pte"]
    plan = plan_greedy_by_size(liveness(g).buffers, alignment=64 if runtime == "litert" else 16)
    return plan.arena_bytes, {"planned_activations": plan.arena_bytes}, \
        [f"{runtime}: greedy-by-size plan of activations (estimate)"]


def _tflm_build(core: str | None):
    """The TflmBuild of a Cortex-M core (CMSIS-NN), None for the host's tflite_micro."""
    if not core or not core.startswith("cortex-m"):
        return None
    from edgekit.analysis.tflm_cortex_m import cortex_m_build

    return cortex_m_build("cmsis-nn")
