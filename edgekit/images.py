"""Images as edgekit's built-in models take them: one preprocessing for calibration, evaluation
and training.

A picture (a file, or a uint8 array H×W or H×W×C) becomes a float32 sample (1, C, H, W):

1. colour: converted with Pillow to "RGB" for 3-channel models (a grey picture is replicated
   into three equal channels) or "L" for 1-channel models;
2. size: resized with Pillow to the model's H×W with **bicubic** interpolation
   (``Image.Resampling.BICUBIC``, Pillow's own default for ``Image.resize``, in 8-bit
   fixed-point arithmetic: deterministic, and the result stays in 0..255, so overshoot at
   sharp edges is clipped rather than wrapped);
3. range: divided by 255 to [0, 1], then, for 3-channel models, normalised with the ImageNet
   mean/std that every built-in model expects (``edgekit.models.catalog``).

A folder of PNGs and an ``.npz`` of the same uint8 pixels therefore give bit-identical samples:
PNG is lossless and both go through this one function.
"""

from __future__ import annotations

import numpy as np

from edgekit.errors import EdgekitError, UsageError
from edgekit.models import catalog

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm"}
IMAGENET_MEAN = np.array(catalog.IMAGENET_MEAN, dtype=np.float32)
IMAGENET_STD = np.array(catalog.IMAGENET_STD, dtype=np.float32)


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow comes with torchvision
        raise EdgekitError("reading images needs Pillow: pip install pillow") from exc
    return Image


def _check_shape(input_shape) -> tuple[int, int, int]:
    if len(input_shape) != 4 or input_shape[1] not in (1, 3):
        raise UsageError(f"images need an N,C,H,W model input with 1 or 3 channels (got {tuple(input_shape)})")
    _, c, h, w = (int(d) for d in input_shape)
    return c, h, w


def _to_sample(im, c: int, h: int, w: int) -> np.ndarray:
    Image = _pil()
    im = im.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BICUBIC)
    a = np.asarray(im, dtype=np.float32) / 255.0
    if c == 1:
        a = a[None]
    else:
        a = ((a - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    return a[None].astype(np.float32)


def image_file_sample(path, input_shape) -> np.ndarray:
    """One image file -> a (1, C, H, W) float32 sample; an unreadable file is a UsageError naming it."""
    c, h, w = _check_shape(input_shape)
    Image = _pil()
    try:
        with Image.open(path) as im:
            return _to_sample(im, c, h, w)
    except Exception as exc:
        raise UsageError(f"cannot read image {path}: {type(exc).__name__}") from None


def pixel_samples(pixels: np.ndarray, input_shape) -> np.ndarray:
    """uint8 pictures (N, H, W) grey, or (N, H, W, 1|3) -> float32 samples (N, 1, C, H', W')."""
    c, h, w = _check_shape(input_shape)
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise UsageError(f"pictures must be uint8 (0..255), got {pixels.dtype}")
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if not (pixels.ndim == 3 or (pixels.ndim == 4 and pixels.shape[-1] == 3)):
        raise UsageError(f"pictures must be shaped (N, H, W) or (N, H, W, 3), got {pixels.shape}")
    Image = _pil()
    out = np.empty((len(pixels), 1, c, h, w), np.float32)
    for i, p in enumerate(pixels):
        out[i] = _to_sample(Image.fromarray(p), c, h, w)
    return out
