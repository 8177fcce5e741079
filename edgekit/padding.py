"""TFLite's SAME padding arithmetic, torch-free (layers, the .tflite post-pass and analysis use it).

``tensorflow/lite/kernels/padding.h`` (``ComputePaddingHeightWidth``): the output has
``ceil(n / s)`` pixels and the input is padded by ``total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)``
pixels, ``total // 2`` before and the rest after.
"""

from __future__ import annotations


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of TFLite SAME along one axis of ``size`` pixels."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2
