"""SqueezeNet's Fire module (Iandola et al. 2016)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgekit.layers._checks import check_channels
from edgekit.layers.conv_norm_act import ConvNormAct


class Fire(nn.Module):
    """squeeze 1x1 -> ReLU -> [expand 1x1 -> ReLU, expand 3x3 -> ReLU] -> concat.

    With the default ``norm=False`` the convs have a bias and no BN, exactly as
    torchvision's ``Fire``; ``norm=True`` puts a BatchNorm2d after each conv instead.
    """

    def __init__(
        self,
        in_channels: int,
        squeeze_channels: int,
        expand1x1_channels: int,
        expand3x3_channels: int,
        *,
        norm: bool = False,
    ):
        super().__init__()
        check_channels(
            type(self).__name__,
            in_channels=in_channels,
            squeeze_channels=squeeze_channels,
            expand1x1_channels=expand1x1_channels,
            expand3x3_channels=expand3x3_channels,
        )
        self.squeeze = ConvNormAct(in_channels, squeeze_channels, 1, norm=norm)
        self.expand1x1 = ConvNormAct(squeeze_channels, expand1x1_channels, 1, norm=norm)
        self.expand3x3 = ConvNormAct(squeeze_channels, expand3x3_channels, 3, norm=norm)
        self.out_channels = expand1x1_channels + expand3x3_channels

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze(x)
        return torch.cat((self.expand1x1(x), self.expand3x3(x)), dim=1)
