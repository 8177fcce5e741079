"""Executors: run ``tasks.safe_run`` over a list of tasks and hand each result back as it completes.

``SerialExecutor`` runs them one after the other in this process; ``RayExecutor``
(``edgekit/sweep/ray_executor.py``, the only module that imports Ray) runs each as a Ray task.
Both call ``on_result(index, result)`` in the driver, in completion order; the sweep stores
results by index, so their order never depends on the executor.
"""

from __future__ import annotations

from collections.abc import Callable

from edgekit.errors import MissingExtraError

RAY_HINT = "install 'edgekit[sweep]' (Ray) to run the candidates in parallel on every core or on a Ray cluster"


class SerialExecutor:
    name = "serial"
    workers = 1

    def run(self, tasks: list, config, on_result: Callable[[int, object], None]) -> None:
        from edgekit.sweep.tasks import safe_run

        for i, task in enumerate(tasks):
            on_result(i, safe_run(task, config))

    def close(self) -> None:
        pass


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
