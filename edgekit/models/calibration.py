"""Synthetic calibration images for post-training quantization (no dataset download).

The images are not a dataset: they only give activations realistic ranges (smooth
intensity ramps, soft blobs, sharp edges, some fine texture) so that int8 scales are
neither blown up by noise nor collapsed by constant inputs.
"""

from __future__ import annotations

import math

import torch

from edgekit.errors import UsageError
from edgekit.models.catalog import IMAGENET_MEAN, IMAGENET_STD
from edgekit.models.registry import default_resolution


def synthetic_images(n: int, resolution: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` RGB images (n, 3, resolution, resolution) in [0, 1], a pure function of the seed."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=g)

    axis = torch.linspace(0.0, 1.0, resolution)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")  # (R, R)
    xx, yy = xx[None, None], yy[None, None]  # (1, 1, R, R)

    # 1. a smooth ramp in a random direction, a random colour at each end
    angle = rand(n, 1, 1, 1) * 2 * math.pi
    ramp = (torch.cos(angle) * (xx - 0.5) + torch.sin(angle) * (yy - 0.5)) / math.sqrt(0.5) + 0.5
    c0, c1 = rand(n, 3, 1, 1), rand(n, 3, 1, 1)
    img = c0 + (c1 - c0) * ramp.clamp(0, 1)

    # 2. soft Gaussian blobs (objects), each with its own colour
    blobs = 4
    cx, cy = rand(n, blobs, 1, 1), rand(n, blobs, 1, 1)
    sigma = 0.04 + 0.18 * rand(n, blobs, 1, 1)
    weight = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))  # (n, B, R, R)
    colour = rand(n, blobs, 3) - 0.5
    img = img + torch.einsum("nbhw,nbc->nchw", weight, colour)

    # 3. sharp edges: a filled rectangle and a half-plane step
    x0, x1 = rand(n, 2, 1, 1).sort(dim=1).values.unbind(1)
    y0, y1 = rand(n, 2, 1, 1).sort(dim=1).values.unbind(1)
    rect = ((xx >= x0[:, None]) & (xx <= x1[:, None]) & (yy >= y0[:, None]) & (yy <= y1[:, None]))
    img = img + rect.float() * (rand(n, 3, 1, 1) - 0.5) * 0.8
    a2 = rand(n, 1, 1, 1) * 2 * math.pi
    step = (torch.cos(a2) * (xx - rand(n, 1, 1, 1)) + torch.sin(a2) * (yy - rand(n, 1, 1, 1))) > 0
    img = img + step.float() * (rand(n, 3, 1, 1) - 0.5) * 0.5

    # 4. a little fine texture (stripes) and sensor noise
    freq = 4 + 20 * rand(n, 1, 1, 1)
    a3 = rand(n, 1, 1, 1) * math.pi
    stripes = torch.sin(2 * math.pi * freq * (torch.cos(a3) * xx + torch.sin(a3) * yy))
    img = img + 0.06 * stripes + 0.02 * torch.randn(n, 3, resolution, resolution, generator=g)
    return img.clamp(0.0, 1.0)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation, as every built-in model expects."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def calibration_data(name: str, n: int = 32, seed: int = 0, *,
                     resolution: int | None = None) -> torch.Tensor:
    """A deterministic calibration batch (n, 3, R, R) for model ``name``, already normalised.

    R is the model's default resolution unless ``resolution`` is given.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise UsageError(f"calibration batch size n must be a positive integer, got {n!r}")
    res = default_resolution(name) if resolution is None else resolution
    if isinstance(res, bool) or not isinstance(res, int) or res < 8:
        raise UsageError(f"calibration resolution must be an integer >= 8, got {res!r}")
    return normalize(synthetic_images(n, res, seed=seed))
