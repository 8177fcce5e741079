"""TFLite SAME padding as a model choice (edgekit.layers.same_pad) and the .tflite post-pass that
folds an exact PAD into a SAME conv (edgekit.export.fold_pad). Oracles: torch's own
padding="same" (stride 1), the TFLite documentation's rule for stride 2 (0 before, 1 after on even
sizes), and LiteRT running the folded SAME conv against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgekit.blocks import DepthwiseSeparable, InvertedResidual
from edgekit.errors import UsageError
from edgekit.layers import ConvNormAct, SamePad2d, same_pads
from edgekit.models import create_model
from edgekit.models.mcu import mcu_mobilenet_v1, mcunet_tiny


@pytest.mark.parametrize("k,d", [(1, 1), (3, 1), (5, 1), (3, 2)])
@pytest.mark.parametrize("n", [7, 8, 15])
def test_stride_1_same_padding_is_torchs_own(k, d, n):
    torch.manual_seed(0)
    x, w = torch.randn(1, 2, n, n), torch.randn(3, 2, k, k)
    ours = F.conv2d(SamePad2d(k, 1, d)(x), w, dilation=d)
    assert torch.allclose(ours, F.conv2d(x, w, padding="same", dilation=d), atol=1e-6)


@pytest.mark.parametrize("n", [6, 7, 96, 97])
def test_stride_2_same_padding_follows_tflite(n):
    """TFLite: output ceil(n/2); a 3x3 stride-2 conv pads 0 before and 1 after on even sizes, 1 and 1
    on odd sizes; PyTorch's symmetric padding=1 reads one pixel earlier on even sizes."""
    assert same_pads(n, 3, 2) == ((0, 1) if n % 2 == 0 else (1, 1))
    x = torch.randn(1, 1, n, n)
    y = SamePad2d(3, 2)(x)
    assert y.shape[-1] == n + (1 if n % 2 == 0 else 2)
    assert F.conv2d(y, torch.ones(1, 1, 3, 3), stride=2).shape[-1] == -(-n // 2)
    if n % 2 == 0:
        assert torch.equal(y[..., :n, :n], x)  # nothing before: the window starts at pixel 0


def test_conv_norm_act_same_padding_structure():
    s1 = ConvNormAct(4, 8, 3, stride=1, padding="same")
    s2 = ConvNormAct(4, 8, 3, stride=2, padding="same")
    assert "pad" not in dict(s1.named_children()) and s1.conv.padding == (1, 1)
    assert isinstance(s2.pad, SamePad2d) and s2.conv.padding == (0, 0)
    assert set(s2.state_dict()) == set(ConvNormAct(4, 8, 3, stride=2).state_dict())  # checkpoints still load
    for bad in ("valid", -1, 1.5, True):
        with pytest.raises(UsageError, match="padding"):
            ConvNormAct(4, 8, 3, padding=bad)
    for block in (lambda: DepthwiseSeparable(4, 8, pad_mode="tf"), lambda: InvertedResidual(4, 8, expand_ratio=2,
                                                                                           pad_mode=None)):
        with pytest.raises(UsageError, match="pad_mode"):
            block()


@pytest.mark.parametrize("fn", [mcu_mobilenet_v1, mcunet_tiny])
def test_mcu_networks_pad_the_tflite_way_by_default_and_nothing_else_does(fn):
    def pads(model):
        return sum(isinstance(m, SamePad2d) for m in model.modules())

    assert pads(fn()) == 5 and pads(fn(pad_mode="torch")) == 0  # the 5 stride-2 layers
    assert pads(create_model(fn.__name__)) == 5
    for other in ("mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2", "squeezenet1_1"):
        assert pads(create_model(other, resolution=64)) == 0
    from edgekit.passes.fold_bn import fold_bn

    x = torch.randn(1, 3, 96, 96)
    fr = fold_bn(fn().eval(), (x,))
    assert fr.kept == 0 and fr.max_rel_error < 1e-5


# ---------------------------------------------------------------- .tflite: PAD folded into SAME conv

class _PadConv(nn.Module):
    def __init__(self, pads, value=0.0, first=True, groups=False):
        super().__init__()
        self.pads, self.value, self.first = pads, value, first
        self.stem = nn.Conv2d(3, 8, 1)
        self.conv = nn.Conv2d(3 if first else 8, 8, 3, stride=2, groups=8 if groups else 1)

    def forward(self, x):
        if not self.first:
            x = torch.relu(self.stem(x))
        return self.conv(F.pad(x, self.pads, value=self.value))


CASES = [
    ("same_first_layer", dict(pads=(0, 1, 0, 1)), 16, 0),  # PAD, TRANSPOSE, CONV_2D in the converter's graph
    ("same_depthwise", dict(pads=(0, 1, 0, 1), first=False, groups=True), 16, 0),
    ("symmetric_even", dict(pads=(1, 1, 1, 1)), 16, 1),  # PyTorch's padding: not SAME, kept
    ("same_but_odd", dict(pads=(0, 1, 0, 1)), 15, 1),  # on 15 px SAME pads 1 and 1
    ("non_zero", dict(pads=(0, 1, 0, 1), value=0.5), 16, 1),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,kw,size,pads_left", CASES, ids=[c[0] for c in CASES])
def test_fold_pad_is_exact_and_only_where_same(tmp_path, name, kw, size, pads_left):
    from edgekit.export.tflite import convert_fp32
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.runtime.litert import litert_run

    torch.manual_seed(0)
    model = _PadConv(**kw).eval()
    x = torch.randn(4, 1, 3, size, size)
    p = tmp_path / "m.tflite"
    p.write_bytes(convert_fp32(model, x[0]))
    opcodes = [op.attrs["opcode"] for op in read_tflite(p).ops]
    assert sum(o in ("PAD", "PADV2") for o in opcodes) == pads_left, opcodes
    got = litert_run(p, [[s.numpy()] for s in x])
    with torch.no_grad():
        for s, g in zip(x, got):
            ref = model(s).numpy()
            assert np.abs(ref - g[0]).max() <= 1e-5 * np.abs(ref).max()
