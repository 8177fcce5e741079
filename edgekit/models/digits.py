"""The default model's trained weights and its data: scikit-learn's ``load_digits``.

``load_digits`` holds 1,797 labelled 8×8 grey images of handwritten digits (values 0..16) inside
the scikit-learn wheel (no download). edgekit stores them as uint8 pictures (``round(v * 255 /
16)``, 0..255); the loader turns them into model inputs with ``edgekit.images.pixel_samples`` (bicubic
resize to 96×96, grey replicated to RGB, /255, ImageNet mean/std), the preprocessing the build
applies to a folder of images. Files (package data, written by ``edgekit.training``):

- ``data/mcu_mobilenet_v1_digits.pt``: the state dict of ``mcu_mobilenet_v1`` (width 0.25,
  10 classes, 96×96) trained on the training split;
- ``data/digits_heldout.npz``: the held-out split, ``x`` uint8 (N, 8, 8) and ``y`` int64 (N,),
  the default model's evaluation set;
- ``data/digits_calibration.npz``: int8 calibration pictures drawn from the training split;
- ``data/mcu_mobilenet_v1_digits.json``: how the weights were made (seed, split, epochs, time,
  torch version, the architecture's fingerprint) and what they scored.

Only the default model with its default options is trained; any other width, class count or
resolution (``mcu_mobilenet_v1:width=0.5``) is an untrained architecture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from edgekit.models.catalog import DEFAULT_MODEL

DATA_DIR = Path(__file__).resolve().parent / "data"
WEIGHTS = DATA_DIR / "mcu_mobilenet_v1_digits.pt"
HELDOUT = DATA_DIR / "digits_heldout.npz"
CALIBRATION = DATA_DIR / "digits_calibration.npz"
INFO = DATA_DIR / "mcu_mobilenet_v1_digits.json"
# the options the weights were trained with (anything else is another, untrained network)
TRAINED_OPTIONS = {"width": 0.25, "num_classes": 10, "resolution": 96}
DIGITS_MAX = 16  # load_digits pixel values are 0..16


def is_trained(name: str, kwargs: dict | None = None) -> bool:
    """True for the default model with its default options (the only trained built-in)."""
    if name != DEFAULT_MODEL:
        return False
    return all(k in TRAINED_OPTIONS and v == TRAINED_OPTIONS[k] for k, v in (kwargs or {}).items())


def to_pixels(digits: np.ndarray) -> np.ndarray:
    """load_digits values (0..16, float) -> uint8 pictures 0..255."""
    return np.round(np.asarray(digits, np.float64) * 255.0 / DIGITS_MAX).astype(np.uint8)


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return z["x"], z["y"]


def heldout_pictures() -> tuple[np.ndarray, np.ndarray]:
    """The held-out split: uint8 (N, 8, 8) pictures and int64 labels."""
    return _npz(HELDOUT)


def calibration_pictures() -> np.ndarray:
    """The calibration pictures, uint8 (N, 8, 8) (``edgekit.images.pixel_samples`` makes them inputs)."""
    return _npz(CALIBRATION)[0]


def training_info() -> dict:
    return json.loads(INFO.read_text())


def architecture_fingerprint(module) -> str:
    """sha256 of the module's repr and its state dict's names and shapes: it changes when a
    layer, a padding or a stride changes, and then the weights must be trained again."""
    shapes = [(k, tuple(v.shape)) for k, v in module.state_dict().items()]
    return hashlib.sha256((repr(module) + repr(shapes)).encode()).hexdigest()[:16]
