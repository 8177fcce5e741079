"""Memory a runtime allocates outside edgekit's arena figures, measured in a child process.

The planned arena of a .tflite (LiteRT) or a .pte (ExecuTorch) counts the activation tensors the
runtime plans. A delegated graph allocates more on top: XNNPACK packs the weights into its own
layout (a second copy of them) and keeps its own workspace for the operators it runs, and none of
that is in ``non_const_buffer_sizes`` or in LiteRT's tensor arena. No API reports it, so it is
measured: the resident set size (``VmRSS`` in ``/proc/self/status``, Linux) of a fresh child
process. The child first loads and runs the model once and keeps it (so the runtime's code pages,
thread pool and one-time set-up are resident and not counted), then loads a second instance:
its growth at load (tensors allocated; LiteRT applies the XNNPACK delegate here, packing the
weights) and at its first inference (lazy allocations: ExecuTorch's XNNPACK sets up operators and
workspace on the first run) is what one instance of the model costs. Page-granular (4 KiB) and
including allocator slack: an upper bound, not a plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.errors import UsageError
from edgekit.isolate import run_isolated


@dataclass
class Footprint:
    runtime: str  # "LiteRT (XNNPACK)", "ExecuTorch"
    file_bytes: int  # the artifact's size
    load_bytes: int  # RSS growth from loading the model (tensors allocated; LiteRT delegates here)
    first_run_bytes: int  # further RSS growth during the first inference
    method: str = "resident set size (/proc/self/status) of a fresh child process, page-granular"

    @property
    def total_bytes(self) -> int:
        return self.load_bytes + self.first_run_bytes

    def to_dict(self) -> dict:
        return {**asdict(self), "total_bytes": self.total_bytes}


def runtime_footprint(path, *, threads: int = 1, timeout_s: float = 300.0) -> Footprint:
    """Measure what LiteRT with XNNPACK (.tflite) or ExecuTorch (.pte) allocates for ``path``."""
    p = Path(path)
    if p.suffix.lower() not in (".tflite", ".pte"):
        raise UsageError(f"runtime memory is measured for .tflite and .pte files, got {path}")
    if not Path("/proc/self/status").exists():
        raise UsageError("runtime memory is measured from /proc/self/status (Linux only)")
    res = run_isolated(__name__, "_child_footprint", {"path": str(p.resolve()), "threads": int(threads)},
                       timeout_s=timeout_s, runtime="LiteRT" if p.suffix == ".tflite" else "ExecuTorch",
                       artifact=path)
    v = res.value
    return Footprint(runtime=v["runtime"], file_bytes=p.stat().st_size, load_bytes=v["load"],
                     first_run_bytes=v["first_run"])


# ---- child side ---------------------------------------------------------------------------

def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child_footprint(path: str, threads: int) -> dict:
    import gc

    import numpy as np

    if path.endswith(".tflite"):
        from ai_edge_litert import interpreter as lr

        runtime = "LiteRT (XNNPACK)"

        def load():
            it = lr.Interpreter(model_path=path, num_threads=threads)
            it.allocate_tensors()
            return it

        def first_run(it):
            for d in it.get_input_details():
                it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
            it.invoke()
    else:
        import torch
        from executorch.runtime import Runtime

        runtime = "ExecuTorch"
        torch.set_num_threads(threads)
        rt = Runtime.get()

        def load():
            return rt.load_program(path).load_method("forward")

        def first_run(method):
            meta = method.metadata
            args = [torch.zeros(tuple(meta.input_tensor_meta(i).sizes()),
                                dtype=getattr(torch, str(meta.input_tensor_meta(i).dtype()).split(".")[-1].lower(),
                                              torch.float32))
                    for i in range(meta.num_inputs())]
            method.execute(args)
    warm = load()  # kept alive: code pages, thread pool and one-time set-up stay resident
    first_run(warm)
    gc.collect()
    base = _status_bytes("VmRSS")
    handle = load()
    loaded = _status_bytes("VmRSS")
    first_run(handle)
    ran = _status_bytes("VmRSS")
    del warm, handle
    return {"runtime": runtime, "load": max(0, loaded - base), "first_run": max(0, ran - loaded)}
