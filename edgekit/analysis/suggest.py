"""Changes that would make a model fit, each re-analysed for real, never extrapolated:

- patches (TFLite-Micro): the same model run one spatial tile at a time through its first stages
  (``analysis.patch_search``), the arena predicted on the rewritten graph with the memory plan the
  build writes; listed first, because they keep the model and its accuracy;
- for a registered model, smaller resolutions, widths and dtypes (captured and arena-modelled)."""

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


def suggest_patches(analysis: Analysis, sram_bytes: int | None, flash_bytes: int | None) -> list[Suggestion]:
    """The patch grid and split that minimise the arena (MACs +20 % at most), as ``edgekit build --patch``
    would apply it; empty when patches do not apply (another runtime, an arena that is not the problem) or
    cannot help."""
    from edgekit.analysis.memory_plans import planning_kernels
    from edgekit.analysis.patch_search import search_graph

    g = analysis.runtime_graph
    if analysis.runtime != "tflite-micro" or g is None or sram_bytes is None or analysis.arena_bytes <= sram_bytes:
        return []
    mp = analysis.memory_plans or {}
    offline = mp.get("mode", "auto") != "tflm"
    search = search_graph(g, budget_bytes=sram_bytes, plan=offline,
                          kernels=planning_kernels(mp.get("kernels") or "cmsis-nn"))
    pick = search.pick
    if pick is None or pick.best_arena() >= analysis.arena_bytes:
        return []
    fits = pick.best_arena() <= sram_bytes and (flash_bytes is None or analysis.model_bytes <= flash_bytes)
    change = (f"{pick.grid[0]}x{pick.grid[1]} patches up to {pick.label} (+{100 * pick.mac_overhead:.1f} % MACs, "
              f"the same model; edgekit build --patch {pick.spec})")
    return [Suggestion(change=change, arena_bytes=pick.best_arena(), model_bytes=analysis.model_bytes, fits=fits)]


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
