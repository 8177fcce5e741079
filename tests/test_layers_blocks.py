"""Layers and blocks, checked against torchvision's own implementations (the oracle)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import copy_by_position, n_params, randomize_bn
from torch import nn
from torchvision.models import _utils as tv_utils
from torchvision.models import mobilenetv2 as tv_v2
from torchvision.models import mobilenetv3 as tv_v3
from torchvision.models import shufflenetv2 as tv_shuffle
from torchvision.models import squeezenet as tv_squeeze
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation

from edgekit.blocks import DepthwiseSeparable, Fire, InvertedResidual, ShuffleUnit
from edgekit.errors import UsageError
from edgekit.layers import (
    ChannelShuffle,
    ConvNormAct,
    SqueezeExcite,
    channel_shuffle,
    get_act,
    make_divisible,
)


def assert_same_function(ours: nn.Module, theirs: nn.Module, shape, seed: int = 0) -> None:
    torch.manual_seed(seed)
    randomize_bn(theirs, seed)
    copy_by_position(theirs, ours)
    ours.eval(), theirs.eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- activations

@pytest.mark.parametrize(
    "name, cls",
    [
        ("relu", nn.ReLU), ("relu6", nn.ReLU6), ("ReLU6", nn.ReLU6),
        ("hard_swish", nn.Hardswish), ("hswish", nn.Hardswish), ("hardswish", nn.Hardswish),
        ("h_swish", nn.Hardswish), ("h-swish", nn.Hardswish),
        ("hard_sigmoid", nn.Hardsigmoid), ("hsigmoid", nn.Hardsigmoid),
        ("hardsigmoid", nn.Hardsigmoid), ("h_sigmoid", nn.Hardsigmoid),
        ("sigmoid", nn.Sigmoid), ("silu", nn.SiLU), ("swish", nn.SiLU),
        ("identity", nn.Identity), ("none", nn.Identity), ("linear", nn.Identity),
    ],
)
def test_get_act_resolves_to_torch_modules(name, cls):
    # exact type, not a subclass: exporters and fusers match on type
    assert type(get_act(name)()) is cls


def test_get_act_accepts_factories_and_none():
    assert get_act(nn.GELU) is nn.GELU
    assert type(get_act(None)()) is nn.Identity


def test_get_act_unknown_name_lists_valid_names():
    with pytest.raises(UsageError) as exc:
        get_act("gelu_fast")
    msg = str(exc.value)
    assert "gelu_fast" in msg
    for valid in ("relu", "relu6", "hard_swish", "hard_sigmoid", "sigmoid", "silu", "identity"):
        assert valid in msg
    assert isinstance(exc.value, ValueError)
    with pytest.raises(ValueError, match="42"):
        get_act(42)


# ---------------------------------------------------------------- make_divisible

@pytest.mark.parametrize("divisor", [4, 8, 16])
def test_make_divisible_matches_torchvision(divisor):
    for tenths in range(1, 4000, 7):
        v = tenths / 10
        assert make_divisible(v, divisor) == tv_utils._make_divisible(v, divisor), v
    assert make_divisible(3, 8, min_value=16) == tv_utils._make_divisible(3, 8, 16)


# ---------------------------------------------------------------- ConvNormAct

@pytest.mark.parametrize("k, dilation", [(1, 1), (3, 1), (5, 1), (3, 2), (7, 1)])
def test_conv_norm_act_default_padding_keeps_size(k, dilation):
    m = ConvNormAct(4, 8, k, dilation=dilation).eval()
    assert m(torch.randn(1, 4, 13, 11)).shape == (1, 8, 13, 11)
    m2 = ConvNormAct(4, 8, k, stride=2, dilation=dilation).eval()
    assert m2(torch.randn(1, 4, 13, 11)).shape == (1, 8, 7, 6)


def test_conv_norm_act_parts():
    m = ConvNormAct(8, 16, 3, act_layer="hswish")
    assert m.conv.bias is None
    assert type(m.bn) is nn.BatchNorm2d and type(m.act) is nn.Hardswish
    assert [type(c) for c in m] == [nn.Conv2d, nn.BatchNorm2d, nn.Hardswish]
    bare = ConvNormAct(8, 16, 1, norm=False, act_layer=None)
    assert bare.conv.bias is not None
    assert type(bare.bn) is nn.Identity and type(bare.act) is nn.Identity
    dw = ConvNormAct(16, 16, 3, groups=16)
    assert dw.conv.weight.shape == (16, 1, 3, 3)


@pytest.mark.parametrize("k, stride, groups, act, tv_act", [
    (3, 1, 1, "relu6", nn.ReLU6),
    (3, 2, 8, "hard_swish", nn.Hardswish),
    (1, 1, 1, None, None),
    (5, 2, 16, "relu", nn.ReLU),
])
def test_conv_norm_act_equals_torchvision(k, stride, groups, act, tv_act):
    ours = ConvNormAct(16, 16, k, stride=stride, groups=groups, act_layer=act)
    theirs = Conv2dNormActivation(16, 16, k, stride=stride, groups=groups,
                                  activation_layer=tv_act)
    assert n_params(ours) == n_params(theirs)
    assert_same_function(ours, theirs, (2, 16, 12, 12))


# ---------------------------------------------------------------- Squeeze-Excite

@pytest.mark.parametrize("channels", [16, 72, 96, 120, 240, 576, 960])
def test_squeeze_excite_equals_torchvision(channels):
    squeeze = make_divisible(channels // 4, 8)  # torchvision MobileNetV3's rule
    theirs = SqueezeExcitation(channels, squeeze, scale_activation=nn.Hardsigmoid)
    ours = SqueezeExcite(channels, rd_channels=squeeze, gate_layer="hard_sigmoid")
    assert n_params(ours) == n_params(theirs)
    assert_same_function(ours, theirs, (2, channels, 5, 5))
    # the rd_ratio path gives the same width for these channel counts
    assert n_params(SqueezeExcite(channels, rd_ratio=0.25)) == n_params(theirs)


# ---------------------------------------------------------------- channel shuffle

@pytest.mark.parametrize("channels, groups", [(4, 2), (12, 3), (48, 2), (16, 4)])
def test_channel_shuffle_equals_torch_and_torchvision(channels, groups):
    x = torch.randn(2, channels, 3, 5)
    expected = nn.functional.channel_shuffle(x, groups)  # the aten op, as an oracle only
    torch.testing.assert_close(channel_shuffle(x, groups), expected, rtol=0, atol=0)
    torch.testing.assert_close(tv_shuffle.channel_shuffle(x, groups), expected, rtol=0, atol=0)
    torch.testing.assert_close(ChannelShuffle(groups)(x), expected, rtol=0, atol=0)


def test_channel_shuffle_exports_without_the_aten_op():
    ep = torch.export.export(ChannelShuffle(2).eval(), (torch.randn(1, 8, 4, 4),))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert not any("channel_shuffle" in t or "pixel_shuffle" in t for t in targets), targets
    assert any("view" in t or "reshape" in t for t in targets)


def test_channel_shuffle_bad_groups():
    with pytest.raises(UsageError, match=r"groups=3.*channels=8"):
        channel_shuffle(torch.randn(1, 8, 2, 2), 3)
    with pytest.raises(UsageError, match="0"):
        ChannelShuffle(0)


# ---------------------------------------------------------------- blocks vs torchvision

@pytest.mark.parametrize("inp, oup, stride, t", [
    (32, 16, 1, 1), (16, 24, 2, 6), (24, 24, 1, 6), (64, 96, 1, 6), (8, 8, 1, 1),
])
def test_inverted_residual_v2_equals_torchvision(inp, oup, stride, t):
    theirs = tv_v2.InvertedResidual(inp, oup, stride, t)
    ours = InvertedResidual(inp, oup, expand_ratio=t, stride=stride, act_layer="relu6")
    assert ours.use_residual == theirs.use_res_connect
    assert n_params(ours) == n_params(theirs)
    assert isinstance(ours.expand, nn.Identity) == (t == 1)
    assert_same_function(ours, theirs, (2, inp, 12, 12))


@pytest.mark.parametrize("cfg", [
    # input, kernel, expanded, out, use_se, activation, stride (torchvision's bneck_conf)
    (16, 3, 16, 16, True, "RE", 2),
    (16, 3, 72, 24, False, "RE", 2),
    (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
])
def test_inverted_residual_v3_equals_torchvision(cfg):
    inp, k, exp, out, se, act, stride = cfg
    norm = dict(bn_eps=0.001, bn_momentum=0.01)
    cnf = tv_v3.InvertedResidualConfig(inp, k, exp, out, se, act, stride, 1, 1.0)
    theirs = tv_v3.InvertedResidual(cnf, norm_layer=lambda c: nn.BatchNorm2d(c, 0.001, 0.01))
    ours = InvertedResidual(inp, out, exp_channels=exp, kernel_size=k, stride=stride, use_se=se,
                            act_layer="relu" if act == "RE" else "hard_swish", **norm)
    assert ours.use_residual == theirs.use_res_connect
    assert n_params(ours) == n_params(theirs)
    assert_same_function(ours, theirs, (2, inp, 10, 10))


@pytest.mark.parametrize("inp, oup, stride", [(24, 48, 2), (48, 48, 1), (116, 232, 2), (24, 116, 2)])
def test_shuffle_unit_equals_torchvision(inp, oup, stride):
    theirs = tv_shuffle.InvertedResidual(inp, oup, stride)
    ours = ShuffleUnit(inp, oup, stride=stride)
    assert n_params(ours) == n_params(theirs)
    assert_same_function(ours, theirs, (2, inp, 8, 8))


@pytest.mark.parametrize("args", [(96, 16, 64, 64), (128, 32, 128, 128), (384, 48, 192, 192)])
def test_fire_equals_torchvision(args):
    theirs = tv_squeeze.Fire(*args)
    ours = Fire(*args)
    assert n_params(ours) == n_params(theirs)
    assert_same_function(ours, theirs, (2, args[0], 7, 7))
    with_bn = Fire(*args, norm=True)
    bn_params = 2 * sum(args[1:])
    conv_biases = sum(args[1:])
    assert n_params(with_bn) == n_params(theirs) - conv_biases + bn_params


def test_depthwise_separable_structure():
    m = DepthwiseSeparable(16, 32, stride=2)
    # analytic count: dw 3x3 + BN, pw 1x1 + BN, no biases
    assert n_params(m) == 16 * 9 + 2 * 16 + 16 * 32 + 2 * 32
    assert m.dw.conv.groups == 16 and not m.use_residual
    assert m(torch.randn(1, 16, 10, 10)).shape == (1, 32, 5, 5)
    assert DepthwiseSeparable(16, 16, residual=True).use_residual
    assert not DepthwiseSeparable(16, 16, residual=True, stride=2).use_residual
    assert not DepthwiseSeparable(16, 32, residual=True).use_residual
    assert not DepthwiseSeparable(16, 16).use_residual
    se = DepthwiseSeparable(16, 16, se_ratio=0.25)
    assert isinstance(se.se, SqueezeExcite)
    linear = DepthwiseSeparable(16, 16, pw_act=False)
    assert type(linear.pw.act) is nn.Identity


def test_residual_is_really_added():
    m = DepthwiseSeparable(8, 8, residual=True).eval()
    nn.init.zeros_(m.pw.bn.weight)
    nn.init.zeros_(m.pw.bn.bias)
    m.pw.act = nn.Identity()
    x = torch.randn(1, 8, 6, 6)
    torch.testing.assert_close(m(x), x)


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("make, pieces", [
    (lambda: ConvNormAct(6, 8, 3, groups=4), ["groups=4", "6", "8"]),
    (lambda: ConvNormAct(0, 8), ["in_channels", "0"]),
    (lambda: ConvNormAct(8, -3), ["out_channels", "-3"]),
    (lambda: ConvNormAct(8, 8, 3, act_layer="relu7"), ["relu7", "relu6"]),
    (lambda: InvertedResidual(16, 24, expand_ratio=6, stride=3), ["stride", "3"]),
    (lambda: InvertedResidual(16, 24), ["expand_ratio", "exp_channels"]),
    (lambda: InvertedResidual(16, 24, expand_ratio=0), ["expand_ratio", "0"]),
    (lambda: InvertedResidual(16, 24, expand_ratio=2, exp_channels=32), ["2", "32"]),
    (lambda: InvertedResidual(16, 2.5, expand_ratio=2), ["out_channels", "2.5"]),
    (lambda: ShuffleUnit(48, 47, stride=2), ["even", "47"]),
    (lambda: ShuffleUnit(24, 48, stride=1), ["24", "48"]),
    (lambda: ShuffleUnit(24, 48, stride=4), ["stride", "4"]),
    (lambda: DepthwiseSeparable(8, 16, stride=0), ["stride", "0"]),
    (lambda: DepthwiseSeparable(8, 16, se_ratio=-0.5), ["se_ratio", "-0.5"]),
    (lambda: Fire(96, 0, 64, 64), ["squeeze_channels", "0"]),
    (lambda: SqueezeExcite(16, rd_ratio=0), ["rd_ratio", "0"]),
])
def test_invalid_arguments_name_the_values(make, pieces):
    with pytest.raises(ValueError) as exc:
        make()
    assert isinstance(exc.value, UsageError)
    for piece in pieces:
        assert piece in str(exc.value), (piece, str(exc.value))


# ---------------------------------------------------------------- export

BLOCKS = {
    "conv_norm_act": (lambda: ConvNormAct(8, 16, 3, stride=2, act_layer="hswish"), 8),
    "squeeze_excite": (lambda: SqueezeExcite(16, gate_layer="hard_sigmoid"), 16),
    "depthwise_separable": (lambda: DepthwiseSeparable(16, 16, se_ratio=0.25, residual=True), 16),
    "inverted_residual_v2": (lambda: InvertedResidual(16, 16, expand_ratio=6), 16),
    "inverted_residual_v3": (
        lambda: InvertedResidual(24, 40, exp_channels=96, kernel_size=5, stride=2, use_se=True,
                                 act_layer="hard_swish"), 24),
    "shuffle_unit_s1": (lambda: ShuffleUnit(48, 48, stride=1), 48),
    "shuffle_unit_s2": (lambda: ShuffleUnit(24, 48, stride=2), 24),
    "fire": (lambda: Fire(32, 8, 16, 16), 32),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_exports(name):
    make, channels = BLOCKS[name]
    m = make().eval()
    x = torch.randn(1, channels, 16, 16)
    ep = torch.export.export(m, (x,))
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), m(x))
