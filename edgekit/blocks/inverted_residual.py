"""Inverted residual with linear bottleneck (MobileNetV2, Sandler et al. 2018; MobileNetV3)."""

from __future__ import annotations

from torch import Tensor, nn

from edgekit.errors import UsageError
from edgekit.layers._checks import check_channels, check_conv_block
from edgekit.layers.activations import ActLayer
from edgekit.layers.conv_norm_act import ConvNormAct
from edgekit.layers.squeeze_excite import SqueezeExcite, make_divisible


class InvertedResidual(nn.Module):
    """expand 1x1 -> depthwise kxk -> optional SE -> linear 1x1 projection (+ skip).

    The expanded width is ``exp_channels`` if given (MobileNetV3 tables), else
    ``round(in_channels * expand_ratio)`` (MobileNetV2). The expand conv is skipped
    (``nn.Identity``) when the expanded width equals ``in_channels``.
    With ``use_se`` the SE squeeze width is ``se_channels`` or
    ``make_divisible(exp // 4, 8)`` and it uses ``se_act`` + ``se_gate``
    (ReLU + Hardsigmoid, as torchvision's MobileNetV3).
    ``self.use_residual = stride == 1 and in_channels == out_channels``.
    ``pad_mode="same"`` pads the depthwise conv as TFLite's SAME (``edgekit.layers.same_pad``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        expand_ratio: float | None = None,
        exp_channels: int | None = None,
        kernel_size: int = 3,
        stride: int = 1,
        use_se: bool = False,
        se_channels: int | None = None,
        act_layer: ActLayer = "relu6",
        se_act: ActLayer = "relu",
        se_gate: ActLayer = "hard_sigmoid",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        pad_mode: str = "torch",
    ):
        super().__init__()
        owner = type(self).__name__
        padding = check_conv_block(owner, in_channels, out_channels, kernel_size, stride, pad_mode)
        if exp_channels is None:
            if expand_ratio is None:
                raise UsageError(f"{owner}: give expand_ratio or exp_channels (both are None)")
            if not expand_ratio > 0:
                raise UsageError(f"{owner}: expand_ratio must be > 0, got {expand_ratio!r}")
            exp_channels = int(round(in_channels * expand_ratio))
        elif expand_ratio is not None:
            raise UsageError(
                f"{owner}: give expand_ratio={expand_ratio!r} or exp_channels={exp_channels!r}, "
                "not both"
            )
        check_channels(owner, exp_channels=exp_channels)
        norm = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)

        self.use_residual = stride == 1 and in_channels == out_channels
        self.exp_channels = exp_channels
        self.expand = (
            ConvNormAct(in_channels, exp_channels, 1, act_layer=act_layer, **norm)
            if exp_channels != in_channels
            else nn.Identity()
        )
        self.dw = ConvNormAct(
            exp_channels, exp_channels, kernel_size, stride=stride, groups=exp_channels,
            padding=padding, act_layer=act_layer, **norm,
        )
        if use_se:
            if se_channels is None:
                se_channels = make_divisible(exp_channels // 4, 8)
            self.se = SqueezeExcite(
                exp_channels, rd_channels=se_channels, act_layer=se_act, gate_layer=se_gate
            )
        else:
            self.se = nn.Identity()
        self.project = ConvNormAct(exp_channels, out_channels, 1, act_layer=None, **norm)

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.se(self.dw(self.expand(x))))
        if self.use_residual:
            out = out + x
        return out
