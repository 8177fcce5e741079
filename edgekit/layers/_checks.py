"""Argument checks shared by layers and blocks: each raises UsageError naming the bad value."""

from __future__ import annotations

from edgekit.errors import UsageError


def check_channels(owner: str, **channels: int) -> None:
    """Every channel count must be a positive int (bool is rejected)."""
    for name, value in channels.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UsageError(f"{owner}: {name} must be a positive integer, got {value!r}")


def check_stride(owner: str, stride: int, allowed: tuple[int, ...] = (1, 2)) -> None:
    if isinstance(stride, bool) or stride not in allowed:
        raise UsageError(f"{owner}: stride must be one of {list(allowed)}, got {stride!r}")


def check_kernel(owner: str, kernel_size: int) -> None:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size <= 0:
        raise UsageError(f"{owner}: kernel_size must be a positive integer, got {kernel_size!r}")


def check_groups(owner: str, in_channels: int, out_channels: int, groups: int) -> None:
    if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
        raise UsageError(f"{owner}: groups must be a positive integer, got {groups!r}")
    if in_channels % groups or out_channels % groups:
        raise UsageError(
            f"{owner}: groups={groups} must divide in_channels={in_channels} "
            f"and out_channels={out_channels}"
        )


PAD_MODES = ("torch", "same")


def check_pad_mode(owner: str, pad_mode: str) -> str:
    """'torch': PyTorch's symmetric padding; 'same': TFLite's SAME (see edgekit.layers.same_pad)."""
    if pad_mode not in PAD_MODES:
        raise UsageError(f"{owner}: pad_mode must be one of {list(PAD_MODES)}, got {pad_mode!r}")
    return pad_mode


def check_conv_block(owner: str, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                     pad_mode: str) -> str | None:
    """The checks every conv block's constructor makes; returns the ``padding`` its convs take
    ("same" for ``pad_mode="same"``, None for PyTorch's symmetric padding)."""
    check_channels(owner, in_channels=in_channels, out_channels=out_channels)
    check_kernel(owner, kernel_size)
    check_stride(owner, stride)
    return "same" if check_pad_mode(owner, pad_mode) == "same" else None

