"""Runtime arena models: what each runtime will really allocate for a graph.

- tflite-micro: a .tflite graph goes to the TFLite-Micro arena model (planned head +
  persistent tail); a PyTorch graph is first lowered the way the TFLite converter lowers
  it (NHWC transposes, explicit PADs, fused activations) and then goes the same way. The
  head follows the memory plan ``analysis.memory_plans`` chooses (TFLite-Micro's own, edgekit's
  offline plan, or the model's existing OfflineMemoryAllocation entry). A .tflite whose ops or
  tensor types the model does not cover raises UnmodelledError naming them.
- litert / executorch: greedy-by-size plan of the activations (both runtimes plan
  greedily); ExecuTorch's own plan of a .pte is read from the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.analysis.memory import liveness
from edgekit.analysis.memory_plans import MemoryPlanChoice, choose_memory_plan
from edgekit.analysis.planners import plan_greedy_by_size
from edgekit.analysis.tflm_arena import require_modelled
from edgekit.graph.ir import Graph


@dataclass
class ArenaPrediction:
    bytes: int
    breakdown: dict[str, int]  # sums to ``bytes``
    notes: list[str] = field(default_factory=list)
    memory_plan: MemoryPlanChoice | None = None  # TFLite-Micro: the plans compared and the one used


def runtime_graph(g: Graph, runtime: str) -> Graph:
    """The graph the runtime will run: a PyTorch graph lowered as the TFLite converter lowers it
    for TFLite-Micro (where ops, layouts and fused activations decide the arena), else ``g``."""
    if runtime == "tflite-micro" and g.source_format == "torch":
        from edgekit.analysis.lowering import lower_for_tflite

        return lower_for_tflite(g)
    return g


def predict_arena(g: Graph, runtime: str, *, memory_plan: str = "tflm", kernels: str = "cmsis-nn",
                  strict: bool = True) -> ArenaPrediction:
    """The arena ``runtime`` needs for ``g`` (the captured graph or what ``runtime_graph`` made of it).
    TFLite-Micro: with ``memory_plan`` (auto | offline | tflm) for a board running ``kernels``.
    ``strict=False``: ops the arena model does not cover only get a note (for a model the runtime
    cannot run anyway, whose verdict says so)."""
    if runtime == "tflite-micro":
        tg = runtime_graph(g, runtime)
        lowered = tg.meta.get("lowered_from") == "torch"
        choice = choose_memory_plan(tg, mode=memory_plan, kernels=kernels)
        est = choice.estimate
        if est.unmodelled and not lowered and strict:
            # never a silent guess: a .tflite with an op (or tensor type) the arena model does not
            # cover is refused by name (edgekit.errors.UnmodelledError)
            require_modelled(est)
        notes = ["pre-export prediction: the PyTorch graph lowered as the TFLite converter does"] if lowered else []
        return ArenaPrediction(est.total_bytes, dict(est.breakdown), notes + est.notes + choice.notes, choice)
    if runtime == "executorch" and g.source_format == "pte" and g.meta.get("planned_bytes") is not None:
        planned = int(g.meta["planned_bytes"])
        return ArenaPrediction(planned, {"planned_non_const": planned},
                               ["ExecuTorch's own memory plan, read from the .pte"])
    plan = plan_greedy_by_size(liveness(g).buffers, alignment=64 if runtime == "litert" else 16)
    return ArenaPrediction(plan.arena_bytes, {"planned_activations": plan.arena_bytes},
                           [f"{runtime}: greedy-by-size plan of activations (estimate)"])
