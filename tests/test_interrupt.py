"""Interrupting a build at any stage leaves the output folder as it was, or with complete
artifacts only, and no staging folder behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay_s", [1.0, 4.0, 8.0, 11.0])
@pytest.mark.export
def test_interrupted_build_leaves_nothing_half_written(tmp_path, sig, delay_s):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("from before")
    p = subprocess.Popen([sys.executable, "-m", "edgekit", "build", "--target", "tflite", "--sram", "256kB",
                          "-o", str(out)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    time.sleep(delay_s)
    p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    err = err.decode(errors="replace")
    names = sorted(x.name for x in out.iterdir())
    complete = ["model.tflite", "model_data.cc", "model_data.h", "old.txt", "op_resolver.h", "report.json"]
    if p.returncode == 0:  # the build finished before the signal arrived
        assert names == complete
    else:
        # 130 from edgekit's handler; -SIGINT when CPython itself re-raises the interrupt at exit
        # (a KeyboardInterrupt that passed through PyRun_* code of an extension module being
        # imported sets CPython's "unhandled interrupt" flag even though edgekit caught it); -sig
        # when the signal lands before edgekit has installed its handler.
        assert p.returncode in (130, 2, -signal.SIGINT, -sig), (p.returncode, err)
        assert "Traceback" not in err, err
        # as before, or (interrupted while moving files in) only complete artifacts
        assert set(names) <= set(complete) and "old.txt" in names
        for n in names:
            assert (out / n).stat().st_size > 0
    assert not list(tmp_path.glob(".edgekit-build-*")), "staging folder left behind"
