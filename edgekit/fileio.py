"""Output files written atomically: a reader (or a later run) sees the old file or the new one,
never half of one, and a failure leaves nothing behind. Every OS error is one UsageError.
And scratch files for the runtimes' children, removed when done."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from edgekit.errors import UsageError, checked_path


def _cannot(path, exc: OSError) -> str:
    return f"cannot write {path}: {exc.strerror or type(exc).__name__}; choose another output path"


def output_file(path, *, what: str = "output file", example: str = "out.bin") -> Path:
    """Check an output file path before any slow work: a name the OS takes, not a folder, and no
    file standing where a parent folder has to be."""
    p = checked_path(path, what)
    if p.is_dir():
        raise UsageError(f"{p} is a folder; give a file name such as {example}")
    blocker = next((a for a in p.parents if a.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UsageError(f"cannot write {p}: {blocker} is a file, not a folder; choose another output path")
    return p


def output_folder(path, *, what: str = "output folder") -> tuple[Path, Path]:
    """Check an output folder before any slow work: a name the OS takes, not an existing file, and
    no file standing where a missing parent has to be. Returns (folder, the nearest folder that
    exists: where staging files go, on the same file system)."""
    p = checked_path(path, what)
    if p.exists() and not p.is_dir():
        raise UsageError(f"output {path} exists and is not a folder")
    anchor = next((a for a in p.resolve().parents if a.exists()), Path(p.resolve().anchor))
    if not anchor.is_dir():
        raise UsageError(f"cannot write to {path}: {anchor} is a file, not a folder; choose another -o OUTDIR")
    return p, anchor


def atomic_write(path, write) -> Path:
    """``write(tmp)`` fills a temporary file beside ``path`` (given its name); it is then renamed
    onto ``path`` with ordinary permissions. Missing parent folders are created."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".edgekit-", suffix=path.suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise UsageError(_cannot(path, exc)) from None
    try:
        write(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # as an ordinary new file, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(_cannot(path, exc)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


@contextmanager
def scratch_file(data: bytes, name: str = "model.tflite", *, prefix: str = "edgekit-"):
    """The path (str) of ``data`` written to ``name`` in a new temporary folder, removed on exit
    (for the runtimes' children, which read models from files)."""
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        path = Path(folder) / name
        path.write_bytes(data)
        yield str(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

