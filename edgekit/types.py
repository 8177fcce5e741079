"""Type aliases of the public API (no runtime cost: nothing here imports torch)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from torch import nn

    from edgekit.loader import LoadedModel
    from edgekit.targets import Target

#: a size: bytes as an int, or a string such as "256kB", "1.5MiB" (edgekit.units.parse_size)
Size = int | str
#: a device: a Target, a catalogue id ("nrf52840-dk") or the path of a target .toml
TargetLike = Union["Target", str, os.PathLike]
#: a model: a MODEL spec string, a path to a .pt2/.tflite/.pte, an nn.Module (eval mode), a
#: LoadedModel, or None for the embedded default model
ModelLike = Union[str, os.PathLike, "nn.Module", "LoadedModel", None]
#: an input shape such as (1, 3, 96, 96)
Shape = tuple[int, ...]
#: calibration data: a folder of images, a .npy path, "random", an array, or None (the model's own set)
CalibrationLike = Any
