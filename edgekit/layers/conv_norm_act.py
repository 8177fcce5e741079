"""Conv2d -> BatchNorm2d -> activation, the unit every block is made of."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from edgekit.errors import UsageError
from edgekit.layers._checks import check_channels, check_groups, check_kernel
from edgekit.layers.activations import ActLayer, get_act
from edgekit.layers.same_pad import SamePad2d


class ConvNormAct(nn.Sequential):
    """``conv`` -> ``bn`` -> ``act`` (torchvision's ``Conv2dNormActivation``).

    * ``padding`` defaults to ``(kernel_size - 1) // 2 * dilation`` (PyTorch's symmetric padding,
      TFLite's SAME for stride 1). ``padding="same"`` pads as TFLite's SAME for every stride:
      symmetric when that is the same thing, else a :class:`SamePad2d` child ``pad`` before a
      VALID conv (see ``edgekit.layers.same_pad``: no PAD op on the device, the window moves).
    * The conv has a bias only when there is no norm (a bias before BN is wasted).
    * ``bn`` is a plain ``nn.BatchNorm2d`` so exact-type conv/BN fusers find it.
    * A missing part (``norm=False``, ``act_layer=None``/"identity") is ``nn.Identity()``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int | str | None = None,
        dilation: int = 1,
        groups: int = 1,
        norm: bool = True,
        act_layer: ActLayer = "relu",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ):
        owner = type(self).__name__
        check_channels(owner, in_channels=in_channels, out_channels=out_channels)
        check_kernel(owner, kernel_size)
        check_groups(owner, in_channels, out_channels, groups)
        if isinstance(stride, bool) or not isinstance(stride, int) or stride <= 0:
            raise UsageError(f"{owner}: stride must be a positive integer, got {stride!r}")
        pad = None
        if padding == "same":
            eff = (kernel_size - 1) * dilation
            if stride == 1 and eff % 2 == 0:
                padding = eff // 2
            else:
                pad, padding = SamePad2d(kernel_size, stride, dilation), 0
        elif padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        elif isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise UsageError(f"{owner}: padding must be a non-negative integer, None or 'same', got {padding!r}")
        act = get_act(act_layer)
        super().__init__(
            OrderedDict(
                **({"pad": pad} if pad is not None else {}),
                conv=nn.Conv2d(
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride=stride,
                    padding=padding,
                    dilation=dilation,
                    groups=groups,
                    bias=not norm,
                ),
                bn=nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
                if norm
                else nn.Identity(),
                act=act(),
            )
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
