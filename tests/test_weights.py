"""Trained weights: MODEL@weights.pt loads a state dict with torch.load(weights_only=True) and
never runs pickled code."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgekit.errors import UsageError
from edgekit.loader import load_model, parse_spec

ROOT = Path(__file__).resolve().parent.parent


def _trained_like(tmp_path, name="mcunet_tiny"):
    """A state dict that differs from the registry's seeded init (as trained weights would)."""
    m = load_model(name).module
    g = torch.Generator().manual_seed(123)
    state = {k: (v + torch.randn(v.shape, generator=g) * 0.01 if v.is_floating_point() else v)
             for k, v in m.state_dict().items()}
    path = tmp_path / "w.pt"
    torch.save(state, path)
    return state, path


def test_weights_are_loaded_exactly(tmp_path):
    state, path = _trained_like(tmp_path)
    loaded = load_model(f"mcunet_tiny@{path}")
    got = loaded.module.state_dict()
    assert set(got) == set(state)
    for k, v in state.items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0)
    assert not loaded.module.training


def test_checkpoint_wrappers_are_unwrapped(tmp_path):
    state, _ = _trained_like(tmp_path)
    p = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, p)
    got = load_model(f"mcunet_tiny@{p}").module.state_dict()
    torch.testing.assert_close(got["features.0.conv.weight"], state["features.0.conv.weight"], rtol=0, atol=0)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    with open(p, "wb") as f:
        pickle.dump({"features.0.conv.weight": _Evil(marker)}, f)
    with pytest.raises(UsageError, match="weights_only"):
        load_model(f"mcunet_tiny@{p}")
    assert not marker.exists()
    # and through the real command line: one line, exit 2, nothing ran
    r = subprocess.run([sys.executable, "-m", "edgekit", "check", f"mcunet_tiny@{p}"], capture_output=True,
                       text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not marker.exists()


def test_wrong_architecture_and_missing_file_are_clear(tmp_path):
    _, path = _trained_like(tmp_path, "mcunet_tiny")
    with pytest.raises(UsageError, match="do not match"):
        load_model(f"mcu_mobilenet_v1@{path}")
    with pytest.raises(UsageError, match="no such file"):
        parse_spec(f"mcunet_tiny@{tmp_path / 'nope.pt'}")
    (tmp_path / "m.tflite").write_bytes(b"TFL3")
    with pytest.raises(UsageError, match="artifact"):
        parse_spec(f"{tmp_path / 'm.tflite'}@{path}")


def test_default_model_with_weights_keeps_their_bn_statistics(tmp_path):
    """The default model re-estimates BN statistics only for its untrained init, never over
    trained weights."""
    state, path = _trained_like(tmp_path, "mcu_mobilenet_v1")
    got = load_model(f"mcu_mobilenet_v1@{path}")
    bn = [k for k in state if k.endswith("running_mean")][0]
    torch.testing.assert_close(got.module.state_dict()[bn], state[bn], rtol=0, atol=0)
    assert got.calibration is not None  # the shipped calibration set is still offered for int8
