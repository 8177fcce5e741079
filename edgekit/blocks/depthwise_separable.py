"""Depthwise-separable convolution (MobileNetV1, Howard et al. 2017)."""

from __future__ import annotations

from torch import Tensor, nn

from edgekit.errors import UsageError
from edgekit.layers._checks import check_conv_block
from edgekit.layers.activations import ActLayer
from edgekit.layers.conv_norm_act import ConvNormAct
from edgekit.layers.squeeze_excite import SqueezeExcite


class DepthwiseSeparable(nn.Module):
    """depthwise kxk ConvNormAct -> optional SE -> pointwise 1x1 ConvNormAct (+ skip).

    ``self.use_residual`` is ``residual and stride == 1 and in_channels == out_channels``:
    a skip that cannot be formed is not added (as timm's ``has_skip``).
    ``se_ratio`` > 0 adds a Squeeze-Excite on the depthwise output (squeeze width from
    ``in_channels * se_ratio``). ``pw_act=False`` makes the projection linear.
    ``pad_mode="same"`` pads the depthwise conv as TFLite's SAME (``edgekit.layers.same_pad``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        se_ratio: float = 0.0,
        act_layer: ActLayer = "relu",
        pw_act: bool = True,
        residual: bool = False,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        pad_mode: str = "torch",
    ):
        super().__init__()
        owner = type(self).__name__
        padding = check_conv_block(owner, in_channels, out_channels, kernel_size, stride, pad_mode)
        if se_ratio < 0 or se_ratio >= 1:
            raise UsageError(f"{owner}: se_ratio must be in [0, 1), got {se_ratio!r}")
        norm = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.use_residual = bool(residual) and stride == 1 and in_channels == out_channels
        self.dw = ConvNormAct(
            in_channels, in_channels, kernel_size, stride=stride, groups=in_channels,
            padding=padding, act_layer=act_layer, **norm,
        )
        self.se = (
            SqueezeExcite(in_channels, rd_ratio=se_ratio) if se_ratio > 0 else nn.Identity()
        )
        self.pw = ConvNormAct(
            in_channels, out_channels, 1, act_layer=act_layer if pw_act else None, **norm
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.pw(self.se(self.dw(x)))
        if self.use_residual:
            out = out + x
        return out
