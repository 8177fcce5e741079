"""Save a module as a .pt2 ExportedProgram, atomically (temp file, then rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgekit.errors import UsageError, checked_path


def save_pt2(module, example_inputs, path) -> Path:
    import torch

    from edgekit.graph.capture import export_module

    dst = checked_path(path, "output file")
    if dst.suffix != ".pt2":
        raise UsageError(f"output must end in .pt2 (got {path})")
    if not dst.parent.exists():
        raise UsageError(f"folder {dst.parent} does not exist")
    if not dst.parent.is_dir():
        raise UsageError(f"cannot write {path}: {dst.parent} is a file, not a folder")
    if dst.is_dir():
        raise UsageError(f"{path} is a folder; give a file name such as folded.pt2")
    ep = export_module(module, tuple(example_inputs))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".edgekit-", suffix=".pt2", dir=dst.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or type(exc).__name__}; choose another "
                         "output path") from None
    os.close(fd)
    try:
        torch.export.save(ep, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or type(exc).__name__}; choose another "
                         "output path") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst
