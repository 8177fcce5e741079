"""Silence the converters' native logging (absl, TF, tqdm) while keeping it for errors."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings


@contextlib.contextmanager
def quiet_native():
    """Redirect file descriptors 1 and 2 to a temp file for the duration; the captured text is
    attached to an exception raised inside as ``exc.native_log`` (last 2,000 characters)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except BaseException as exc:
            sys.stdout.flush()
            sys.stderr.flush()
            tmp.seek(0)
            try:
                exc.native_log = tmp.read().decode(errors="replace")[-2000:]
            except Exception:  # pragma: no cover - exceptions without __dict__
                pass
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


# torch logs a warning when ExecuTorch registers its enums as pytree constants at import time
EXECUTORCH_IMPORT_LOGGERS = ("torch.utils._pytree",)


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.ERROR):
    """Raise the level of the named Python loggers for the duration (torch's import-time and
    load-time warnings reach stderr through them, beside edgekit's own one-line error)."""
    loggers = [logging.getLogger(n) for n in names]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(level, lg.level))
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, saved):
            lg.setLevel(lvl)
