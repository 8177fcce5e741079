"""``edgekit.sweep.sweep``: the loop over a design space, phase by phase.

1. check everything (``config.make_config``, the objectives, the output folder) — bad input is one
   UsageError before any work;
2. analyse every candidate on every target (``analytic``), one task per candidate, reusing the
   result files of an earlier run of the same sweep (``store``);
3. the Pareto front of each target (``pareto``);
4. build and verify the front (``--verify pareto``), every candidate that fits (``all``) or none,
   one task per candidate and target (``verify``), reusing earlier builds;
5. write ``sweep.json``, ``sweep.csv``, a Pareto plot per target and ``sweep.html``.

``progress(event)`` (a ``SweepProgress``) is called in the driver after each finished task; the
CLI draws it. Failed tasks are results with status ``error``: the sweep always runs to the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edgekit.sweep.config import SweepConfig, make_config
from edgekit.sweep.executors import make_executor
from edgekit.sweep.pareto import default_objectives, fronts, parse_objectives
from edgekit.sweep.result import Row, SweepResult, Verified, pick_best
from edgekit.sweep.store import Store
from edgekit.sweep.tasks import Task


@dataclass
class SweepProgress:
    phase: str  # "analyse" | "verify"
    done: int
    total: int
    failed: int = 0
    reused: int = 0
    last: str | None = None  # the task that just finished
    best: dict[str, str | None] = field(default_factory=dict)  # target -> "candidate (figure)"


Progress = Callable[[SweepProgress], None]


def sweep(family: str, grid=(), *, targets, dtype=None, memory_plan=None, verify: str = "pareto",
          calibration=None, evaluator=None, objectives=None, output="sweep", executor: str = "auto",
          ray_address: str | None = None, workers: int | None = None, verify_samples: int = 8,
          progress: Progress | None = None, render: bool = True) -> SweepResult:
    """Sweep ``family`` over ``grid`` on ``targets`` (see the module doc). ``executor``: ``auto``
    (Ray when installed, else serial), ``ray`` or ``serial``; ``evaluator``: see
    ``edgekit.sweep.accuracy``; ``objectives``: see ``edgekit.sweep.pareto``."""
    config = make_config(family, grid, targets=targets, dtype=dtype, memory_plan=memory_plan, verify=verify,
                         calibration=calibration, verify_samples=verify_samples, evaluator=evaluator)
    objs = list(objectives) if objectives else default_objectives(evaluator is not None)
    parse_objectives(objs)
    store = Store(output)
    ex, notes = make_executor(executor, address=ray_address, workers=workers)
    progress = progress or (lambda event: None)
    cands = config.grid.candidates()
    timings, reused = {}, {}
    try:
        t0 = time.perf_counter()
        rows, reused["analyse"] = _analyse(config, cands, store, ex, progress)
        timings["analyse"] = round(time.perf_counter() - t0, 3)
        front = fronts(rows, config.target_ids, objs)
        t0 = time.perf_counter()
        verified, reused["verify"] = _verify(config, cands, rows, front, store, ex, progress)
        timings["verify"] = round(time.perf_counter() - t0, 3)
    finally:
        ex.close()
    result = SweepResult(family=family, grid=config.grid.to_dict(), targets=config.target_ids, objectives=objs,
                         candidates=[c.to_dict() for c in cands], rows=rows, fronts=front, verified=verified,
                         output=str(store.root), executor=ex.name, workers=ex.workers, reused=reused, notes=notes,
                         timings=timings)
    if render:
        from edgekit.sweep.outputs import write_outputs

        t0 = time.perf_counter()
        write_outputs(result, store)
        result.timings["render"] = round(time.perf_counter() - t0, 3)
        store.write_text("sweep.json", _json(result))
    return result


def _json(result: SweepResult) -> str:
    import json

    return json.dumps(result.to_dict(), indent=1)


def _best(rows: list[Row], targets: list[str]) -> dict[str, str | None]:
    out = {}
    for t in targets:
        b = pick_best([r for r in rows if r is not None and r.target == t and r.eligible])
        out[t] = None if b is None else (f"{b.candidate} ({b.accuracy:.1%})" if b.accuracy is not None
                                         else f"{b.candidate} ({b.latency_ms:.2f} ms est.)")
    return out


def _analyse(config: SweepConfig, cands, store: Store, ex, progress) -> tuple[list[Row], int]:
    results: list[list[Row] | None] = [None] * len(cands)
    keys = [config.key(c, "analyse") for c in cands]
    for i, c in enumerate(cands):
        results[i] = store.load_rows(c, keys[i])
    todo = [i for i, r in enumerate(results) if r is None]
    state = SweepProgress("analyse", len(cands) - len(todo), len(cands), reused=len(cands) - len(todo))

    def flat():
        return [r for rs in results if rs is not None for r in rs]

    state.best = _best(flat(), config.target_ids)
    progress(state)

    def on_result(j: int, rows: list[Row]) -> None:
        i = todo[j]
        results[i] = rows
        store.save_rows(cands[i], keys[i], rows)
        state.done += 1
        state.failed += any(r.status == "error" for r in rows)
        state.last = cands[i].id
        state.best = _best(flat(), config.target_ids)
        progress(state)

    ex.run([Task("analyse", cands[i]) for i in todo], config, on_result)
    return flat(), state.reused


def _verify(config: SweepConfig, cands, rows: list[Row], front: dict, store: Store, ex,
            progress) -> tuple[list[Verified], int]:
    by_id = {c.id: c for c in cands}
    if config.verify == "none":
        return [], 0
    if config.verify == "pareto":
        wanted = {(cid, t) for t, ids in front.items() for cid in ids}
    else:
        wanted = {(r.candidate, r.target) for r in rows if r.eligible}
    pairs = [(r.candidate, r.target, r.arena_bytes) for r in rows if (r.candidate, r.target) in wanted]
    out: list[Verified | None] = [None] * len(pairs)
    keys = [config.key(by_id[cid], "verify", _target(config, t)) for cid, t, _ in pairs]
    for k, (cid, t, _) in enumerate(pairs):
        out[k] = store.load_verified(by_id[cid], t, keys[k])
    todo = [k for k, v in enumerate(out) if v is None]
    state = SweepProgress("verify", len(pairs) - len(todo), len(pairs), reused=len(pairs) - len(todo),
                          best=_best(rows, config.target_ids))
    progress(state)

    def on_result(j: int, built) -> None:
        k = todo[j]
        cid, t, _ = pairs[k]
        out[k] = store.save_verified(by_id[cid], t, keys[k], built)
        state.done += 1
        state.failed += out[k].status == "error"
        state.last = f"{cid} on {t}"
        progress(state)

    tasks = [Task("verify", by_id[pairs[k][0]], pairs[k][1], pairs[k][2]) for k in todo]
    ex.run(tasks, config, on_result)
    return [v for v in out if v is not None], state.reused


def _target(config: SweepConfig, tid: str):
    return next(t for t in config.targets if t.id == tid)
