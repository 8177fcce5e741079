"""ShuffleNetV2 unit (Ma et al. 2018): channel split, two branches, concat, shuffle."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgekit.errors import UsageError
from edgekit.layers._checks import check_channels, check_stride
from edgekit.layers.channel_shuffle import channel_shuffle
from edgekit.layers.conv_norm_act import ConvNormAct


def _branch(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """1x1 ConvBNReLU -> 3x3 depthwise ConvBN (no act) -> 1x1 ConvBNReLU."""
    return nn.Sequential(
        ConvNormAct(in_channels, out_channels, 1),
        ConvNormAct(out_channels, out_channels, 3, stride=stride, groups=out_channels,
                    act_layer=None),
        ConvNormAct(out_channels, out_channels, 1),
    )


class ShuffleUnit(nn.Module):
    """Stride 1: split channels in half, ``branch2`` on the second half, concat, shuffle(2).
    Stride 2: ``branch1`` (depthwise 3x3 s2 BN -> 1x1 BN ReLU) and ``branch2`` on the
    whole input, concat, shuffle(2). Same layers and parameter counts as torchvision's
    ``shufflenetv2.InvertedResidual``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int):
        super().__init__()
        owner = type(self).__name__
        check_channels(owner, in_channels=in_channels, out_channels=out_channels)
        check_stride(owner, stride)
        if out_channels % 2:
            raise UsageError(
                f"{owner}: out_channels must be even for the channel split, got {out_channels}"
            )
        if stride == 1 and in_channels != out_channels:
            raise UsageError(
                f"{owner}: stride 1 needs in_channels == out_channels, "
                f"got in_channels={in_channels}, out_channels={out_channels}"
            )
        branch = out_channels // 2
        self.stride = stride
        self.split = stride == 1
        if self.split:
            self.branch1 = nn.Identity()
            self.branch2 = _branch(branch, branch, 1)
        else:
            self.branch1 = nn.Sequential(
                ConvNormAct(in_channels, in_channels, 3, stride=stride, groups=in_channels,
                            act_layer=None),
                ConvNormAct(in_channels, branch, 1),
            )
            self.branch2 = _branch(in_channels, branch, stride)

    def forward(self, x: Tensor) -> Tensor:
        if self.split:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((self.branch1(x1), self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)
