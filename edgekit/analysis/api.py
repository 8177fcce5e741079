"""`edgekit.analyze`: one entry point from a model (or artifact) to an :class:`Analysis`."""

from __future__ import annotations

from pathlib import Path

from edgekit.analysis.counts import count
from edgekit.analysis.memory import liveness
from edgekit.analysis.planners import lower_bound, plan_greedy_by_size, plan_naive
from edgekit.analysis.result import Analysis, LayerRow
from edgekit.analysis.runtime_models import predict_arena, runtime_graph
from edgekit.analysis.runtime_support import unrunnable
from edgekit.errors import UsageError
from edgekit.graph.ir import Graph
from edgekit.loader import LoadedModel, ModelSpec, from_module, load_model, parse_spec
from edgekit.plan import Plan, resolve
from edgekit.types import ModelLike, Shape, Size, TargetLike
from edgekit.units import parse_dtype


def analyze(model_or_path: ModelLike = None, *, input_shape: Shape | None = None, dtype: str | None = None,
            runtime: str | None = None, fold: bool = True, target: TargetLike | None = None, sram: Size | None = None,
            flash: Size | None = None, memory_plan: str | None = None) -> Analysis:
    """Analyse a model spec string, an nn.Module, a LoadedModel, or a .tflite/.pte/.pt2 path.

    ``target`` (a device name, path or Target), ``runtime``, ``dtype``, ``sram``, ``flash`` and
    ``memory_plan`` (TFLite-Micro: auto | offline | tflm) are resolved by ``edgekit.plan.resolve``
    exactly as ``edgekit check`` resolves its flags; ``analysis.check()`` then gives the verdict
    against that budget.
    """
    if isinstance(model_or_path, LoadedModel):
        loaded = model_or_path
    elif isinstance(model_or_path, (str, Path, ModelSpec)) or model_or_path is None:
        spec = model_or_path if isinstance(model_or_path, ModelSpec) else parse_spec(
            None if model_or_path is None else str(model_or_path))
        if spec.kind == "keras":  # Keras/TensorFlow: converted in a TensorFlow child (edgekit.analysis.keras)
            from edgekit.analysis.keras import analyze_keras

            return analyze_keras(spec, input_shape=input_shape, dtype=dtype, runtime=runtime, target=target,
                                 sram=sram, flash=flash, fold=fold)
        if spec.is_artifact:
            return _analyze_artifact(spec, input_shape=input_shape, dtype=dtype, runtime=runtime, target=target,
                                     sram=sram, flash=flash, memory_plan=memory_plan)
        loaded = load_model(spec, input_shape=input_shape)
    else:
        loaded = from_module(model_or_path, input_shape, what="analyze(module)")
    plan = resolve(target=target, runtime=runtime, dtype=dtype, sram=sram, flash=flash, memory_plan=memory_plan)
    graph = capture_loaded(loaded, dtype=plan.dtype, fold=fold)
    analysis = analyze_graph(graph, loaded.spec.text, plan=plan, fold=fold)
    if loaded.spec.kind == "registered":
        analysis.variants_of = loaded
    return analysis


def _analyze_artifact(spec: ModelSpec, *, input_shape, dtype, runtime, target, sram, flash, memory_plan) -> Analysis:
    if spec.kind == "tflite":
        from edgekit.graph.tflite_reader import read_tflite

        g = read_tflite(spec.path)
    else:
        from edgekit.graph.pte_reader import read_pte

        g = read_pte(spec.path)
    _check_artifact_shape(g, spec.text, input_shape)
    built = graph_dtype(g)
    if dtype and parse_dtype(dtype) != built:
        raise UsageError(f"{spec.text} is a {built} artifact; --dtype {dtype} does not apply (rebuild it instead)")
    plan = resolve(target=target, runtime=runtime, dtype=built, sram=sram, flash=flash, artifact_format=spec.kind,
                   memory_plan=memory_plan)
    return analyze_graph(g, spec.text, plan=plan, fold=False)


def capture_loaded(loaded: LoadedModel, *, dtype: str, fold: bool = True) -> Graph:
    """Capture the loaded model. With ``fold``, BatchNorms that ``fold_bn`` folds into their
    producer are folded on the graph (their output becomes an alias of the conv's), which is
    what the deployed model computes; this avoids re-tracing the model a second time."""
    from edgekit.graph.capture import capture, fold_bn_in_graph, graph_from_exported

    module = loaded.module
    if module is not None and getattr(module, "training", False):
        raise UsageError("the model is in training mode; call model.eval() before analysing it")
    source_params = sum(p.numel() for p in module.parameters()) if module is not None else None
    if loaded.exported is not None:
        g = graph_from_exported(loaded.exported, dtype=dtype, name=loaded.spec.name)
    else:
        g = capture(module, loaded.input_shape, dtype=dtype, name=loaded.spec.name)
    if fold:
        fold_bn_in_graph(g)
    g.meta["source_params"] = source_params
    return g


def _check_artifact_shape(g: Graph, name: str, input_shape) -> None:
    """A built artifact has its input shape baked in: a different --input-shape is refused, not ignored."""
    if input_shape and g.inputs:
        built = tuple(g.tensors[g.inputs[0]].shape)
        if tuple(input_shape) != built:
            raise UsageError(f"{name} is built for input shape {built}; --input-shape "
                             f"{','.join(map(str, input_shape))} does not apply (rebuild it at that shape, or omit "
                             "--input-shape)")


def graph_dtype(g: Graph) -> str:
    """The dtype a graph computes in: its capture dtype, or what a built artifact holds."""
    if g.source_format == "torch":
        return g.meta.get("dtype", "fp32")
    acts = [g.tensors[i].dtype for i in g.inputs] + [t.dtype for t in g.tensors if not t.is_const]
    if any(d == "int8" for d in acts) and not any(g.tensors[i].dtype == "float32" for i in g.inputs):
        return "int8"
    if any(t.dtype == "int8" for t in g.tensors if t.is_const):
        return "int8"
    if any(t.dtype == "float16" for t in g.tensors if t.is_const):
        return "fp16"
    return "fp32"


def analyze_graph(g: Graph, name: str, *, plan: Plan, fold: bool = False) -> Analysis:
    """Analyse an already captured (or read) graph for ``plan``: what ``analyze`` does after capturing."""
    cnt = count(g)
    lv = liveness(g)
    greedy = plan_greedy_by_size(lv.buffers)
    plans = {
        "lower_bound": lower_bound(lv.buffers),
        "naive": plan_naive(lv.buffers).arena_bytes,
        "greedy_by_size": greedy.arena_bytes,
        "lower_bound_inplace": lower_bound(liveness(g, inplace=True).buffers),
    }
    rg = runtime_graph(g, plan.runtime)
    cannot_run = unrunnable(rg, plan.runtime, kernels=plan.kernels or "reference")
    # an op the runtime cannot run decides the verdict; the arena of such a model is only indicative
    pred = predict_arena(rg, plan.runtime, memory_plan=plan.memory_plan or "tflm", kernels=plan.kernels or "cmsis-nn",
                         strict=not cannot_run)
    dt = graph_dtype(g)
    model_bytes = cnt.model_bytes.get(dt, g.const_bytes()) if g.source_format == "torch" else g.const_bytes()
    peak_layer = None
    if lv.peak_op is not None:
        peak_layer = g.ops[lv.peak_op].source or g.ops[lv.peak_op].name
    return Analysis(model=name, input_shape=list(g.tensors[g.inputs[0]].shape) if g.inputs else [], dtype=dt,
                    runtime=plan.runtime, source_format=g.source_format,
                    params=g.meta.get("source_params") or cnt.params,  # the model's own count (BN included)
                    macs=cnt.macs, model_bytes=model_bytes, model_bytes_by_dtype=cnt.model_bytes,
                    peak_activation_bytes=lv.peak_live_bytes, peak_layer=peak_layer, arena_bytes=pred.bytes,
                    arena_breakdown=pred.breakdown, plans=plans, layers=_layer_rows(g, lv), folded_bn=fold,
                    notes=pred.notes, memory_plans=pred.memory_plan.to_dict() if pred.memory_plan else None,
                    runnability=cannot_run, latency_ms=_latency_ms(g, rg, plan, dt),
                    sram_bytes=plan.sram_bytes, flash_bytes=plan.flash_bytes,
                    target=plan.target.id if plan.target is not None else None, memory_plan=greedy,
                    runtime_graph=rg)


def _latency_ms(g: Graph, rg: Graph, plan: Plan, dtype: str) -> dict[str, float]:
    """{target id: ms}: the emulator's estimate of the graph the target's runtime runs (what
    `edgekit profile --emulate` says), so a saved report carries it (`edgekit diff` reads it back)."""
    target = plan.target
    if target is None or target.latency is None:
        return {}
    from edgekit.analysis.latency import estimate_graph, runtime_view
    from edgekit.errors import EdgekitError

    view = rg if rg is not g and target.runtime.default == plan.runtime else runtime_view(g, target)
    try:
        return {target.id: estimate_graph(view, target, dtype=dtype).total_ms}
    except EdgekitError:
        return {}


def _layer_rows(g: Graph, lv) -> list[LayerRow]:
    rows = []
    for op in g.ops:
        if op.kind == "view":
            continue
        ins = sum(g.tensors[t].nbytes for t in op.inputs if not g.tensors[t].is_const)
        outs = sum(g.tensors[t].nbytes for t in op.outputs)
        shape = list(g.tensors[op.outputs[0]].shape) if op.outputs else []
        rows.append(LayerRow(name=op.source or op.name, op=op.kind, output_shape=shape, params=op.params,
                             macs=op.macs, input_bytes=ins, output_bytes=outs, live_bytes=lv.live_bytes[op.index],
                             source=op.source))
    return rows
