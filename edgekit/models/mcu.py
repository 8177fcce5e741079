"""Networks sized for microcontrollers (int8: activations < ~100 KiB, weights < ~300 KiB).

``mcu_mobilenet_v1`` is MobileNetV1 at width 0.25 and 96x96, the shape of the
TFLite-Micro person-detection example (which uses 96x96 grayscale, 2 classes): no
residual adds, so nothing is held across layers and every op is a plain TFLM kernel.
``mcunet_tiny`` is a MobileNetV2-style net with narrow early stages and a small
expansion at 48x48.

Both pad their convolutions as TFLite's SAME (``pad_mode="same"``, the default here and only
here; see ``edgekit.layers.same_pad``): on a stride-2 layer the window starts at pixel 0 and
the one padded pixel is after the last one, as in TensorFlow-trained MCU models. The device
then pads inside the conv kernel, where PyTorch's symmetric padding needs an explicit PAD op
(a copy of the activation) before each stride-2 conv. It is a model choice: weights trained
with ``pad_mode="torch"`` (PyTorch's padding) are not exact for ``"same"`` and the other way
round. ``pad_mode="torch"`` builds the networks as edgekit had them before.
"""

from __future__ import annotations

from torch import nn

from edgekit.layers import make_divisible
from edgekit.layers._checks import check_pad_mode
from edgekit.models._decode import EdgeNet, Style, check_num_classes, check_width, decode, linear_head

MOBILENET_V1 = (
    ("conv", 3, 32, 2, "relu6"),
    # kind  c     n  s
    ("dws", 64, 1, 1),
    ("dws", 128, 1, 2),
    ("dws", 128, 1, 1),
    ("dws", 256, 1, 2),
    ("dws", 256, 1, 1),
    ("dws", 512, 1, 2),
    ("dws", 512, 5, 1),
    ("dws", 1024, 1, 2),
    ("dws", 1024, 1, 1),
)

MCUNET_TINY = (
    ("conv", 3, 8, 2, "relu6"),
    # kind t  c   n  s
    ("ir", 1, 8, 1, 1),
    ("ir", 2, 16, 1, 2),  # a small expansion where the maps are 48x48
    ("ir", 3, 16, 1, 1),
    ("ir", 4, 24, 2, 2),
    ("ir", 4, 40, 2, 2),
    ("ir", 4, 48, 2, 1),
    ("ir", 5, 96, 2, 2),
    ("conv", 1, 192, 1, "relu6"),
)


def _rounder(width: float):
    return lambda c: make_divisible(c * width, 8)


def mcu_mobilenet_v1(*, width: float = 0.25, num_classes: int = 10, pad_mode: str = "same") -> EdgeNet:
    check_width("mcu_mobilenet_v1", width)
    check_num_classes(num_classes)
    check_pad_mode("mcu_mobilenet_v1", pad_mode)
    features, c = decode(MOBILENET_V1, style=Style(round_channels=_rounder(width), act="relu6", pad_mode=pad_mode))
    return EdgeNet(features, nn.Sequential(*linear_head(c, num_classes)))


def mcunet_tiny(*, width: float = 1.0, num_classes: int = 10, pad_mode: str = "same") -> EdgeNet:
    check_width("mcunet_tiny", width)
    check_num_classes(num_classes)
    check_pad_mode("mcunet_tiny", pad_mode)
    features, c = decode(MCUNET_TINY, style=Style(round_channels=_rounder(width), act="relu6", pad_mode=pad_mode))
    return EdgeNet(features, nn.Sequential(*linear_head(c, num_classes)))
