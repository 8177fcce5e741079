"""What many test files need: the CLI as a user runs it, and the one-line error it must print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, cwd=None, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m edgekit ARGS`` in a real child process, with this checkout first on the path."""
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def assert_one_line_error(p: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, exactly one non-empty stderr line, no traceback, the fragments in that line, and not
    the CLI's catch-all for an unhandled exception ("unexpected ..."). Returns the line."""
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr[-3000:]
    line = lines[0]
    assert line.startswith("edgekit: error: ") and len(line) > len("edgekit: error: ") + 10, line
    assert "unexpected" not in line.lower(), line
    for f in fragments:
        assert f.lower() in line.lower(), (f, line)
    return line
