"""Save a module as a .pt2 ExportedProgram, atomically (temp file, then rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgekit.errors import UsageError


def save_pt2(module, example_inputs, path) -> Path:
    import torch

    from edgekit.graph.capture import export_module

    dst = Path(path)
    if dst.suffix != ".pt2":
        raise UsageError(f"output must end in .pt2 (got {path})")
    if not dst.parent.exists():
        raise UsageError(f"folder {dst.parent} does not exist")
    ep = export_module(module, tuple(example_inputs))
    fd, tmp = tempfile.mkstemp(prefix=".edgekit-", suffix=".pt2", dir=dst.parent)
    os.close(fd)
    try:
        torch.export.save(ep, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst
