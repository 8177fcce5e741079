"""ShuffleNet's channel shuffle as view -> transpose -> view.

Deliberately not ``torch.channel_shuffle``/``nn.ChannelShuffle``: that aten op does not
survive export to the edge runtimes, while reshape/transpose do.
"""

from __future__ import annotations

from torch import Tensor, nn

from edgekit.errors import UsageError


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``x`` (N, C, H, W) from ``groups`` groups."""
    batch, channels, height, width = x.shape
    if channels % groups:
        raise UsageError(f"channel_shuffle: groups={groups} must divide channels={channels}")
    x = x.view(batch, groups, channels // groups, height, width)
    x = x.transpose(1, 2).contiguous()
    return x.view(batch, channels, height, width)


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
