"""Phase 1: every candidate on every target through the fast analytic path, one task per candidate.

For one candidate: build the model (``load_model``), ``torch.export`` it **once**
(``graph.capture.export_module``; this dominates the cost, ~1-2 s), then for each target:

* ``plan.resolve`` (runtime, dtype, budget, memory plan) as ``edgekit check --target`` resolves it;
* the IR from the same ExportedProgram in that dtype with BatchNorm folded, and
  ``analysis.api.analyze_graph`` — exactly what ``analyze(spec, target=..., dtype=...)`` does after
  its own capture (the pre-export arena, flash bytes, MACs, runnability, the verdict);
* the latency estimate ``profile.emulate.estimate_graph`` on the unfolded IR in the same dtype,
  as ``edgekit profile --emulate`` estimates it.

A dtype or memory plan that does not apply to a target is a row with status ``n/a``; any other
failure is a row with status ``error`` and the message, never an exception out of the task.
"""

from __future__ import annotations

from edgekit.errors import EdgekitError
from edgekit.sweep.config import SweepConfig
from edgekit.sweep.grid import Candidate
from edgekit.sweep.result import Row


def analyse_candidate(cand: Candidate, config: SweepConfig) -> list[Row]:
    """The rows of ``cand`` for every target of ``config`` (see the module doc)."""
    from edgekit.loader import LoadedModel, load_model, parse_spec

    plans, rows = {}, {}
    for t in config.targets:
        try:
            plans[t.id] = config.plan_for(cand, t)
        except EdgekitError as exc:
            rows[t.id] = Row(cand.id, t.id, "n/a", dtype=cand.dtype, memory_plan=cand.memory_plan, error=str(exc))
    if plans:
        try:
            loaded = load_model(parse_spec(cand.spec))
            ep = _export(loaded)
            exported = LoadedModel(loaded.spec, loaded.module, loaded.input_shape, exported=ep)
            accuracy = _accuracy(config, cand, loaded)
        except Exception as exc:  # the architecture refused the arguments, or export failed
            for tid in plans:
                rows[tid] = _error_row(cand, tid, exc)
            plans = {}
        for tid, plan in plans.items():
            try:
                rows[tid] = _row(cand, tid, plan, exported, accuracy)
            except Exception as exc:
                rows[tid] = _error_row(cand, tid, exc)
    return [rows[t] for t in config.target_ids]


def _export(loaded):
    import torch

    from edgekit.graph.capture import export_module

    x = torch.randn(*loaded.input_shape, generator=torch.Generator().manual_seed(0))
    return export_module(loaded.module, (x,))


def _accuracy(config: SweepConfig, cand: Candidate, loaded) -> float | None:
    ev = config.evaluator
    if ev is None:
        return None
    from edgekit.sweep.accuracy import EvalRequest

    return ev(EvalRequest(candidate=cand, spec=cand.spec, module=loaded.module, input_shape=loaded.input_shape))


def _row(cand: Candidate, tid: str, plan, exported, accuracy) -> Row:
    from edgekit.analysis.api import analyze_graph, capture_loaded
    from edgekit.profile.emulate import estimate_graph

    graph = capture_loaded(exported, dtype=plan.dtype, fold=True)
    a = analyze_graph(graph, cand.spec, plan=plan, fold=True)
    verdict = a.check(suggest=False)
    # the latency `check --json` and `profile --emulate` give: the graph the target's runtime runs
    latency = a.latency_ms.get(plan.target.id)
    if latency is None:
        latency = estimate_graph(capture_loaded(exported, dtype=plan.dtype, fold=False), plan.target,
                                 dtype=plan.dtype, model=cand.spec).total_ms
    return Row(cand.id, tid, "ok", runtime=plan.runtime, dtype=plan.dtype, memory_plan=plan.memory_plan,
               params=a.params, macs=a.macs, model_bytes=a.model_bytes, arena_bytes=a.arena_bytes,
               peak_activation_bytes=a.peak_activation_bytes, latency_ms=round(latency, 6),
               latency_model=plan.target.latency.model, sram_bytes=verdict.sram_bytes, flash_bytes=verdict.flash_bytes,
               fits=verdict.fits, reasons=list(verdict.reasons), accuracy=accuracy)


def _error_row(cand: Candidate, tid: str, exc: BaseException) -> Row:
    return Row(cand.id, tid, "error", dtype=cand.dtype, memory_plan=cand.memory_plan, error=error_text(exc))


def error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500] if isinstance(exc, EdgekitError) else f"{type(exc).__name__}: {text[:480]}"
