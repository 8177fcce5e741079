"""LiteRT (ai_edge_litert) interpreter for .tflite files, always in a child process.

- ``litert_run(path, inputs)``: invoke once per sample and return the outputs.

Timing is not here: ``edgekit.profile`` measures latency with one protocol everywhere.

Functions whose names start with ``_child_`` run inside the child process.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import UsageError
from edgekit.isolate import run_isolated

RUNTIME = "LiteRT"
_KERNELS = ("xnnpack", "builtin", "reference")


def _check(path) -> str:
    from edgekit.graph.tflite_reader import read_tflite_bytes

    read_tflite_bytes(path)  # missing / empty / not a flatbuffer -> clear error in the parent
    return str(Path(path).resolve())


def litert_run(path, samples: list, *, threads: int | None = None, kernels: str = "xnnpack",
               timeout_s: float = 300.0) -> list:
    """Run each sample (a list of input arrays in the model's dtype); return a list of output lists.

    ``kernels``: "xnnpack" (the default delegate), "builtin" (LiteRT's optimized kernels, no
    delegate) or "reference" (LiteRT's reference kernels, which TFLite-Micro's match bit for bit;
    measured: XNNPACK and the optimized kernels round int8 requantization differently)."""
    p = _check(path)
    if kernels not in _KERNELS:
        raise UsageError(f"unknown LiteRT kernels {kernels!r}: choose {', '.join(_KERNELS)}")
    res = run_isolated(__name__, "_child_run", {"path": p, "samples": samples, "threads": threads,
                                                "kernels": kernels},
                       timeout_s=timeout_s, runtime=RUNTIME, artifact=path)
    return res.value["outputs"]


def _tensor_details(path, which: str) -> list[dict]:
    """Shapes, dtypes and quantization of the graph's inputs or outputs, read without running."""
    from edgekit.graph.tflite_reader import read_tflite

    g = read_tflite(path)
    out = []
    for tid in getattr(g, which):
        t = g.tensors[tid]
        q = t.quant
        out.append({"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                    "scale": q.scale if q else None, "zero_point": q.zero_point if q else None})
    return out


def input_details(path) -> list[dict]:
    return _tensor_details(path, "inputs")


def output_details(path) -> list[dict]:
    return _tensor_details(path, "outputs")


def quantize_to(x, detail: dict):
    """Float array -> the model input dtype (affine int8/uint8 when the input is quantized)."""
    import numpy as np

    dt = np.dtype(detail["dtype"])
    if dt.kind in "iu" and detail.get("scale"):
        info = np.iinfo(dt)
        q = np.round(np.asarray(x, np.float32) / detail["scale"]) + detail["zero_point"]
        return np.clip(q, info.min, info.max).astype(dt)
    if tuple(np.shape(x)) != tuple(detail["shape"]):
        raise UsageError(f"input shape {list(np.shape(x))} does not match the model's {detail['shape']}")
    return np.asarray(x, dtype=dt)


def dequantize_from(y, detail: dict):
    import numpy as np

    y = np.asarray(y)
    if y.dtype.kind in "iu" and detail.get("scale"):
        return (y.astype(np.float32) - detail["zero_point"]) * detail["scale"]
    return y.astype(np.float32)


# ---- child side ---------------------------------------------------------------------------

def interpreter(path: str, threads, xnnpack: bool = True, kernels: str | None = None):
    from ai_edge_litert import interpreter as lr

    kernels = kernels or ("xnnpack" if xnnpack else "builtin")
    kwargs = {"model_path": path}
    if threads:
        kwargs["num_threads"] = int(threads)
    if kernels == "builtin":
        kwargs["experimental_op_resolver_type"] = lr.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    elif kernels == "reference":
        kwargs["experimental_op_resolver_type"] = lr.OpResolverType.BUILTIN_REF
    it = lr.Interpreter(**kwargs)
    it.allocate_tensors()
    return it


def _child_run(path: str, samples: list, threads=None, kernels="xnnpack") -> dict:
    import numpy as np

    it = interpreter(path, threads, kernels=kernels)
    ins, outs = it.get_input_details(), it.get_output_details()
    results = []
    for sample in samples:
        for d, x in zip(ins, sample):
            x = np.asarray(x)
            if tuple(x.shape) != tuple(d["shape"]) or x.dtype != d["dtype"]:
                raise ValueError(f"input is {x.dtype}{list(x.shape)}, the model wants "
                                 f"{np.dtype(d['dtype']).name}{list(d['shape'])}")
            it.set_tensor(d["index"], x)
        it.invoke()
        results.append([np.array(it.get_tensor(d["index"])) for d in outs])
    return {"outputs": results}
