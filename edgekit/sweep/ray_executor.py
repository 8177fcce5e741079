"""The Ray executor: each task a Ray task (``num_cpus=1``, no retries), results as they complete.

The only module of edgekit that imports Ray (the extra ``edgekit[sweep]``). Without ``address``
it starts a local Ray on this machine with ``workers`` CPUs (default: all cores) and stops it at
the end; with ``address`` (``ray://host:10001`` or ``host:6379``) it joins an existing cluster,
whose nodes must have edgekit installed (``pip install 'edgekit[sweep]'``), and leaves it running.
A Ray that the caller already initialised is used as it is.

Each task runs ``tasks.safe_run`` in a Ray worker process (one torch import per worker, reused by
the tasks it runs), in its own working folder, with its native runtimes in child processes of that
worker. A task whose worker dies (a segfault in a native library that escaped its child process,
the node lost) is a failed result for that candidate (``ray.exceptions.RayError``); the sweep goes
on. The config is put in the object store once, not shipped with every task.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from edgekit.errors import UsageError


class RayExecutor:
    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None):
        import ray

        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise UsageError(f"workers must be a positive integer, got {workers!r}")
        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            if address is None:
                kwargs.update(num_cpus=workers or os.cpu_count() or 1,
                              runtime_env={"env_vars": _inherited_env()})
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UsageError(f"cannot start or join Ray{f' at {address}' if address else ''}: "
                                 f"{' '.join(str(exc).split())[:300]}") from None
            self._owned = True
        self.address = address or "local"
        self.workers = int(ray.cluster_resources().get("CPU", 1))

    def run(self, tasks: list, config, on_result: Callable[[int, object], None]) -> None:
        ray = self._ray
        from edgekit.sweep.analytic import error_text
        from edgekit.sweep.tasks import failed_result, safe_run

        if not tasks:
            return
        remote = ray.remote(num_cpus=1, max_retries=0)(safe_run)
        cfg = ray.put(config)
        pending = {remote.remote(t, cfg): i for i, t in enumerate(tasks)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died: this candidate failed, the sweep goes on
                    result = failed_result(tasks[i], config, f"Ray task failed: {error_text(exc)}")
                on_result(i, result)

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def _inherited_env() -> dict[str, str]:
    """What a local worker must see as the driver does: the checkout on PYTHONPATH and edgekit's caches."""
    keys = ("PYTHONPATH", "EDGEKIT_TFLM_CACHE", "EDGEKIT_CACHE")
    return {k: os.environ[k] for k in keys if k in os.environ}
