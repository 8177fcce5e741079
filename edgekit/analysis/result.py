"""The analysis of one model and the budget verdict (plain data: no torch, no printing).

``Analysis`` is what ``edgekit.analyze`` returns and ``edgekit check`` renders; ``Verdict`` is
the answer to "does it fit?", produced by :func:`verdict_for` for every command — the
pre-export check, the measured check at the end of a build, ``report`` and ``assert_fits``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgekit.analysis.planners import Plan as MemoryPlan
from edgekit.analysis.runtime_support import Unrunnable
from edgekit.plan import runtime_label


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
        if not self.fits:
            return "does not fit: " + "; ".join(self.reasons)
        parts = []
        if self.sram_bytes is not None:
            parts.append(f"arena {self.arena_bytes:,} B of {self.sram_bytes:,} B SRAM "
                         f"({100 * self.arena_bytes / max(self.sram_bytes, 1):.0f} %)")
        if self.flash_bytes is not None:
            parts.append(f"model {self.model_bytes:,} B of {self.flash_bytes:,} B flash "
                         f"({100 * self.model_bytes / max(self.flash_bytes, 1):.0f} %)")
        return "fits: " + ("; ".join(parts) if parts else "no budget given")


def verdict_for(*, arena_bytes: int, model_bytes: int, sram_bytes: int | None, flash_bytes: int | None,
                peak_layer: str | None = None, target: str | None = None, arena_label: str = "arena",
                extra_reasons: list[str] | tuple = ()) -> Verdict:
    """The one budget verdict: over SRAM, over flash, and any other reason the model cannot
    run (``extra_reasons``: ops the runtime lacks, lint errors on the artifact)."""
    over_sram = max(0, arena_bytes - sram_bytes) if sram_bytes is not None else 0
    over_flash = max(0, model_bytes - flash_bytes) if flash_bytes is not None else 0
    reasons = []
    if over_sram:
        peak = f"; peak at layer {peak_layer}" if peak_layer else ""
        reasons.append(f"exceeds SRAM by {over_sram:,} B ({arena_label} {arena_bytes:,} B > {sram_bytes:,} B{peak})")
    if over_flash:
        reasons.append(f"exceeds flash by {over_flash:,} B (model {model_bytes:,} B > {flash_bytes:,} B)")
    reasons += list(extra_reasons)
    return Verdict(fits=not reasons, sram_bytes=sram_bytes, flash_bytes=flash_bytes, arena_bytes=arena_bytes,
                   model_bytes=model_bytes, over_sram_bytes=over_sram, over_flash_bytes=over_flash,
                   peak_layer=peak_layer, target=target, reasons=reasons)


def runnability_reason(problems: list[Unrunnable]) -> list[str]:
    """One verdict reason per runtime: "cannot run on TFLite-Micro: DEQUANTIZE with float16 input (74 ops)"."""
    by_runtime: dict[str, list[Unrunnable]] = {}
    for p in problems:
        by_runtime.setdefault(p.runtime, []).append(p)
    return [f"cannot run on {runtime_label(rt)}: " + "; ".join(p.text() for p in ps) for rt, ps in by_runtime.items()]


@dataclass
class Analysis:
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
    runnability: list[Unrunnable] = field(default_factory=list)
    memory_plans: dict | None = None  # TFLite-Micro: its own plan and edgekit's offline plan, and which is used
    evaluation: dict | None = None  # `check --eval`: PyTorch accuracy on labelled data (evaluation.EvalReport)
    verdict: Verdict | None = None
    # the budget the command was given (check() without arguments uses it)
    sram_bytes: int | None = field(default=None, repr=False)
    flash_bytes: int | None = field(default=None, repr=False)
    target: str | None = field(default=None, repr=False)
    # data for renderers and for suggestions; not part of the JSON
    memory_plan: MemoryPlan | None = field(default=None, repr=False, compare=False)
    variants_of: object = field(default=None, repr=False, compare=False)  # the LoadedModel of a registered model
    runtime_graph: object = field(default=None, repr=False, compare=False)  # the graph the runtime runs (lowered)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def check(self, target=None, *, sram=None, flash=None, suggest: bool = True) -> Verdict:
        """The verdict against ``target`` (name, path or Target) and/or explicit sram/flash sizes;
        with none of them, against the budget the analysis was made for."""
        from edgekit.plan import device
        from edgekit.units import parse_size

        tgt = device(target)
        if tgt is None and sram is None and flash is None:
            sram_b, flash_b, tid = self.sram_bytes, self.flash_bytes, self.target
        else:
            sram_b = parse_size(sram) if sram is not None else (tgt.sram_bytes if tgt else None)
            flash_b = parse_size(flash) if flash is not None else (tgt.flash_bytes if tgt else None)
            tid = tgt.id if tgt else None
        v = verdict_for(arena_bytes=self.arena_bytes, model_bytes=self.model_bytes, sram_bytes=sram_b,
                        flash_bytes=flash_b, peak_layer=self.peak_layer, target=tid,
                        extra_reasons=runnability_reason(self.runnability))
        if not v.fits and suggest and not self.runnability:
            from edgekit.analysis.suggest import suggest_patches, suggest_variants

            # patches first: they keep the model (and its accuracy); then smaller variants
            v.suggestions = suggest_patches(self, sram_b, flash_b)
            if self.variants_of is not None:
                v.suggestions += suggest_variants(self, sram_b, flash_b)
        self.verdict = v
        return v

    def to_dict(self) -> dict:
        d = asdict(self)
        for private in ("memory_plan", "variants_of", "runtime_graph", "sram_bytes", "flash_bytes", "target"):
            d.pop(private, None)
        d["flops"] = self.flops
        v = self.verdict
        d.update(fits=v.fits if v else None, sram_bytes=v.sram_bytes if v else None,
                 flash_bytes=v.flash_bytes if v else None)
        return d
