"""Recipes: one ``recipe.toml`` from a PyTorch model to a deployable bundle for one kind of device.

``edgekit recipe run recipes/raspberry-pi [--ssh USER@HOST] [-o OUTDIR]`` runs ``run_recipe``:

1. analyse the model against the device and write ``report.html`` (the design-review page);
2. build every format the recipe lists with ``edgekit.build.build`` (fold BN, budget check, quantize,
   export, verify in the real runtime; TFLite-Micro builds also measure the arena and write the C
   source with ``kTensorArenaSize``) into ``OUTDIR/build/<format>/``;
3. profile: on the device over ssh (Raspberry Pi, ``ssh=``) or adb (phone, ``adb=``), otherwise with
   the target's emulated cost model (always for a microcontroller) -> ``OUTDIR/profile.json``;
4. write the bundle ``OUTDIR/bundle/``: what to copy to the device and the code that uses it —

   * ``raspberry-pi``: model.tflite (+ model.pte), labels.txt, model_io.json, ``predict.py``
     (ai_edge_litert, falling back to tflite_runtime; ExecuTorch for the .pte), requirements.txt
     and README.md with the pip line;
   * ``phone``: model.tflite, model.pte, labels.txt, model_io.json (shapes, dtypes, layout,
     quantization, preprocessing), ``ModelRunner.kt`` (LiteRT CompiledModel API), ``predict.py``
     to check the same files on a laptop, README.md;
   * ``mcu``: model.tflite, model_data.h/.cc (``kTensorArenaSize``), op_resolver.h, ``main.cc``
     (TFLite-Micro), ``run_on_host.py`` (the TFLite-Micro Python interpreter with that arena), README.md.

``OUTDIR/recipe.json`` records what ran. The library prints nothing; the CLI renders.

Schema of ``recipe.toml`` (every key is checked: an unknown key, a wrong type or value, or a
missing file is a ``RecipeError`` naming the file and the dotted key)::

    kind = "raspberry-pi"          # raspberry-pi | phone | mcu
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
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgekit.errors import UsageError, checked_path
from edgekit.tomlcheck import TomlChecker, describe

KINDS = ("raspberry-pi", "phone", "mcu")
FORMATS = ("tflite", "pte")
DTYPES = ("int8", "fp32")
DEVICE_KINDS = {"raspberry-pi": ("sbc",), "phone": ("phone",), "mcu": ("mcu",)}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
LITERT_ANDROID = "com.google.ai.edge.litert:litert:2.1.0"
PI_PIP = "python3 -m pip install ai-edge-litert numpy pillow"
PI_PIP_FALLBACK = "python3 -m pip install tflite-runtime numpy pillow"

_TOP = ("kind", "name", "description", "model", "target", "outputs", "profile")
_MODEL = ("spec", "input_shape", "labels", "mean", "std")
_TARGET = ("device", "dtype", "calibration", "backend")
_OUTPUTS = ("formats", "dir", "html_report")
_PROFILE = ("runs", "warmup", "threads")


class RecipeError(UsageError):
    """An invalid recipe: ``path`` is the file, ``key`` the dotted key (or None)."""

    def __init__(self, message: str, *, path=None, key: str | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.key = key


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


@dataclass
class RecipeResult:
    recipe: str
    kind: str
    output: Path
    bundle: Path
    fits: bool
    builds: dict = field(default_factory=dict)  # format -> {"artifacts", "fits", "verdict", "verification", ...}
    profile: dict | None = None  # ProfileResult.to_dict() per artifact name
    files: list = field(default_factory=list)  # bundle files (relative names)
    report_html: str | None = None
    pip: str | None = None
    latency: str | None = None  # one line: estimated or measured latency per artifact
    notes: list = field(default_factory=list)
    timings_s: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output"], d["bundle"] = str(self.output), str(self.bundle)
        return d


# ---- loading and validation -------------------------------------------------------------------

class _Check(TomlChecker):
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
    c = _Check(p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        c.fail(None, f"not valid TOML: {exc}")
    except (OSError, UnicodeDecodeError) as exc:
        c.fail(None, f"cannot read: {type(exc).__name__}: {exc}")
    c.keys(data, _TOP, "")
    kind = c.string(data, "kind", "", required=True, choices=KINDS)
    name = c.string(data, "name", "") or p.parent.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        c.fail("name", f"must be a simple name (letters, digits, . _ -), got {name!r}")
    description = c.string(data, "description", "") or ""

    m = c.table(data, "model")
    c.keys(m, _MODEL, "model")
    spec = _resolve_spec(c.string(m, "spec", "model", required=True), p.parent, c)
    shape = c.numbers(m, "input_shape", "model", integer=True, positive=True)
    if shape is not None and len(shape) != 4:
        c.fail("model.input_shape", f"must be [N, C, H, W] (4 values), got {len(shape)}")
    labels = None
    if "labels" in m:
        labels = (p.parent / c.string(m, "labels", "model")).resolve()
        if not labels.is_file():
            c.fail("model.labels", f"no such file: {labels}")
    mean = c.numbers(m, "mean", "model")
    std = c.numbers(m, "std", "model", positive=True)
    if (mean is None) != (std is None):
        c.fail("model.mean" if mean is None else "model.std", "give both mean and std, or neither")
    if mean is not None and len(mean) != len(std):
        c.fail("model.std", f"has {len(std)} values but mean has {len(mean)}")

    t = c.table(data, "target")
    c.keys(t, _TARGET, "target")
    device = c.string(t, "device", "target", required=True)
    if device.endswith(".toml"):
        dp = (p.parent / device).resolve()
        if not dp.is_file():
            c.fail("target.device", f"no such target file: {dp}")
        device = str(dp)
    from edgekit.targets import TargetError, load_target

    try:
        tgt = load_target(device)
    except TargetError as exc:
        c.fail("target.device", str(exc))
    if tgt.kind not in DEVICE_KINDS[kind]:
        c.fail("target.device", f"{tgt.id} is a {tgt.kind} device; a {kind} recipe needs a target of kind "
                                f"{' or '.join(DEVICE_KINDS[kind])} (see `edgekit targets`)")
    dtype = c.string(t, "dtype", "target", choices=DTYPES)
    eff_dtype = dtype or tgt.runtime.dtype
    if kind == "mcu" and eff_dtype != "int8":
        c.fail("target.dtype", "a microcontroller recipe builds int8 for TFLite-Micro; use dtype = \"int8\"")
    calibration = c.string(t, "calibration", "target")
    if calibration is not None and calibration not in ("model", "random"):
        cp = (p.parent / calibration).resolve()
        if not cp.exists():
            c.fail("target.calibration", f"no such folder or file: {cp} (or use \"model\" or \"random\")")
        calibration = str(cp)
    if calibration == "model":
        calibration = None
    if calibration is not None and eff_dtype != "int8":
        c.fail("target.calibration", f"calibration data is for int8; this recipe builds {eff_dtype}")
    backend = c.string(t, "backend", "target", choices=("xnnpack", "portable"))

    o = c.table(data, "outputs", required=False)
    c.keys(o, _OUTPUTS, "outputs")
    formats = c.strings(o, "formats", "outputs", choices=FORMATS,
                        default=("tflite",) if kind == "mcu" else ("tflite", "pte"))
    if kind == "mcu" and formats != ("tflite",):
        c.fail("outputs.formats", "a microcontroller recipe builds the int8 .tflite and its C source: "
                                  "formats = [\"tflite\"]")
    if kind in ("raspberry-pi", "phone") and "tflite" not in formats:
        c.fail("outputs.formats", f"the {kind} bundle is built around the .tflite: include \"tflite\"")
    if backend is not None and "pte" not in formats:
        c.fail("target.backend", "backend applies to the .pte; add \"pte\" to outputs.formats")
    out_dir = c.string(o, "dir", "outputs") or f"out/{name}"
    html_report = c.boolean(o, "html_report", "outputs", default=True)

    pr = c.table(data, "profile", required=False)
    c.keys(pr, _PROFILE, "profile")
    runs = c.integer(pr, "runs", "profile", default=50, minimum=1, maximum=100000)
    warmup = c.integer(pr, "warmup", "profile", default=5, minimum=0, maximum=100000)
    threads = c.integer(pr, "threads", "profile", default=None, minimum=1, maximum=256)
    return Recipe(path=p, kind=kind, name=name, description=description, model=spec,
                  input_shape=tuple(shape) if shape else None, labels=labels, mean=mean, std=std, device=device,
                  dtype=dtype, calibration=calibration, backend=backend, formats=formats, out_dir=out_dir,
                  html_report=html_report, runs=runs, warmup=warmup, threads=threads)


def _resolve_spec(spec: str, folder: Path, c: _Check) -> str:
    """Relative paths in a MODEL spec are relative to the recipe folder; the spec itself is checked."""
    from edgekit.loader import parse_spec

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


# ---- running ----------------------------------------------------------------------------------

def run_recipe(path, *, output=None, ssh: str | None = None, adb: str | None = None, port: int = 22,
               identity=None, accept_new_host_key: bool = False, known_hosts=None, remote_python: str = "python3",
               runs: int | None = None, warmup: int | None = None, progress=None) -> RecipeResult:
    """Run a recipe end to end; see the module doc. ``progress(stage, seconds|None, detail)``."""
    rec = load_recipe(path)
    if ssh is not None and rec.kind != "raspberry-pi":
        raise UsageError(f"--ssh profiles a Raspberry Pi (or any Linux board); {rec.name} is a {rec.kind} recipe"
                         + (" (use --adb)" if rec.kind == "phone" else ""))
    if adb is not None and rec.kind != "phone":
        raise UsageError(f"--adb profiles an Android phone; {rec.name} is a {rec.kind} recipe")
    from edgekit.fileio import output_folder

    out, _ = output_folder(output if output is not None else rec.out_dir)
    undo = _Undo(out)
    try:
        result = _run(rec, out, undo, ssh=ssh, adb=adb, port=port, identity=identity,
                      accept_new_host_key=accept_new_host_key, known_hosts=known_hosts, remote_python=remote_python,
                      runs=runs, warmup=warmup, progress=progress)
    except BaseException:
        undo.rollback()
        raise
    undo.commit()
    return result


class _Undo:
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


def _run(rec, out: Path, undo: _Undo, *, ssh, adb, port, identity, accept_new_host_key, known_hosts, remote_python,
         runs, warmup, progress) -> RecipeResult:
    say = progress or (lambda *a, **k: None)
    timings: dict[str, float] = {}

    def stage(name, fn, detail=""):
        say(name, None, detail)
        t0 = time.perf_counter()
        value = fn()
        timings[name] = round(time.perf_counter() - t0, 3)
        say(name, timings[name], "")
        return value

    undo.mkdir()
    bundle = out / "bundle"
    undo.protect(bundle, move=True)  # never leave a stale bundle beside a new build
    for written in ("report.html", "recipe.json", "profile.json", *(f"build/{fmt}" for fmt in rec.formats)):
        undo.protect(out / written)
    result = RecipeResult(recipe=rec.name, kind=rec.kind, output=out, bundle=bundle, fits=True, timings_s=timings)

    from edgekit.targets import load_target

    tgt = load_target(rec.device)
    dtype = rec.dtype or tgt.runtime.dtype
    # 1. design review page
    if rec.html_report:
        def review():
            from edgekit.analysis.api import analyze
            from edgekit.report.html import write_html

            report = analyze(rec.model, input_shape=rec.input_shape, dtype=dtype, target=tgt)
            report.check(tgt, suggest=False)
            return write_html(report, out / "report.html", target=tgt), report.verdict

        path_html, verdict = stage("design review (report.html)", review)
        result.report_html = str(path_html)
        if not verdict.fits:
            result.fits = False
            result.notes.append(f"predicted: {verdict.summary()}")
    # 2. builds
    from edgekit.build import build

    for fmt in rec.formats:
        target_arg = rec.device if (fmt == "tflite" or tgt.runtime.default == "executorch") else "executorch"
        if fmt == "tflite" and tgt.runtime.default == "executorch":
            target_arg = "tflite"
        res = stage(f"build .{fmt}", lambda fmt=fmt, target_arg=target_arg: _build_one(
            build, rec, fmt, target_arg, dtype, out / "build" / fmt, progress), "~10-30 s")
        rep = res.report.to_dict()
        result.builds[fmt] = {"fits": res.fits, "written": res.written, "artifacts": res.artifacts,
                              "verdict": rep.get("verdict"), "verification": rep.get("verification"),
                              "arena_bytes": rep.get("arena_bytes"), "model_bytes": rep.get("model_bytes"),
                              "dtype": rep.get("dtype"), "runtime": rep.get("runtime")}
        if not res.fits:
            result.fits = False
            result.notes.append(f".{fmt}: {(rep.get('verdict') or {}).get('summary', 'does not fit')}")
            _write_summary(result)
            return result
    # 3. profile
    result.profile = stage("profile", lambda: _profile(rec, tgt, result, ssh=ssh, adb=adb, port=port,
                                                       identity=identity, accept_new_host_key=accept_new_host_key,
                                                       known_hosts=known_hosts, remote_python=remote_python,
                                                       runs=runs or rec.runs,
                                                       warmup=rec.warmup if warmup is None else warmup))
    if result.profile:
        (out / "profile.json").write_text(json.dumps(result.profile, indent=2, default=str))
    # 4. bundle
    result.latency = _estimate_line(result)
    bundle.mkdir()
    stage("bundle", lambda: _bundle(rec, tgt, dtype, result))
    _write_summary(result)
    return result


def _build_one(build, rec, fmt, target_arg, dtype, outdir, progress):
    outdir.parent.mkdir(parents=True, exist_ok=True)
    try:
        return build(rec.model, target=target_arg, dtype=dtype, calibration=rec.calibration,
                     input_shape=rec.input_shape, backend=rec.backend if fmt == "pte" else None,
                     output=outdir, progress=progress)
    except UsageError as exc:
        if "calibration" in str(exc):
            raise RecipeError(f"{rec.path}: target.calibration: {exc}", path=rec.path,
                              key="target.calibration") from None
        raise


def _write_summary(result: RecipeResult) -> None:
    (result.output / "recipe.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))


def _profile(rec, tgt, result, *, ssh, adb, port, identity, accept_new_host_key, known_hosts, remote_python,
             runs, warmup) -> dict | None:
    try:
        from edgekit.profile.api import profile
    except ImportError:
        result.notes.append("profiling skipped: edgekit.profile is not available in this edgekit")
        return None
    arts = {fmt: Path(b["artifacts"][f"model.{fmt}"]) for fmt, b in result.builds.items()
            if f"model.{fmt}" in b["artifacts"]}
    out = {}
    if ssh is not None or adb is not None:
        for fmt, art in arts.items():
            r = profile(str(art), target=tgt, runs=runs, warmup=warmup, threads=rec.threads, ssh=ssh, port=port,
                        identity=identity, accept_new_host_key=accept_new_host_key, known_hosts=known_hosts,
                        adb=adb, remote_python=remote_python, progress=False)
            out[art.name] = r.to_dict()
    else:
        # no device: the target's cost model on the .tflite (a .pte's XNNPACK delegate hides its ops)
        art = arts["tflite"]
        r = profile(str(art), target=tgt, emulate=True, threads=rec.threads, runs=runs, warmup=warmup,
                    progress=False)
        out[art.name] = r.to_dict()
        if "pte" in arts:
            result.notes.append("the .pte was not emulated (its delegate hides the operators; the network is the "
                                "same as the .tflite's): measure it with " + ("--ssh" if rec.kind != "phone" else "--adb"))
        if rec.kind != "mcu":
            result.notes.append(f"latency on {tgt.id} is an estimate: pass "
                                + ("--ssh USER@HOST" if rec.kind == "raspberry-pi" else "--adb [SERIAL]")
                                + " to measure on the device")
    return out


# ---- bundles ----------------------------------------------------------------------------------

def _labels(rec, n: int) -> list[str]:
    if rec.labels is not None:
        labels = [ln.strip() for ln in rec.labels.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(labels) != n:
            raise RecipeError(f"{rec.path}: model.labels: {rec.labels.name} has {len(labels)} labels but the model "
                              f"has {n} outputs", path=rec.path, key="model.labels")
        return labels
    return [f"class_{i}" for i in range(n)]


def io_spec(tflite_path, *, rec=None, labels_file="labels.txt", pte_path=None, num_classes=None) -> dict:
    """The model's inputs/outputs for an app: shapes, dtypes, layout, quantization, preprocessing."""
    from edgekit.runtime.litert import input_details, output_details

    def entry(d, index, *, is_input):
        e = {"name": d["name"], "index": index, "shape": list(d["shape"]), "dtype": d["dtype"],
             "quantization": ({"scale": float(d["scale"]), "zero_point": int(d["zero_point"])}
                              if d.get("scale") and d["dtype"] in ("int8", "uint8", "int16") else None)}
        if is_input:
            e["layout"] = _layout(d["shape"])
        return e

    ins = [entry(d, i, is_input=True) for i, d in enumerate(input_details(tflite_path))]
    outs = [entry(d, i, is_input=False) for i, d in enumerate(output_details(tflite_path))]
    first = ins[0]
    channels = first["shape"][1] if first["layout"] == "NCHW" else first["shape"][-1]
    mean = (rec.mean if rec is not None and rec.mean is not None else (IMAGENET_MEAN if channels == 3 else [0.0]))
    std = (rec.std if rec is not None and rec.std is not None else (IMAGENET_STD if channels == 3 else [1.0]))
    h, w = (first["shape"][2], first["shape"][3]) if first["layout"] == "NCHW" else (first["shape"][1],
                                                                                     first["shape"][2])
    spec = {
        "schema": "edgekit.model_io/1",
        "model": Path(tflite_path).name,
        "inputs": ins,
        "outputs": outs,
        "preprocess": {"color": "RGB" if channels == 3 else "L", "resize": [h, w], "scale": 1 / 255,
                       "mean": mean, "std": std,
                       "formula": "x = (pixel * scale - mean[c]) / std[c]; then quantize if the input has quantization: "
                                  "q = clamp(round(x / scale) + zero_point)"},
        "labels": labels_file,
        "num_classes": num_classes if num_classes is not None else int(math.prod(outs[0]["shape"][1:])),
    }
    if pte_path is not None:
        spec["pte"] = {"model": Path(pte_path).name,
                       "inputs": [{"shape": first["shape"], "dtype": "float32", "layout": first["layout"]}],
                       "note": "the .pte takes float32 input (preprocessed as above, no quantization)"}
    return spec


def _layout(shape) -> str:
    if len(shape) == 4 and shape[1] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
        return "NCHW"
    if len(shape) == 4 and shape[-1] in (1, 3, 4):
        return "NHWC"
    return "NCHW" if len(shape) == 4 else "flat"


def _copy(src, dst_dir: Path, name: str | None = None) -> str:
    dst = dst_dir / (name or Path(src).name)
    shutil.copy2(src, dst)
    return dst.name


def _bundle(rec, tgt, dtype, result: RecipeResult) -> None:
    b = result.bundle
    builds = result.builds
    tfl = Path(builds["tflite"]["artifacts"]["model.tflite"])
    pte = Path(builds["pte"]["artifacts"]["model.pte"]) if "pte" in builds else None
    files = [_copy(tfl, b)]
    if pte is not None:
        files.append(_copy(pte, b))
    spec = io_spec(tfl, rec=rec, pte_path=pte)
    labels = _labels(rec, spec["num_classes"])
    (b / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    files.append("labels.txt")
    spec["source"] = rec.model
    spec["target"] = tgt.id
    (b / "model_io.json").write_text(json.dumps(spec, indent=2) + "\n")
    files.append("model_io.json")
    est = result.latency or "not profiled"
    if rec.kind in ("raspberry-pi", "phone"):
        (b / "predict.py").write_text(PREDICT_PY)
        os.chmod(b / "predict.py", 0o755)
        files.append("predict.py")
    if rec.kind == "raspberry-pi":
        (b / "requirements.txt").write_text("# " + PI_PIP + "\n# fallback: " + PI_PIP_FALLBACK +
                                            "\nai-edge-litert\nnumpy\npillow\n")
        files.append("requirements.txt")
        (b / "README.md").write_text(_pi_readme(rec, tgt, spec, pte is not None, est, b))
        result.pip = PI_PIP
    elif rec.kind == "phone":
        (b / "ModelRunner.kt").write_text(kotlin_snippet(spec, model=rec.model))
        files.append("ModelRunner.kt")
        (b / "README.md").write_text(_phone_readme(rec, tgt, spec, pte is not None, est))
    else:
        build_dir = Path(builds["tflite"]["artifacts"]["model.tflite"]).parent
        for name in ("model_data.h", "model_data.cc", "op_resolver.h"):  # the build checked the resolver
            files.append(_copy(build_dir / name, b))                       # against TFLite-Micro
        (b / "main.cc").write_text(main_cc(spec, labels, model=rec.model))
        files.append("main.cc")
        (b / "run_on_host.py").write_text(RUN_ON_HOST_PY)
        os.chmod(b / "run_on_host.py", 0o755)
        files.append("run_on_host.py")
        (b / "README.md").write_text(_mcu_readme(rec, tgt, builds["tflite"], est))
        result.pip = "python3 -m pip install tflite-micro numpy pillow  # run_on_host.py only"
    files.append("README.md")
    result.files = sorted(files)


def _estimate_line(result) -> str:
    if not result.profile:
        return "not profiled"
    lines = []
    for art, prof in result.profile.items():
        for m in prof.get("measurements", []):
            s = m.get("stats", {})
            kind = "estimate" if m.get("estimate") else "measured"
            ms = s.get("median_ms") if s.get("median_ms") is not None else s.get("mean_ms")
            if ms is not None:
                lines.append(f"{art}: {ms:.2f} ms ({kind}, {m.get('runtime')}, {m.get('where')})")
    return "; ".join(lines) or "not profiled"


# ---- generated code -----------------------------------------------------------------------------

_PREPROCESS_PY = r'''
def load_spec(model_path):
    for folder in (os.path.dirname(os.path.abspath(model_path)), HERE):
        p = os.path.join(folder, "model_io.json")
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f), folder
    sys.exit("model_io.json not found beside the model or this script")


def load_input(path, spec):
    """An image (resized, RGB/L, normalised as in model_io.json) or a .npy of the model's float input."""
    inp = spec["inputs"][0]
    shape, layout = inp["shape"], inp.get("layout", "NCHW")
    if path is None:
        return np.zeros(shape, np.float32)
    if path.endswith(".npy"):
        x = np.load(path).astype(np.float32)
        if x.size != int(np.prod(shape)):
            sys.exit(f"{path} has shape {list(x.shape)}; the model takes {shape}")
        return x.reshape(shape)
    from PIL import Image

    pre = spec["preprocess"]
    h, w = pre["resize"]
    with Image.open(path) as im:
        a = np.asarray(im.convert(pre["color"]).resize((w, h)), np.float32) * pre["scale"]
    if a.ndim == 2:
        a = a[..., None]
    a = (a - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    a = a.transpose(2, 0, 1)[None] if layout == "NCHW" else a[None]
    return a.astype(np.float32).reshape(shape)


def quantize(x, entry):
    q = entry.get("quantization")
    if not q:
        return x.astype(np.dtype(entry["dtype"]))
    info = np.iinfo(np.dtype(entry["dtype"]))
    return np.clip(np.round(x / q["scale"]) + q["zero_point"], info.min, info.max).astype(entry["dtype"])


def dequantize(y, entry):
    q = entry.get("quantization")
    y = np.asarray(y)
    return (y.astype(np.float32) - q["zero_point"]) * q["scale"] if q else y.astype(np.float32)


def report(scores, spec, folder, labels_path, top):
    scores = np.asarray(scores, np.float64).reshape(-1)
    path = labels_path or os.path.join(folder, spec.get("labels", "labels.txt"))
    labels = [ln.strip() for ln in open(path)] if os.path.exists(path) else []
    labels = [ln for ln in labels if ln]
    p = np.exp(scores - scores.max())
    p /= p.sum()
    order = np.argsort(-scores)[:top]
    name = lambda i: labels[i] if i < len(labels) else f"class_{i}"  # noqa: E731
    best = int(order[0])
    print(f"prediction: {name(best)} (class {best}, probability {p[best]:.3f})")
    for rank, i in enumerate(order, 1):
        print(f"  {rank}. {name(int(i))}: {p[int(i)]:.3f} (score {scores[int(i)]:.4f})")
'''

PREDICT_PY = r'''#!/usr/bin/env python3
"""Classify an image or a .npy array with the model in this folder. Generated by edgekit.

    python3 predict.py model.tflite photo.jpg       # LiteRT (ai-edge-litert), else tflite-runtime
    python3 predict.py model.pte photo.jpg          # ExecuTorch runtime (pip install executorch)
    python3 predict.py model.tflite input.npy --top 5

Install on the Raspberry Pi (64-bit Raspberry Pi OS, in a venv):
    python3 -m pip install ai-edge-litert numpy pillow
  or, where ai-edge-litert has no wheel for your Python:
    python3 -m pip install tflite-runtime numpy pillow
Preprocessing, layout and quantization come from model_io.json beside the model.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
''' + _PREPROCESS_PY + r'''

def tflite_interpreter(path, threads):
    try:
        from ai_edge_litert.interpreter import Interpreter
        backend = "LiteRT (ai_edge_litert)"
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
            backend = "tflite_runtime"
        except ImportError:
            sys.exit("no TFLite interpreter: python3 -m pip install ai-edge-litert  (or tflite-runtime)")
    it = Interpreter(model_path=path, num_threads=threads) if threads else Interpreter(model_path=path)
    it.allocate_tensors()
    return it, backend


def run_tflite(path, x, spec, threads):
    it, backend = tflite_interpreter(path, threads)
    ind, outd = it.get_input_details()[0], it.get_output_details()[0]
    entry = dict(spec["inputs"][0], dtype=np.dtype(ind["dtype"]).name)
    it.set_tensor(ind["index"], quantize(x, entry).reshape(ind["shape"]))
    t0 = time.perf_counter()
    it.invoke()
    ms = (time.perf_counter() - t0) * 1e3
    return dequantize(it.get_tensor(outd["index"]), spec["outputs"][0]), backend, ms


def run_pte(path, x):
    try:
        import torch
        from executorch.runtime import Runtime
    except ImportError:
        sys.exit("running a .pte needs ExecuTorch: python3 -m pip install executorch")
    method = Runtime.get().load_program(path).load_method("forward")
    t0 = time.perf_counter()
    out = method.execute([torch.from_numpy(np.ascontiguousarray(x))])
    ms = (time.perf_counter() - t0) * 1e3
    return out[0].numpy(), "ExecuTorch", ms


def main():
    ap = argparse.ArgumentParser(description="Classify an image or a .npy array with a .tflite or .pte model.")
    ap.add_argument("model", help="model.tflite or model.pte")
    ap.add_argument("input", nargs="?", help="an image file, or a .npy array of the model's float input "
                                             "(default: zeros)")
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--labels", default=None, help="labels file (default: the one named in model_io.json)")
    args = ap.parse_args()
    spec, folder = load_spec(args.model)
    x = load_input(args.input, spec)
    if args.model.endswith(".pte"):
        scores, backend, ms = run_pte(args.model, x)
    else:
        scores, backend, ms = run_tflite(args.model, x, spec, args.threads)
    report(scores, spec, folder, args.labels, max(1, args.top))
    print(f"backend: {backend}; one inference {ms:.2f} ms (first run, not a benchmark)")


if __name__ == "__main__":
    main()
'''

RUN_ON_HOST_PY = r'''#!/usr/bin/env python3
"""Run model.tflite in the TFLite-Micro Python interpreter with the arena size the firmware uses
(kTensorArenaSize from model_data.h): the same graph, kernels and arena as main.cc. Generated by edgekit.

    python3 -m pip install tflite-micro numpy pillow
    python3 run_on_host.py                  # the zero-point input main.cc feeds
    python3 run_on_host.py photo.png        # or a .npy of the model's float input
"""
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
''' + _PREPROCESS_PY + r'''

def arena_size():
    text = open(os.path.join(HERE, "model_data.h")).read()
    m = re.search(r"kTensorArenaSize\s*=\s*(\d+)", text)
    if not m:
        sys.exit("kTensorArenaSize not found in model_data.h")
    return int(m.group(1))


def main():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        sys.exit("needs the TFLite-Micro Python interpreter: python3 -m pip install tflite-micro")
    model = os.path.join(HERE, "model.tflite")
    spec, folder = load_spec(model)
    arena = arena_size()
    it = runtime.Interpreter.from_file(model, arena_size=arena)
    src = sys.argv[1] if len(sys.argv) > 1 else None
    entry = spec["inputs"][0]
    x = quantize(load_input(src, spec), entry) if src else np.full(entry["shape"], (entry.get("quantization") or
                                                                                    {}).get("zero_point", 0),
                                                                  np.dtype(entry["dtype"]))
    it.set_input(x, 0)
    it.invoke()
    report(dequantize(it.get_output(0), spec["outputs"][0]), spec, folder, None, 3)
    print(f"TFLite-Micro on the host, arena {arena} bytes (kTensorArenaSize)")


if __name__ == "__main__":
    main()
'''


def kotlin_snippet(spec: dict, *, model: str = "model", package: str = "com.example.edgekit") -> str:
    """A minimal Android class that loads model.tflite with LiteRT (CompiledModel API) and classifies a Bitmap."""
    inp, outp = spec["inputs"][0], spec["outputs"][0]
    pre = spec["preprocess"]
    h, w = pre["resize"]
    channels = 3 if pre["color"] == "RGB" else 1
    nchw = inp["layout"] == "NCHW"
    q_in, q_out = inp.get("quantization"), outp.get("quantization")
    mean = ", ".join(f"{float(v):.6g}f" for v in pre["mean"])
    std = ", ".join(f"{float(v):.6g}f" for v in pre["std"])
    index = "c * WIDTH * HEIGHT + i" if nchw else f"i * {channels} + c"
    pixel = ("floatArrayOf(((p shr 16) and 0xFF) / 255f, ((p shr 8) and 0xFF) / 255f, (p and 0xFF) / 255f)"
             if channels == 3 else
             "floatArrayOf((0.299f * ((p shr 16) and 0xFF) + 0.587f * ((p shr 8) and 0xFF) + 0.114f * (p and 0xFF)) / 255f)")
    if q_in:
        write = "inputBuffers[0].writeInt8(quantizeInput(preprocess(bitmap)))"
        qfun = ("\n    private fun quantizeInput(x: FloatArray): ByteArray =\n"
                "        ByteArray(x.size) { (x[it] / INPUT_SCALE + INPUT_ZERO_POINT).roundToInt().coerceIn(-128, 127).toByte() }\n")
        qconst = f"\n        const val INPUT_SCALE = {q_in['scale']:.9g}f\n        const val INPUT_ZERO_POINT = {q_in['zero_point']}"
    else:
        write, qfun, qconst = "inputBuffers[0].writeFloat(preprocess(bitmap))", "", ""
    if q_out:
        read = ("val raw = outputBuffers[0].readInt8()\n"
                "        val scores = FloatArray(raw.size) { (raw[it] - OUTPUT_ZERO_POINT) * OUTPUT_SCALE }")
        qconst += (f"\n        const val OUTPUT_SCALE = {q_out['scale']:.9g}f\n"
                   f"        const val OUTPUT_ZERO_POINT = {q_out['zero_point']}")
    else:
        read = "val scores = outputBuffers[0].readFloat()"
    imports = "import kotlin.math.roundToInt\n" if q_in else ""
    return f'''// Generated by edgekit for {model}.
// Loads model.tflite with LiteRT (CompiledModel API, CPU with XNNPACK) and classifies a Bitmap.
// Input {inp['dtype']}{inp['shape']} ({inp['layout']}), output {outp['dtype']}{outp['shape']}; see model_io.json.
//
// app/build.gradle.kts:   dependencies {{ implementation("{LITERT_ANDROID}") }}
// Copy model.tflite and labels.txt to app/src/main/assets/.
// Use:  ModelRunner(context).use {{ runner -> val (label, score) = runner.classify(bitmap) }}
// Run classify() off the main thread (e.g. Dispatchers.Default).
package {package}

import android.content.Context
import android.graphics.Bitmap
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.CompiledModel
{imports}
class ModelRunner(context: Context) : AutoCloseable {{
    private val model = CompiledModel.create(context.assets, "model.tflite", CompiledModel.Options(Accelerator.CPU))
    private val inputBuffers = model.createInputBuffers()
    private val outputBuffers = model.createOutputBuffers()
    val labels: List<String> =
        context.assets.open("labels.txt").bufferedReader().readLines().filter {{ it.isNotBlank() }}

    /** The most likely label and its score (the model's output, dequantized). */
    fun classify(bitmap: Bitmap): Pair<String, Float> {{
        {write}
        model.run(inputBuffers, outputBuffers)
        {read}
        var best = 0
        for (i in scores.indices) if (scores[i] > scores[best]) best = i
        return Pair(labels.getOrElse(best) {{ "class $best" }}, scores[best])
    }}

    /** Resize to WIDTHxHEIGHT, scale to [0, 1], normalise with MEAN/STD, lay out as {inp['layout']}. */
    private fun preprocess(bitmap: Bitmap): FloatArray {{
        val scaled = Bitmap.createScaledBitmap(bitmap, WIDTH, HEIGHT, true)
        val pixels = IntArray(WIDTH * HEIGHT)
        scaled.getPixels(pixels, 0, WIDTH, 0, 0, WIDTH, HEIGHT)
        val out = FloatArray(CHANNELS * WIDTH * HEIGHT)
        for (i in pixels.indices) {{
            val p = pixels[i]
            val v = {pixel}
            for (c in 0 until CHANNELS) out[{index}] = (v[c] - MEAN[c]) / STD[c]
        }}
        return out
    }}
{qfun}
    override fun close() {{
        inputBuffers.forEach {{ it.close() }}
        outputBuffers.forEach {{ it.close() }}
        model.close()
    }}

    companion object {{
        const val WIDTH = {w}
        const val HEIGHT = {h}
        const val CHANNELS = {channels}
        val MEAN = floatArrayOf({mean})
        val STD = floatArrayOf({std}){qconst}
    }}
}}
'''


def main_cc(spec: dict, labels: list[str], *, model: str = "model") -> str:
    """A minimal TFLite-Micro program: model_data.h + op_resolver.h, one inference, the top class."""
    inp, outp = spec["inputs"][0], spec["outputs"][0]
    n = spec["num_classes"]
    label_lines = ",\n    ".join(json.dumps(x) for x in labels)
    q_out = outp.get("quantization") or {"scale": 1.0, "zero_point": 0}
    in_ctype = "int8" if inp["dtype"] == "int8" else "f"
    out_ctype = "int8" if outp["dtype"] == "int8" else "f"
    zp = (inp.get("quantization") or {}).get("zero_point", 0)
    resolver = '#include "op_resolver.h"  // generated by edgekit: exactly the operators this model uses\n'
    make_resolver = ("  static EdgekitOpResolver resolver;\n"
                     "  if (edgekit_register_ops(resolver) != kTfLiteOk) {\n"
                     '    MicroPrintf("registering the operators failed");\n    return 1;\n  }\n')
    fill = (f"  for (size_t i = 0; i < input->bytes; ++i) input->data.int8[i] = static_cast<int8_t>({zp});\n"
            if in_ctype == "int8" else
            "  for (size_t i = 0; i < input->bytes / sizeof(float); ++i) input->data.f[i] = 0.0f;\n")
    score = ("output->data.int8[i]" if out_ctype == "int8" else "output->data.f[i]")
    return f'''// Generated by edgekit for {model}: one inference with TFLite-Micro.
// Build with your TFLite-Micro project: add main.cc and model_data.cc; op_resolver.h and model_data.h beside them.
// Input {inp['dtype']}{inp['shape']} ({inp['layout']}), output {outp['dtype']}{outp['shape']}; see model_io.json.
#include <cstddef>
#include <cstdint>

#include "model_data.h"  // g_model (the flatbuffer) and kTensorArenaSize (measured in TFLite-Micro + margin)
{resolver}#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {{
alignas(16) uint8_t tensor_arena[kTensorArenaSize];
constexpr int kNumClasses = {n};
const char* const kLabels[kNumClasses] = {{
    {label_lines}}};
constexpr float kOutputScale = {q_out['scale']:.9g}f;
constexpr int kOutputZeroPoint = {q_out['zero_point']};
}}  // namespace

int main() {{
  tflite::InitializeTarget();
  const tflite::Model* model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) {{
    MicroPrintf("model schema %d, this TFLite-Micro reads %d", static_cast<int>(model->version()),
                TFLITE_SCHEMA_VERSION);
    return 1;
  }}
{make_resolver}  static tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, kTensorArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) {{
    MicroPrintf("AllocateTensors failed: is kTensorArenaSize (%u) too small for this build?",
                static_cast<unsigned>(kTensorArenaSize));
    return 1;
  }}
  MicroPrintf("arena used %u of %u bytes", static_cast<unsigned>(interpreter.arena_used_bytes()),
              static_cast<unsigned>(kTensorArenaSize));

  // Fill the input: replace with your camera / sensor data, preprocessed as in model_io.json and
  // quantized (q = round(x / scale) + zero_point). Here: the zero point, i.e. an all-zero input.
  TfLiteTensor* input = interpreter.input(0);
{fill}
  if (interpreter.Invoke() != kTfLiteOk) {{
    MicroPrintf("Invoke failed");
    return 1;
  }}
  TfLiteTensor* output = interpreter.output(0);
  int best = 0;
  for (int i = 1; i < kNumClasses; ++i) {{
    if ({score} > {score.replace("[i]", "[best]")}) best = i;
  }}
  const float score = ({score.replace("[i]", "[best]")} - kOutputZeroPoint) * kOutputScale;
  MicroPrintf("prediction: %s (class %d, score x1000 = %d)", kLabels[best], best, static_cast<int>(score * 1000));
  return 0;
}}
'''


# ---- generated READMEs -------------------------------------------------------------------------

def _pi_readme(rec, tgt, spec, have_pte, est, bundle) -> str:
    inp = spec["inputs"][0]
    return f"""# {rec.name}: {rec.model} on {tgt.name}

Generated by `edgekit recipe run`. Copy this folder to the Pi and run it.

```sh
scp -r {bundle} pi@raspberrypi.local:~/edgekit-model
ssh pi@raspberrypi.local
cd ~/edgekit-model
python3 -m venv ~/edgekit-env && . ~/edgekit-env/bin/activate
{PI_PIP}
# fallback where ai-edge-litert has no wheel for your Python: {PI_PIP_FALLBACK}
python3 predict.py model.tflite photo.jpg
```

- `model.tflite`: {inp['dtype']} input {inp['shape']} ({inp['layout']}), LiteRT with XNNPACK.
{"- `model.pte`: the same network for ExecuTorch (XNNPACK): `python3 predict.py model.pte photo.jpg` (needs `pip install executorch`)." if have_pte else ""}
- `model_io.json`: shapes, dtypes, quantization and preprocessing; `predict.py` reads it.
- `labels.txt`: one label per output index.

Latency: {est}.
Measure on the board from your laptop: `edgekit profile model.tflite --target {tgt.id} --ssh pi@raspberrypi.local`
(or `edgekit recipe run {rec.folder} --ssh pi@raspberrypi.local`).
"""


def _phone_readme(rec, tgt, spec, have_pte, est) -> str:
    inp, outp = spec["inputs"][0], spec["outputs"][0]
    return f"""# {rec.name}: {rec.model} on {tgt.name}

Generated by `edgekit recipe run`. What an Android app needs:

1. `app/build.gradle.kts`: `dependencies {{ implementation("{LITERT_ANDROID}") }}`
2. Copy `model.tflite` and `labels.txt` to `app/src/main/assets/`.
3. Add `ModelRunner.kt` (LiteRT CompiledModel API, CPU) and call
   `ModelRunner(context).use {{ it.classify(bitmap) }}` off the main thread.

- Input `{inp['name']}`: {inp['dtype']} {inp['shape']} ({inp['layout']}), quantization {inp['quantization']}.
- Output `{outp['name']}`: {outp['dtype']} {outp['shape']}, quantization {outp['quantization']}.
- Preprocessing: resize to {spec['preprocess']['resize']}, {spec['preprocess']['color']}, x / 255, minus mean
  {spec['preprocess']['mean']}, divided by std {spec['preprocess']['std']} (all in `model_io.json`).
{"- `model.pte`: the same network for ExecuTorch with XNNPACK (`org.pytorch.executorch` Module API), float32 input as above." if have_pte else ""}

Check the same files on your laptop: `python3 predict.py model.tflite photo.jpg`.

Latency: {est}.
Measure on a phone over adb: `edgekit recipe run {rec.folder} --adb` (needs LiteRT's `benchmark_model`
on the phone; see `edgekit profile --help`).
"""


def _mcu_readme(rec, tgt, build, est) -> str:
    arena = build.get("arena_bytes") or {}
    return f"""# {rec.name}: {rec.model} on {tgt.name}

Generated by `edgekit recipe run`. An int8 TFLite-Micro build:

- `model_data.h` / `model_data.cc`: the flatbuffer as a C array and `kTensorArenaSize = {arena.get('c_constant')}`
  (the minimum measured in the TFLite-Micro interpreter, {arena.get('measured')} B, plus a margin).
- `op_resolver.h`: registers exactly the operators this model uses (`EdgekitOpResolver`).
- `main.cc`: loads the model, allocates the arena, runs one inference and prints the top class.
- `run_on_host.py`: the same model and arena in the TFLite-Micro Python interpreter on your laptop
  (`python3 -m pip install tflite-micro numpy pillow && python3 run_on_host.py`).

Add `main.cc`, `model_data.cc` and the headers to a TFLite-Micro project for your board (with CMSIS-NN
kernels on Cortex-M) and replace the input fill in `main.cc` with your sensor data.

Model {build.get('model_bytes')} B of flash; arena {arena.get('c_constant')} B of {tgt.sram_bytes} B SRAM.
Latency: {est} (emulated: the {tgt.id} cycle model, not a measurement).
"""
