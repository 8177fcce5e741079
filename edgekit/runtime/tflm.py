"""The TFLite-Micro Python interpreter (``tflite_micro``), always in a child process.

The interpreter allocates its arena in its constructor; a too-small arena raises
``RuntimeError: TFLM failed to allocate tensors`` — or, for some models, segfaults. So every
call here runs through ``edgekit.isolate.run_isolated`` and the caller's process
survives whatever the native code does.

- ``tflm_allocations(path)``: the RecordingMicroAllocator report (total, head, tail and the
  tail categories) from a run with a huge arena.
- ``tflm_min_arena(path)``: the smallest arena that works. The recorded "Arena allocation
  total" is a first guess, not the answer: it misses the temporary memory TFLite-Micro needs
  while preparing kernels and while planning (measured: the 3-op ``sine_float`` example
  reports 1,536 B but needs 1,808..2,000 B). With ``verify`` the guess is probed (N works,
  N-16 fails) and a bisection on ``arena_size`` settles any disagreement.
- ``tflm_run(path, inputs, arena_size)``: invoke and return the outputs.
- ``tflm_ops(path)``: the model's operators and whether this TFLite-Micro build has a kernel
  for each (from the error it reports when it has not).

The functions whose names start with ``_child_`` run inside the child process.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import ArtifactError, RuntimeFailure, UsageError, require
from edgekit.isolate import ChildFailure, run_isolated

RUNTIME = "TFLite-Micro"
ALIGNMENT = 16  # MicroArenaBufferAlignment()
_HUGE_ARENA_MIN = 16 << 20
_HINT = ("the arena was not the limit: the model uses an operator or type this TFLite-Micro build "
         "refuses (see tflm_ops() and the message above)")


@dataclass
class TflmAllocations:
    """What TFLite-Micro's RecordingMicroAllocator reported for one model."""

    total_bytes: int
    head_bytes: int
    tail_bytes: int
    # category -> {"used": bytes incl. alignment, "requested": bytes, "count": allocations}
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    arena_size: int = 0  # the arena the report came from
    raw: str = ""
    # whether an interpreter with arena_size == total (rounded up to 16) allocated, probed in
    # the same child right after the report (None: not probed)
    total_works: bool | None = None


def require_tflm():
    return require("tflite_micro.python.tflite_micro.runtime", "micro")


def _check_path(path) -> str:
    """Validate in the parent before forking: a missing package, a missing or corrupt file
    become MissingExtraError / UsageError / ArtifactError instead of a child failure."""
    from edgekit.graph import tflite_reader

    p = Path(path)
    require_tflm()
    resolved = str(p.resolve())
    key = (resolved, p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None
    if key is not None and key in _CHECKED:
        return resolved
    tflite_reader.read_tflite_bytes(p)  # exists, is a file, has the TFL3 identifier
    try:
        tflite_reader.schema()
    except ImportError:  # the flatbuffer schema comes with ai-edge-litert; skip the deep check
        pass
    else:
        g = tflite_reader.read_tflite(p)  # bounds-checked parse: ArtifactError if corrupt
        if g.meta.get("offline_buffers"):
            raise ArtifactError(
                f"{path} stores its weights outside the flatbuffer (offset buffers); TFLite-Micro "
                f"loads such files without error and computes garbage: re-serialize it with inline "
                f"buffers (edgekit.export.tflite.inline_buffers)")
    _CHECKED.add(key)
    return resolved


_CHECKED: set = set()  # files already validated in this process (probes repeat a lot)


def _huge_arena(path: str) -> int:
    return max(_HUGE_ARENA_MIN, 4 * os.path.getsize(path) + (1 << 20))


# ---- parent side ----------------------------------------------------------------------------

def tflm_allocations(path, *, arena_size: int | None = None, probe_total: bool = True,
                     timeout_s: float = 120.0) -> TflmAllocations:
    """Load ``path`` with a large arena in a child and return the allocation report.

    With ``probe_total`` the same child then tries an interpreter whose arena is exactly the
    recorded total (``total_works``), which saves ``tflm_min_arena`` a process.
    """
    p = _check_path(path)
    arena = arena_size or _huge_arena(p)
    kw = {"path": p, "arena_size": arena, "probe_total": probe_total}
    try:
        res = run_isolated(__name__, "_child_allocations", kw, timeout_s=timeout_s,
                           runtime=RUNTIME, artifact=path, hint=_HINT)
    except ChildFailure as exc:
        if not (probe_total and exc.kind == "crash"):
            raise
        # the probe at the recorded total crashed (possible when it is too small): report only
        kw["probe_total"] = False
        res = run_isolated(__name__, "_child_allocations", kw, timeout_s=timeout_s,
                           runtime=RUNTIME, artifact=path, hint=_HINT)
        res.value["total_works"] = False
    rep = parse_allocations(res.value["report"], arena_size=arena)
    rep.total_works = res.value.get("total_works")
    return rep


def tflm_probe(path, arena_size: int, *, timeout_s: float = 120.0) -> bool:
    """True if TFLite-Micro allocates the model in ``arena_size`` bytes (a crash counts as no)."""
    p = _check_path(path)
    try:
        res = run_isolated(__name__, "_child_probe", {"path": p, "arena_size": int(arena_size)},
                           timeout_s=timeout_s, runtime=RUNTIME, artifact=path)
    except ChildFailure as exc:
        if exc.kind == "crash":
            return False  # TFLite-Micro can segfault instead of failing on a too-small arena
        raise
    return bool(res.value["ok"])


def tflm_min_arena(path, *, verify: bool = True, report: TflmAllocations | None = None,
                   timeout_s: float = 120.0) -> int:
    """The smallest ``arena_size`` (multiple of 16) with which TFLite-Micro allocates the model.

    Starts from the recorded "Arena allocation total"; with ``verify`` checks that N works and
    N-16 fails (two child processes), and otherwise searches from N (doubling steps, then a
    bisection). Without ``verify`` the recorded total is returned as is: it is too small for
    models whose arena is bound by temporary memory while preparing or planning.
    """
    rep = tflm_allocations(path, timeout_s=timeout_s)
    guess = _align_up(rep.total_bytes)
    if not verify:
        return guess
    ok = tflm_probe(path, guess, timeout_s=timeout_s)
    if ok and not tflm_probe(path, guess - ALIGNMENT, timeout_s=timeout_s):
        return guess
    step = ALIGNMENT
    if ok:  # works below the recorded total (not seen so far): walk down
        hi, lo = guess - ALIGNMENT, guess - 2 * ALIGNMENT
        while lo > 0 and tflm_probe(path, lo, timeout_s=timeout_s):
            hi, step = lo, step * 2
            lo = max(0, _align_up(hi - step) - ALIGNMENT)
    else:  # the recorded total is not enough: walk up
        lo, hi = guess, guess + ALIGNMENT
        while not tflm_probe(path, hi, timeout_s=timeout_s):
            lo, step = hi, step * 2
            hi = _align_up(lo + step)
            if hi > rep.arena_size:
                raise RuntimeFailure(f"{RUNTIME} cannot allocate {path} even with a {hi:,d}-byte arena")
    return _bisect(path, lo, hi, timeout_s)


def tflm_min_arena_bisect(path, *, lo: int = 0, hi: int | None = None, timeout_s: float = 120.0) -> int:
    """The minimum arena by bisection alone (ignores the recorded total): ~log2(hi/16) probes.

    ``lo`` must be a size known (or assumed) to fail, ``hi`` one that works.
    """
    p = _check_path(path)
    hi = _align_up(hi or _huge_arena(p))
    if not tflm_probe(path, hi, timeout_s=timeout_s):
        raise RuntimeFailure(f"{RUNTIME} cannot allocate {path} even with a {hi:,d}-byte arena")
    return _bisect(path, _align_up(lo), hi, timeout_s)


def _bisect(path, lo: int, hi: int, timeout_s: float) -> int:
    """Smallest multiple of 16 in (lo, hi] that works, given lo fails and hi works."""
    while hi - lo > ALIGNMENT:
        mid = _align_up((lo + hi) // 2)
        if mid >= hi:
            mid = hi - ALIGNMENT
        if tflm_probe(path, mid, timeout_s=timeout_s):
            hi = mid
        else:
            lo = mid
    return hi


def tflm_run(path, inputs, arena_size: int | None = None, *, timeout_s: float = 300.0):
    """Invoke the model once on ``inputs`` (list of arrays, model dtype) and return the outputs."""
    import numpy as np

    from edgekit.graph.tflite_reader import read_tflite

    p = _check_path(path)
    g = read_tflite(p)
    arrays = [np.ascontiguousarray(x) for x in inputs]
    if len(arrays) != len(g.inputs):
        raise UsageError(f"{path} has {len(g.inputs)} input(s), got {len(arrays)} array(s)")
    for i, (x, tid) in enumerate(zip(arrays, g.inputs)):
        t = g.tensors[tid]
        if x.dtype.name != t.dtype or tuple(x.shape) != tuple(t.shape):
            raise UsageError(f"input {i} of {path} must be {t.dtype}{list(t.shape)}, got {x.dtype.name}{list(x.shape)}")
    arena = int(arena_size or _huge_arena(p))
    try:
        res = run_isolated(__name__, "_child_run",
                           {"path": p, "inputs": arrays, "n_outputs": len(g.outputs), "arena_size": arena},
                           timeout_s=timeout_s, runtime=RUNTIME, artifact=path)
    except ChildFailure as exc:
        if arena_size and (exc.kind == "crash" or "allocate" in exc.exc_message):
            raise ChildFailure(f"{exc}; the arena of {arena:,d} B may be too small: size it with tflm_min_arena()",
                               kind=exc.kind, returncode=exc.returncode, exc_type=exc.exc_type,
                               exc_message=exc.exc_message, stderr=exc.stderr) from None
        raise
    return list(res.value["outputs"])


def tflm_ops(path, *, timeout_s: float = 120.0) -> dict[str, bool]:
    """{opcode name: True if this TFLite-Micro build has a kernel for it} for the model's ops.

    The Python package registers all its builtin kernels (PythonOpsResolver); an op without
    one fails allocation with "Failed to get registration from op code X", which is parsed.
    """
    from edgekit.graph.tflite_reader import read_tflite

    g = read_tflite(path)
    ops = sorted({op.attrs.get("opcode", op.kind) for op in g.ops})
    p = _check_path(path)
    res = run_isolated(__name__, "_child_load_log", {"path": p, "arena_size": _huge_arena(p)},
                       timeout_s=timeout_s, runtime=RUNTIME, artifact=path)
    missing = set(re.findall(r"(?:registration from op code|find op for builtin opcode)\s+'?([A-Z0-9_]+)",
                             res.value["log"]))
    return {name: name not in missing for name in ops}


# ---- parsing ---------------------------------------------------------------------------------

_TOTAL = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_CAT = re.compile(r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+) ")


def parse_allocations(text: str, *, arena_size: int = 0) -> TflmAllocations:
    vals = {m.group(1): int(m.group(2)) for m in _TOTAL.finditer(text)}
    if not {"total", "head", "tail"} <= set(vals):
        raise RuntimeFailure(f"{RUNTIME} printed no allocation report (got: {text.strip()[:200]!r})")
    cats = {m.group(1): {"used": int(m.group(2)), "requested": int(m.group(3)), "count": int(m.group(4))}
            for m in _CAT.finditer(text)}
    return TflmAllocations(total_bytes=vals["total"], head_bytes=vals["head"], tail_bytes=vals["tail"],
                           categories=cats, arena_size=arena_size, raw=text)


def _align_up(n: int) -> int:
    return (int(n) + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


# ---- child side (runs in the child process) ---------------------------------------------------

class CaptureFd2:
    """Capture what native code writes to file descriptor 2 (C++ MicroPrintf)."""

    def __enter__(self):
        import sys
        import tempfile

        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        self.text = ""
        return self

    def __exit__(self, *exc):
        import sys

        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        self.text = self._tmp.read().decode(errors="replace")
        self._tmp.close()
        sys.stderr.write(self.text)  # keep it in the child's stderr too
        return False


_NOISE = ("All temp buffers must be freed", "Number of allocated temp buffers")


def native_reason(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and not ln.strip().startswith(_NOISE)]
    return "; ".join(lines[:3])[:400]


def load_interpreter(path: str, arena_size: int):
    """Construct the interpreter (it allocates the arena); a failure carries TFLM's own log."""
    rt = require_tflm()
    with CaptureFd2() as cap:
        try:
            return rt.Interpreter.from_file(path, arena_size=int(arena_size))
        except RuntimeError as exc:
            err = exc
    reason = native_reason(cap.text)
    raise RuntimeError(f"{err} with arena_size={int(arena_size)}" + (f" ({reason})" if reason else ""))


def _child_allocations(path: str, arena_size: int, probe_total: bool = False) -> dict:
    interp = load_interpreter(path, arena_size)
    with CaptureFd2() as cap:
        interp.print_allocations()
    out = {"report": cap.text}
    if probe_total:
        total = parse_allocations(cap.text).total_bytes
        out["total_works"] = _child_probe(path, _align_up(total))["ok"]
    return out


def _child_probe(path: str, arena_size: int) -> dict:
    try:
        load_interpreter(path, arena_size)
    except RuntimeError as exc:
        return {"ok": False, "reason": str(exc)}
    return {"ok": True}


def _child_load_log(path: str, arena_size: int) -> dict:
    try:
        load_interpreter(path, arena_size)
    except RuntimeError as exc:
        return {"ok": False, "log": str(exc)}
    return {"ok": True, "log": ""}


def _child_run(path: str, inputs: list, n_outputs: int, arena_size: int) -> dict:
    import numpy as np

    interp = load_interpreter(path, arena_size)
    for i, x in enumerate(inputs):
        d = interp.get_input_details(i)
        x = np.asarray(x)
        if x.dtype != d["dtype"] or tuple(x.shape) != tuple(int(s) for s in d["shape"]):
            raise ValueError(f"input {i} is {x.dtype}{list(x.shape)}, the model wants "
                             f"{np.dtype(d['dtype']).name}{[int(s) for s in d['shape']]}")
        interp.set_input(x, i)
    interp.invoke()
    return {"outputs": [np.array(interp.get_output(i)) for i in range(n_outputs)]}
