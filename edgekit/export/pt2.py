"""Save a module as a .pt2 ExportedProgram, atomically (temp file, then rename)."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import UsageError
from edgekit.fileio import atomic_write, output_file


def save_pt2(module, example_inputs, path) -> Path:
    import torch

    from edgekit.graph.capture import export_module

    dst = output_file(path, example="folded.pt2")
    if dst.suffix != ".pt2":
        raise UsageError(f"output must end in .pt2 (got {path})")
    ep = export_module(module, tuple(example_inputs))
    return atomic_write(dst, lambda tmp: torch.export.save(ep, tmp))
