"""Shared test set-up: the converted-model factory and the guard that keeps `make test-fast` free of
conversions.

Markers (registered in pyproject.toml):
- ``export``: the test converts a model (litert-torch, ai-edge-quantizer, ExecuTorch), runs a
  conversion in a child process (``edgekit build``, ``profile --compare``, ``recipe run``), or uses
  the ``artifact`` factory, which converts on a cold cache (CI starts with one). ``make test-fast``
  deselects them.
- ``slow``: long even among those (many models, long interpreter runs).

With ``EDGEKIT_FORBID_EXPORT=1`` (``make test-fast`` sets it) every converter entry point, in this
process and in the Python processes the tests start, fails the test instead of converting
(``tests/export_guard.py``): a test that converts without the ``export`` marker fails loudly
instead of quietly making the fast suite slow.

Fixture ``artifact(net, dtype="fp32", fmt="tflite", **export_options) -> Path``: a network
converted once per cache key (``tests/artifacts.py``; ``EDGEKIT_TFLM_CACHE`` keeps the files across
sessions), skipped when its converter is not installed.
"""

from __future__ import annotations

import os
import tempfile

import artifacts
import export_guard
import pytest

_log_read = 0  # bytes of the guard's log already reported


def pytest_configure(config):
    if not export_guard.active():
        return
    fd, log = tempfile.mkstemp(prefix="edgekit-forbid-export-", suffix=".log")
    os.close(fd)
    os.environ[export_guard.LOG_ENV] = log
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(export_guard.SITE_DIR),
                                                           os.environ.get("PYTHONPATH")) if p)
    export_guard.install()


def pytest_unconfigure(config):
    log = os.environ.pop(export_guard.LOG_ENV, None)
    if log and os.path.exists(log):
        os.unlink(log)


def _refused_conversions() -> list[str]:
    """Lines the guard logged (in any process) since the last call."""
    global _log_read
    log = os.environ.get(export_guard.LOG_ENV)
    if not log or not os.path.exists(log):
        return []
    with open(log) as f:
        f.seek(_log_read)
        text = f.read()
    _log_read += len(text.encode())
    return text.splitlines()


@pytest.fixture(autouse=True)
def _no_conversion_anywhere():
    """Fails the test whose set-up, body or child processes tried to convert under the guard (a child
    or an ``except Exception`` may have swallowed the AssertionError)."""
    yield
    refused = _refused_conversions()
    if refused:
        pytest.fail("converted under EDGEKIT_FORBID_EXPORT=1:\n" + "\n".join(refused), pytrace=False)


@pytest.fixture(scope="session")
def artifact():
    """``artifact(net, dtype="fp32", fmt="tflite", **export_options) -> Path`` (tests/artifacts.py)."""
    def get(net, dtype: str = "fp32", fmt: str = "tflite", **options):
        path = artifacts.cached_path(net, dtype, fmt, **options)
        if not path.exists():
            missing = artifacts.missing_converters(dtype, fmt)
            if missing:
                pytest.skip(f"converting to {fmt} {dtype} needs {', '.join(missing)}")
        return artifacts.artifact(net, dtype, fmt, **options)
    return get
