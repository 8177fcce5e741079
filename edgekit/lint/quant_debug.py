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

The modules: this one is the public API (``quant_debug``, ``check_calibration``) and re-exports
the rest; ``quant_debug_report`` holds the result types and turns the child's sums into SQNR and
cosine; ``quant_debug_remedies`` the remedies and their accuracy; ``quant_debug_child`` what runs
in the child process (LiteRT).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgekit.errors import UsageError
from edgekit.isolate import run_isolated
from edgekit.lint import quant_debug_child
from edgekit.lint.findings import Finding
from edgekit.lint.quant_debug_remedies import _remedy, check_remedy_names, remedy_accuracy, share_concat_scales
from edgekit.lint.quant_debug_report import LayerError, QuantDebugReport, RemedyResult, _dead_finding, _report_from
from edgekit.models.catalog import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["LayerError", "QuantDebugReport", "RemedyResult", "check_calibration", "check_remedy_names",
           "quant_debug", "remedy_accuracy", "share_concat_scales"]


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
        raw = run_isolated(quant_debug_child.__name__, "_child_compare",
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



def _quantize(fp32_path: Path, cal, *, weight_granularity: str = "CHANNELWISE", keep=(), keep_mode="float") -> bytes:
    """edgekit's int8 path (``export.tflite.quantize_int8``) with per-op overrides for ``keep``.

    The remedies (``quant_debug_remedies``) call it through this module at call time: the tests'
    export guard patches ``edgekit.lint.quant_debug._quantize``."""
    from edgekit.export.tflite import quantize_int8

    return quantize_int8(fp32_path.read_bytes(), cal, weight_granularity=weight_granularity,
                         overrides={name: keep_mode for name in keep})



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

