"""``recipe.toml``: the schema, the checked reader and the :class:`Recipe` it returns.

Every key is checked: an unknown key, a wrong type or value, or a missing file is a
``RecipeError`` naming the file and the dotted key::

    kind = "raspberry-pi"          # raspberry-pi | phone | mcu (the keys of bundles.BUNDLES)
    name = "..."                   # optional (default: the folder name)
    description = "..."            # optional
    [model]   spec (MODEL, as for `edgekit check`; a file.py:factory path is relative to the recipe),
              input_shape = [1, 3, H, W] (optional), labels = "labels.txt" (optional, relative),
              mean = [...], std = [...] (optional preprocessing; default ImageNet for RGB)
    [target]  device (from `edgekit targets`, or a .toml relative to the recipe), dtype (optional:
              the device's), calibration (int8: "model" = the model's shipped set, "random", or a
              folder of images / .npy relative to the recipe), backend (pte: xnnpack | portable)
    [outputs] formats = ["tflite", "pte"], dir = "out/NAME" (default of -o), html_report = true
    [profile] runs, warmup, threads (optional)

The checks run in three rounds: each key on its own; then the rules of the recipe's kind
(``Bundle.validate``: which devices, dtypes and formats the bundle is built from); then the rules
that tie two keys together (calibration data needs int8; a backend needs the .pte).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import UsageError, checked_path
from edgekit.loader import parse_spec
from edgekit.plan import Plan, resolve
from edgekit.recipe.bundles import BUNDLES
from edgekit.recipe.errors import RecipeError
from edgekit.targets import Target, TargetError, load_target
from edgekit.tomlcheck import TomlChecker

KINDS = tuple(BUNDLES)
FORMATS = ("tflite", "pte")
DTYPES = ("int8", "fp32")

_TOP = ("kind", "name", "description", "model", "target", "outputs", "profile")
_MODEL = ("spec", "input_shape", "labels", "mean", "std")
_TARGET = ("device", "dtype", "calibration", "backend")
_OUTPUTS = ("formats", "dir", "html_report")
_PROFILE = ("runs", "warmup", "threads")


@dataclass
class Recipe:
    path: Path  # the recipe.toml
    kind: str
    name: str
    description: str
    model: str  # MODEL spec, relative paths resolved
    input_shape: tuple | None
    labels: Path | None
    mean: list | None
    std: list | None
    device: str  # target id or resolved .toml path
    dtype: str | None
    calibration: str | None  # None: the model's shipped set
    backend: str | None
    formats: tuple
    out_dir: str
    html_report: bool
    runs: int
    warmup: int
    threads: int | None

    @property
    def folder(self) -> Path:
        return self.path.parent


def device_plan(rec: Recipe, target: Target | None = None) -> Plan:
    """What the recipe's device runs: its default runtime, and the recipe's dtype or the device's."""
    return resolve(target=target if target is not None else rec.device, dtype=rec.dtype)


class RecipeChecker(TomlChecker):
    """recipe.toml reads: optional keys by default, a missing optional table reads as empty."""

    error = RecipeError

    def table(self, d: dict, key: str, *, required=True) -> dict:
        return super().table(d, key, "", required=required) or {}

    def string(self, d, key, where, *, required=False, choices=None):
        return super().string(d, key, where, required=required, choices=choices)

    def integer(self, d, key, where, *, default=None, minimum=0, maximum=None):
        return super().integer(d, key, where, required=False, default=default, minimum=minimum, maximum=maximum)

    def strings(self, d, key, where, *, choices, default):
        return self.string_list(d, key, where, choices=choices, default=default, nonempty=True)


def recipe_file(path) -> Path:
    p = checked_path(path, "recipe path")
    if p.is_dir():
        p = p / "recipe.toml"
    if not p.exists():
        raise RecipeError(f"no recipe at {path}: expected a folder with recipe.toml, or a recipe .toml file",
                          path=p)
    return p


def load_recipe(path) -> Recipe:
    """Read and validate a recipe (a folder with recipe.toml, or the .toml itself)."""
    p = recipe_file(path)
    c = RecipeChecker(p)
    data = _read(p, c)
    c.keys(data, _TOP, "")
    kind = c.string(data, "kind", "", required=True, choices=KINDS)
    name = c.string(data, "name", "") or p.parent.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        c.fail("name", f"must be a simple name (letters, digits, . _ -), got {name!r}")
    description = c.string(data, "description", "") or ""
    model = _model_table(c.table(data, "model"), p.parent, c)
    target, tgt = _target_table(c.table(data, "target"), p.parent, c, kind)
    outputs = _outputs_table(c.table(data, "outputs", required=False), c, kind, name)
    profile = _profile_table(c.table(data, "profile", required=False), c)
    rec = Recipe(path=p, kind=kind, name=name, description=description, **model, **target, **outputs, **profile)
    plan = device_plan(rec, tgt)
    for key, message in BUNDLES[kind].validate(rec, plan):
        c.fail(key, message)
    if rec.calibration is not None and plan.dtype != "int8":
        c.fail("target.calibration", f"calibration data is for int8; this recipe builds {plan.dtype}")
    if rec.backend is not None and "pte" not in rec.formats:
        c.fail("target.backend", "backend applies to the .pte; add \"pte\" to outputs.formats")
    return rec


def _read(p: Path, c: RecipeChecker) -> dict:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        c.fail(None, f"not valid TOML: {exc}")
    except (OSError, UnicodeDecodeError) as exc:
        c.fail(None, f"cannot read: {type(exc).__name__}: {exc}")


def _model_table(m: dict, folder: Path, c: RecipeChecker) -> dict:
    c.keys(m, _MODEL, "model")
    spec = _resolve_spec(c.string(m, "spec", "model", required=True), folder, c)
    shape = c.numbers(m, "input_shape", "model", integer=True, positive=True)
    if shape is not None and len(shape) != 4:
        c.fail("model.input_shape", f"must be [N, C, H, W] (4 values), got {len(shape)}")
    labels = None
    if "labels" in m:
        labels = (folder / c.string(m, "labels", "model")).resolve()
        if not labels.is_file():
            c.fail("model.labels", f"no such file: {labels}")
    mean = c.numbers(m, "mean", "model")
    std = c.numbers(m, "std", "model", positive=True)
    if (mean is None) != (std is None):
        c.fail("model.mean" if mean is None else "model.std", "give both mean and std, or neither")
    if mean is not None and len(mean) != len(std):
        c.fail("model.std", f"has {len(std)} values but mean has {len(mean)}")
    return {"model": spec, "input_shape": tuple(shape) if shape else None, "labels": labels, "mean": mean,
            "std": std}


def _target_table(t: dict, folder: Path, c: RecipeChecker, kind: str) -> tuple[dict, Target]:
    c.keys(t, _TARGET, "target")
    device = c.string(t, "device", "target", required=True)
    if device.endswith(".toml"):
        dp = (folder / device).resolve()
        if not dp.is_file():
            c.fail("target.device", f"no such target file: {dp}")
        device = str(dp)
    try:
        tgt = load_target(device)
    except TargetError as exc:
        c.fail("target.device", str(exc))
    kinds = BUNDLES[kind].device_kinds
    if tgt.kind not in kinds:
        c.fail("target.device", f"{tgt.id} is a {tgt.kind} device; a {kind} recipe needs a target of kind "
                                f"{' or '.join(kinds)} (see `edgekit targets`)")
    dtype = c.string(t, "dtype", "target", choices=DTYPES)
    calibration = c.string(t, "calibration", "target")
    if calibration is not None and calibration not in ("model", "random"):
        cp = (folder / calibration).resolve()
        if not cp.exists():
            c.fail("target.calibration", f"no such folder or file: {cp} (or use \"model\" or \"random\")")
        calibration = str(cp)
    if calibration == "model":
        calibration = None
    backend = c.string(t, "backend", "target", choices=("xnnpack", "portable"))
    return {"device": device, "dtype": dtype, "calibration": calibration, "backend": backend}, tgt


def _outputs_table(o: dict, c: RecipeChecker, kind: str, name: str) -> dict:
    c.keys(o, _OUTPUTS, "outputs")
    formats = c.strings(o, "formats", "outputs", choices=FORMATS, default=BUNDLES[kind].formats)
    return {"formats": formats, "out_dir": c.string(o, "dir", "outputs") or f"out/{name}",
            "html_report": c.boolean(o, "html_report", "outputs", default=True)}


def _profile_table(pr: dict, c: RecipeChecker) -> dict:
    c.keys(pr, _PROFILE, "profile")
    return {"runs": c.integer(pr, "runs", "profile", default=50, minimum=1, maximum=100000),
            "warmup": c.integer(pr, "warmup", "profile", default=5, minimum=0, maximum=100000),
            "threads": c.integer(pr, "threads", "profile", default=None, minimum=1, maximum=256)}


def _resolve_spec(spec: str, folder: Path, c: RecipeChecker) -> str:
    """Relative paths in a MODEL spec are relative to the recipe folder; the spec itself is checked."""
    head, sep, tail = spec.partition(":")
    if head.endswith(".py") and sep and not Path(head).is_absolute():
        spec = f"{(folder / head).resolve()}:{tail}"
    elif Path(spec).suffix.lower() in (".pt2", ".tflite", ".pte") and not Path(spec).is_absolute():
        spec = str((folder / spec).resolve())
    try:
        ps = parse_spec(spec)
    except UsageError as exc:
        c.fail("model.spec", str(exc))
    if ps.is_artifact:
        c.fail("model.spec", f"{spec} is already built; a recipe starts from a PyTorch model")
    return spec
