"""`edgekit profile model.keras`: the Keras model on the host in TensorFlow eager mode (in a child
process: TensorFlow is never imported by edgekit's own process), next to the ``.tflite`` TensorFlow's
converter makes of it.

One child loads the model, times it with the protocol of ``protocol.py`` (the first run untimed,
``warmup`` untimed runs, ``runs`` timed runs of ``model(x, training=False)``; TensorFlow's intra-op
threads set to ``threads``) and converts it to an fp32 ``.tflite`` (kept in a temporary folder). Then:

- host, default / ``--runtime eager``: the eager measurement (+ the host estimate from the .tflite);
- ``--runtime litert``: the .tflite in LiteRT only; ``--compare``: eager and LiteRT side by side;
- ``--ssh``/``--adb``/``--emulate``/a device target: the .tflite, exactly as ``edgekit profile
  model.tflite`` (the device runs the artifact, not TensorFlow).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from edgekit.errors import UsageError

TIMEOUT_S = 1800.0


def profile_keras(spec, *, profile_kwargs: dict):
    """The ProfileResult for a ``kind == "keras"`` spec; ``profile_kwargs`` are ``profile()``'s keywords."""
    from edgekit.plan import device
    from edgekit.profile import api

    kw = dict(profile_kwargs)
    runtime, compare = kw.get("runtime"), kw.get("compare")
    if runtime == "executorch":
        raise UsageError("a Keras model runs in TensorFlow eager or, converted to .tflite, in LiteRT: not ExecuTorch")
    if runtime == "tflite-micro":
        raise UsageError("TFLite-Micro is not timed on the host; use --target <mcu> for an estimate")
    tgt = device(kw.get("target"))
    remote = kw.get("ssh") is not None or kw.get("adb") is not None
    host = not remote and not kw.get("emulate") and (tgt is None or tgt.kind == "host")
    eager = host and (runtime in (None, "eager") or compare)
    with tempfile.TemporaryDirectory(prefix="edgekit-keras-profile-") as tmp:
        res, tflite = _eager_and_convert(spec, kw, timed=eager, out=Path(tmp) / f"{spec.name}.tflite")
        if host and not compare and runtime in (None, "eager"):
            result = api.ProfileResult(model=spec.text, target=tgt.id if tgt else None, protocol=_protocol(kw),
                                       measurements=[api.measurement_from(res, where="host")])
            _add_estimate(result, tflite, res, tgt or device("host"), kw.get("threads"))
            return result
        art_kw = {**kw, "runtime": None if runtime == "eager" else runtime, "compare": False, "input_shape": None}
        result = api.profile(str(tflite), **art_kw)
    result.model = spec.text
    for m in result.measurements:
        if m.artifact:
            m.artifact = f"{Path(m.artifact).name} (converted by tf.lite.TFLiteConverter, fp32, not kept)"
    if eager:
        result.measurements.insert(0, api.measurement_from(res, where="host"))
    return result


def _protocol(kw: dict) -> dict:
    return {"warmup": kw.get("warmup"), "runs": kw.get("runs"), "batch": kw.get("batch", 1),
            "threads": kw.get("threads"), "first_run_timed": False, "load_timed": False}


def _add_estimate(result, tflite: Path, res: dict, tgt, threads) -> None:
    """The host's roofline estimate of the converted graph, its rows named after the Keras layers."""
    from edgekit.errors import EdgekitError
    from edgekit.keras.capture import _model, keras_graph
    from edgekit.profile import api
    from edgekit.profile.emulate import estimate_graph

    try:
        g = keras_graph(tflite.read_bytes(), _model(tflite, "keras", res["description"]))
        est = estimate_graph(g, tgt, dtype="fp32", threads=threads, model=result.model)
    except EdgekitError as exc:
        result.notes.append(f"no estimate for {tgt.id}: {exc}")
        return
    result.measurements.append(api.measurement_from_estimate(est))


def _eager_and_convert(spec, kw: dict, *, timed: bool, out: Path):
    from edgekit.isolate import run_isolated
    from edgekit.keras.spec import check_keras_path, require_tensorflow

    require_tensorflow()
    fmt = spec.kwargs["format"]
    check_keras_path(spec.path, fmt)
    shape = kw.get("input_shape")
    args = {"path": str(spec.path), "kind": fmt, "input_shape": None if shape is None else [int(d) for d in shape],
            "runs": int(kw.get("runs") or 1), "warmup": int(kw.get("warmup") or 0), "threads": kw.get("threads"),
            "batch": int(kw.get("batch") or 1), "timed": timed}
    r = run_isolated(__name__, "_child_eager", args, timeout_s=float(kw.get("timeout_s") or TIMEOUT_S),
                     runtime="TensorFlow", artifact=spec.path)
    value = r.value
    out.write_bytes(bytes(value.pop("tflite").tobytes()))
    return value, out


def _child_eager(path: str, kind: str, input_shape, runs: int, warmup: int, threads, batch: int, timed: bool) -> dict:
    """In the child: load, time eager inference (when ``timed``), convert to fp32 .tflite."""
    import numpy as np

    from edgekit.keras.child import Source, _convert, _description, tensorflow
    from edgekit.profile import protocol

    tf = tensorflow()
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    t0 = time.perf_counter()
    src = Source(path, kind, input_shape)
    load_ms = (time.perf_counter() - t0) * 1e3
    out = {"tflite": np.frombuffer(_convert(src, "fp32"), dtype=np.uint8), "description": _description(src)}
    if not timed:
        return out
    x = tf.constant(np.random.default_rng(0).standard_normal(src.input_shape).astype(src.dtype))
    t0 = time.perf_counter()
    src.raw(x)  # the first run is never timed (tracing, allocation)
    first_ms = (time.perf_counter() - t0) * 1e3
    stats = protocol.measure(lambda: src.raw(x), warmup=warmup, runs=runs)
    batch_stats = None
    if batch > 1:
        xb = tf.constant(np.random.default_rng(1).standard_normal((batch, *src.input_shape[1:])).astype(src.dtype))
        src.raw(xb)
        batch_stats = protocol.measure(lambda: src.raw(xb), warmup=warmup, runs=runs, batch=batch)
    versions = {"tensorflow": tf.__version__, "numpy": np.__version__}
    if src.model is not None:
        import keras

        versions["keras"] = keras.__version__
    out.update({"runtime": "TensorFlow eager (Keras)", "runtime_package": "tensorflow", "delegate": None,
                "threads": int(threads) if threads else tf.config.threading.get_intra_op_parallelism_threads() or None,
                "stats": stats, "batch_stats": batch_stats, "first_run_ms": first_ms, "load_ms": load_ms, "ops": [],
                "notes": ["model(x, training=False) in TensorFlow eager mode, in a child process"],
                "versions": versions, "platform": protocol.platform_info(), "input_shapes": [list(src.input_shape)]})
    return out
