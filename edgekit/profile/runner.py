"""The measurement runner for built artifacts (.tflite, .pte): self-contained on purpose.

It needs only the standard library, NumPy and the runtime it measures (``ai_edge_litert``, else
``tflite_runtime``, for .tflite; ``executorch`` for .pte), plus ``protocol.py`` beside it. The
host runs this very file in a child process (``python runner.py ...``); the ssh profiler copies
it and ``protocol.py`` to a temporary directory on the device and runs it with the device's
``python3``. Both get the same JSON, so a number from a Raspberry Pi and one from the host were
produced by the same code.

Output: one line ``@@edgekit-result@@ {json}`` on the *original* standard output; everything
else (the runtime's own logs included: stdout is pointed at stderr while the runtime runs)
goes to stderr, where the progress bar is drawn too. Exit code 0 with a result, 3 with
``{"error": {"kind": "missing_runtime" | "error", "message": ...}}``.

    python3 runner.py MODEL.tflite --runs 100 --warmup 10 [--threads 4] [--batch 8]
                      [--no-xnnpack] [--ops] [--progress] [--input-shape 1,3,224,224]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

if __package__:  # imported as edgekit.profile.runner
    from edgekit.profile import protocol
else:  # run as a script, on the host or on a device: the protocol.py beside this file
    import protocol  # type: ignore[no-redef]

MARKER = "@@edgekit-result@@ "
EXIT_RESULT, EXIT_FAILED = 0, 3


class MissingRuntime(Exception):
    """The device has no runtime for this artifact; the message says what to install."""


def _version(dist: str):
    try:
        from importlib import metadata

        return metadata.version(dist)
    except Exception:
        return None


def _random_input(np, shape, dtype, scale=None, zero_point=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(size=tuple(int(d) for d in shape)).astype(np.float32)
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if scale:
            q = np.round(x / scale) + (zero_point or 0)
            return np.clip(q, info.min, info.max).astype(dt)
        return rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=x.shape).astype(dt)
    if dt.kind == "b":
        return x > 0
    return x.astype(dt)


# ---- LiteRT -------------------------------------------------------------------------------

def _litert_module():
    errors = []
    try:
        from ai_edge_litert import interpreter as lr

        return lr, "ai-edge-litert"
    except Exception as exc:  # ImportError, or a wheel built against another NumPy
        errors.append(f"ai_edge_litert: {type(exc).__name__}: {exc}")
    try:
        import tflite_runtime.interpreter as lr  # type: ignore[import-not-found]

        return lr, "tflite-runtime"
    except Exception as exc:
        errors.append(f"tflite_runtime: {type(exc).__name__}: {exc}")
    raise MissingRuntime(
        f"no LiteRT runtime for {sys.executable}: install it on the device with "
        f"'{os.path.basename(sys.executable)} -m pip install ai-edge-litert' "
        f"(or tflite-runtime on Python < 3.9) [{'; '.join(e.splitlines()[0][:120] for e in errors)}]")


def run_litert(path, *, runs, warmup, threads, batch, xnnpack, ops, progress, input_shape=None) -> dict:
    import numpy as np

    lr, dist = _litert_module()
    threads = threads or os.cpu_count() or 1
    kwargs = {"model_path": path, "num_threads": int(threads)}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = lr.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    t0 = time.perf_counter()
    it = lr.Interpreter(**kwargs)
    if input_shape:
        it.resize_tensor_input(it.get_input_details()[0]["index"], list(input_shape))
    it.allocate_tensors()
    load_ms = (time.perf_counter() - t0) * 1e3
    notes = []

    def feed(batch_size):
        for i, d in enumerate(it.get_input_details()):
            scale, zp = d.get("quantization", (0.0, 0)) or (0.0, 0)
            it.set_tensor(d["index"], _random_input(np, d["shape"], d["dtype"], scale, zp, seed=i))

    feed(1)
    in_shapes = [list(map(int, d["shape"])) for d in it.get_input_details()]
    t0 = time.perf_counter()
    it.invoke()  # the first run is never timed
    first_ms = (time.perf_counter() - t0) * 1e3
    stats = protocol.measure(it.invoke, warmup=warmup, runs=runs, progress=progress)
    batch_stats = None
    if batch > 1:
        try:
            for d in it.get_input_details():
                it.resize_tensor_input(d["index"], [batch] + list(map(int, d["shape"]))[1:])
            it.allocate_tensors()
            feed(batch)
            it.invoke()
            batch_stats = protocol.measure(it.invoke, warmup=warmup, runs=runs, batch=batch, progress=progress)
        except Exception as exc:
            notes.append(f"batch {batch} not measured: the model would not take a batch of {batch} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})")
    if ops:
        notes.append("LiteRT's Python interpreter has no per-operator profiler; for a per-op table run "
                     "LiteRT's benchmark_model --enable_op_profiling=true (edgekit profile --adb does this "
                     "on a phone), or profile the .pte with ExecuTorch")
    versions = {dist: _version(dist), "numpy": np.__version__}
    return {"runtime": "LiteRT", "runtime_package": dist,
            "delegate": "XNNPACK" if xnnpack else "none (builtin kernels)", "threads": int(threads),
            "stats": stats, "batch_stats": batch_stats, "first_run_ms": first_ms,
            "load_ms": load_ms, "ops": [], "notes": notes, "versions": versions, "input_shapes": in_shapes}


# ---- ExecuTorch ---------------------------------------------------------------------------

# c10::ScalarType codes used in ExecuTorch tensor metadata
_SCALAR = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64",
           11: "bool"}


def _executorch():
    try:
        import torch
        from executorch.runtime import Runtime
    except Exception as exc:
        raise MissingRuntime(
            f"no ExecuTorch runtime for {sys.executable}: install it on the device with "
            f"'{os.path.basename(sys.executable)} -m pip install executorch' "
            f"[{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}]") from None
    return torch, Runtime


def et_op_rows(prog, *, skip_first: bool = True) -> list:
    """Per-operator mean milliseconds from ETDump via the ExecuTorch Inspector.

    The delegate's own events (XNNPACK ops) are leaves; ``DELEGATE_CALL`` is the span around
    them and ``Method::execute`` the span around everything, so both are left out when leaves
    exist (counting them would double the total). The time the delegate call spends outside
    its ops is reported as one row, "(delegate call overhead)". The first execution (before
    the warm-up) is dropped from each op's samples when there are several.
    """
    import tempfile

    from executorch.devtools import Inspector

    d = tempfile.mkdtemp(prefix="edgekit-etdump-")
    path = os.path.join(d, "etdump.etdp")
    prog.write_etdump_result_to_file(path, os.path.join(d, "debug.bin"))
    insp = Inspector(etdump_path=path)

    def mean_ms(ev):
        raw = [float(x) for x in ev.perf_data.raw]
        if skip_first and len(raw) > 1:
            raw = raw[1:]
        return sum(raw) / len(raw)

    leaves, delegate_call = {}, 0.0
    for block in insp.event_blocks:
        if block.name != "Execute":
            continue
        for ev in block.events:
            if ev.perf_data is None or not len(ev.perf_data.raw):
                continue
            if ev.name in ("Method::execute", "Program::load_method", "Method::init"):
                continue
            if ev.name == "DELEGATE_CALL":
                delegate_call += mean_ms(ev)
                continue
            leaves[ev.name] = leaves.get(ev.name, 0.0) + mean_ms(ev)
    rows = [{"name": k, "ms": v} for k, v in leaves.items()]
    delegated = sum(v for k, v in leaves.items())
    if delegate_call and rows:
        over = delegate_call - delegated
        if over > 0:
            rows.append({"name": "(delegate call overhead)", "ms": over})
    elif delegate_call:
        rows.append({"name": "DELEGATE_CALL", "ms": delegate_call})
    total = sum(r["ms"] for r in rows) or 1.0
    for r in rows:
        r["share"] = r["ms"] / total
    rows.sort(key=lambda r: -r["ms"])
    import shutil

    shutil.rmtree(d, ignore_errors=True)
    return rows


def run_executorch(path, *, runs, warmup, threads, batch, xnnpack, ops, progress, input_shape=None) -> dict:
    import numpy as np

    torch, Runtime = _executorch()
    notes = []
    try:
        from executorch.extension.pybindings import portable_lib

        if threads:
            portable_lib._unsafe_reset_threadpool(int(threads))
        threads_used = int(portable_lib._threadpool_get_thread_count())
    except Exception:  # older wheels: the pool keeps its default size
        threads_used = threads
        if threads:
            notes.append("this ExecuTorch build cannot resize its thread pool; --threads was not applied")
    with open(path, "rb") as f:
        blob = f.read()
    delegate = "XNNPACK" if b"XnnpackBackend" in blob else "none (portable kernels)"
    t0 = time.perf_counter()
    rt = Runtime.get()
    prog = rt.load_program(path)
    method = prog.load_method("forward")
    load_ms = (time.perf_counter() - t0) * 1e3
    md = method.metadata
    args, in_shapes = [], []
    for i in range(md.num_inputs()):
        meta = md.input_tensor_meta(i)
        shape = [int(s) for s in meta.sizes()]
        if input_shape and i == 0 and list(input_shape) != shape:
            notes.append(f"a .pte has static input shapes: running {shape}, not {list(input_shape)}")
        in_shapes.append(shape)
        dtype = _SCALAR.get(int(meta.dtype()), "float32")
        args.append(torch.from_numpy(np.ascontiguousarray(_random_input(np, shape, dtype, seed=i))))
    t0 = time.perf_counter()
    method.execute(args)  # the first run is never timed
    first_ms = (time.perf_counter() - t0) * 1e3
    stats = protocol.measure(lambda: method.execute(args), warmup=warmup, runs=runs, progress=progress)
    if batch > 1:
        notes.append(f"batch {batch} not measured: this .pte was exported with a static batch of "
                     f"{in_shapes[0][0] if in_shapes and in_shapes[0] else 1}; "
                     f"export it at batch {batch} to measure it")
    op_rows = []
    if ops:  # a second program with ETDump on, so that the timed runs above carry no tracing cost
        try:
            prog_d = rt.load_program(path, enable_etdump=True, debug_buffer_size=0)
            method_d = prog_d.load_method("forward")
            for _ in range(1 + min(runs, 50)):
                method_d.execute(args)
            op_rows = et_op_rows(prog_d)
        except Exception as exc:
            notes.append(f"per-operator profile unavailable ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); it needs executorch.devtools")
    versions = {"executorch": _version("executorch"), "torch": _version("torch"), "numpy": np.__version__}
    return {"runtime": "ExecuTorch", "runtime_package": "executorch", "delegate": delegate, "threads": threads_used,
            "stats": stats, "batch_stats": None, "first_run_ms": first_ms, "load_ms": load_ms, "ops": op_rows,
            "notes": notes, "versions": versions, "input_shapes": in_shapes}


def run(args) -> dict:
    suffix = os.path.splitext(args.artifact)[1].lower()
    kw = dict(runs=args.runs, warmup=args.warmup, threads=args.threads, batch=args.batch,
              xnnpack=not args.no_xnnpack, ops=args.ops, progress=args.progress,
              input_shape=[int(s) for s in args.input_shape.split(",")] if args.input_shape else None)
    if not os.path.isfile(args.artifact):
        raise FileNotFoundError(f"no such file on this device: {args.artifact}")
    try:
        import numpy  # noqa: F401
    except Exception:
        pkg = "executorch" if suffix == ".pte" else "ai-edge-litert"
        raise MissingRuntime(f"NumPy is not installed for {sys.executable}: install it on the device with "
                             f"'{os.path.basename(sys.executable)} -m pip install numpy {pkg}'") from None
    if suffix == ".tflite":
        res = run_litert(args.artifact, **kw)
    elif suffix == ".pte":
        res = run_executorch(args.artifact, **kw)
    else:
        raise ValueError(f"cannot run {args.artifact!r}: expected a .tflite or .pte file")
    res["platform"] = protocol.platform_info()
    res["protocol"] = {"warmup": args.warmup, "runs": args.runs, "batch": args.batch,
                       "first_run_timed": False, "load_timed": False}
    return res


def _parser():
    p = argparse.ArgumentParser(description="edgekit latency runner (one protocol everywhere)")
    p.add_argument("artifact")
    p.add_argument("--runs", type=int, default=protocol.DEFAULT_RUNS)
    p.add_argument("--warmup", type=int, default=protocol.DEFAULT_WARMUP)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--no-xnnpack", action="store_true")
    p.add_argument("--ops", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--input-shape", default=None)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    sys.stdout.flush()
    result_fd = os.dup(1)
    os.dup2(2, 1)  # the runtime's own prints go to stderr; the result line stays clean
    try:
        protocol.check_counts(runs=args.runs, warmup=args.warmup, batch=args.batch, threads=args.threads)
        result, code = run(args), EXIT_RESULT
    except MissingRuntime as exc:
        result, code = ({"error": {"kind": "missing_runtime", "type": "MissingRuntime", "message": str(exc)}},
                        EXIT_FAILED)
    except Exception as exc:  # report, do not crash: the caller shows one line
        msg = str(exc).strip().splitlines()
        result, code = {"error": {"kind": "error", "type": type(exc).__name__,
                                  "message": (msg[0] if msg else "")[:500]}}, EXIT_FAILED
    sys.stdout.flush()
    with os.fdopen(result_fd, "w") as out:
        out.write(MARKER + json.dumps(result) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
