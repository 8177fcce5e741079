"""Re-estimate BatchNorm running statistics from data.

An untrained network (``weights=None``) keeps BN's initial statistics (mean 0, var 1),
so its activations shrink layer after layer to ~1e-8 and int8 calibration ranges
collapse. Re-estimating the statistics on a few batches (cumulative average, no
gradient, weights untouched) gives activations of unit scale, as a trained network
has. edgekit does this only on copies, for untrained models and in tests.
"""

from __future__ import annotations

import copy


def reestimate_bn_stats(model, batches, *, inplace: bool = False):
    """Return a copy of ``model`` (eval mode) with BN running stats measured on ``batches``."""
    import torch
    from torch import nn

    m = model if inplace else copy.deepcopy(model)
    bns = [mod for mod in m.modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return m.eval()
    saved = {}
    for bn in bns:
        saved[bn] = bn.momentum
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over all batches
    m.train()
    with torch.no_grad():
        for x in batches:
            m(x)
    for bn, mom in saved.items():
        bn.momentum = mom
    return m.eval()
