"""``edgekit recipe run``: a recipe from its PyTorch model to the bundle, in four timed stages.

1. ``design review (report.html)``: analyse the model against the device (``analysis.api.analyze``)
   and write the design-review page;
2. ``build .<format>``: ``edgekit.build.build`` for every format the recipe lists, into
   ``OUTDIR/build/<format>/`` (:func:`format_plans` says which build makes which format); a build
   over budget stops the run there (``fits`` False, no bundle);
3. ``profile``: on the device over ssh / adb when asked (``--ssh`` for a Pi, ``--adb`` for a
   phone), otherwise the target's emulated cost model on the .tflite -> ``OUTDIR/profile.json``;
4. ``bundle``: ``OUTDIR/bundle/``, written by the recipe kind's ``Bundle``.

``OUTDIR/recipe.json`` records what ran. A failed or interrupted run leaves OUTDIR as it found it
(``undo.Undo``). The library prints nothing; ``progress(stage, seconds|None, detail)`` reports.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgekit.analysis.api import analyze
from edgekit.build import build
from edgekit.errors import UsageError
from edgekit.fileio import output_folder
from edgekit.plan import Plan, resolve
from edgekit.profile import api as profile_api
from edgekit.recipe.bundles import BUNDLES
from edgekit.recipe.bundles.common import prepare, write_bundle
from edgekit.recipe.errors import RecipeError
from edgekit.recipe.schema import Recipe, device_plan, load_recipe
from edgekit.recipe.undo import Undo
from edgekit.report.html import write_html
from edgekit.targets import Target, load_target

# the runtime that makes a format when the device's own runtime makes the other one
RUNTIME_FOR_FORMAT = {"tflite": "litert", "pte": "executorch"}


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


@dataclass(frozen=True)
class DeviceAccess:
    """How to reach the device for profiling (``edgekit profile``'s options); neither ssh nor adb:
    no device, the latency is the target's estimate."""

    ssh: str | None = None
    adb: str | None = None
    port: int = 22
    identity: str | None = None
    accept_new_host_key: bool = False
    known_hosts: str | None = None
    remote_python: str = "python3"

    @property
    def on_device(self) -> bool:
        return self.ssh is not None or self.adb is not None


def run_recipe(path, *, output=None, ssh: str | None = None, adb: str | None = None, port: int = 22,
               identity=None, accept_new_host_key: bool = False, known_hosts=None, remote_python: str = "python3",
               runs: int | None = None, warmup: int | None = None, progress=None, eval_data=None) -> RecipeResult:
    """Run a recipe end to end; see the module doc. ``progress(stage, seconds|None, detail)``.
    ``eval_data``: labelled data every build scores its runtimes on (``edgekit build --eval``)."""
    rec = load_recipe(path)
    _check_transport(rec, ssh=ssh, adb=adb)
    tgt = load_target(rec.device)
    plans = format_plans(rec, tgt)
    access = DeviceAccess(ssh=ssh, adb=adb, port=port, identity=identity, accept_new_host_key=accept_new_host_key,
                          known_hosts=known_hosts, remote_python=remote_python)
    out, _ = output_folder(output if output is not None else rec.out_dir)
    undo = Undo(out)
    try:
        result = _run(rec, tgt, plans, out, undo, access, runs=runs or rec.runs,
                      warmup=rec.warmup if warmup is None else warmup, progress=progress, eval_data=eval_data)
    except BaseException:
        undo.rollback()
        raise
    undo.commit()
    return result


def _check_transport(rec: Recipe, *, ssh, adb) -> None:
    transport = BUNDLES[rec.kind].transport
    if ssh is not None and transport != "ssh":
        raise UsageError(f"--ssh profiles a Raspberry Pi (or any Linux board); {rec.name} is a {rec.kind} recipe"
                         + (f" (use --{transport})" if transport else ""))
    if adb is not None and transport != "adb":
        raise UsageError(f"--adb profiles an Android phone; {rec.name} is a {rec.kind} recipe")


def format_plans(rec: Recipe, tgt: Target | None = None) -> dict[str, tuple[str, Plan]]:
    """For each format the recipe lists: the ``target`` given to ``edgekit.build.build`` and the
    :class:`~edgekit.plan.Plan` that ``edgekit.plan.resolve`` makes of it (build resolves the same).

    One rule: the device's own runtime builds its format *for the device* (its budget, its lint
    rules); the other format is built for the runtime that makes it (``RUNTIME_FOR_FORMAT``), with
    no device. Both use the recipe's dtype (else the device's).
    """
    device = device_plan(rec, tgt)
    plans = {}
    for fmt in rec.formats:
        own = device.format == fmt
        plans[fmt] = (rec.device if own else RUNTIME_FOR_FORMAT[fmt],
                      resolve(target=device.target if own else RUNTIME_FOR_FORMAT[fmt], dtype=device.dtype,
                              backend=rec.backend if fmt == "pte" else None))
    return plans


class StageTimer:
    """Runs one stage: reports it (``progress(name, None, detail)``, then ``progress(name, s, "")``)
    and records its wall time in ``timings`` (seconds, 3 decimals)."""

    def __init__(self, progress=None):
        self.say = progress or (lambda *a, **k: None)
        self.timings: dict[str, float] = {}

    def __call__(self, name: str, fn, detail: str = ""):
        self.say(name, None, detail)
        t0 = time.perf_counter()
        value = fn()
        self.timings[name] = round(time.perf_counter() - t0, 3)
        self.say(name, self.timings[name], "")
        return value


def _run(rec: Recipe, tgt: Target, plans: dict, out: Path, undo: Undo, access: DeviceAccess, *, runs: int,
         warmup: int, progress, eval_data=None) -> RecipeResult:
    stage = StageTimer(progress)
    undo.mkdir()
    bundle = out / "bundle"
    undo.protect(bundle, move=True)  # never leave a stale bundle beside a new build
    for written in ("report.html", "recipe.json", "profile.json", *(f"build/{fmt}" for fmt in rec.formats)):
        undo.protect(out / written)
    result = RecipeResult(recipe=rec.name, kind=rec.kind, output=out, bundle=bundle, fits=True,
                          timings_s=stage.timings)
    if rec.html_report:
        _design_review(rec, tgt, result, stage)
    for fmt, (target, plan) in plans.items():
        if not _build(rec, fmt, target, plan, result, stage, progress, eval_data):
            _write_summary(result)
            return result
    result.profile = stage("profile", lambda: _profile_stage(rec, tgt, result, access, runs=runs, warmup=warmup))
    if result.profile:
        (out / "profile.json").write_text(json.dumps(result.profile, indent=2, default=str))
    result.latency = estimate_line(result.profile)
    bundle.mkdir()
    stage("bundle", lambda: _bundle_stage(rec, tgt, result))
    _write_summary(result)
    return result


def _design_review(rec: Recipe, tgt: Target, result: RecipeResult, stage: StageTimer) -> None:
    def review():
        analysis = analyze(rec.model, input_shape=rec.input_shape, dtype=device_plan(rec, tgt).dtype, target=tgt)
        analysis.check(tgt, suggest=False)
        return write_html(analysis, result.output / "report.html", target=tgt), analysis.verdict

    path_html, verdict = stage("design review (report.html)", review)
    result.report_html = str(path_html)
    if not verdict.fits:
        result.fits = False
        result.notes.append(f"predicted: {verdict.summary()}")


def _build(rec: Recipe, fmt: str, target: str, plan: Plan, result: RecipeResult, stage: StageTimer,
           progress, eval_data=None) -> bool:
    """Build one format into OUTDIR/build/<fmt>; record it in ``result.builds``. False: over budget."""
    outdir = result.output / "build" / fmt
    res = stage(f"build .{fmt}", lambda: _build_one(rec, target, plan, outdir, progress, eval_data), "~10-30 s")
    rep = res.report.to_dict()
    result.builds[fmt] = {"fits": res.fits, "written": res.written, "artifacts": res.artifacts,
                          "verdict": rep.get("verdict"), "verification": rep.get("verification"),
                          "arena_bytes": rep.get("arena_bytes"), "model_bytes": rep.get("model_bytes"),
                          "dtype": rep.get("dtype"), "runtime": rep.get("runtime"),
                          "evaluation": rep.get("evaluation")}
    if not res.fits:
        result.fits = False
        result.notes.append(f".{fmt}: {(rep.get('verdict') or {}).get('summary', 'does not fit')}")
    return res.fits


def _build_one(rec: Recipe, target: str, plan: Plan, outdir: Path, progress, eval_data=None):
    outdir.parent.mkdir(parents=True, exist_ok=True)
    try:
        return build(rec.model, target=target, dtype=plan.dtype, calibration=rec.calibration,
                     input_shape=rec.input_shape, backend=rec.backend if plan.format == "pte" else None,
                     output=outdir, progress=progress, eval_data=eval_data)
    except UsageError as exc:
        if "calibration" in str(exc):
            raise RecipeError(f"{rec.path}: target.calibration: {exc}", path=rec.path,
                              key="target.calibration") from None
        raise


def _profile_stage(rec: Recipe, tgt: Target, result: RecipeResult, access: DeviceAccess, *, runs: int,
                   warmup: int) -> dict:
    profile, notes = profile_builds(rec, tgt, result.builds, access, runs=runs, warmup=warmup)
    result.notes += notes
    return profile


def profile_builds(rec: Recipe, tgt: Target, builds: dict, access: DeviceAccess, *, runs: int,
                   warmup: int) -> tuple[dict, list[str]]:
    """``edgekit.profile.api.profile`` on the built artifacts: each on the device when ``access``
    reaches one, else the .tflite with the target's cost model. Returns ({artifact name:
    ProfileResult.to_dict()}, notes)."""
    arts = {fmt: Path(b["artifacts"][f"model.{fmt}"]) for fmt, b in builds.items()
            if f"model.{fmt}" in b["artifacts"]}
    out, notes = {}, []
    if access.on_device:
        for art in arts.values():
            r = profile_api.profile(str(art), target=tgt, runs=runs, warmup=warmup, threads=rec.threads,
                                    ssh=access.ssh, port=access.port, identity=access.identity,
                                    accept_new_host_key=access.accept_new_host_key, known_hosts=access.known_hosts,
                                    adb=access.adb, remote_python=access.remote_python, progress=False)
            out[art.name] = r.to_dict()
        return out, notes
    # no device: the target's cost model on the .tflite (a .pte's XNNPACK delegate hides its ops)
    bundle = BUNDLES[rec.kind]
    art = arts["tflite"]
    r = profile_api.profile(str(art), target=tgt, emulate=True, threads=rec.threads, runs=runs, warmup=warmup,
                            progress=False)
    out[art.name] = r.to_dict()
    if "pte" in arts:
        notes.append("the .pte was not emulated (its delegate hides the operators; the network is the same as "
                     f"the .tflite's): measure it with --{bundle.transport}")
    if bundle.measure_hint:
        notes.append(f"latency on {tgt.id} is an estimate: pass {bundle.measure_hint} to measure on the device")
    return out, notes


def estimate_line(profile: dict | None) -> str:
    """One line: the median (else mean) latency of every measurement, estimated or measured."""
    if not profile:
        return "not profiled"
    lines = []
    for art, prof in profile.items():
        for m in prof.get("measurements", []):
            s = m.get("stats", {})
            kind = "estimate" if m.get("estimate") else "measured"
            ms = s.get("median_ms") if s.get("median_ms") is not None else s.get("mean_ms")
            if ms is not None:
                lines.append(f"{art}: {ms:.2f} ms ({kind}, {m.get('runtime')}, {m.get('where')})")
    return "; ".join(lines) or "not profiled"


def _bundle_stage(rec: Recipe, tgt: Target, result: RecipeResult) -> None:
    bundle = BUNDLES[rec.kind]
    job = prepare(rec, tgt, result.builds, result.latency or "not profiled", result.bundle)
    result.files = write_bundle(bundle, job)
    if bundle.pip is not None:
        result.pip = bundle.pip


def _write_summary(result: RecipeResult) -> None:
    (result.output / "recipe.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
