"""Run a child command (the local runner, or ssh/adb), stream its progress bar to our stderr,
and pick the runner's result line out of its stdout. Argument lists only: no shell here."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass

from edgekit.profile.runner import MARKER

_PROGRESS = "  timed runs"


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False


def run(argv: list[str], *, progress: bool = False, timeout_s: float = 900.0, env=None,
        input_bytes: bytes | None = None) -> Completed:
    """Run ``argv``; when ``progress`` is on, redraw the child's progress bar on our stderr.

    Never raises for a failing child (the caller classifies the failure); raises
    FileNotFoundError when the program itself does not exist."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    drew = [False]

    def read_out():
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            out_chunks.append(chunk)

    def read_err():
        pending = ""
        for chunk in iter(lambda: proc.stderr.read1(4096), b""):
            err_chunks.append(chunk)
            if not progress:
                continue
            pending += chunk.decode(errors="replace")
            parts = pending.replace("\n", "\r").split("\r")
            pending = parts.pop()
            for part in parts:
                if part.startswith(_PROGRESS):
                    sys.stderr.write("\r" + part)
                    sys.stderr.flush()
                    drew[0] = True

    threads = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for t in threads:
        t.start()
    if input_bytes is not None:
        try:
            proc.stdin.write(input_bytes)
            proc.stdin.close()
        except BrokenPipeError:
            pass
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        proc.wait()
    for t in threads:
        t.join(timeout=5)
    if drew[0]:
        sys.stderr.write("\n")
        sys.stderr.flush()
    return Completed(proc.returncode, b"".join(out_chunks).decode(errors="replace"),
                     b"".join(err_chunks).decode(errors="replace"), timed_out)


def result_from(stdout: str) -> dict | None:
    """The runner's JSON result, or None when the output holds no result line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            try:
                return json.loads(line[len(MARKER):])
            except json.JSONDecodeError:
                return None
    return None


def last_line(text: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:limit] if lines else "no output"
