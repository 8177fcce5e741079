"""The quantization debugger's report: the result types (``LayerError``, ``RemedyResult``,
``QuantDebugReport``) and how the child's sums become per-layer SQNR and cosine, worst first,
with dead layers (all-zero fp32 output) set apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from edgekit.lint.findings import Finding


@dataclass
class LayerError:
    index: int  # op index in the int8 model
    op: str  # "CONV_2D_5"
    opcode: str
    tensor: str  # output tensor name
    module: str | None  # PyTorch module path
    sqnr_db: float | None  # compounded: int8 model vs fp32 model at this tensor (None: dead layer)
    cosine: float | None
    added_sqnr_db: float | None = None  # this op alone, fed with the fp32 model's input
    added_cosine: float | None = None
    dead: bool = False  # the fp32 output is all zeros on every sample: no signal, SQNR meaningless

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RemedyResult:
    name: str
    applied: bool
    note: str
    output_sqnr_db: float | None = None
    output_cosine: float | None = None
    baseline_sqnr_db: float | None = None
    delta_db: float | None = None
    extra_ops: int = 0  # QUANTIZE/DEQUANTIZE ops added against the baseline
    model_bytes: int | None = None
    layers: list[str] = field(default_factory=list)  # layers the remedy touched
    accuracy: float | None = None  # top-1 on the eval set with the remedy (LiteRT builtin kernels)
    baseline_accuracy: float | None = None  # the same for the baseline model
    accuracy_delta_pp: float | None = None  # accuracy - baseline_accuracy, percentage points
    eval_samples: int | None = None
    model: bytes | None = field(default=None, repr=False)  # the remedied model (not in to_dict)
    baseline_model: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("model", "baseline_model")}


@dataclass
class QuantDebugReport:
    layers: list[LayerError]  # worst first
    output_sqnr_db: float
    output_cosine: float
    samples: int
    matched: int  # int8 op outputs matched to an fp32 tensor by name
    unmatched: list[str] = field(default_factory=list)
    calibration: list[Finding] = field(default_factory=list)
    remedies: list[RemedyResult] = field(default_factory=list)
    dead_layers: list[LayerError] = field(default_factory=list)  # all-zero fp32 output: not ranked

    def worst(self, n: int = 5) -> list[LayerError]:
        return self.layers[:n]

    def by_module(self, module: str) -> list[LayerError]:
        return [lay for lay in self.layers if lay.module == module]

    def to_dict(self) -> dict:
        return {"output_sqnr_db": self.output_sqnr_db, "output_cosine": self.output_cosine, "samples": self.samples,
                "matched": self.matched, "unmatched": self.unmatched,
                "layers": [lay.to_dict() for lay in self.layers],
                "dead_layers": [lay.to_dict() for lay in self.dead_layers],
                "calibration": [f.to_dict() for f in self.calibration],
                "remedies": [r.to_dict() for r in self.remedies]}


def _sqnr(s_ref: float, s_err: float) -> float:
    if s_err <= 0:
        return float("inf")
    if s_ref <= 0:
        return float("-inf")
    return 10 * math.log10(s_ref / s_err)


def _cos(dot: float, a: float, b: float) -> float:
    if a <= 0 or b <= 0:
        return 1.0 if a == b else 0.0
    return float(dot / math.sqrt(a * b))


def _report_from(raw: dict, int8_path, n: int) -> QuantDebugReport:
    from edgekit.graph.names import locations, primary

    layers, dead = [], []
    for st in raw["layers"]:
        locs = locations(st["tensor"])
        for extra in ([] if locs else st.get("input_names", [])[1:]):  # weights carry the module of a graph output
            locs += [lc for lc in locations(extra) if lc not in locs]
        kind = {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d", "FULLY_CONNECTED": "linear"}.get(
            st["opcode"])
        loc = primary(locs, kind)
        lay = LayerError(index=st["index"], op=f"{st['opcode']}_{st['index']}", opcode=st["opcode"],
                         tensor=st["tensor"], module=loc.path if loc else None,
                         sqnr_db=round(_sqnr(st["ref2"], st["err2"]), 3),
                         cosine=round(_cos(st["dot"], st["ref2"], st["q2"]), 6))
        if st["ref2"] <= 0:  # all zeros in fp32 on every sample: nothing to measure the error against
            lay.dead, lay.sqnr_db, lay.cosine = True, None, None
            dead.append(lay)
            continue
        if st.get("iso") is not None:
            iso = st["iso"]
            lay.added_sqnr_db = round(_sqnr(iso["ref2"], iso["err2"]), 3)
            lay.added_cosine = round(_cos(iso["dot"], iso["ref2"], iso["q2"]), 6)
        layers.append(lay)
    layers.sort(key=lambda x: (x.added_sqnr_db if x.added_sqnr_db is not None else x.sqnr_db, x.sqnr_db))
    o = raw["output"]
    return QuantDebugReport(layers=layers, output_sqnr_db=round(_sqnr(o["ref2"], o["err2"]), 3),
                            output_cosine=round(_cos(o["dot"], o["ref2"], o["q2"]), 6), samples=n,
                            matched=len(layers) + len(dead), unmatched=raw["unmatched"], dead_layers=dead)


def _dead_finding(dead: list, samples: int) -> Finding:
    names = ", ".join(lay.module or lay.op for lay in dead[:5])
    names += f" and {len(dead) - 5} more" if len(dead) > 5 else ""
    return Finding("quant-dead-layers", "warning",
                   f"{len(dead)} layer(s) output only zeros in fp32 on all {samples} calibration sample(s): {names}; "
                   f"their SQNR is meaningless and they are not ranked",
                   "check that the calibration data reaches them; if they are dead in the trained model, prune them")

