"""MobileNetV2 and MobileNetV3 as tables (the same configurations as torchvision)."""

from __future__ import annotations

from torch import nn

from edgekit.layers import ConvNormAct, make_divisible
from edgekit.models._decode import EdgeNet, Style, check_num_classes, check_width, decode, linear_head

MOBILENET_V2 = (
    ("conv", 3, 32, 2, "relu6"),
    # kind  t  c    n  s
    ("ir", 1, 16, 1, 1),
    ("ir", 6, 24, 2, 2),
    ("ir", 6, 32, 3, 2),
    ("ir", 6, 64, 4, 2),
    ("ir", 6, 96, 3, 1),
    ("ir", 6, 160, 3, 2),
    ("ir", 6, 320, 1, 1),
)
MOBILENET_V2_LAST = 1280

MOBILENET_V3_LARGE = (
    ("conv", 3, 16, 2, "hard_swish"),
    # kind     k  exp  c    se     act           s
    ("bneck", 3, 16, 16, False, "relu", 1),
    ("bneck", 3, 64, 24, False, "relu", 2),
    ("bneck", 3, 72, 24, False, "relu", 1),
    ("bneck", 5, 72, 40, True, "relu", 2),
    ("bneck", 5, 120, 40, True, "relu", 1),
    ("bneck", 5, 120, 40, True, "relu", 1),
    ("bneck", 3, 240, 80, False, "hard_swish", 2),
    ("bneck", 3, 200, 80, False, "hard_swish", 1),
    ("bneck", 3, 184, 80, False, "hard_swish", 1),
    ("bneck", 3, 184, 80, False, "hard_swish", 1),
    ("bneck", 3, 480, 112, True, "hard_swish", 1),
    ("bneck", 3, 672, 112, True, "hard_swish", 1),
    ("bneck", 5, 672, 160, True, "hard_swish", 2),
    ("bneck", 5, 960, 160, True, "hard_swish", 1),
    ("bneck", 5, 960, 160, True, "hard_swish", 1),
)
MOBILENET_V3_LARGE_LAST = 1280

MOBILENET_V3_SMALL = (
    ("conv", 3, 16, 2, "hard_swish"),
    # kind     k  exp  c   se     act           s
    ("bneck", 3, 16, 16, True, "relu", 2),
    ("bneck", 3, 72, 24, False, "relu", 2),
    ("bneck", 3, 88, 24, False, "relu", 1),
    ("bneck", 5, 96, 40, True, "hard_swish", 2),
    ("bneck", 5, 240, 40, True, "hard_swish", 1),
    ("bneck", 5, 240, 40, True, "hard_swish", 1),
    ("bneck", 5, 120, 48, True, "hard_swish", 1),
    ("bneck", 5, 144, 48, True, "hard_swish", 1),
    ("bneck", 5, 288, 96, True, "hard_swish", 2),
    ("bneck", 5, 576, 96, True, "hard_swish", 1),
    ("bneck", 5, 576, 96, True, "hard_swish", 1),
)
MOBILENET_V3_SMALL_LAST = 1024


def _rounder(width: float):
    return lambda c: make_divisible(c * width, 8)


def mobilenet_v2(*, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.2) -> EdgeNet:
    """MobileNetV2; the last conv never shrinks below 1280 (``max(1, width)``), as in the paper."""
    check_width("mobilenet_v2", width)
    check_num_classes(num_classes)
    features, c = decode(MOBILENET_V2, style=Style(round_channels=_rounder(width), act="relu6"))
    last = make_divisible(MOBILENET_V2_LAST * max(1.0, width), 8)
    head = nn.Sequential(
        ConvNormAct(c, last, 1, act_layer="relu6"),
        *linear_head(last, num_classes, dropout=dropout),
    )
    return EdgeNet(features, head)


def _mobilenet_v3(table, last_channels: int, name: str, width: float, num_classes: int,
                  dropout: float) -> EdgeNet:
    check_width(name, width)
    check_num_classes(num_classes)
    # torchvision: BatchNorm2d(eps=0.001, momentum=0.01) throughout MobileNetV3
    style = Style(round_channels=_rounder(width), bn_eps=1e-3, bn_momentum=0.01)
    features, c = decode(table, style=style)
    hidden = make_divisible(last_channels * width, 8)
    head = nn.Sequential(
        ConvNormAct(c, 6 * c, 1, act_layer="hard_swish", **style.bn),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(6 * c, hidden),
        nn.Hardswish(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )
    return EdgeNet(features, head)


def mobilenet_v3_large(*, width: float = 1.0, num_classes: int = 1000,
                       dropout: float = 0.2) -> EdgeNet:
    return _mobilenet_v3(MOBILENET_V3_LARGE, MOBILENET_V3_LARGE_LAST, "mobilenet_v3_large",
                         width, num_classes, dropout)


def mobilenet_v3_small(*, width: float = 1.0, num_classes: int = 1000,
                       dropout: float = 0.2) -> EdgeNet:
    return _mobilenet_v3(MOBILENET_V3_SMALL, MOBILENET_V3_SMALL_LAST, "mobilenet_v3_small",
                         width, num_classes, dropout)
