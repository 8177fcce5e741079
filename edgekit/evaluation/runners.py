"""Run a model over a whole labelled set: PyTorch in this process; LiteRT, TFLite-Micro and
ExecuTorch each in **one** child process for the whole set (``edgekit.isolate``): the
samples cross as one ``.npy`` array, the interpreter is built once and invoked per sample (the
artifacts take batch 1), the outputs come back as one array.

Inputs: ``EvalData.x`` holds float samples (N, 1, C, H, W). For a quantized artifact each sample
is quantized in the parent with the input tensor's scale and zero point
(``edgekit.runtime.litert.quantize_to``: round half to even, clip); an artifact built with
channels-last input (1, H, W, C) gets the samples transposed. Outputs are dequantized with the
output tensor's scale and zero point and returned as float32 (N, K).

``evaluate_*`` score those outputs (``edgekit.evaluation.metrics.score``); ``evaluate_build``
runs the set the way a build verifies its artifact: PyTorch fp32 as the reference, the artifact
in LiteRT (XNNPACK, what a phone or a Raspberry Pi runs) and, for microcontroller builds, in
TFLite-Micro with the arena the device will have; or the .pte in ExecuTorch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.errors import UsageError
from edgekit.evaluation.data import EvalData
from edgekit.evaluation.metrics import EvalResult, score
from edgekit.isolate import ChildFailure, run_isolated

_PER_SAMPLE_S = 1.0  # generous child timeout per sample, on top of a fixed start-up allowance


def _timeout(n: int) -> float:
    return 180.0 + _PER_SAMPLE_S * n


# ---- parent side: inputs and outputs ------------------------------------------------------------

def _tflite_feed(path, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Samples (N, 1, C, H, W) -> the artifact's input dtype and layout, stacked (N, *input shape)."""
    from edgekit.runtime.litert import input_details, output_details, quantize_to

    ins, outs = input_details(path), output_details(path)
    if len(ins) != 1 or len(outs) != 1:
        raise UsageError(f"{path}: evaluation needs one input and one output (has {len(ins)} and {len(outs)})")
    ind = ins[0]
    want = tuple(int(d) for d in ind["shape"])
    sample = tuple(x.shape[1:])
    if sample != want and len(sample) == 4 and want == (sample[0], sample[2], sample[3], sample[1]):
        x = x.transpose(0, 1, 3, 4, 2)  # NCHW samples for a channels-last artifact
    elif sample != want:
        raise UsageError(f"the evaluation samples are {list(sample)}, {path} takes {list(want)}")
    return np.stack([quantize_to(s, ind) for s in x]), outs[0]


def _dequantized(y: np.ndarray, detail: dict) -> np.ndarray:
    from edgekit.runtime.litert import dequantize_from

    return dequantize_from(y, detail).reshape(len(y), -1).astype(np.float32)


def run_torch(module, data: EvalData, *, batch: int = 64) -> np.ndarray:
    """PyTorch in this process, in batches of ``batch``; (N, K) float32."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(data.x[:, 0]))
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(module(x[i:i + batch]).float().reshape(len(x[i:i + batch]), -1).numpy())
    return np.concatenate(out)


def run_litert(path, data: EvalData, *, kernels: str = "xnnpack", threads: int | None = None) -> np.ndarray:
    """The .tflite in LiteRT, one child for the whole set. ``kernels``: "xnnpack" (the default
    delegate), "builtin" or "reference" (whose int8 results TFLite-Micro matches bit for bit)."""
    from edgekit.runtime import litert

    p = litert._check(path)
    if kernels not in litert._KERNELS:
        raise UsageError(f"unknown LiteRT kernels {kernels!r}: choose {', '.join(litert._KERNELS)}")
    feed, outd = _tflite_feed(p, data.x)
    res = run_isolated(__name__, "_child_litert", {"path": p, "x": feed, "kernels": kernels, "threads": threads},
                       timeout_s=_timeout(len(feed)), runtime="LiteRT", artifact=path)
    return _dequantized(res.value, outd)


def run_tflm(path, data: EvalData, *, arena_size: int) -> np.ndarray:
    """The .tflite in the TFLite-Micro interpreter with ``arena_size`` bytes, one child for the set."""
    from edgekit.runtime import tflm

    p = tflm._check_path(path)
    feed, outd = _tflite_feed(p, data.x)
    try:
        res = run_isolated(__name__, "_child_tflm", {"path": p, "x": feed, "arena_size": int(arena_size)},
                           timeout_s=_timeout(len(feed)), runtime="TFLite-Micro", artifact=path)
    except ChildFailure as exc:
        if exc.kind == "crash" or "allocate" in exc.exc_message:
            raise ChildFailure(f"{exc}; the arena of {int(arena_size):,d} B may be too small: size it with "
                               "edgekit.runtime.tflm.tflm_min_arena()", kind=exc.kind, returncode=exc.returncode,
                               exc_type=exc.exc_type, exc_message=exc.exc_message, stderr=exc.stderr) from None
        raise
    return _dequantized(res.value, outd)


def run_executorch(path, data: EvalData) -> np.ndarray:
    """The .pte in the ExecuTorch runtime, one child for the whole set; (N, K) float32."""
    from edgekit.runtime import executorch

    p = executorch._check(path)
    x = np.ascontiguousarray(data.x.astype(np.float32))
    res = run_isolated(__name__, "_child_executorch", {"path": p, "x": x}, timeout_s=_timeout(len(x)),
                       runtime="ExecuTorch", artifact=path)
    y = np.asarray(res.value)
    return y.reshape(len(y), -1).astype(np.float32)


# ---- scoring ------------------------------------------------------------------------------------

def evaluate_torch(module, data: EvalData, *, name: str = "PyTorch fp32") -> EvalResult:
    return score(run_torch(module, data), data.y, name=name, runtime="pytorch", class_names=data.class_names)


def evaluate_litert(path, data: EvalData, *, reference: EvalResult | None = None, kernels: str = "xnnpack",
                    name: str | None = None) -> EvalResult:
    return score(run_litert(path, data, kernels=kernels), data.y, name=name or f"LiteRT {_dtype(path)}",
                 runtime="litert", class_names=data.class_names, reference=reference,
                 details={"kernels": kernels})


def evaluate_tflm(path, data: EvalData, *, arena_size: int, reference: EvalResult | None = None,
                  name: str | None = None) -> EvalResult:
    return score(run_tflm(path, data, arena_size=arena_size), data.y, name=name or f"TFLite-Micro {_dtype(path)}",
                 runtime="tflite-micro", class_names=data.class_names, reference=reference,
                 details={"arena_bytes": int(arena_size)})


def evaluate_executorch(path, data: EvalData, *, reference: EvalResult | None = None,
                        name: str = "ExecuTorch") -> EvalResult:
    return score(run_executorch(path, data), data.y, name=name, runtime="executorch",
                 class_names=data.class_names, reference=reference)


def _dtype(path) -> str:
    from edgekit.runtime.litert import input_details

    dt = input_details(path)[0]["dtype"]
    return {"int8": "int8", "uint8": "uint8", "int16": "int16", "float32": "fp32"}.get(str(dt), str(dt))


@dataclass
class EvalReport:
    """The same labelled set through several models/runtimes; ``results[0]`` is the reference."""

    data: dict  # EvalData.describe()
    results: list[EvalResult] = field(default_factory=list)

    @property
    def reference(self) -> EvalResult | None:
        return self.results[0] if self.results else None

    def result(self, runtime: str) -> EvalResult | None:
        return next((r for r in self.results if r.runtime == runtime), None)

    def to_dict(self) -> dict:
        return {"data": self.data, "reference": self.reference.name if self.reference else None,
                "results": [r.to_dict() for r in self.results]}


def evaluate_build(data: EvalData, *, module, artifact=None, runtime: str | None = None,
                   arena_size: int | None = None, litert: bool = True) -> EvalReport:
    """PyTorch fp32 (the reference), then the artifact: a .tflite in LiteRT (``litert``) and, with
    ``runtime="tflite-micro"``, in TFLite-Micro at ``arena_size``; a .pte in ExecuTorch."""
    report = EvalReport(data=data.describe())
    ref = evaluate_torch(module, data)
    report.results.append(ref)
    if artifact is None:
        return report
    suffix = Path(artifact).suffix.lower()
    if suffix == ".pte":
        report.results.append(evaluate_executorch(artifact, data, reference=ref))
        return report
    if litert:
        report.results.append(evaluate_litert(artifact, data, reference=ref))
    if runtime == "tflite-micro":
        if arena_size is None:
            raise UsageError("evaluating in TFLite-Micro needs the arena size (arena_size=...)")
        report.results.append(evaluate_tflm(artifact, data, arena_size=arena_size, reference=ref))
    return report


# ---- child side ---------------------------------------------------------------------------------

def _child_litert(path: str, x, kernels: str = "xnnpack", threads=None):
    from edgekit.runtime.litert import interpreter

    it = interpreter(path, threads, kernels=kernels)
    ind, outd = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for s in x:
        it.set_tensor(ind["index"], s)
        it.invoke()
        out.append(np.array(it.get_tensor(outd["index"])))
    return np.stack(out)


def _child_tflm(path: str, x, arena_size: int):
    from edgekit.runtime.tflm import load_interpreter

    interp = load_interpreter(path, arena_size)
    out = []
    for s in x:
        interp.set_input(np.ascontiguousarray(s), 0)
        interp.invoke()
        out.append(np.array(interp.get_output(0)))
    return np.stack(out)


def _child_executorch(path: str, x):
    import torch

    from edgekit.runtime.executorch import _method

    _, method = _method(path)
    out = []
    for s in x:
        (y, *_) = method.execute([torch.from_numpy(np.ascontiguousarray(s))])
        out.append(np.array(y.detach().numpy()))
    return np.stack(out)


def evaluate_model(model, source, *, input_shape=None) -> EvalReport:
    """PyTorch fp32 accuracy of a model (a MODEL spec or LoadedModel) on labelled data (a folder of
    class folders, an .npz), or on the model's own labelled set when ``source`` is None
    (``edgekit check --eval``)."""
    import torch

    from edgekit.evaluation.data import load_eval_data
    from edgekit.loader import LoadedModel, load_model

    loaded = model if isinstance(model, LoadedModel) else load_model(model, input_shape=input_shape)
    if loaded.module is None:
        raise UsageError(f"{loaded.spec.text} is a built artifact: score it with edgekit build --eval")
    source = source if source is not None else loaded.evaluation
    if source is None:
        raise UsageError(f"{loaded.spec.text} ships no labelled data: pass --eval DATA (a folder of class folders "
                         "of images, or an .npz with x and y)")
    with torch.no_grad():
        out = loaded.module(torch.zeros(loaded.input_shape))
    data = load_eval_data(source, loaded.input_shape, num_classes=int(out.shape[-1]) if out.ndim == 2 else None)
    return evaluate_build(data, module=loaded.module)
