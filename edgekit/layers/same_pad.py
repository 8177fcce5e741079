"""TensorFlow/TFLite "SAME" padding as an explicit layer, for convs whose runtime pads for free.

PyTorch pads symmetrically (``padding=k // 2`` on both sides). TFLite's SAME padding computes
the output size ``ceil(n / s)`` and pads ``total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)``
pixels, ``total // 2`` before and the rest after (``tensorflow/lite/kernels/padding.h``,
``ComputePaddingHeightWidth``). For stride 1 and an odd kernel both agree. For a stride-2 3x3
conv on an even size they do not: PyTorch reads pixels -1..n-2 (its last padded column is never
used), TFLite reads 0..n-1 (one pixel of padding after). A converter can only keep PyTorch's
window with an explicit PAD op before a VALID conv: a full copy of the activation, in the arena
and in time. Padding the TFLite way instead lets the conv use SAME padding, which TFLite,
TFLite-Micro and XNNPACK compute inside the conv kernel (no copy).

That shifts the stride-2 window by one pixel: it is a different model (weights trained with one
padding are not exact for the other), so edgekit uses it only where a model asks for it
(``ConvNormAct(padding="same")``, the blocks' ``pad_mode="same"``, and the registered
microcontroller networks), never on a user's model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.errors import UsageError
from edgekit.padding import same_pads


@torch.fx.wrap
def same_pad2d(x, kernel: int, stride: int, dilation: int = 1):
    """Zero-pad the last two dims of ``x`` as TFLite SAME does for this conv (a leaf for fx)."""
    top, bottom = same_pads(int(x.shape[-2]), kernel, stride, dilation)
    left, right = same_pads(int(x.shape[-1]), kernel, stride, dilation)
    if not (top or bottom or left or right):
        return x
    return F.pad(x, (left, right, top, bottom))


class SamePad2d(nn.Module):
    """Zero padding that makes the following VALID conv compute TFLite's SAME convolution."""

    def __init__(self, kernel_size: int, stride: int, dilation: int = 1):
        super().__init__()
        for name, v in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise UsageError(f"SamePad2d: {name} must be a positive integer, got {v!r}")
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation

    def forward(self, x):
        return same_pad2d(x, self.kernel_size, self.stride, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, dilation={self.dilation}"
