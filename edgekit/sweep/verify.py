"""Phase 2: a candidate built for one target with ``edgekit.build.build`` and verified for real.

The build runs in the task's own working folder (``tasks.own_workdir``): load, fold, predict,
quantize, export, verify against PyTorch in the target's runtime (TFLite-Micro, LiteRT or
ExecuTorch, each in a child process), the measured TFLite-Micro arena, the C array, lint. The
artifacts come back to the caller as bytes (``Built.files``), so the same task works on a
remote Ray node whose disk the driver cannot see; the driver writes them under
``OUT/builds/<candidate>/<target>/``.

A build that stops over budget (measured) is a ``Verified`` with status ``over budget`` and its
measured figures; a build that raises (verification out of tolerance, a converter refusal) is
status ``error`` with the message. Nothing here raises.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.sweep.analytic import error_text
from edgekit.sweep.config import SweepConfig
from edgekit.sweep.grid import Candidate
from edgekit.sweep.result import Verified


@dataclass
class Built:
    verified: Verified
    files: dict[str, bytes] = field(default_factory=dict)  # artifact name -> contents


def verify_candidate(cand: Candidate, target_id: str, config: SweepConfig, *, predicted_arena_bytes=None,
                     workdir: Path) -> Built:
    from edgekit.build import build

    t0 = time.perf_counter()
    target = next(t for t in config.targets if t.id == target_id)
    v = Verified(cand.id, target_id, "error", predicted_arena_bytes=predicted_arena_bytes)
    files: dict[str, bytes] = {}
    try:
        plan = config.plan_for(cand, target)
        res = build(cand.spec, target=target, dtype=plan.dtype, memory_plan=plan.memory_plan,
                    calibration=config.calibration, output=workdir / "out", verify_samples=config.verify_samples)
        r = res.report
        arena = r.arena_bytes
        v.measured_arena_bytes = arena.measured
        v.arena_bytes = arena.measured if arena.measured is not None else (
            arena.planned_by_executorch or arena.predicted_pre_export)
        v.model_bytes = r.model_bytes
        v.fits = res.fits
        v.verification = {k: {m: _round(x) for m, x in d.items()} for k, d in r.verification.items()}
        v.summary = r.verdict.summary if r.verdict is not None else None
        v.status = "ok" if res.fits else "over budget"
        if res.written:
            files = {name: Path(p).read_bytes() for name, p in sorted(res.artifacts.items())}
            v.accuracy = _artifact_accuracy(config, cand, res, plan, workdir)
    except Exception as exc:  # a failed candidate is reported, never stops the sweep
        v.status, v.error = "error", error_text(exc)
    v.seconds = round(time.perf_counter() - t0, 3)
    return Built(v, files)


def _round(x):
    return round(x, 6) if isinstance(x, float) else x


def _artifact_accuracy(config: SweepConfig, cand: Candidate, res, plan, workdir: Path) -> float | None:
    if config.evaluator is None:
        return None
    from edgekit.loader import load_model, parse_spec
    from edgekit.sweep.accuracy import EvalRequest

    loaded = load_model(parse_spec(cand.spec))
    artifact = next(Path(p) for n, p in res.artifacts.items() if n.startswith("model."))
    return config.evaluator(EvalRequest(candidate=cand, spec=cand.spec, module=loaded.module,
                                        input_shape=loaded.input_shape, artifact=artifact, runtime=plan.runtime,
                                        arena_bytes=res.report.arena_bytes.c_constant))
