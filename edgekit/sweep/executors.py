"""Executors: run ``tasks.safe_run`` over a list of tasks and hand each result back as it completes.

``SerialExecutor`` runs them one after the other in one child process; ``RayExecutor``
(``edgekit/sweep/ray_executor.py``, the only module that imports Ray) runs each as a Ray task.
Both call ``on_result(index, result)`` in the driver, in completion order; the sweep stores
results by index, so their order never depends on the executor.
"""

from __future__ import annotations

from collections.abc import Callable

from edgekit.errors import MissingExtraError

RAY_HINT = "install 'edgekit[sweep]' (Ray) to run the candidates in parallel on every core or on a Ray cluster"


class SerialExecutor:
    """One task after the other in **one child process** (spawned once, reused): a native crash in a
    converter or runtime (a silent SIGABRT was seen in a serial benchmark) kills that process, not the
    sweep; the task is reported failed and a new process takes the next one, as a dead Ray worker is."""

    name = "serial"
    workers = 1

    def __init__(self, function=None):
        self._pool = None
        self._function = function  # tasks.safe_run unless given (a picklable module-level function)

    def _submit(self, task, config):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        from edgekit.sweep.tasks import safe_run

        return self._pool.submit(self._function or safe_run, task, config)

    def run(self, tasks: list, config, on_result: Callable[[int, object], None]) -> None:
        from concurrent.futures.process import BrokenProcessPool

        from edgekit.sweep.tasks import failed_result

        for i, task in enumerate(tasks):
            try:
                result = self._submit(task, config).result()
            except BrokenProcessPool:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                result = failed_result(task, config, "the task's process died (a crash in a native library)")
            on_result(i, result)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def make_executor(kind: str = "auto", *, address: str | None = None, workers: int | None = None):
    """``auto``: Ray when it is installed (a local Ray on every core, or ``address``), else serial
    (``notes`` says how to get parallelism); ``ray``: Ray or MissingExtraError; ``serial``.
    Returns (executor, notes)."""
    if kind == "serial":
        if address is not None:
            from edgekit.errors import UsageError

            raise UsageError("--ray-address needs the Ray executor, not --serial")
        return SerialExecutor(), []
    try:
        import importlib.util

        have_ray = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        have_ray = False
    if not have_ray:
        if kind == "ray" or address is not None:
            raise MissingExtraError("ray", "sweep")
        return SerialExecutor(), [f"Ray is not installed: the candidates ran one after the other; {RAY_HINT}"]
    from edgekit.sweep.ray_executor import RayExecutor

    return RayExecutor(address=address, workers=workers), []
