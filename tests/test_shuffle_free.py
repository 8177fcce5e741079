"""The shuffle-free pass (edgekit.passes.shuffle_free) on PyTorch models: exact, and it removes
what it claims. Oracles: the original model's own outputs, torch's own channel_shuffle, and a
channel-shuffle search run again on the result. Export-level checks are in test_clean_artifacts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgekit.blocks import ShuffleUnit
from edgekit.errors import UsageError
from edgekit.layers import ChannelShuffle, ConvNormAct
from edgekit.models import create_model
from edgekit.passes.channel_layout import find_shuffles
from edgekit.passes.fold_bn import fold_bn
from edgekit.passes.shuffle_free import LAYOUTS, shuffle_free


def _rel_err(a, b) -> float:
    return float((a - b).abs().max() / a.abs().max())


def _check_exact(model, result, shape, n=3):
    torch.manual_seed(1)
    with torch.no_grad():
        for _ in range(n):
            x = torch.randn(shape)
            ref = model(x)
            assert ref.abs().max() > 0
            assert _rel_err(ref, result.model(x)) <= 1e-5


def _shuffles_left(result, x) -> int:
    from torch.fx.passes.shape_prop import ShapeProp

    gm = result.model
    with torch.no_grad():
        ShapeProp(gm).propagate(x)
    return len(find_shuffles(gm))


@pytest.fixture(scope="module")
def shufflenet_05():
    model = create_model("shufflenet_v2", width=0.5, resolution=64)
    x = torch.randn(1, 3, 64, 64)
    return model, fold_bn(model, (x,)).model, x


@pytest.mark.parametrize("layout", LAYOUTS)
def test_shufflenet_v2_every_shuffle_moves_into_weights(shufflenet_05, layout):
    model, folded, x = shufflenet_05
    res = shuffle_free(folded, (x,), layout=layout)
    assert res.shuffles_removed == 16 and res.regions == 3 and not res.notes  # 16 units, 3 stages
    assert res.max_rel_error <= 1e-5
    _check_exact(model, res, (1, 3, 64, 64))
    assert _shuffles_left(res, x) == 0
    ops = {getattr(n.target, "__name__", "") for n in res.model.graph.nodes if n.op == "call_function"}
    assert not any("chunk" in o or "channel_shuffle" in o for o in ops)


@pytest.mark.slow
def test_shufflenet_v2_width_1_and_the_input_model_is_untouched():
    model = create_model("shufflenet_v2", width=1.0, resolution=64)
    x = torch.randn(1, 3, 64, 64)
    folded = fold_bn(model, (x,)).model
    before = {k: v.clone() for k, v in folded.state_dict().items()}
    res = shuffle_free(folded, (x,))
    assert res.shuffles_removed == 16
    _check_exact(model, res, (1, 3, 64, 64))
    assert all(torch.equal(before[k], v) for k, v in folded.state_dict().items())


@pytest.mark.slow
def test_batchnorm_between_shuffle_and_conv_keeps_the_shuffle_and_says_why():
    """The pass runs after BN folding (as edgekit build does); an unfolded BN is no carrier."""
    model = create_model("shufflenet_v2", width=0.5, resolution=64)
    x = torch.randn(1, 3, 64, 64)
    res = shuffle_free(model, (x,))
    assert res.shuffles_removed == 0 and any("fold BatchNorm first" in n for n in res.notes)
    _check_exact(model, res, (1, 3, 64, 64))


@pytest.mark.slow
def test_torchvision_five_dim_shuffle_is_found_and_removed():
    tv = pytest.importorskip("torchvision")
    model = tv.models.shufflenet_v2_x0_5(weights=None, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    res = shuffle_free(fold_bn(model, (x,)).model, (x,))
    assert res.shuffles_removed == 16
    _check_exact(model, res, (1, 3, 64, 64))


def _stage(c: int, units: int) -> nn.Module:
    """A ShuffleNetV2 stage of any width and length (edgekit blocks), between two dense convs."""
    layers = [ConvNormAct(3, c, 3), ShuffleUnit(c, c, stride=2)]
    layers += [ShuffleUnit(c, c, stride=1) for _ in range(units - 1)]
    layers += [nn.Conv2d(c, 5, 1)]
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("c,units", [(4, 4), (6, 8), (10, 3), (24, 8), (58, 5), (116, 8)])
def test_any_stage_width_and_length_has_an_exact_layout(c, units):
    """The stored order exists for every channel count, odd halves included (the counting identity
    of channel_layout's docstring), and for stages longer than log2(channels)."""
    torch.manual_seed(0)
    model = _stage(c, units)
    x = torch.randn(1, 3, 8, 8)
    res = shuffle_free(fold_bn(model, (x,)).model, (x,), layout="conv")
    assert res.shuffles_removed == units
    _check_exact(model, res, (1, 3, 8, 8))


class _TorchShuffle(nn.Module):
    """torch's own nn.ChannelShuffle (aten.channel_shuffle) between two dense convs."""

    def __init__(self):
        super().__init__()
        self.a, self.shuffle, self.b = nn.Conv2d(3, 12, 3, padding=1), nn.ChannelShuffle(3), nn.Conv2d(12, 4, 1)

    def forward(self, x):
        return self.b(self.shuffle(torch.relu(self.a(x))))


def test_torch_channel_shuffle_module_is_absorbed():
    model = _TorchShuffle().eval()
    x = torch.randn(1, 3, 8, 8)
    res = shuffle_free(model, (x,))
    assert res.shuffles_removed == 1
    _check_exact(model, res, (1, 3, 8, 8))


class _ShuffleToOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.shuffle = nn.Conv2d(3, 8, 1), ChannelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.a(x))


class _ShuffleIntoAdd(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.shuffle, self.b = nn.Conv2d(8, 8, 1), ChannelShuffle(2), nn.Conv2d(8, 8, 1)

    def forward(self, x):
        return self.b(self.shuffle(self.a(x)) + x)


@pytest.mark.parametrize("cls", [_ShuffleToOutput, _ShuffleIntoAdd])
def test_a_shuffle_nothing_can_absorb_is_kept_with_the_reason(cls):
    model = cls().eval()
    x = torch.randn(1, 3 if cls is _ShuffleToOutput else 8, 6, 6)
    res = shuffle_free(model, (x,))
    assert res.shuffles_removed == 0 and res.notes and "kept" in res.notes[0]
    with torch.no_grad():
        assert torch.equal(model(x), res.model(x))


def test_a_model_without_shuffles_is_returned_as_is():
    model = create_model("mobilenet_v2", width=0.35, resolution=64)
    x = torch.randn(1, 3, 64, 64)
    folded = fold_bn(model, (x,)).model  # symbolic_trace graph without permutes: the fast path
    res = shuffle_free(folded, (x,))
    assert res.model is folded and res.shuffles_removed == 0


def test_bad_arguments_are_usage_errors():
    with pytest.raises(UsageError, match="layout"):
        shuffle_free(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 4, 4), layout="nhcw")
    with pytest.raises(UsageError, match="nn.Module"):
        shuffle_free(lambda x: x, torch.randn(1, 3, 4, 4))


def test_channel_shuffle_found_matches_torch():
    """find_shuffles computes the permutation of edgekit's rank-4 spelling; torch's channel_shuffle
    is the oracle."""
    x = torch.randn(1, 12, 3, 3)
    from edgekit.layers import channel_shuffle

    assert torch.equal(channel_shuffle(x, 3), torch.channel_shuffle(x, 3))
    model = nn.Sequential(nn.Conv2d(3, 12, 1), ChannelShuffle(3), nn.Conv2d(12, 2, 1)).eval()
    gm = torch.export.export(model, (torch.randn(1, 3, 3, 3),)).module()
    from torch.fx.passes.shape_prop import ShapeProp

    ShapeProp(gm).propagate(torch.randn(1, 3, 3, 3))
    (sh,) = find_shuffles(gm)
    idx = torch.arange(12.0).view(1, 12, 1, 1)
    assert sh.perm.tolist() == torch.channel_shuffle(idx, 3).flatten().long().tolist()


def test_the_build_spells_the_split_per_runtime_and_keeps_shuffles_for_litert():
    from edgekit.passes.shuffle_free import layout_for

    assert layout_for("tflite", "tflite-micro") == "nhwc" and layout_for("pte", "executorch") == "conv"
    assert layout_for("tflite", "litert") is None  # XNNPACK's TRANSPOSE is faster than the strided gather
    with pytest.raises(UsageError, match="format"):
        layout_for("onnx")
