"""Helpers shared by the block and model tests."""

import torch
from torch import nn


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def randomize_bn(m: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics, so that a BN in the wrong place changes the output."""
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def copy_by_position(src: nn.Module, dst: nn.Module) -> None:
    """Load src's state into dst in registration order; the shapes must agree one by one."""
    s, d = src.state_dict(), dst.state_dict()
    assert len(s) == len(d), (len(s), len(d))
    for (ks, vs), (kd, vd) in zip(s.items(), d.items()):
        assert vs.shape == vd.shape, (ks, kd, vs.shape, vd.shape)
    dst.load_state_dict(dict(zip(d.keys(), s.values())))
