"""`edgekit.profile.profile`: one measurement protocol, several places to run it.

* host: .tflite in LiteRT (XNNPACK on, or off), .pte in ExecuTorch, a PyTorch model in eager
  mode, or all three side by side (``compare=True``);
* a Raspberry Pi (or any Linux box) over ssh (``ssh="user@host"``), see ``ssh.py``;
* an Android phone over adb (``adb=""`` or a serial), see ``adb.py``;
* emulated (``emulate=True``, or a target without a transport: every MCU), see ``emulate.py``.

Protocol everywhere (``protocol.py``): one input of batch 1; ``warmup`` untimed runs; then
``runs`` timed runs; mean, std, min, median, p90, p99, max and throughput. Model loading and
the first run are never timed (the first run is reported apart). ``batch > 1`` adds a second
measurement at that batch (``batch_stats``), reported separately from single-image latency.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgekit.errors import EdgekitError, UsageError
from edgekit.plan import RUNTIMES, device
from edgekit.profile import protocol

SCHEMA = "edgekit.profile/1"


@dataclass
class Measurement:
    runtime: str  # "LiteRT", "ExecuTorch", "PyTorch eager", "estimate (roofline)", ...
    where: str  # "host", "ssh:pi@raspberrypi", "adb:SERIAL", "emulated:nucleo-h743zi"
    threads: int | None
    stats: dict  # summarize(): runs, mean_ms, std_ms, min_ms, median_ms, p90_ms, p99_ms, max_ms, throughput_per_s
    estimate: bool = False
    ops: list = field(default_factory=list)  # [{"name", "ms", "share"}], largest first
    notes: list = field(default_factory=list)
    delegate: str | None = None
    versions: dict = field(default_factory=dict)
    batch_stats: dict | None = None  # the same keys at batch B (throughput counts images)
    times_ms: list = field(default_factory=list)  # every timed run, in order
    first_run_ms: float | None = None
    load_ms: float | None = None
    platform: dict = field(default_factory=dict)
    artifact: str | None = None
    layers: list = field(default_factory=list)  # estimates: per-layer rows (name, op, kind, macs, bytes, ms, bound)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProfileResult:
    model: str
    target: str | None
    protocol: dict
    measurements: list[Measurement]
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "model": self.model, "target": self.target, "protocol": self.protocol,
                "measurements": [m.to_dict() for m in self.measurements], "notes": list(self.notes)}

    def measured(self) -> list[Measurement]:
        return [m for m in self.measurements if not m.estimate]

    def estimates(self) -> list[Measurement]:
        return [m for m in self.measurements if m.estimate]


def measurement_from(res: dict, *, where: str, artifact: str | None = None) -> Measurement:
    """Turn a runner / host result dict into a Measurement."""
    stats = dict(res["stats"])
    times = stats.pop("times_ms", [])
    batch_stats = res.get("batch_stats")
    if batch_stats:
        batch_stats = dict(batch_stats)
        batch_stats.pop("times_ms", None)
    return Measurement(runtime=res["runtime"], where=where, threads=res.get("threads"), stats=stats,
                       estimate=False, ops=list(res.get("ops") or []), notes=list(res.get("notes") or []),
                       delegate=res.get("delegate"), versions=dict(res.get("versions") or {}),
                       batch_stats=batch_stats, times_ms=list(times), first_run_ms=res.get("first_run_ms"),
                       load_ms=res.get("load_ms"), platform=dict(res.get("platform") or {}), artifact=artifact)


_MODEL_LABEL = {"roofline": "roofline model", "mcu-cycles": "MCU cycle model"}


def measurement_from_estimate(est, *, top: int = 10) -> Measurement:
    total = est.total_ms
    stats = {"runs": 0, "mean_ms": total, "std_ms": None, "min_ms": None, "median_ms": total, "p90_ms": None,
             "p99_ms": None, "max_ms": None, "throughput_per_s": 1000.0 / total if total > 0 else None}
    counted = [layer for layer in est.layers if layer.cost_kind not in ("fused", "free")]
    ops = sorted(({"name": f"{layer.name} ({layer.op})", "ms": layer.ms, "share": layer.ms / total if total else 0.0}
                  for layer in counted), key=lambda r: -r["ms"])[:top]
    layers = [{"name": layer.name, "op": layer.op, "kind": layer.cost_kind, "macs": layer.macs, "bytes": layer.bytes,
               "ms": layer.ms, "bound": layer.bound} for layer in counted]
    notes = [f"estimate from the {est.cost_model} model of {est.target} ({est.dtype}, {len(counted)} ops); "
             "not a measurement: see docs/latency.md for its error against published numbers"] + list(est.notes)
    return Measurement(runtime=_MODEL_LABEL.get(est.cost_model, est.cost_model), where=f"emulated:{est.target}",
                       threads=est.threads, stats=stats, estimate=True, ops=ops, notes=notes, delegate=None,
                       versions={"model": est.cost_model}, layers=layers)


def profile(model_or_artifact=None, *, target=None, runs: int = protocol.DEFAULT_RUNS,
            warmup: int = protocol.DEFAULT_WARMUP, threads: int | None = None, batch: int = 1, input_shape=None,
            runtime: str | None = None, xnnpack: bool = True, compare: bool = False, emulate: bool = False,
            ops: bool = False, ssh: str | None = None, port: int = 22, identity=None,
            accept_new_host_key: bool = False, known_hosts=None, adb: str | None = None, progress: bool = True,
            remote_python: str = "python3", timeout_s: float = 1800.0) -> ProfileResult:
    """Measure (or, for ``emulate`` and targets without a transport, estimate) latency.

    ``model_or_artifact``: a .tflite/.pte path, any MODEL spec of ``edgekit.loader`` or an
    nn.Module (with ``input_shape``). Raises EdgekitError subclasses with one-line messages."""
    keywords = {k: v for k, v in locals().items() if k != "model_or_artifact"}  # for a Keras model, below
    try:
        protocol.check_counts(runs=runs, warmup=warmup, batch=batch, threads=threads)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if ssh is not None and adb is not None:
        raise UsageError("choose one of --ssh and --adb")
    if runtime not in (None, "eager", *RUNTIMES):
        raise UsageError(f"unknown runtime {runtime!r}: choose litert, executorch or eager")
    tgt = device(target)
    source, name = _source(model_or_artifact, input_shape)
    if source.get("spec") is not None and source["spec"].kind == "keras":  # TensorFlow in a child process
        from edgekit.profile.keras import profile_keras

        return profile_keras(source["spec"], profile_kwargs=keywords)
    proto = {"warmup": warmup, "runs": runs, "batch": batch, "threads": threads, "first_run_timed": False,
             "load_timed": False}
    result = ProfileResult(model=name, target=tgt.id if tgt else None, protocol=proto, measurements=[])
    common = dict(runs=runs, warmup=warmup, threads=threads, batch=batch, ops=ops, progress=progress)

    if ssh is not None:
        from edgekit.profile.ssh import SshOptions, profile_ssh

        opts = SshOptions(destination=ssh, port=port, identity=identity, accept_new_host_key=accept_new_host_key,
                          known_hosts=known_hosts, remote_python=remote_python)
        with _artifact(source, runtime, input_shape) as path:
            res = profile_ssh(path, opts, xnnpack=xnnpack, timeout_s=timeout_s, input_shape=None, **common)
            result.measurements.append(measurement_from(res, where=f"ssh:{ssh}", artifact=str(path)))
        _add_estimate(result, source, tgt, threads, required=False)
        return result
    if adb is not None:
        from edgekit.profile.adb import profile_adb

        with _artifact(source, runtime, input_shape) as path:
            res = profile_adb(path, serial=adb or None, runs=runs, warmup=warmup, threads=threads, xnnpack=xnnpack,
                              ops=ops, timeout_s=timeout_s)
            m = measurement_from(res, where=f"adb:{res.get('serial') or adb or 'device'}", artifact=str(path))
            if batch > 1:
                m.notes.append(f"batch {batch} not measured over adb: benchmark_model runs the model's own batch")
            result.measurements.append(m)
        _add_estimate(result, source, tgt, threads, required=False)
        return result
    on_device_target = tgt is not None and tgt.kind != "host"
    if emulate or on_device_target:
        if on_device_target and not emulate:
            how = {"mcu": "a microcontroller is always emulated",
                   "sbc": "pass --ssh USER@HOST to measure on the device",
                   "phone": "pass --adb to measure on the phone"}[tgt.kind]
            result.notes.append(f"{tgt.id}: estimated, not measured ({how})")
        # ---- emulated MCU: the real TFLite-Micro kernels in QEMU (edgekit/profile/mcu_emulated.py) ----
        if on_device_target and not emulate and tgt.kind == "mcu":
            from edgekit.profile.mcu_emulated import add_emulation

            if add_emulation(result, source, tgt, runs=runs, warmup=warmup):
                return result
        # ---- end of the emulator hook ----
        _add_estimate(result, source, tgt or device("host"), threads, required=True)
        return result

    # ---- host ----
    from edgekit.profile import host

    if compare:
        if source["kind"] == "artifact":
            raise UsageError("--compare needs a PyTorch model (it converts it to .tflite and .pte); "
                             f"got the artifact {source['path']}")
        module, shape = _module(source)
        result.measurements.append(measurement_from(host.measure_eager(module, shape, **common), where="host"))
        with tempfile.TemporaryDirectory(prefix="edgekit-profile-") as tmp:
            for rt in ("litert", "executorch"):
                try:
                    path = _export(module, shape, rt, Path(tmp))
                except EdgekitError as exc:
                    result.notes.append(f"{rt}: not measured: {exc}")
                    continue
                res = host.measure_artifact(path, xnnpack=xnnpack, timeout_s=timeout_s, **common)
                result.measurements.append(measurement_from(res, where="host", artifact=path.name))
    elif source["kind"] == "artifact":
        path = source["path"]
        if runtime == "tflite-micro":
            raise UsageError("TFLite-Micro is not timed on the host (its x86 reference kernels say nothing about "
                             "an MCU); use --target <mcu> for an estimate")
        if runtime is not None and {"litert": ".tflite", "executorch": ".pte"}.get(runtime) not in (None, path.suffix):
            raise UsageError(f"--runtime {runtime} cannot run {path.name}: LiteRT runs .tflite, ExecuTorch runs .pte")
        res = host.measure_artifact(path, xnnpack=xnnpack, input_shape=input_shape, timeout_s=timeout_s, **common)
        result.measurements.append(measurement_from(res, where="host", artifact=str(path)))
    else:
        module, shape = _module(source)
        if runtime in (None, "eager"):
            result.measurements.append(measurement_from(host.measure_eager(module, shape, **common), where="host"))
        elif runtime == "tflite-micro":
            raise UsageError("TFLite-Micro is not timed on the host; use --target <mcu> for an estimate")
        else:
            with tempfile.TemporaryDirectory(prefix="edgekit-profile-") as tmp:
                path = _export(module, shape, runtime, Path(tmp))
                res = host.measure_artifact(path, xnnpack=xnnpack, timeout_s=timeout_s, **common)
                result.measurements.append(measurement_from(res, where="host", artifact=path.name))
    if not xnnpack and not any(m.runtime == "LiteRT" for m in result.measurements):
        result.notes.append("--no-xnnpack only applies to LiteRT")
    _add_estimate(result, source, tgt or device("host"), threads, required=False)
    return result


# ---- helpers ------------------------------------------------------------------------------

def _source(model_or_artifact, input_shape) -> tuple[dict, str]:
    """Classify without building: {"kind": "artifact", "path"} or {"kind": "model", "spec"/"module"}."""
    from edgekit.loader import ModelSpec, parse_spec

    if model_or_artifact is None or isinstance(model_or_artifact, (str, Path, ModelSpec)):
        spec = model_or_artifact if isinstance(model_or_artifact, ModelSpec) else parse_spec(
            None if model_or_artifact is None else str(model_or_artifact))
        if spec.kind in ("tflite", "pte"):
            return {"kind": "artifact", "path": Path(spec.path), "spec": spec}, spec.text
        return {"kind": "model", "spec": spec, "input_shape": input_shape}, spec.text
    if hasattr(model_or_artifact, "forward"):
        shape = input_shape or getattr(model_or_artifact, "default_input_shape", None)
        if shape is None:
            raise UsageError("profiling an nn.Module needs input_shape=..., e.g. (1, 3, 96, 96)")
        return {"kind": "model", "module": model_or_artifact, "input_shape": tuple(shape)}, \
            type(model_or_artifact).__name__
    raise UsageError(f"cannot profile {model_or_artifact!r}: give a .tflite/.pte path, a MODEL spec or an nn.Module")


def _module(source):
    from edgekit.loader import probe_input

    if "module" in source:
        if source.get("input_shape") is None:
            raise UsageError("profiling an nn.Module needs input_shape=...")
        module, shape = source["module"].eval(), tuple(source["input_shape"])
    else:
        if "loaded" not in source:
            from edgekit.loader import load_model

            source["loaded"] = load_model(source["spec"], input_shape=source.get("input_shape"))
        lm = source["loaded"]
        if lm.input_shape and lm.input_shape[0] != 1:
            raise UsageError(f"the protocol measures batch 1 (got input shape {list(lm.input_shape)}); "
                             "use --batch for throughput at a larger batch")
        module, shape = lm.module.eval(), tuple(lm.input_shape)
    if not source.get("probed"):  # a forward that raises is the user's input error, not a crash mid-timing
        probe_input(module, shape)
        source["probed"] = True
    return module, shape


def _export(module, shape, runtime: str, outdir: Path) -> Path:
    import torch

    x = torch.randn(*shape)
    if runtime == "litert":
        from edgekit.export.tflite import convert_fp32

        path = outdir / "model.tflite"
        path.write_bytes(convert_fp32(module, x))
    elif runtime == "executorch":
        from edgekit.export.executorch import export_pte

        path = outdir / "model.pte"
        path.write_bytes(export_pte(module, x)["bytes"])
    else:
        raise UsageError(f"cannot export for runtime {runtime!r}")
    return path


class _artifact:
    """Context manager: the artifact's path, exporting a PyTorch model to a temp dir when needed."""

    def __init__(self, source, runtime, input_shape):
        self.source, self.runtime, self.input_shape = source, runtime, input_shape
        self.tmp = None

    def __enter__(self) -> Path:
        if self.source["kind"] == "artifact":
            return self.source["path"]
        if self.runtime in ("eager", "tflite-micro"):
            raise UsageError(f"--runtime {self.runtime} cannot run on a remote device: use litert or executorch")
        module, shape = _module(self.source)
        self.tmp = tempfile.TemporaryDirectory(prefix="edgekit-profile-")
        return _export(module, shape, self.runtime or "litert", Path(self.tmp.name))

    def __exit__(self, *exc):
        if self.tmp is not None:
            self.tmp.cleanup()
        return False


def _add_estimate(result: ProfileResult, source: dict, tgt, threads, *, required: bool) -> None:
    """Append the target's emulated estimate; when not ``required`` a failure is only a note."""
    if tgt is None:
        return
    from edgekit.profile.emulate import estimate_graph, graph_for

    try:
        if source["kind"] == "artifact":
            g, dt, name = graph_for(source["spec"], target=tgt)
        else:
            # measured models run in fp32; a pure estimate uses the target's dtype (int8 on an MCU)
            dt = tgt.runtime.dtype if required else "fp32"
            if "module" in source:
                g, dt, name = graph_for(source["module"], dtype=dt, input_shape=source["input_shape"], target=tgt)
            else:
                if "loaded" not in source:
                    from edgekit.loader import load_model

                    source["loaded"] = load_model(source["spec"], input_shape=source.get("input_shape"))
                g, dt, name = graph_for(source["loaded"], dtype=dt, target=tgt)
        est = estimate_graph(g, tgt, dtype=dt, threads=threads, model=result.model)
    except EdgekitError as exc:
        if required:
            raise
        result.notes.append(f"no estimate for {tgt.id}: {exc}")
        return
    result.measurements.append(measurement_from_estimate(est))
