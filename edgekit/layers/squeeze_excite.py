"""Squeeze-and-Excitation (Hu et al. 2018) as used by MobileNetV3, with 1x1 convs."""

from __future__ import annotations

from torch import Tensor, nn

from edgekit.errors import UsageError
from edgekit.layers._checks import check_channels
from edgekit.layers.activations import ActLayer, get_act


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` without going below 90 % of ``v``.

    The rule of the TF MobileNet reference code and torchvision's ``_make_divisible``.
    """
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class SqueezeExcite(nn.Module):
    """avg pool -> ``fc1`` (1x1 conv) -> act -> ``fc2`` (1x1 conv) -> gate -> ``x * gate``.

    The squeeze width is ``rd_channels`` if given, else
    ``make_divisible(channels * rd_ratio, divisor)``. Both 1x1 convs have a bias, as in
    torchvision's ``SqueezeExcitation`` (so parameter counts match it).
    """

    def __init__(
        self,
        channels: int,
        *,
        rd_ratio: float = 0.25,
        rd_channels: int | None = None,
        act_layer: ActLayer = "relu",
        gate_layer: ActLayer = "sigmoid",
        divisor: int = 8,
    ):
        super().__init__()
        owner = type(self).__name__
        check_channels(owner, channels=channels)
        if rd_channels is None:
            if not rd_ratio > 0:
                raise UsageError(f"{owner}: rd_ratio must be > 0, got {rd_ratio!r}")
            rd_channels = make_divisible(channels * rd_ratio, divisor)
        check_channels(owner, rd_channels=rd_channels)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, rd_channels, 1)
        self.act = get_act(act_layer)()
        self.fc2 = nn.Conv2d(rd_channels, channels, 1)
        self.gate = get_act(gate_layer)()

    def forward(self, x: Tensor) -> Tensor:
        s = self.avgpool(x)
        s = self.act(self.fc1(s))
        s = self.gate(self.fc2(s))
        return x * s
