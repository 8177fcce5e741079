"""The recipe run's rollback: a failed or interrupted ``edgekit recipe run`` leaves its output folder
as it found it.

``protect(path)`` backs up each path the run will write (``move=True`` sets it aside: the run starts
without it) into a hidden folder inside the output folder; ``rollback()`` removes what the run wrote
and puts the backups back; ``commit()`` drops them. A build writes its own folder atomically
(staging + ``os.replace``); the recipe writes several, hence this.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edgekit.errors import UsageError


class Undo:
    """A failed or interrupted run leaves the output folder as it found it: what the run writes
    (report.html, recipe.json, profile.json, build/<format>, bundle) is backed up first and
    restored, and the folders and entries it created are removed."""

    def __init__(self, out: Path):
        self.out = out
        missing = [a for a in (out, *out.parents) if not a.exists()]
        self.created_root = missing[-1] if missing else None
        self.before = {e.name for e in out.iterdir()} if out.is_dir() else set()
        self.saved: list[tuple[Path, Path | None]] = []  # (path, its backup or None if it did not exist)
        self.backups: Path | None = None

    def mkdir(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the output folder {self.out}: {exc.strerror or type(exc).__name__}; "
                             "choose another -o OUTDIR") from None

    def protect(self, path: Path, *, move: bool = False) -> None:
        """Back ``path`` up (``move``: set it aside, the run starts without it) before the run writes it."""
        if self.created_root is not None:
            return  # the whole folder is new: rollback removes it
        backup = None
        if path.exists() or path.is_symlink():
            if self.backups is None:
                self.backups = Path(tempfile.mkdtemp(prefix=".edgekit-recipe-backup-", dir=self.out))
                self.before.add(self.backups.name)
            backup = self.backups / str(len(self.saved))
            if move:
                os.replace(path, backup)
            elif path.is_dir() and not path.is_symlink():
                shutil.copytree(path, backup, symlinks=True)
            else:
                shutil.copy2(path, backup, follow_symlinks=False)
        self.saved.append((path, backup))

    def rollback(self) -> None:
        if self.created_root is not None:
            shutil.rmtree(self.created_root, ignore_errors=True)
            return
        for path, backup in reversed(self.saved):
            _remove(path)
            if backup is not None and (backup.exists() or backup.is_symlink()):
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(backup, path)
        if self.out.is_dir():
            for e in self.out.iterdir():
                if e.name not in self.before:
                    _remove(e)
        self.commit()

    def commit(self) -> None:
        if self.backups is not None:
            shutil.rmtree(self.backups, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
