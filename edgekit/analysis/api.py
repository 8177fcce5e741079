"""`edgekit.analyze`: one entry point from a model (or artifact) to a Report."""

from __future__ import annotations

from pathlib import Path

from edgekit.analysis.counts import count, model_bytes_for
from edgekit.analysis.memory import liveness
from edgekit.analysis.planners import ascii_timeline, lower_bound, plan_greedy_by_size, plan_naive
from edgekit.analysis.report import LayerRow, Report, Suggestion, check_runtime
from edgekit.errors import UsageError
from edgekit.graph.ir import Graph
from edgekit.units import parse_dtype


def default_runtime(dtype: str, target=None) -> str:
    if target is not None:
        return target.runtime.default
    return "tflite-micro" if dtype == "int8" else "litert"


def analyze(model_or_path=None, *, input_shape=None, dtype: str | None = None, runtime: str | None = None,
            fold: bool = True, target=None) -> Report:
    """Analyse a model spec string, an nn.Module, a LoadedModel, or a .tflite/.pte/.pt2 path.

    ``target`` (name, path or Target) picks the default dtype and runtime; explicit
    ``dtype``/``runtime`` win. Returns a Report; call ``report.check(...)`` for a verdict.
    """
    from edgekit.loader import LoadedModel, ModelSpec, load_model, parse_spec

    tgt = _target(target)
    if isinstance(model_or_path, LoadedModel):
        loaded = model_or_path
    elif isinstance(model_or_path, (str, Path, ModelSpec)) or model_or_path is None:
        spec = model_or_path if isinstance(model_or_path, ModelSpec) else parse_spec(
            None if model_or_path is None else str(model_or_path))
        if spec.kind == "tflite":
            g = _check_artifact_shape(_read_tflite(spec.path), spec.text, input_shape)
            return _analyze_graph(g, spec.text, dtype, runtime, tgt, fold=False)
        if spec.kind == "pte":
            from edgekit.graph.pte_reader import read_pte

            g = _check_artifact_shape(read_pte(spec.path), spec.text, input_shape)
            return _analyze_graph(g, spec.text, dtype or "fp32", runtime or "executorch", tgt, fold=False)
        loaded = load_model(spec, input_shape=input_shape)
    else:  # an nn.Module
        loaded = LoadedModel(ModelSpec(text=type(model_or_path).__name__, kind="module",
                                       name=type(model_or_path).__name__), model_or_path,
                             tuple(input_shape) if input_shape else getattr(model_or_path, "default_input_shape",
                                                                             None))
        if loaded.input_shape is None:
            raise UsageError("analyze(module) needs input_shape=..., e.g. (1, 3, 96, 96)")
    dt = parse_dtype(dtype) if dtype else (tgt.runtime.dtype if tgt else "fp32")
    graph = capture_loaded(loaded, dtype=dt, fold=fold)
    report = _analyze_graph(graph, loaded.spec.text, dt, runtime, tgt, fold=fold)
    if loaded.spec.kind == "registered":
        report._reanalyze = _suggester(loaded, dt, report.runtime, fold)
    return report


def capture_loaded(loaded, *, dtype: str, fold: bool = True) -> Graph:
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


def _check_artifact_shape(g: Graph, name: str, input_shape) -> Graph:
    """A built artifact has its input shape baked in: a different --input-shape is refused, not ignored."""
    if input_shape and g.inputs:
        built = tuple(g.tensors[g.inputs[0]].shape)
        if tuple(input_shape) != built:
            raise UsageError(f"{name} is built for input shape {built}; --input-shape "
                             f"{','.join(map(str, input_shape))} does not apply (rebuild it at that shape, or omit "
                             "--input-shape)")
    return g


def _read_tflite(path) -> Graph:
    from edgekit.graph.tflite_reader import read_tflite

    return read_tflite(path)


def _target(target):
    if target is None:
        return None
    from edgekit.targets import Target, load_target

    return target if isinstance(target, Target) else load_target(target)


def graph_dtype(g: Graph) -> str:
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


def runtime_arena(g: Graph, runtime: str) -> tuple[int, dict[str, int], list[str]]:
    """The arena the runtime will need, with a breakdown and notes on how it was derived."""
    from edgekit.analysis.runtime_models import predict_arena

    return predict_arena(g, runtime)


def analyze_graph(g: Graph, name: str, *, dtype=None, runtime=None, target=None, fold: bool = False) -> Report:
    """Analyse an already captured (or read) graph: what ``analyze`` does after capturing."""
    return _analyze_graph(g, name, dtype, runtime, _target(target), fold=fold)


def _analyze_graph(g: Graph, name: str, dtype, runtime, tgt, *, fold: bool) -> Report:
    dt = graph_dtype(g) if g.source_format != "torch" else g.meta.get("dtype", "fp32")
    if dtype and g.source_format != "torch" and parse_dtype(dtype) != dt:
        raise UsageError(f"{name} is a {dt} artifact; --dtype {dtype} does not apply (rebuild it instead)")
    rt = check_runtime(runtime) if runtime else default_runtime(dt, tgt)
    cnt = count(g)
    lv = liveness(g)
    lv_inplace = liveness(g, inplace=True)
    greedy = plan_greedy_by_size(lv.buffers)
    plans = {
        "lower_bound": lower_bound(lv.buffers),
        "naive": plan_naive(lv.buffers).arena_bytes,
        "greedy_by_size": greedy.arena_bytes,
        "lower_bound_inplace": lower_bound(lv_inplace.buffers),
    }
    arena, breakdown, notes = runtime_arena(g, rt)
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
    peak_layer = None
    if lv.peak_op is not None:
        pop = g.ops[lv.peak_op]
        peak_layer = pop.source or pop.name
    in_shape = list(g.tensors[g.inputs[0]].shape) if g.inputs else []
    model_bytes = cnt.model_bytes.get(dt, g.const_bytes()) if g.source_format == "torch" else g.const_bytes()
    params = g.meta.get("source_params") or cnt.params  # the model's own count (BN included)
    report = Report(model=name, input_shape=in_shape, dtype=dt, runtime=rt, source_format=g.source_format,
                  params=params, macs=cnt.macs, model_bytes=model_bytes, model_bytes_by_dtype=cnt.model_bytes,
                  peak_activation_bytes=lv.peak_live_bytes, peak_layer=peak_layer, arena_bytes=arena,
                  arena_breakdown=breakdown, plans=plans, layers=rows, folded_bn=fold, notes=notes)
    report._timeline = lambda: ascii_timeline(greedy)
    return report


def _suggester(loaded, dtype, runtime, fold):
    """Re-analyse smaller variants of a registered model to find changes that fit."""

    def suggest(sram_b, flash_b) -> list[Suggestion]:
        from edgekit.loader import ModelSpec, load_model

        base = dict(loaded.spec.kwargs)
        res = loaded.input_shape[-1]
        width = float(base.get("width", 1.0))
        candidates = []
        if dtype != "int8":
            candidates.append(("dtype=int8", base, "int8"))
        for r in (int(res * f) // 8 * 8 for f in (0.85, 0.7, 0.5)):
            if r >= 32:
                candidates.append((f"resolution={r}", {**base, "resolution": r}, dtype))
        for w in (width * 0.75, width * 0.5):
            candidates.append((f"width={w:g}", {**base, "width": round(w, 3)}, dtype))
        out = []
        for change, kwargs, dt in candidates:
            try:
                spec = ModelSpec(text=f"{loaded.spec.name}:{change}", kind="registered", name=loaded.spec.name,
                                 kwargs=kwargs)
                lm = load_model(spec)
                g = capture_loaded(lm, dtype=dt, fold=fold)
                arena, _, _ = runtime_arena(g, runtime)
                mb = model_bytes_for(g, dt)
            except Exception:  # a variant the architecture does not accept
                continue
            fits = (sram_b is None or arena <= sram_b) and (flash_b is None or mb <= flash_b)
            out.append(Suggestion(change=change, arena_bytes=arena, model_bytes=mb, fits=fits))
        out.sort(key=lambda s: (not s.fits, s.arena_bytes))
        return out[:4]

    return suggest
