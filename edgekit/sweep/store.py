"""A sweep's folder: per-candidate result files written as each task finishes, so an interrupted
sweep resumes from what is done.

Layout of ``OUT/``::

    state/analyse/<candidate>.json          the rows of one candidate (every target)
    state/verify/<candidate>@<target>.json  one verified build
    builds/<candidate>/<target>/            the verified build's files (model.tflite, report.json, ...)
    sweep.json  sweep.csv  sweep.html  pareto-<target>.png

Every file is written atomically (``fileio.atomic_write``): a killed sweep leaves whole files or
none. A result file carries ``key`` (``SweepConfig.key``): it is reused only by a run whose
candidate, targets (their files' contents), options and edgekit version give the same key;
anything else is recomputed and overwritten. A result whose task failed is not reused (a failure
may be transient — a lost node — and is tried again).
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.errors import UsageError
from edgekit.fileio import atomic_write, output_folder
from edgekit.sweep.result import Row, Verified


class Store:
    def __init__(self, output):
        out, _ = output_folder(output, what="sweep folder")
        self.root = Path(out)
        try:
            (self.root / "state" / "analyse").mkdir(parents=True, exist_ok=True)
            (self.root / "state" / "verify").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot write to {output}: {exc.strerror or exc}; choose another -o OUTDIR") from None

    # ---- analytic phase
    def _analysis_path(self, cand) -> Path:
        return self.root / "state" / "analyse" / f"{cand.slug}.json"

    def load_rows(self, cand, key: str) -> list[Row] | None:
        d = self._read(self._analysis_path(cand))
        if d is None or d.get("key") != key:
            return None
        rows = [Row.from_dict(r) for r in d.get("rows", [])]
        return None if any(r.status == "error" for r in rows) else rows

    def save_rows(self, cand, key: str, rows: list[Row]) -> None:
        self._write(self._analysis_path(cand), {"key": key, "candidate": cand.to_dict(),
                                                "rows": [r.to_dict() for r in rows]})

    # ---- verify phase
    def _verify_path(self, cand, target: str) -> Path:
        return self.root / "state" / "verify" / f"{cand.slug}@{target}.json"

    def build_dir(self, cand, target: str) -> Path:
        return self.root / "builds" / cand.slug / target

    def load_verified(self, cand, target: str, key: str) -> Verified | None:
        d = self._read(self._verify_path(cand, target))
        if d is None or d.get("key") != key:
            return None
        v = Verified.from_dict(d["verified"])
        if v.status == "error" or any(not (self.root / a).is_file() for a in v.artifacts):
            return None
        return v

    def save_verified(self, cand, target: str, key: str, built) -> Verified:
        """Write the build's files, then its record (the record last: it says the files are whole)."""
        v = built.verified
        folder = self.build_dir(cand, target)
        v.artifacts = []
        for name, data in built.files.items():
            path = folder / name
            atomic_write(path, lambda tmp, data=data: Path(tmp).write_bytes(data))
            v.artifacts.append(str(path.relative_to(self.root)))
        self._write(self._verify_path(cand, target), {"key": key, "verified": v.to_dict()})
        return v

    # ---- helpers
    def write_text(self, name: str, text: str) -> Path:
        return atomic_write(self.root / name, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    def _write(self, path: Path, obj) -> None:
        text = json.dumps(obj, indent=1, sort_keys=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    @staticmethod
    def _read(path: Path):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
