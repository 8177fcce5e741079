"""Everything a sweep is asked to do, checked in one place before any work starts.

``make_config`` parses the grid (``grid.make_grid``), loads every target from the catalogue (or a
.toml), checks that each build axis applies to at least one target (``plan.resolve`` decides, as
for ``edgekit check``), the verify mode and the calibration source; a bad value is one UsageError.
``key()`` is the fingerprint a result file must carry to be reused by a later run (resume): the
candidate, every target's file contents, the options that change a result, and edgekit's version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import EdgekitError, UsageError
from edgekit.plan import RUNTIME_ALIASES, resolve
from edgekit.sweep.grid import Candidate, Grid, make_grid
from edgekit.targets import Target, load_target

VERIFY_MODES = ("pareto", "all", "none")


@dataclass(frozen=True)
class SweepConfig:
    grid: Grid
    targets: tuple[Target, ...]
    verify: str = "pareto"
    calibration: str | None = None  # for int8 builds: a folder, .npy, "random", or None (the model's own set)
    verify_samples: int = 8
    threads_per_task: int = 1  # torch threads inside every task (the same whatever executes it)
    evaluator: object = field(default=None, compare=False)  # see edgekit.sweep.accuracy

    @property
    def target_ids(self) -> list[str]:
        return [t.id for t in self.targets]

    def plan_for(self, cand: Candidate, target: Target):
        """``plan.resolve`` for this candidate on this target; a memory plan only where it applies
        (TFLite-Micro). Raises UsageError when the candidate's dtype/plan cannot run there."""
        plan = resolve(target=target, dtype=cand.dtype)
        if cand.memory_plan is not None and plan.is_mcu:
            plan = resolve(target=target, dtype=cand.dtype, memory_plan=cand.memory_plan)
        return plan

    def key(self, cand: Candidate, phase: str, target: Target | None = None) -> str:
        """A fingerprint of everything that decides this candidate's result in ``phase``."""
        from edgekit import __version__

        tgts = [target] if target is not None else list(self.targets)
        d = {"phase": phase, "edgekit": __version__, "spec": cand.spec, "build": dict(cand.build),
             "targets": {t.id: _digest(t) for t in tgts}, "evaluator": _evaluator_key(self.evaluator)}
        if phase == "verify":
            d.update(calibration=self.calibration, verify_samples=self.verify_samples)
        d["threads"] = self.threads_per_task
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:20]

    def to_dict(self) -> dict:
        return {"grid": self.grid.to_dict(), "targets": self.target_ids, "verify": self.verify,
                "calibration": self.calibration, "verify_samples": self.verify_samples,
                "threads_per_task": self.threads_per_task, "evaluator": _evaluator_key(self.evaluator)}


def _digest(t: Target) -> str:
    try:
        return hashlib.sha256(Path(t.path).read_bytes()).hexdigest()[:16] if t.path else t.id
    except OSError:
        return t.id


def _evaluator_key(ev) -> str | None:
    if ev is None:
        return None
    k = getattr(ev, "key", None)
    return str(k() if callable(k) else k) if k is not None else f"{type(ev).__module__}.{type(ev).__qualname__}"


def load_targets(targets) -> tuple[Target, ...]:
    items = [s.strip() for s in targets.split(",")] if isinstance(targets, str) else list(targets or [])
    if not items or any(isinstance(s, str) and not s for s in items):
        raise UsageError(f"bad --targets {targets!r}: give one or more devices, e.g. nrf52840-dk,raspberry-pi-4b")
    out: list[Target] = []
    for s in items:
        if isinstance(s, str) and s.lower() in RUNTIME_ALIASES:
            raise UsageError(f"--targets {s!r} is a format, not a device: a sweep compares devices "
                             "(see `edgekit targets`)")
        t = s if isinstance(s, Target) else load_target(s)
        if any(t.id == o.id for o in out):
            raise UsageError(f"--targets lists {t.id} twice")
        out.append(t)
    return tuple(out)


def make_config(family: str, grid=(), *, targets, dtype=None, memory_plan=None, verify: str = "pareto",
                calibration=None, verify_samples: int = 8, evaluator=None) -> SweepConfig:
    """Check a whole sweep before any work (see the module doc)."""
    g = make_grid(family, grid, dtype=dtype, memory_plan=memory_plan)
    tgts = load_targets(targets)
    if verify not in VERIFY_MODES:
        raise UsageError(f"unknown --verify {verify!r}: choose one of {', '.join(VERIFY_MODES)}")
    if isinstance(verify_samples, bool) or not isinstance(verify_samples, int) or verify_samples < 1:
        raise UsageError(f"verify_samples must be a positive integer, got {verify_samples!r}")
    if calibration is not None and str(calibration) != "random" and not Path(calibration).exists():
        raise UsageError(f"no such calibration data: {calibration} (a folder of images, a .npy, or 'random')")
    _check_axes_apply(g, tgts)
    return SweepConfig(grid=g, targets=tgts, verify=verify,
                       calibration=None if calibration is None else str(calibration),
                       verify_samples=verify_samples, evaluator=evaluator)


def _check_axes_apply(g: Grid, tgts) -> None:
    """Each dtype and memory plan of the grid must run on at least one of the targets."""
    for name, values in g.build_axes:
        for v in values:
            errors = []
            for t in tgts:
                try:
                    plan = resolve(target=t, **{name: v}) if name == "dtype" else resolve(target=t)
                    if name == "memory_plan" and not plan.is_mcu and v != "auto":
                        raise UsageError(f"--memory-plan applies to TFLite-Micro; {t.id} runs {plan.runtime}")
                except EdgekitError as exc:
                    errors.append(str(exc))
                    continue
                break
            else:
                raise UsageError(f"{name.replace('_', ' ')} {v} applies to none of the targets: {errors[0]}")
