"""The ExecuTorch runtime (pybindings) for .pte files, always in a child process."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import ArtifactError, UsageError
from edgekit.runtime.isolate import run_isolated

RUNTIME = "ExecuTorch"


def _check(path) -> str:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"no such file: {path}")
    if p.is_dir():
        raise UsageError(f"{path} is a directory, expected a .pte file")
    head = p.read_bytes()[:8]
    if len(head) < 8 or head[4:6] != b"ET":
        raise ArtifactError(f"{path} is not an ExecuTorch program (.pte): no ET identifier; rebuild it")
    return str(p.resolve())


def et_run(path, samples: list, *, timeout_s: float = 300.0) -> list:
    p = _check(path)
    res = run_isolated(__name__, "_child_run", {"path": p, "samples": samples}, timeout_s=timeout_s,
                       runtime=RUNTIME, artifact=path)
    return res.value["outputs"]


def et_bench(path, *, inputs: list, warmup: int, runs: int, threads=None, ops: bool = False,
             timeout_s: float = 900.0, progress: bool = False) -> dict:
    p = _check(path)
    res = run_isolated(__name__, "_child_bench",
                       {"path": p, "inputs": inputs, "warmup": warmup, "runs": runs, "threads": threads,
                        "ops": ops, "progress": progress},
                       timeout_s=timeout_s, runtime=RUNTIME, artifact=path)
    return res.value


# ---- child side ---------------------------------------------------------------------------

def _method(path: str, etdump: bool = False):
    from executorch.runtime import Runtime

    rt = Runtime.get()
    if etdump:
        prog = rt.load_program(path, enable_etdump=True, debug_buffer_size=0)
    else:
        prog = rt.load_program(path)
    return prog, prog.load_method("forward")


def _child_run(path: str, samples: list) -> dict:
    import numpy as np
    import torch

    _, method = _method(path)
    outs = []
    for sample in samples:
        res = method.execute([torch.as_tensor(np.asarray(x)) for x in sample])
        outs.append([np.array(r.detach().numpy()) for r in res])
    return {"outputs": outs}


def _child_bench(path: str, inputs: list, warmup: int, runs: int, threads=None, ops=False, progress=False) -> dict:
    import time

    import numpy as np
    import torch

    from edgekit.profile.protocol import timed_loop

    if threads:
        torch.set_num_threads(int(threads))
    prog, method = _method(path, etdump=ops)
    args = [torch.as_tensor(np.asarray(x)) for x in inputs]
    t0 = time.perf_counter()
    method.execute(args)
    first = (time.perf_counter() - t0) * 1e3
    times = timed_loop(lambda: method.execute(args), warmup=warmup, runs=runs, progress=progress)
    op_rows = []
    if ops:
        op_rows = _op_profile(prog)
    return {"times_ms": times, "first_run_ms": first, "ops": op_rows}


def _op_profile(prog) -> list:
    """Per-operator mean time from ETDump through the ExecuTorch Inspector.

    The XNNPACK ops are the leaves; DELEGATE_CALL and Method::execute are spans around them and
    are not counted again (they were, doubling the total and making DELEGATE_CALL the "top op").
    The same code runs on devices: edgekit.profile.runner.et_op_rows."""
    try:
        from edgekit.profile.runner import et_op_rows

        return et_op_rows(prog)
    except Exception as exc:  # devtools missing or ETDump format changed: say so, keep timing
        return [{"name": f"(per-operator profile unavailable: {type(exc).__name__})", "ms": 0.0, "share": 0.0}]
