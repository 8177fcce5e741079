"""The ExecuTorch runtime (pybindings) for .pte files, always in a child process.

Timing is not here: ``edgekit.profile`` measures latency with one protocol everywhere.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import ArtifactError, UsageError
from edgekit.isolate import run_isolated

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
