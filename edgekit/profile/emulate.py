"""Emulated latency of a model spec, nn.Module or artifact: loads it (``graph_for``) and runs the
cost model of ``edgekit.analysis.latency`` (documented there) on the graph the target's runtime runs."""

from __future__ import annotations

from edgekit.analysis.latency import (  # noqa: F401  (the cost model's names, for callers of this module)
    DENSE_KINDS,
    FUSABLE_ACTS,
    FUSING_PRODUCERS,
    POOL_KINDS,
    ROOFLINE_EFFICIENCY,
    Estimate,
    LayerEstimate,
    _elements,
    classify,
    estimate_graph,
    runtime_view,
)
from edgekit.errors import UsageError


def graph_for(model_or_artifact, *, dtype: str | None = None, input_shape=None, target=None):
    """(graph, dtype, name) for a model spec / nn.Module / LoadedModel / .tflite path.

    A PyTorch model is captured with ``torch.export`` in the target's default dtype (int8 on an
    MCU) unless ``dtype`` is given; a .tflite is read as built (its own dtype)."""
    from pathlib import Path

    from edgekit.loader import LoadedModel, ModelSpec, load_model, parse_spec

    if isinstance(model_or_artifact, LoadedModel):
        loaded = model_or_artifact
    elif model_or_artifact is None or isinstance(model_or_artifact, (str, Path, ModelSpec)):
        spec = model_or_artifact if isinstance(model_or_artifact, ModelSpec) else parse_spec(
            None if model_or_artifact is None else str(model_or_artifact))
        if spec.kind == "tflite":
            from edgekit.analysis.api import graph_dtype
            from edgekit.graph.tflite_reader import read_tflite

            g = read_tflite(spec.path)
            return g, graph_dtype(g), spec.text
        if spec.kind == "pte":
            try:
                from edgekit.graph.pte_reader import read_pte
            except ImportError:
                raise UsageError(f"{spec.text}: no .pte reader in this edgekit; estimate the PyTorch model "
                                 "or the .tflite instead") from None
            g = read_pte(spec.path)
            return g, dtype or "fp32", spec.text
        loaded = load_model(spec, input_shape=input_shape)
    else:
        shape = input_shape or getattr(model_or_artifact, "default_input_shape", None)
        if shape is None:
            raise UsageError("estimating an nn.Module needs input_shape=..., e.g. (1, 3, 96, 96)")
        loaded = LoadedModel(ModelSpec(text=type(model_or_artifact).__name__, kind="module",
                                       name=type(model_or_artifact).__name__), model_or_artifact, tuple(shape))
    from edgekit.graph.capture import capture

    dt = dtype or (target.runtime.dtype if target is not None else "fp32")
    g = capture(loaded.module.eval(), loaded.input_shape, dtype=dt, name=loaded.spec.name)
    return runtime_view(g, target), dt, loaded.spec.text


def estimate(model_or_artifact=None, *, target="host", dtype: str | None = None, threads: int | None = None,
             input_shape=None) -> Estimate:
    """Estimate a model or .tflite on a target (name, path or Target)."""
    from edgekit.targets import Target, load_target

    tgt = target if isinstance(target, Target) else load_target(target)
    g, dt, name = graph_for(model_or_artifact, dtype=dtype, input_shape=input_shape, target=tgt)
    return estimate_graph(g, tgt, dtype=dt, threads=threads, model=name)
