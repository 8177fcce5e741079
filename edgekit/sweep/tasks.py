"""The unit of work the executors run: one ``Task`` (a candidate, or a candidate on one target)
executed by ``run_task`` in any process — the driver (serial) or a Ray worker.

``run_task`` gives every task the same conditions wherever it runs, so that results are
identical whatever the parallelism:

* its own working folder (a fresh temporary folder, the process's current directory while the
  task runs, removed afterwards); native runtimes run in child processes started from it;
* ``threads_per_task`` torch threads (Ray starts workers with one; the serial executor would
  otherwise use every core), restored afterwards;
* every exception caught and returned as a failed result: a task never raises.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgekit.sweep.config import SweepConfig
from edgekit.sweep.grid import Candidate


@dataclass(frozen=True)
class Task:
    phase: str  # "analyse" | "verify"
    candidate: Candidate
    target: str | None = None  # verify only
    predicted_arena_bytes: int | None = None  # verify only

    @property
    def label(self) -> str:
        return self.candidate.id if self.target is None else f"{self.candidate.id} on {self.target}"


def run_task(task: Task, config: SweepConfig):
    """Analyse: ``list[Row]``; verify: ``verify.Built``."""
    from edgekit.sweep.analytic import analyse_candidate
    from edgekit.sweep.verify import verify_candidate

    with own_workdir(task) as wd, torch_threads(config.threads_per_task):
        if task.phase == "analyse":
            return analyse_candidate(task.candidate, config)
        return verify_candidate(task.candidate, task.target, config,
                                predicted_arena_bytes=task.predicted_arena_bytes, workdir=wd)


@contextmanager
def own_workdir(task: Task):
    wd = Path(tempfile.mkdtemp(prefix=f"edgekit-sweep-{task.candidate.slug[:60]}-"))
    old = os.getcwd()
    os.chdir(wd)
    try:
        yield wd
    finally:
        os.chdir(old)
        shutil.rmtree(wd, ignore_errors=True)


@contextmanager
def torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def failed_result(task: Task, config: SweepConfig, message: str):
    """The result of a task that could not run at all (its worker died, Ray refused it)."""
    from edgekit.sweep.result import Row, Verified
    from edgekit.sweep.verify import Built

    c = task.candidate
    if task.phase == "analyse":
        return [Row(c.id, t, "error", dtype=c.dtype, memory_plan=c.memory_plan, error=message)
                for t in config.target_ids]
    return Built(Verified(c.id, task.target, "error", predicted_arena_bytes=task.predicted_arena_bytes,
                          error=message))


def safe_run(task: Task, config: SweepConfig):
    """``run_task`` with the last guard: whatever escapes becomes a failed result."""
    try:
        return run_task(task, config)
    except Exception as exc:
        from edgekit.sweep.analytic import error_text

        return failed_result(task, config, error_text(exc))
