"""Calibration data for int8 quantization: a folder of images, a .npy array, or random.

Returns a float32 array shaped (N, *input_shape) — N samples, each with batch 1 — so each
sample can be fed to the model as is.
"""

from __future__ import annotations

import numpy as np

from edgekit.errors import UsageError, checked_path
from edgekit.images import IMAGE_SUFFIXES, image_file_sample


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
        samples = _check_array(arr, input_shape, text)[:max_samples]
        return samples, f"{min(len(arr), max_samples)} samples from {text}", []
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
    if len(input_shape) != 4:
        raise UsageError(f"image calibration needs an N,C,H,W input shape (got {input_shape})")
    return np.stack([image_file_sample(f, input_shape) for f in files])
