"""SqueezeNet 1.0 and 1.1 as tables (no BN, conv biases, as torchvision)."""

from __future__ import annotations

from torch import nn

from edgekit.models._decode import EdgeNet, Style, check_num_classes, check_width, decode

SQUEEZENET1_0 = (
    ("conv", 7, 96, 2, "relu", "valid"),
    ("maxpool", 3, 2, "ceil"),
    # kind   squeeze e1x1 e3x3
    ("fire", 16, 64, 64),
    ("fire", 16, 64, 64),
    ("fire", 32, 128, 128),
    ("maxpool", 3, 2, "ceil"),
    ("fire", 32, 128, 128),
    ("fire", 48, 192, 192),
    ("fire", 48, 192, 192),
    ("fire", 64, 256, 256),
    ("maxpool", 3, 2, "ceil"),
    ("fire", 64, 256, 256),
)

SQUEEZENET1_1 = (
    ("conv", 3, 64, 2, "relu", "valid"),
    ("maxpool", 3, 2, "ceil"),
    ("fire", 16, 64, 64),
    ("fire", 16, 64, 64),
    ("maxpool", 3, 2, "ceil"),
    ("fire", 32, 128, 128),
    ("fire", 32, 128, 128),
    ("maxpool", 3, 2, "ceil"),
    ("fire", 48, 192, 192),
    ("fire", 48, 192, 192),
    ("fire", 64, 256, 256),
    ("fire", 64, 256, 256),
)


def _squeezenet(table, name: str, width: float, num_classes: int, dropout: float) -> EdgeNet:
    check_width(name, width, (1.0,))
    check_num_classes(num_classes)
    features, c = decode(table, style=Style(norm=False))
    head = nn.Sequential(
        nn.Dropout(dropout),
        nn.Conv2d(c, num_classes, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
    )
    return EdgeNet(features, head)


def squeezenet1_0(*, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.5) -> EdgeNet:
    return _squeezenet(SQUEEZENET1_0, "squeezenet1_0", width, num_classes, dropout)


def squeezenet1_1(*, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.5) -> EdgeNet:
    return _squeezenet(SQUEEZENET1_1, "squeezenet1_1", width, num_classes, dropout)
