"""Run one function of a native-runtime worker module in a child Python process.

Native runtimes (TFLite-Micro, LiteRT, ExecuTorch) can segfault, abort or hang on a bad
artifact or a too-small arena instead of raising. Every call into them goes through
``run_isolated``: the child imports ``module``, calls ``func(**kwargs)`` and writes the
JSON-encoded return value to a file in a private temp directory (not to stdout, which the
native library may write to). NumPy arrays cross the process boundary as ``.npy`` files in
that directory, in both directions, nested anywhere in lists/dicts.

A crash (signal / negative return code), a timeout or an exception in the child becomes a
``ChildFailure`` (a ``RuntimeFailure``) whose message is one line: which runtime, which
file, what happened, what to do. The parent process always survives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import RuntimeFailure

_NPY_KEY = "__edgekit_npy__"
_STDERR_TAIL = 2000  # characters of the child's stderr kept on the error


@dataclass
class IsolatedResult:
    value: Any  # what the function returned (JSON types and numpy arrays)
    stderr: str  # everything the child wrote to stderr (native logs included)
    elapsed_s: float


class ChildFailure(RuntimeFailure):
    """The child process crashed, timed out or raised.

    ``kind`` is "crash", "timeout" or "error"; ``exc_type`` names the child's exception
    class for kind "error"; ``stderr`` is the tail of the child's stderr.
    """

    def __init__(self, message: str, *, kind: str, returncode: int | None = None,
                 exc_type: str | None = None, exc_message: str = "", stderr: str = ""):
        super().__init__(message)
        self.kind = kind
        self.returncode = returncode
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.stderr = stderr


def run_isolated(module: str, func: str, kwargs: dict | None = None, *, timeout_s: float = 120.0,
                 runtime: str = "native runtime", artifact: str | os.PathLike | None = None,
                 hint: str = "") -> IsolatedResult:
    """Call ``module.func(**kwargs)`` in a fresh ``python`` child and return its result.

    ``runtime`` and ``artifact`` only serve the error message; ``hint`` is appended to it
    (what the user should do). Raises ``ChildFailure`` on crash, timeout or exception.
    """
    where = f" on {artifact}" if artifact is not None else ""
    with tempfile.TemporaryDirectory(prefix="edgekit-child-") as tmp:
        tmpdir = Path(tmp)
        spec = {"module": module, "func": func, "kwargs": _encode(kwargs or {}, tmpdir, "in"),
                "out": str(tmpdir / "result.json")}
        spec_path = tmpdir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [_package_root(), env.get("PYTHONPATH", "")] if p)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "edgekit.isolate", str(spec_path)],
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired as exc:
            err = _text(exc.stderr)
            raise ChildFailure(
                f"{runtime} timed out after {timeout_s:g} s{where} (in {module}.{func}); "
                f"the model may be too large for this host or the runtime hung"
                + (f"; {hint}" if hint else ""), kind="timeout", stderr=err[-_STDERR_TAIL:]) from None
        elapsed = time.perf_counter() - t0
        stderr = _text(proc.stderr)
        out = tmpdir / "result.json"
        if proc.returncode < 0:
            sig = _signal_name(-proc.returncode)
            raise ChildFailure(
                f"{runtime} crashed with {sig}{where} (in {module}.{func}); "
                f"the artifact may be corrupt, unsupported, or the arena too small"
                + (f"; {hint}" if hint else ""),
                kind="crash", returncode=proc.returncode, stderr=stderr[-_STDERR_TAIL:])
        if not out.exists():
            last = _last_line(stderr)
            raise ChildFailure(
                f"{runtime} child exited with code {proc.returncode}{where} without a result "
                f"(in {module}.{func}): {last}" + (f"; {hint}" if hint else ""),
                kind="crash", returncode=proc.returncode, stderr=stderr[-_STDERR_TAIL:])
        payload = json.loads(out.read_text())
        if "error" in payload:
            e = payload["error"]
            raise ChildFailure(
                f"{runtime} failed{where}: {e['type']}: {e['message']}" + (f"; {hint}" if hint else ""),
                kind="error", returncode=proc.returncode, exc_type=e["type"], exc_message=e["message"],
                stderr=stderr[-_STDERR_TAIL:])
        return IsolatedResult(value=_decode(payload["value"]), stderr=stderr, elapsed_s=elapsed)


# ---- encoding of numpy arrays through .npy files -------------------------------------------

def _encode(obj, tmpdir: Path, prefix: str, _counter=None):
    counter = _counter if _counter is not None else [0]
    if isinstance(obj, dict):
        return {str(k): _encode(v, tmpdir, prefix, counter) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, tmpdir, prefix, counter) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    mod = type(obj).__module__
    if mod == "numpy" or mod.startswith("numpy."):
        import numpy as np

        if isinstance(obj, np.ndarray):
            path = tmpdir / f"{prefix}{counter[0]}.npy"
            counter[0] += 1
            np.save(path, obj, allow_pickle=False)
            return {_NPY_KEY: str(path)}
        return obj.item()  # numpy scalar
    return obj


def _decode(obj):
    if isinstance(obj, dict):
        if set(obj) == {_NPY_KEY}:
            import numpy as np

            return np.load(obj[_NPY_KEY], allow_pickle=False)
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[1])  # the folder holding the edgekit package


def _text(b) -> str:
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else str(b)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


# ---- the child side ------------------------------------------------------------------------

def _child_main(spec_path: str) -> int:
    import importlib
    import traceback

    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    try:
        fn = getattr(importlib.import_module(spec["module"]), spec["func"])
        value = fn(**_decode(spec["kwargs"]))
        payload = {"value": _encode(value, out.parent, "out")}
    except BaseException as exc:  # report everything, including SystemExit from the callee
        traceback.print_exc(file=sys.stderr)
        msg = str(exc).strip().splitlines()
        payload = {"error": {"type": type(exc).__name__, "message": (msg[0] if msg else "")[:500]}}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    tmp.replace(out)
    sys.stderr.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover - runs in the child
    sys.exit(_child_main(sys.argv[1]))
