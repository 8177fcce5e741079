"""ShuffleNet's channel shuffle as reshape -> transpose -> reshape, all of rank 4.

Deliberately not ``torch.channel_shuffle``/``nn.ChannelShuffle``: that aten op does not
survive export to the edge runtimes, while reshape/transpose do. And deliberately not the
textbook 5-D ``view(n, g, c/g, h, w)`` (torchvision's): TFLite-Micro's CMSIS-NN kernels,
many NPUs and some delegates cap tensors at rank 4, so the spatial dims are merged first.
"""

from __future__ import annotations

from torch import Tensor, nn

from edgekit.errors import UsageError


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``x`` (N, C, H, W) from ``groups`` groups."""
    batch, channels, height, width = x.shape
    if channels % groups:
        raise UsageError(f"channel_shuffle: groups={groups} must divide channels={channels}")
    # Spelled in NHWC so that TFLite export needs one TRANSPOSE per shuffle, not three: the
    # converter cancels the leading permute against its own NCHW->NHWC transpose (measured:
    # conv -> shuffle -> conv exports as conv, reshape, transpose, reshape, conv).
    x = x.permute(0, 2, 3, 1).reshape(batch, height * width, groups, channels // groups)
    x = x.transpose(2, 3).reshape(batch, height, width, channels)
    return x.permute(0, 3, 1, 2)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
            raise UsageError(f"ChannelShuffle: groups must be a positive integer, got {groups!r}")
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
