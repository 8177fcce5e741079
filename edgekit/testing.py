"""Helpers for your own test suite (pytest or unittest): budget checks as assertions.

    from edgekit.testing import assert_fits

    def test_detector_fits_the_board():
        assert_fits("models/detector.py:build", target="nrf52840-dk")

    def test_keyword_spotter_fits():
        assert_fits(MyNet().eval(), sram="256kB", flash="1MB", input_shape=(1, 1, 49, 40), dtype="int8")

On failure it raises ``AssertionError`` whose message is several readable lines: the verdict, the
arena and model size against the budget, the peak layer and the changes that would fit (for
registered models, found by re-analysing smaller resolutions, widths and dtypes).
"""

from __future__ import annotations

from edgekit.analysis.result import Analysis
from edgekit.errors import UsageError
from edgekit.types import ModelLike, Shape, Size, TargetLike

__all__ = ["assert_fits", "fits_message"]


def assert_fits(model: ModelLike, target: TargetLike | None = None, sram: Size | None = None,
                flash: Size | None = None, input_shape: Shape | None = None, dtype: str | None = None, *,
                runtime: str | None = None, fold: bool = True, suggest: bool = True) -> Analysis:
    """Assert that ``model`` fits ``target`` and/or ``sram``/``flash``; return the Report.

    ``model``: anything ``edgekit.analyze`` takes — a MODEL spec string, an ``nn.Module`` (in eval
    mode, with ``input_shape``), or a .tflite/.pte/.pt2 path. Sizes are strings like ``"256kB"``
    or byte counts. A missing budget (no target, sram or flash) is a UsageError, not a pass. As in
    ``edgekit check``, an ``sram`` budget of microcontroller size (<= 2 MiB) without ``target``,
    ``dtype`` or ``runtime`` means an int8 model on TFLite-Micro."""
    from edgekit.analysis.api import analyze

    if target is None and sram is None and flash is None:
        raise UsageError("assert_fits needs a budget: target=..., sram=... and/or flash=...")
    # the flags resolved as `edgekit check` resolves them (edgekit.plan): sram="256kB" alone means
    # a microcontroller, int8 on TFLite-Micro
    report = analyze(model, input_shape=input_shape, dtype=dtype, runtime=runtime, fold=fold, target=target,
                     sram=sram, flash=flash)
    verdict = report.check(suggest=suggest)
    if not verdict.fits:
        raise AssertionError(fits_message(report, verdict))
    return report


def fits_message(report, verdict=None, *, max_suggestions: int = 3) -> str:
    """The multi-line explanation ``assert_fits`` raises with."""
    v = verdict or report.verdict
    where = f" on {v.target}" if v is not None and v.target else ""
    lines = [f"{report.model} ({report.dtype}, {report.runtime}, input {tuple(report.input_shape)}) "
             f"does not fit{where}:" if v is not None and not v.fits else f"{report.model}: {v.summary() if v else ''}"]
    if v is None:
        return lines[0]
    lines.append(f"  verdict: {v.summary()}")
    if v.sram_bytes is not None:
        pct = 100 * report.arena_bytes / max(v.sram_bytes, 1)
        lines.append(f"  arena:   {report.arena_bytes:,} B needed, {v.sram_bytes:,} B SRAM budget ({pct:.0f} %)"
                     + (f", over by {v.over_sram_bytes:,} B" if v.over_sram_bytes else ""))
        if len(report.arena_breakdown) > 1:
            lines.append("           = " + ", ".join(f"{k} {b:,} B" for k, b in report.arena_breakdown.items() if b))
    if v.flash_bytes is not None:
        pct = 100 * report.model_bytes / max(v.flash_bytes, 1)
        lines.append(f"  model:   {report.model_bytes:,} B, {v.flash_bytes:,} B flash budget ({pct:.0f} %)"
                     + (f", over by {v.over_flash_bytes:,} B" if v.over_flash_bytes else ""))
    if report.peak_layer is not None:
        lines.append(f"  peak:    {report.peak_activation_bytes:,} B of live activations at layer {report.peak_layer}")
        top = sorted(report.layers, key=lambda r: -r.live_bytes)[:3]
        if top:
            lines.append("  largest layers by live bytes: " + ", ".join(f"{r.name} ({r.live_bytes:,} B)" for r in top))
    if v.suggestions:
        lines.append("  try:")
        for s in v.suggestions[:max_suggestions]:
            lines.append(f"    - {s.change}: arena {s.arena_bytes:,} B, model {s.model_bytes:,} B"
                         f" -> {'fits' if s.fits else 'still over'}")
    elif not v.fits:
        lines.append("  try: a smaller input resolution, a narrower width, int8, or `edgekit check MODEL --target "
                     "... --timeline` to see which tensors are alive at the peak")
    return "\n".join(lines)
