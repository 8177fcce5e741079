"""Calibration data for int8 quantization: a folder of images, a .npy array, or random.

Returns a float32 array shaped (N, *input_shape) — N samples, each with batch 1 — so each
sample can be fed to the model as is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError, UsageError, checked_path
from edgekit.models.catalog import IMAGENET_MEAN as _MEAN
from edgekit.models.catalog import IMAGENET_STD as _STD

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm"}
IMAGENET_MEAN = np.array(_MEAN, dtype=np.float32)
IMAGENET_STD = np.array(_STD, dtype=np.float32)


def load_calibration(source, input_shape: tuple[int, ...], *, max_samples: int = 128, seed: int = 0):
    """Return (samples, description, warnings)."""
    input_shape = tuple(input_shape)
    if source is None:
        raise UsageError("int8 needs calibration data: pass --calibration DIR (images) or FILE.npy, "
                         "or --calibration random to quantize with random data (poor accuracy)")
    if isinstance(source, np.ndarray):
        return _check_array(source, input_shape, "array"), f"array of {len(source)}", []
    text = str(source)
    if text == "random":
        rng = np.random.default_rng(seed)
        arr = rng.standard_normal((32, *input_shape)).astype(np.float32)
        return arr, "32 random samples", ["calibrating with random data: int8 accuracy on real inputs will be poor"]
    p = checked_path(text, "calibration path")
    if not p.exists():
        raise UsageError(f"no such calibration file or folder: {text}")
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            raise UsageError(f"calibration folder {text} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        files = files[:max_samples]
        return _load_images(files, input_shape), f"{len(files)} images from {text}", []
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise UsageError(f"cannot read {text} as a .npy array: {type(exc).__name__}: {exc}"[:300]) from None
        return _check_array(arr, input_shape, text)[:max_samples], f"{min(len(arr), max_samples)} samples from {text}", []
    raise UsageError(f"calibration must be a folder of images, a .npy file or 'random' (got {text})")


def _check_array(arr: np.ndarray, input_shape, what: str) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.number):
        raise UsageError(f"calibration {what} has dtype {arr.dtype}; expected numbers")
    arr = np.asarray(arr, dtype=np.float32)
    sample = tuple(input_shape)
    if arr.shape[1:] == sample:
        out = arr
    elif arr.shape[1:] == sample[1:] and sample[0] == 1:
        out = arr[:, None]
    elif arr.shape == sample:
        out = arr[None]
    else:
        raise UsageError(f"calibration {what} has shape {arr.shape}; expected (N, {', '.join(map(str, sample[1:]))}) "
                         f"for input shape {sample}")
    if len(out) == 0:
        raise UsageError(f"calibration {what} is empty")
    if not np.all(np.isfinite(out)):
        raise UsageError(f"calibration {what} contains NaN or infinite values")
    return out


def _load_images(files, input_shape) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow comes with torchvision
        raise EdgekitError("reading calibration images needs Pillow: pip install pillow") from exc
    if len(input_shape) != 4:
        raise UsageError(f"image calibration needs an N,C,H,W input shape (got {input_shape})")
    _, c, h, w = input_shape
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("L" if c == 1 else "RGB").resize((w, h))
                a = np.asarray(im, dtype=np.float32) / 255.0
        except Exception as exc:
            raise UsageError(f"cannot read calibration image {f}: {type(exc).__name__}") from None
        if c == 1:
            a = a[None]
        else:
            a = (a - IMAGENET_MEAN) / IMAGENET_STD
            a = a.transpose(2, 0, 1)
        out.append(a[None].astype(np.float32))
    return np.stack(out)
