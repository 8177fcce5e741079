"""Changes that would make a registered model fit: smaller resolutions, widths and dtypes,
each re-analysed for real (captured and arena-modelled), never extrapolated."""

from __future__ import annotations

from edgekit.analysis.counts import model_bytes_for
from edgekit.analysis.result import Analysis, Suggestion
from edgekit.analysis.runtime_models import predict_arena
from edgekit.errors import EdgekitError


def builder_default(name: str, arg: str, fallback):
    """The default of a registered model's builder argument (``mcu_mobilenet_v1``'s width is 0.25)."""
    import inspect

    from edgekit.models.registry import builder

    param = inspect.signature(builder(name)).parameters.get(arg)
    return fallback if param is None or param.default is inspect.Parameter.empty else param.default


def candidates(analysis: Analysis) -> list[tuple[str, dict, str]]:
    """(label, model kwargs, dtype) of the variants worth trying, in the order they are tried."""
    loaded = analysis.variants_of
    base = dict(loaded.spec.kwargs)
    res = loaded.input_shape[-1]
    width = float(base.get("width", builder_default(loaded.spec.name, "width", 1.0)))
    out = []
    if analysis.dtype != "int8":
        out.append(("dtype=int8", base, "int8"))
    for r in (int(res * f) // 8 * 8 for f in (0.85, 0.7, 0.5)):
        if r >= 32:
            out.append((f"resolution={r}", {**base, "resolution": r}, analysis.dtype))
    for w in (width * 0.75, width * 0.5):
        out.append((f"width={w:g}", {**base, "width": round(w, 3)}, analysis.dtype))
    return out


def suggest_variants(analysis: Analysis, sram_bytes: int | None, flash_bytes: int | None,
                     *, limit: int = 4) -> list[Suggestion]:
    """Re-analyse the variants of ``analysis.variants_of`` (a registered model) on the same
    runtime; the ones that fit first, then by arena."""
    from edgekit.analysis.api import capture_loaded
    from edgekit.loader import ModelSpec, load_model

    loaded = analysis.variants_of
    out = []
    for change, kwargs, dt in candidates(analysis):
        spec = ModelSpec(text=f"{loaded.spec.name}:{change}", kind="registered", name=loaded.spec.name,
                         kwargs=kwargs)
        try:
            g = capture_loaded(load_model(spec), dtype=dt, fold=analysis.folded_bn)
        except EdgekitError:  # a variant the architecture does not accept
            continue
        mp = analysis.memory_plans or {}
        arena = predict_arena(g, analysis.runtime, memory_plan=mp.get("mode", "tflm"),
                              kernels=mp.get("kernels", "cmsis-nn")).bytes
        mb = model_bytes_for(g, dt)
        fits = (sram_bytes is None or arena <= sram_bytes) and (flash_bytes is None or mb <= flash_bytes)
        out.append(Suggestion(change=change, arena_bytes=arena, model_bytes=mb, fits=fits))
    out.sort(key=lambda s: (not s.fits, s.arena_bytes))
    return out[:limit]
