"""Quantization debugger: which layer of the int8 model is at fault, and what helps.

``quant_debug(fp32, int8, calibration)`` runs the fp32 .tflite and the int8 .tflite in LiteRT
(builtin kernels, ``experimental_preserve_all_tensors=True``, in a child process) on the
calibration samples, matches tensors by name (ai-edge-quantizer keeps the fp32 names),
dequantizes the int8 ones and reports, per layer, worst first:

- ``sqnr_db`` / ``cosine``: the error of the layer's output in the int8 model against the fp32
  model: everything before it compounded;
- ``added_sqnr_db`` / ``added_cosine``: the error the layer adds by itself: the int8 op alone
  (cut out of the int8 model into a one-op model) fed with the fp32 model's input to it,
  quantized with the int8 model's input scale. An untrained network amplifies quantization
  noise layer by layer, so the compounded error of late layers is mostly not their fault;
  the added error is.

Each layer carries the PyTorch module it came from (litert-torch's tensor names).

**Dead layers** (the fp32 output is all zeros on every calibration sample: ReLU channels that
never fire, a branch the data never reaches) have no signal, so their SQNR (-inf as soon as int8
rounding leaves anything) says nothing about quantization: they are listed apart
(``dead_layers``, and a ``quant-dead-layers`` finding), never ranked among the worst layers.

``check_calibration`` looks at the calibration data itself: how many samples, NaN/inf, all
samples alike, the value range against the model's expected input normalization (ImageNet
mean/std for edgekit's models) and against the int8 model's input quantization range.

Remedies (``remedies=``), each re-quantized with ai-edge-quantizer from the fp32 model and the
same calibration, and measured on the model output:

- ``"per_channel"``: per-channel weight scales against per-tensor ones (edgekit's default
  recipe is already per-channel: the remedy then reports what it buys);
- ``"shared_concat_scales"``: every CONCATENATION input takes the output's scale (what
  TFLite-Micro's int8 concat needs); applied to the given int8 model by rewriting the producers'
  output scales where the producer requantizes anyway;
- ``"float_worst:K"``: the K layers that add the most error stay float (ai-edge-quantizer recipe
  override by regex on the op's output tensor name, ``no_quantize``); for targets with float
  kernels (LiteRT; TFLite-Micro runs float kernels, slowly without an FPU);
- ``"int16_worst:K"``: the same K layers with 16-bit activations (a16w8), where the target
  runs int16 kernels (TFLite-Micro does for conv/depthwise/fully-connected/add/mul).

With ``eval_data`` (``edgekit.evaluation.EvalData``, labelled), each applied remedy also reports
the top-1 accuracy it gives on that set against its baseline (the artifact; for ``per_channel``,
the per-tensor model), both run in LiteRT's builtin kernels in one child each
(``remedy_accuracy``).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgekit.errors import UsageError
from edgekit.isolate import run_isolated
from edgekit.lint.findings import Finding
from edgekit.models.catalog import IMAGENET_MEAN, IMAGENET_STD

# requantizing producers: an op that computes a new int8 value from a wider accumulator can
# write any output scale, so a concat input can take the concat's scale there for free
_REQUANTIZING = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MEAN",
                 "QUANTIZE", "HARD_SWISH", "TRANSPOSE_CONV", "BATCH_MATMUL"}


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


# ============================================================================ public API

def quant_debug(fp32, int8, calibration, *, samples: int = 8, expected_input="imagenet", remedies=(),
                target=None, timeout_s: float = 600.0, eval_data=None) -> QuantDebugReport:
    """Per-layer int8 error against fp32 (worst first), calibration checks and measured remedies.

    ``fp32``/``int8``: .tflite paths or bytes; ``calibration``: samples shaped like the model input
    ((N, 1, C, H, W) or (N, C, H, W)); ``expected_input``: "imagenet", (mean, std) per channel, or
    None; ``remedies``: names from the module docstring; ``target``: a target id or runtime name
    (a remedy the target cannot run is reported as not applied); ``eval_data``: labelled
    ``EvalData`` to report each remedy's accuracy.
    """
    cal = _as_samples(calibration)
    with tempfile.TemporaryDirectory(prefix="edgekit-qdebug-") as tmp:
        fp32_path = _as_path(fp32, Path(tmp) / "fp32.tflite")
        int8_path = _as_path(int8, Path(tmp) / "int8.tflite")
        feed = cal[:samples]
        raw = run_isolated(__name__, "_child_compare",
                           {"fp32_path": str(fp32_path), "int8_path": str(int8_path), "samples": list(feed),
                            "isolate": True},
                           timeout_s=timeout_s, runtime="LiteRT", artifact=int8_path).value
        report = _report_from(raw, int8_path, len(feed))
        report.calibration = check_calibration(cal, expected_input=expected_input, int8_path=int8_path)
        if report.dead_layers:
            report.calibration.append(_dead_finding(report.dead_layers, len(feed)))
        for name in remedies:
            rem = _remedy(name, fp32_path, int8_path, cal, feed, report, target, timeout_s)
            if eval_data is not None and rem.applied and rem.model is not None:
                remedy_accuracy(rem, eval_data, baseline=rem.baseline_model or int8_path.read_bytes())
            report.remedies.append(rem)
    return report


def remedy_accuracy(remedy: RemedyResult, eval_data, *, baseline) -> RemedyResult:
    """Fill ``remedy``'s accuracy fields: top-1 on ``eval_data`` of the remedied model and of
    ``baseline`` (model bytes or a path), each in LiteRT's builtin kernels, one child per model."""
    from edgekit.evaluation.metrics import score
    from edgekit.evaluation.runners import run_litert

    tmp = Path(tempfile.mkdtemp(prefix="edgekit-qdebug-acc-"))
    try:
        accs = []
        for i, model in enumerate((remedy.model, baseline)):
            p = Path(model) if not isinstance(model, (bytes, bytearray)) else tmp / f"m{i}.tflite"
            if isinstance(model, (bytes, bytearray)):
                p.write_bytes(bytes(model))
            out = run_litert(p, eval_data, kernels="builtin")
            accs.append(score(out, eval_data.y, name=remedy.name, runtime="litert").accuracy)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    remedy.accuracy, remedy.baseline_accuracy = accs
    remedy.accuracy_delta_pp = round(100.0 * (accs[0] - accs[1]), 4)
    remedy.eval_samples = len(eval_data)
    return remedy


def _dead_finding(dead: list, samples: int) -> Finding:
    names = (", ".join(lay.module or lay.op for lay in dead[:5])
             + (f" and {len(dead) - 5} more" if len(dead) > 5 else ""))
    return Finding("quant-dead-layers", "warning",
                   f"{len(dead)} layer(s) output only zeros in fp32 on all {samples} calibration sample(s): {names}; "
                   f"their SQNR is meaningless and they are not ranked",
                   "check that the calibration data reaches them; if they are dead in the trained model, prune them")


def check_remedy_names(names) -> None:
    """Refuse an unknown remedy before any slow work starts."""
    for name in names:
        kind, _, arg = str(name).partition(":")
        ok = kind in ("per_channel", "shared_concat_scales") and not arg
        ok = ok or (kind in ("float_worst", "int16_worst") and (not arg or (arg.isdigit() and int(arg) > 0)))
        if not ok:
            raise UsageError(f"unknown quantization remedy {name!r}: choose per_channel, shared_concat_scales, "
                             f"float_worst:K or int16_worst:K (K a positive number of layers)")


def check_calibration(calibration, *, expected_input="imagenet", int8_path=None) -> list[Finding]:
    """Findings about the calibration data: count, NaN/inf, diversity, range vs expected input."""
    cal = _as_samples(calibration)
    out: list[Finding] = []
    n = len(cal)
    if n < 8:
        out.append(Finding("calibration-samples", "warning",
                           f"only {n} calibration sample(s): activation ranges from so few inputs are a guess, and a "
                           f"single unusual input sets a whole layer's scale",
                           "calibrate with 100-500 representative samples (edgekit build --calibration DIR)"))
    elif n < 32:
        out.append(Finding("calibration-samples", "info",
                           f"{n} calibration samples: enough to run, thin for stable scales",
                           "use 100-500 representative samples if you have them"))
    if not np.all(np.isfinite(cal)):
        out.append(Finding("calibration-values", "error", "the calibration data contains NaN or infinite values",
                           "clean the data: one NaN makes a scale NaN"))
        return out
    if n > 1 and float(np.max(np.std(cal.reshape(n, -1), axis=0))) < 1e-6:
        out.append(Finding("calibration-values", "warning", f"all {n} calibration samples are identical",
                           "use different, representative inputs"))
    lo, hi = float(cal.min()), float(cal.max())
    chans = _channel_stats(cal)
    if expected_input is not None:
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if expected_input == "imagenet" else expected_input
        exp_lo = min((0 - m) / s for m, s in zip(mean, std))
        exp_hi = max((1 - m) / s for m, s in zip(mean, std))
        if hi > 20:
            out.append(Finding("calibration-range", "warning",
                               f"calibration values span [{lo:.3g}, {hi:.3g}]: raw 0..255 pixels, but the model "
                               f"expects normalized input (about [{exp_lo:.2f}, {exp_hi:.2f}])",
                               "divide by 255 and normalize with the model's mean/std before calibrating"))
        elif lo >= -1e-6 and hi <= 1 + 1e-6 and exp_lo < -0.5:
            out.append(Finding("calibration-range", "warning",
                               f"calibration values span [{lo:.3g}, {hi:.3g}]: images in [0, 1] without the mean/std "
                               f"normalization the model expects (about [{exp_lo:.2f}, {exp_hi:.2f}]); the int8 input "
                               f"scale then misses most of the real input range",
                               "normalize with the model's mean/std (edgekit's calibration loader does for images)"))
        elif lo < exp_lo - 1.0 or hi > exp_hi + 1.0:
            out.append(Finding("calibration-range", "info",
                               f"calibration values span [{lo:.3g}, {hi:.3g}], wider than the expected "
                               f"normalized input [{exp_lo:.2f}, {exp_hi:.2f}]",
                               "check the preprocessing: a wider range costs int8 resolution at the input"))
    if int8_path is not None:
        q = _input_quant(int8_path)
        if q is not None:
            scale, zp = q
            qlo, qhi = (-128 - zp) * scale, (127 - zp) * scale
            clipped = float(np.mean((cal < qlo - scale / 2) | (cal > qhi + scale / 2)))
            if clipped > 1e-3:
                out.append(Finding("calibration-range", "warning",
                                   f"{clipped:.1%} of the calibration values fall outside the int8 input range "
                                   f"[{qlo:.3g}, {qhi:.3g}]",
                                   "recalibrate with data preprocessed exactly as at inference"))
    out_stats = {"min": lo, "max": hi, "samples": n, "channel_mean": chans[0], "channel_std": chans[1]}
    for f in out:
        f.details.update(out_stats)
    return out


# ============================================================================ report

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


# ============================================================================ remedies

def _remedy(name: str, fp32_path: Path, int8_path: Path, cal, feed, report: QuantDebugReport, target,
            timeout_s) -> RemedyResult:
    base = report.output_sqnr_db
    kind, _, arg = str(name).partition(":")
    runtime = None
    tgt = None
    if target is not None:
        from edgekit.lint import resolve_target

        runtime, tgt = resolve_target(target)
    try:
        if kind == "per_channel":
            tensorwise = _quantize(fp32_path, cal, weight_granularity="TENSORWISE")
            channelwise = _quantize(fp32_path, cal, weight_granularity="CHANNELWISE")
            s_t = _output_error(fp32_path, tensorwise, feed, timeout_s)
            s_c = _output_error(fp32_path, channelwise, feed, timeout_s)
            return RemedyResult(
                name, True, f"per-tensor weights: {s_t[0]:.2f} dB, per-channel: {s_c[0]:.2f} dB at the output"
                + (" (the artifact already uses per-channel weights)" if _is_per_channel(int8_path) else ""),
                output_sqnr_db=s_c[0], output_cosine=s_c[1], baseline_sqnr_db=s_t[0],
                delta_db=round(s_c[0] - s_t[0], 3), model_bytes=len(channelwise), model=channelwise,
                baseline_model=tensorwise)
        if kind == "shared_concat_scales":
            data, changed, impossible = share_concat_scales(int8_path.read_bytes())
            if not changed:
                return RemedyResult(name, False, "every CONCATENATION input already has the output's scale"
                                    + (f"; {impossible} input(s) could not take it" if impossible else ""),
                                    baseline_sqnr_db=base)
            s = _output_error(fp32_path, data, feed, timeout_s)
            return RemedyResult(name, True, f"{changed} concat input(s) now share the output scale"
                                + (f", {impossible} could not" if impossible else ""),
                                output_sqnr_db=s[0], output_cosine=s[1], baseline_sqnr_db=base,
                                delta_db=round(s[0] - base, 3), model_bytes=len(data), model=data)
        if kind in ("float_worst", "int16_worst"):
            k = int(arg or 3)
            if kind == "int16_worst" and runtime == "litert":
                return RemedyResult(name, False, "LiteRT/XNNPACK has no int16-activation kernels for most ops: "
                                    "use float_worst on this target", baseline_sqnr_db=base)
            if kind == "float_worst" and tgt is not None and tgt.is_mcu and "fpu-sp" not in tgt.cpu.features:
                note_fpu = f"; {tgt.id} has no FPU: float layers run in software"
            else:
                note_fpu = ""
            worst = [lay for lay in report.layers if lay.opcode not in ("QUANTIZE", "DEQUANTIZE")][:k]
            overrides = [lay.tensor for lay in worst]
            data = _quantize(fp32_path, cal, keep=overrides, keep_mode="float" if kind == "float_worst" else "int16")
            s = _output_error(fp32_path, data, feed, timeout_s)
            extra = _count_qdq(data) - _count_qdq(int8_path.read_bytes())
            return RemedyResult(name, True, f"kept {len(worst)} layer(s) in "
                                f"{'float' if kind == 'float_worst' else 'int16 activations'}: "
                                f"{', '.join(lay.module or lay.op for lay in worst)}{note_fpu}",
                                output_sqnr_db=s[0], output_cosine=s[1], baseline_sqnr_db=base,
                                delta_db=round(s[0] - base, 3), extra_ops=extra, model_bytes=len(data),
                                layers=[lay.module or lay.op for lay in worst], model=data)
    except UsageError:
        raise
    except Exception as exc:  # a recipe the quantizer refuses: report, do not fail the whole debug run
        return RemedyResult(name, False, f"could not apply: {type(exc).__name__}: {str(exc)[:200]}",
                            baseline_sqnr_db=base)
    raise UsageError(f"unknown quantization remedy {name!r}: choose per_channel, shared_concat_scales, "
                     f"float_worst:K or int16_worst:K")


def _quantize(fp32_path: Path, cal, *, weight_granularity: str = "CHANNELWISE", keep=(), keep_mode="float") -> bytes:
    """edgekit's int8 path (``export.tflite.quantize_int8``) with per-op overrides for ``keep``."""
    from edgekit.export.tflite import quantize_int8

    return quantize_int8(fp32_path.read_bytes(), cal, weight_granularity=weight_granularity,
                         overrides={name: keep_mode for name in keep})


def _output_error(fp32_path: Path, int8_bytes: bytes, feed, timeout_s) -> tuple[float, float]:
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-qdebug-"))
    try:
        p = tmp / "remedy.tflite"
        p.write_bytes(int8_bytes)
        raw = run_isolated(__name__, "_child_compare",
                           {"fp32_path": str(fp32_path), "int8_path": str(p), "samples": list(feed),
                            "isolate": False, "outputs_only": True},
                           timeout_s=timeout_s, runtime="LiteRT", artifact=p).value
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    o = raw["output"]
    return round(_sqnr(o["ref2"], o["err2"]), 3), round(_cos(o["dot"], o["ref2"], o["q2"]), 6)


def share_concat_scales(int8_bytes: bytes) -> tuple[bytes, int, int]:
    """Give every int8 CONCATENATION input the output's scale/zero point by rewriting the input
    tensor's quantization where its producer requantizes (conv, add, ... write any output scale);
    returns (model bytes, inputs changed, inputs that could not be changed)."""
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    from edgekit.export.tflite import inline_buffers

    model = fbu.read_model_from_bytearray(bytearray(int8_bytes))
    names = _opcode_names(model)
    sg = model.subgraphs[0]
    producer = {t: op for op in sg.operators for t in op.outputs}
    changed = impossible = 0
    for op in sg.operators:
        if names[op.opcodeIndex] != "CONCATENATION":
            continue
        out = sg.tensors[op.outputs[0]]
        oq = out.quantization
        if oq is None or oq.scale is None or len(oq.scale) != 1:
            continue
        for t in op.inputs:
            tq = sg.tensors[t].quantization
            if tq is None or tq.scale is None:
                continue
            if np.allclose(tq.scale, oq.scale, rtol=1e-6) and list(tq.zeroPoint) == list(oq.zeroPoint):
                continue
            p = producer.get(t)
            if p is None or names[p.opcodeIndex] not in _REQUANTIZING:
                impossible += 1
                continue
            tq.scale = [float(oq.scale[0])]
            tq.zeroPoint = [int(oq.zeroPoint[0])]
            changed += 1
    return inline_buffers(bytes(fbu.convert_object_to_bytearray(model))), changed, impossible


# ============================================================================ helpers

def _opcode_names(model) -> list[str]:
    from ai_edge_litert import schema_py_generated as S

    rev = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    return [rev.get(max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode)), "?") for oc in model.operatorCodes]


def _count_qdq(data: bytes) -> int:
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(data))
    names = _opcode_names(model)
    return sum(1 for op in model.subgraphs[0].operators if names[op.opcodeIndex] in ("QUANTIZE", "DEQUANTIZE"))


def _is_per_channel(int8_path: Path) -> bool:
    from edgekit.graph.tflite_reader import read_tflite

    g = read_tflite(int8_path)
    for op in g.ops:
        if op.attrs.get("opcode") in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) > 1:
            q = g.tensors[op.inputs[1]].quant
            return q is not None and q.num_scales > 1
    return False


def _input_quant(int8_path) -> tuple[float, int] | None:
    from edgekit.graph.tflite_reader import read_tflite

    g = read_tflite(int8_path)
    t = g.tensors[g.inputs[0]]
    if t.dtype != "int8" or t.quant is None or not t.quant.scale:
        return None
    return float(t.quant.scale), int(t.quant.zero_point or 0)


def _channel_stats(cal: np.ndarray):
    if cal.ndim >= 4:
        axis = 2 if cal.ndim == 5 else 1
        red = tuple(i for i in range(cal.ndim) if i != axis)
        return [round(float(v), 4) for v in cal.mean(axis=red)], [round(float(v), 4) for v in cal.std(axis=red)]
    return [round(float(cal.mean()), 4)], [round(float(cal.std()), 4)]


def _as_samples(calibration) -> np.ndarray:
    arr = np.asarray(calibration, dtype=np.float32)
    if arr.ndim < 2 or len(arr) == 0:
        raise UsageError(f"calibration must be an array of samples (N, ...), got shape {arr.shape}")
    return arr


def _as_path(model, dst: Path) -> Path:
    if isinstance(model, (bytes, bytearray)):
        dst.write_bytes(bytes(model))
        return dst
    p = Path(model)
    if not p.exists():
        raise UsageError(f"no such file: {model}")
    return p


# ============================================================================ child side

def _interp(path: str, preserve: bool):
    from ai_edge_litert import interpreter as lr

    it = lr.Interpreter(model_path=path, experimental_preserve_all_tensors=preserve,
                        experimental_op_resolver_type=lr.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def _deq(value, detail) -> np.ndarray:
    q = detail.get("quantization_parameters") or {}
    sc, zp = q.get("scales"), q.get("zero_points")
    v = np.asarray(value)
    if v.dtype.kind in "iu" and sc is not None and len(sc):
        axis = q.get("quantized_dimension", 0)
        if len(sc) == 1:
            return (v.astype(np.float64) - float(zp[0])) * float(sc[0])
        shape = [1] * v.ndim
        shape[axis] = len(sc)
        return (v.astype(np.float64) - np.reshape(zp, shape)) * np.reshape(sc, shape)
    return v.astype(np.float64)


def _quant(x: np.ndarray, detail) -> np.ndarray:
    dt = np.dtype(detail["dtype"])
    if dt.kind not in "iu":
        return np.asarray(x, dtype=dt)
    q = detail.get("quantization_parameters") or {}
    sc, zp = q.get("scales"), q.get("zero_points")
    if sc is None or not len(sc):
        return np.asarray(x).astype(dt)
    info = np.iinfo(dt)
    return np.clip(np.round(np.asarray(x, np.float64) / float(sc[0])) + float(zp[0]), info.min, info.max).astype(dt)


def _acc(stats: dict, key, ref: np.ndarray, q: np.ndarray):
    s = stats.setdefault(key, {"ref2": 0.0, "err2": 0.0, "dot": 0.0, "q2": 0.0})
    r, v = ref.astype(np.float64).ravel(), q.astype(np.float64).ravel()
    s["ref2"] += float(r @ r)
    s["err2"] += float((r - v) @ (r - v))
    s["dot"] += float(r @ v)
    s["q2"] += float(v @ v)


def _child_compare(fp32_path: str, int8_path: str, samples: list, isolate: bool = True,
                   outputs_only: bool = False) -> dict:
    f_it = _interp(fp32_path, not outputs_only)
    q_it = _interp(int8_path, not outputs_only)
    f_in, q_in = f_it.get_input_details()[0], q_it.get_input_details()[0]
    f_out, q_out = f_it.get_output_details()[0], q_it.get_output_details()[0]
    q_details = {d["index"]: d for d in q_it.get_tensor_details()}
    f_details = {d["index"]: d for d in f_it.get_tensor_details()}
    q_ops = [o for o in q_it._get_ops_details()]
    stats: dict = {}
    fp32_values: list[dict] = []
    q_values: list[dict] = []
    for x in samples:
        x = np.asarray(x, dtype=np.float32).reshape(f_in["shape"])
        f_it.set_tensor(f_in["index"], x)
        f_it.invoke()
        q_it.set_tensor(q_in["index"], _quant(x, q_in))
        q_it.invoke()
        ref_out = f_it.get_tensor(f_out["index"])
        _acc(stats, "__output__", ref_out, _deq(q_it.get_tensor(q_out["index"]), q_out))
        if outputs_only:
            continue
        fv = {}
        for i, d in f_details.items():
            try:
                fv[d["name"]] = np.array(f_it.get_tensor(i))
            except ValueError:  # a tensor without data (optional / const without buffer)
                pass
        qv = {}
        for i, _d in q_details.items():
            try:
                qv[i] = np.array(q_it.get_tensor(i))
            except ValueError:
                pass
        fp32_values.append(fv)
        q_values.append(qv)
    out = {"output": stats.pop("__output__")}
    if outputs_only:
        return out
    layers, unmatched = [], []
    iso_models = _single_op_models(int8_path) if isolate else {}
    for op in q_ops:
        if not len(op["outputs"]):
            continue
        t = int(op["outputs"][0])
        d = q_details[t]
        name = d["name"]
        ref_name = name[: -len("_quantized")] if name.endswith("_quantized") else name
        if ref_name not in fp32_values[0] or t not in q_values[0]:
            unmatched.append(name)
            continue
        key = (op["index"], name)
        for fv, qv in zip(fp32_values, q_values):
            ref = fv[ref_name]
            got = _deq(qv[t], d)
            if ref.shape != got.shape:
                break
            _acc(stats, key, ref, got)
        if key not in stats:
            unmatched.append(name)
            continue
        entry = {"index": int(op["index"]), "opcode": op["op_name"], "tensor": name, **stats[key], "iso": None,
                 "input_names": [q_details[int(i)]["name"] for i in op["inputs"] if int(i) >= 0]}
        mdl = iso_models.get(int(op["index"]))
        if mdl is not None:
            entry["iso"] = _isolated(mdl, op, q_details, fp32_values, q_values, ref_name)
        layers.append(entry)
    out.update(layers=layers, unmatched=unmatched)
    return out


def _isolated(model_bytes: bytes, op, q_details, fp32_values, q_values, ref_name):
    """Run the op alone on the fp32 model's inputs (quantized like the int8 model's)."""
    from ai_edge_litert import interpreter as lr

    try:
        it = lr.Interpreter(model_content=bytes(model_bytes),
                            experimental_op_resolver_type=lr.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    except Exception:
        return None
    ins, outs = it.get_input_details(), it.get_output_details()
    src = [int(t) for t in op["inputs"] if int(t) >= 0 and q_details[int(t)].get("name") in
           {d["name"] for d in ins}]
    by_name = {q_details[t]["name"]: t for t in src}
    stats: dict = {}
    for fv, qv in zip(fp32_values, q_values):
        for d in ins:
            t = by_name.get(d["name"])
            if t is None:
                return None
            nm = d["name"]
            base = nm[: -len("_quantized")] if nm.endswith("_quantized") else nm
            if base in fv and fv[base].shape == tuple(d["shape"]):
                x = _quant(fv[base], d) if np.dtype(d["dtype"]).kind in "iu" else fv[base].astype(d["dtype"])
            else:
                x = qv[t]  # no fp32 counterpart: feed what the int8 model computed
            it.set_tensor(d["index"], np.asarray(x).reshape(d["shape"]))
        try:
            it.invoke()
        except Exception:
            return None
        got = _deq(it.get_tensor(outs[0]["index"]), outs[0])
        _acc(stats, "o", fv[ref_name], got)
    return stats.get("o")


def _single_op_models(int8_path: str) -> dict[int, bytes]:
    """{op index: a model holding only that op}, its non-constant inputs as model inputs."""
    import copy

    from ai_edge_litert import schema_py_generated as S
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(Path(int8_path).read_bytes()))
    sg = model.subgraphs[0]
    out = {}
    for idx, op in enumerate(sg.operators):
        try:
            new = S.ModelT()
            new.version = model.version
            new.operatorCodes = [model.operatorCodes[op.opcodeIndex]]
            new.buffers = [S.BufferT()]
            tmap: dict[int, int] = {}
            tensors = []
            graph_inputs = []
            for t in list(op.inputs) + list(op.outputs):
                if t < 0 or t in tmap:
                    continue
                src = sg.tensors[t]
                nt = copy.copy(src)
                buf = model.buffers[src.buffer] if src.buffer < len(model.buffers) else None
                if buf is not None and buf.data is not None and len(buf.data):
                    new.buffers.append(buf)
                    nt.buffer = len(new.buffers) - 1
                else:
                    nt.buffer = 0
                    if t in op.inputs:
                        graph_inputs.append(len(tensors))
                tmap[t] = len(tensors)
                tensors.append(nt)
            nop = copy.copy(op)
            nop.opcodeIndex = 0
            nop.inputs = [tmap[t] if t >= 0 else -1 for t in op.inputs]
            nop.outputs = [tmap[t] for t in op.outputs]
            nop.intermediates = []
            nsg = S.SubGraphT()
            nsg.tensors = tensors
            nsg.inputs = graph_inputs
            nsg.outputs = [tmap[t] for t in op.outputs]
            nsg.operators = [nop]
            nsg.name = "op"
            new.subgraphs = [nsg]
            new.description = "edgekit single-op model"
            out[idx] = bytes(fbu.convert_object_to_bytearray(new))
        except Exception:
            continue
    return out
