"""The TFLite-Micro measurement of a model in one child process: the RecordingMicroAllocator
report and the smallest arena that allocates, found by probing in that same child.

``edgekit.runtime.tflm.tflm_min_arena`` spends one child process per probe (so that a
segfault on a too-small arena costs nothing); with ~200 one-op models that is too slow for
a test run. ``measure(path)`` does the report and every probe in one child, and falls back to
``tflm_min_arena`` when that child crashes. Same interpreter, same answer: the minimum is N
such that N allocates and N - 16 does not.
"""

from __future__ import annotations

from edgekit.isolate import ChildFailure, run_isolated
from edgekit.runtime import tflm

ALIGN = 16


def measure(path, timeout_s: float = 300.0) -> tuple[int, tflm.TflmAllocations]:
    """(minimum arena_size, allocation report) of the .tflite at ``path``."""
    huge = tflm._huge_arena(str(path))
    try:
        res = run_isolated("tests.tflm_truth", "child_measure", {"path": str(path), "huge": huge},
                           timeout_s=timeout_s, runtime=tflm.RUNTIME, artifact=path)
    except ChildFailure as exc:
        if exc.kind != "crash":
            raise
        rep = tflm.tflm_allocations(path)
        return tflm.tflm_min_arena(path, report=rep), rep
    rep = tflm.parse_allocations(res.value["report"], arena_size=huge)
    return int(res.value["min"]), rep


def child_measure(path: str, huge: int) -> dict:
    interp = tflm.load_interpreter(path, huge)
    with tflm.CaptureFd2() as cap:
        interp.print_allocations()
    del interp
    total = tflm.parse_allocations(cap.text).total_bytes
    guess = (total + ALIGN - 1) // ALIGN * ALIGN

    def ok(n: int) -> bool:
        try:
            tflm.load_interpreter(path, n)
        except RuntimeError:
            return False
        return True

    if ok(guess):
        hi, lo = guess, guess - ALIGN
        step = ALIGN
        while lo > 0 and ok(lo):  # walk down (not seen so far: the report is not below)
            hi, step = lo, step * 2
            lo = max(0, hi - step)
    else:
        lo, hi, step = guess, guess + ALIGN, ALIGN
        while not ok(hi):
            lo, step = hi, step * 2
            hi = lo + step
    while hi - lo > ALIGN:  # lo fails, hi works
        mid = (lo + hi) // 2 // ALIGN * ALIGN
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return {"report": cap.text, "min": hi}
