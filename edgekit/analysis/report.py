"""The analysis result and the budget verdict (plain data, no torch, no printing)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgekit.errors import UsageError


@dataclass
class LayerRow:
    name: str
    op: str
    output_shape: list[int]
    params: int
    macs: int
    input_bytes: int
    output_bytes: int
    live_bytes: int
    source: str | None = None


@dataclass
class Suggestion:
    change: str  # e.g. "resolution=80"
    arena_bytes: int
    model_bytes: int
    fits: bool


@dataclass
class Verdict:
    fits: bool
    sram_bytes: int | None
    flash_bytes: int | None
    arena_bytes: int
    model_bytes: int
    over_sram_bytes: int
    over_flash_bytes: int
    peak_layer: str | None
    target: str | None = None
    reasons: list[str] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)

    def summary(self) -> str:
        if self.fits:
            parts = []
            if self.sram_bytes is not None:
                parts.append(f"arena {self.arena_bytes:,} B of {self.sram_bytes:,} B SRAM "
                             f"({100 * self.arena_bytes / max(self.sram_bytes, 1):.0f} %)")
            if self.flash_bytes is not None:
                parts.append(f"model {self.model_bytes:,} B of {self.flash_bytes:,} B flash "
                             f"({100 * self.model_bytes / max(self.flash_bytes, 1):.0f} %)")
            return "fits: " + ("; ".join(parts) if parts else "no budget given")
        return "does not fit: " + "; ".join(self.reasons)


@dataclass
class Report:
    model: str
    input_shape: list[int]
    dtype: str
    runtime: str
    source_format: str
    params: int
    macs: int
    model_bytes: int
    model_bytes_by_dtype: dict[str, int]
    peak_activation_bytes: int
    peak_layer: str | None
    arena_bytes: int
    arena_breakdown: dict[str, int]
    plans: dict[str, int]
    layers: list[LayerRow]
    folded_bn: bool = True
    notes: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    _reanalyze: object = field(default=None, repr=False, compare=False)
    _timeline: object = field(default=None, repr=False, compare=False)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def check(self, target=None, *, sram=None, flash=None, suggest: bool = True) -> Verdict:
        """Compare against a target (name, path or Target) and/or explicit sram/flash sizes."""
        from edgekit.units import parse_size

        tgt = None
        if target is not None:
            from edgekit.targets import Target, load_target

            tgt = target if isinstance(target, Target) else load_target(target)
        sram_b = parse_size(sram) if sram is not None else (tgt.sram_bytes if tgt else None)
        flash_b = parse_size(flash) if flash is not None else (tgt.flash_bytes if tgt else None)
        reasons = []
        over_sram = max(0, self.arena_bytes - sram_b) if sram_b is not None else 0
        over_flash = max(0, self.model_bytes - flash_b) if flash_b is not None else 0
        if over_sram:
            reasons.append(f"exceeds SRAM by {over_sram:,} B (arena {self.arena_bytes:,} B > {sram_b:,} B; "
                           f"peak at layer {self.peak_layer})")
        if over_flash:
            reasons.append(f"exceeds flash by {over_flash:,} B (model {self.model_bytes:,} B > {flash_b:,} B)")
        v = Verdict(fits=not reasons, sram_bytes=sram_b, flash_bytes=flash_b, arena_bytes=self.arena_bytes,
                    model_bytes=self.model_bytes, over_sram_bytes=over_sram, over_flash_bytes=over_flash,
                    peak_layer=self.peak_layer, target=tgt.id if tgt else None, reasons=reasons)
        if not v.fits and suggest and self._reanalyze is not None:
            v.suggestions = self._reanalyze(sram_b, flash_b)
        self.verdict = v
        return v

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_reanalyze", None)
        d.pop("_timeline", None)
        d["flops"] = self.flops
        d["peak_activation_bytes"] = self.peak_activation_bytes
        if self.verdict is not None:
            d["fits"] = self.verdict.fits
            d["sram_bytes"] = self.verdict.sram_bytes
            d["flash_bytes"] = self.verdict.flash_bytes
        else:
            d.update(fits=None, sram_bytes=None, flash_bytes=None)
        return d


def check_runtime(runtime: str) -> str:
    valid = ("tflite-micro", "litert", "executorch")
    if runtime not in valid:
        raise UsageError(f"unknown runtime {runtime!r}: choose one of {', '.join(valid)}")
    return runtime
