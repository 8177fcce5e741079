"""BatchNorm folding: exact outputs, no BN left where folding is exact, an honest report."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from edgekit.errors import UsageError
from edgekit.passes.bn_stats import reestimate_bn_stats
from edgekit.passes.fold_bn import (
    FOLDED,
    FOLDED_FORWARD,
    KEPT_AFFINE,
    NOT_FOLDABLE,
    Affine,
    BNFate,
    FoldResult,
    fold_bn,
)

TOL = 1e-4


def rel_err(ref: torch.Tensor, out: torch.Tensor) -> float:
    return ((ref - out).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters for every BN (in place).

    Variances are floored at 1e-2 first: re-estimated on an untrained EfficientNet-B0 some
    channels are nearly dead (var ~1e-6), and 1/sqrt(var) ~ 800 makes even the UNFOLDED fp32
    model differ from its fp64 self by 2.5e-4 (relative) -- below the model's own precision
    no comparison means anything."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                c = mod.num_features
                std = mod.running_var.sqrt()
                mod.running_mean.add_(torch.randn(c, generator=g) * 0.3 * std)
                mod.running_var.clamp_(min=1e-2).mul_(torch.rand(c, generator=g) * 1.5 + 0.5)
                if mod.weight is not None:
                    mod.weight.copy_(torch.rand(c, generator=g) + 0.5)
                    mod.bias.copy_(torch.randn(c, generator=g) * 0.2)
    return model


def bn_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def bn_ops_in_export(model: nn.Module, x) -> list[str]:
    ep = torch.export.export(model, (x,))
    return [str(n.target) for n in ep.graph.nodes
            if n.op == "call_function" and "batch_norm" in str(n.target)]


def check_equal(model, result: FoldResult, x) -> float:
    with torch.no_grad():
        ref, out = model(x), result.model(x)
    assert torch.isfinite(ref).all() and ref.abs().max() > 1e-3  # a meaningful comparison
    err = rel_err(ref, out)
    assert err < TOL, err
    return err


def fates(result: FoldResult) -> dict[str, str]:
    return {f.name: f.fate for f in result.report}


# ------------------------------------------------------------------ torchvision models

TORCHVISION = [
    # (name, kwargs, input size, BNs that cannot fold exactly: follow a concat + ReLU)
    ("resnet18", {}, 64),
    ("resnext50_32x4d", {}, 64),
    ("mobilenet_v2", {}, 64),
    ("mobilenet_v3_small", {}, 64),
    ("mobilenet_v3_large", {}, 64),
    ("shufflenet_v2_x0_5", {}, 64),
    ("mnasnet0_5", {}, 64),
    ("efficientnet_b0", {}, 64),
    ("regnet_x_400mf", {}, 64),
    ("densenet121", {}, 64),
    ("vgg11_bn", {}, 64),
    ("googlenet", {"aux_logits": False, "init_weights": True}, 64),
    ("inception_v3", {"aux_logits": False, "init_weights": True}, 80),
]


def _torchvision(name, kwargs, size):
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, **kwargs)
    # realistic statistics (unit-scale activations, as a trained net), then perturbed
    batches = [torch.randn(2, 3, size, size) for _ in range(2)]
    model = randomize_bn(reestimate_bn_stats(model, batches, inplace=True))
    return model.eval()


@pytest.mark.parametrize("name,kwargs,size", TORCHVISION, ids=[t[0] for t in TORCHVISION])
def test_torchvision_models_fold_exactly(name, kwargs, size):
    model = _torchvision(name, kwargs, size)
    n_bn = len(bn_modules(model))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x_fold, x_test = torch.randn(1, 3, size, size), torch.randn(2, 3, size, size)

    result = fold_bn(model, x_fold)

    assert result.method == "torch.fx.symbolic_trace"
    assert len(result.report) == n_bn and result.folded + result.kept == n_bn
    assert result.max_rel_error is not None and result.max_rel_error < TOL
    check_equal(model, result, x_test)
    assert not bn_modules(result.model)  # BN folded or replaced by Affine
    assert not any(n.op == "call_function" and "batch_norm" in str(n.target)
                   for n in result.model.graph.nodes)
    if name == "densenet121":
        # norm1 of each dense layer / transition and norm5 read a concat and feed a ReLU:
        # no conv can absorb them exactly, so they stay as Affine and are reported
        kept = [f for f in result.report if f.fate == KEPT_AFFINE]
        assert len(kept) == result.kept == 62
        assert all("concat" in f.reason or "cat" in f.reason for f in kept)
        assert sum(isinstance(m, Affine) for m in result.model.modules()) == 62
    else:
        assert result.kept == 0 and all(f.fate == FOLDED for f in result.report)
        assert not any(isinstance(m, Affine) for m in result.model.modules())
    # the input model is untouched
    assert len(bn_modules(model)) == n_bn
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "densenet121"])
def test_folded_torchvision_exports_without_batch_norm(name):
    kwargs, size = {}, 64
    model = _torchvision(name, kwargs, size)
    x = torch.randn(1, 3, size, size)
    result = fold_bn(model, x)
    assert bn_ops_in_export(result.model, x) == []
    ep = torch.export.export(result.model, (x,))
    with torch.no_grad():
        assert rel_err(model(x), ep.module()(x)) < TOL


# ------------------------------------------------------------------ non-producer paths


def _bn(c, seed=0, cls=nn.BatchNorm2d):
    return randomize_bn(cls(c), seed)


class BNAfterReLU(nn.Module):
    def __init__(self, padding=0, padding_mode="zeros", groups=1):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = _bn(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=padding, padding_mode=padding_mode, groups=groups)

    def forward(self, x):
        return self.conv2(self.bn(torch.relu(self.conv1(x))))


def test_bn_after_relu_folds_forward_into_unpadded_conv():
    model = BNAfterReLU(padding=0).eval()
    x = torch.randn(2, 3, 12, 12)
    result = fold_bn(model, x)
    (fate,) = result.report
    assert (fate.name, fate.kind, fate.fate, fate.into) == ("bn", "BatchNorm2d", FOLDED_FORWARD, "conv2")
    assert "ReLU" in fate.reason or "relu" in fate.reason
    assert result.folded == 1 and result.kept == 0
    assert not bn_modules(result.model) and not any(isinstance(m, Affine) for m in result.model.modules())
    check_equal(model, result, x)


def test_bn_folds_forward_into_grouped_unpadded_conv():
    model = BNAfterReLU(padding=0, groups=4).eval()
    x = torch.randn(2, 3, 12, 12)
    result = fold_bn(model, x)
    assert fates(result) == {"bn": FOLDED_FORWARD}
    check_equal(model, result, x)


def test_bn_before_padded_conv_is_kept_as_affine():
    model = BNAfterReLU(padding=1).eval()
    x = torch.randn(2, 3, 12, 12)
    result = fold_bn(model, x)
    (fate,) = result.report
    assert fate.fate == KEPT_AFFINE and fate.into is None
    assert "zero-pads" in fate.reason and "padding=(1, 1)" in fate.reason
    assert result.folded == 0 and result.kept == 1
    assert isinstance(result.model.get_submodule("bn"), Affine)
    assert not bn_modules(result.model)
    check_equal(model, result, x)
    assert bn_ops_in_export(result.model, x) == []


def test_bn_before_reflect_padded_conv_folds_forward_exactly():
    model = BNAfterReLU(padding=1, padding_mode="reflect").eval()
    x = torch.randn(2, 3, 12, 12)
    result = fold_bn(model, x)
    assert fates(result) == {"bn": FOLDED_FORWARD}
    assert "reflect" in result.report[0].reason
    check_equal(model, result, x)


class ResidualConvBN(nn.Module):
    """conv's output feeds both the BN and a residual add: the conv cannot absorb the BN."""

    def __init__(self, padding):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = _bn(4)
        self.conv2 = nn.Conv2d(4, 4, 1 if padding == 0 else 3, padding=padding)

    def forward(self, x):
        y = self.conv(x)
        return self.conv2(self.bn(y)) + y


@pytest.mark.parametrize("padding,expected", [(0, FOLDED_FORWARD), (1, KEPT_AFFINE)])
def test_bn_whose_conv_also_feeds_a_residual(padding, expected):
    model = ResidualConvBN(padding).eval()
    x = torch.randn(2, 4, 10, 10)
    result = fold_bn(model, x)
    (fate,) = result.report
    assert fate.fate == expected
    assert "has 2 users" in fate.reason
    check_equal(model, result, x)
    assert not bn_modules(result.model)


class InputBN(nn.Module):
    def __init__(self, padding):
        super().__init__()
        self.bn = _bn(3)
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=padding, bias=False)

    def forward(self, x):
        return self.conv(self.bn(x))


@pytest.mark.parametrize("padding,expected", [(0, FOLDED_FORWARD), (1, KEPT_AFFINE)])
def test_bn_at_graph_input(padding, expected):
    model = InputBN(padding).eval()
    x = torch.randn(2, 3, 11, 11)
    result = fold_bn(model, x)
    (fate,) = result.report
    assert fate.fate == expected and "graph input" in fate.reason
    check_equal(model, result, x)
    assert bn_ops_in_export(result.model, x) == []


def test_bn1d_before_linear_needs_known_rank():
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), _bn(6, cls=nn.BatchNorm1d), nn.Linear(6, 3)).eval()
    x = torch.randn(4, 5)
    with_shapes = fold_bn(model, x)
    assert fates(with_shapes) == {"2": FOLDED_FORWARD}
    check_equal(model, with_shapes, x)
    without = fold_bn(model)  # rank unknown: no guess, an Affine and the reason why
    assert fates(without) == {"2": KEPT_AFFINE}
    assert "example_inputs" in without.report[0].reason
    check_equal(model, without, x)


def test_bn1d_on_rank3_linear_output_is_not_folded_into_linear():
    # Linear acts on the last dim, BatchNorm1d on dim 1: same size here, different axes
    model = nn.Sequential(nn.Linear(6, 6), _bn(6, cls=nn.BatchNorm1d)).eval()
    x = torch.randn(2, 6, 6)
    result = fold_bn(model, x)
    assert fates(result) == {"1": KEPT_AFFINE}
    assert "rank 3" in result.report[0].reason
    check_equal(model, result, x)


def test_shared_conv_is_not_rewritten():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn = _bn(4)

        def forward(self, x):
            return self.conv(self.bn(self.conv(x)))

    model = Shared().eval()
    x = torch.randn(1, 4, 8, 8)
    result = fold_bn(model, x)
    assert fates(result) == {"bn": KEPT_AFFINE}
    assert "used 2 times" in result.report[0].reason
    check_equal(model, result, x)


def test_per_input_norms_are_reported_not_foldable():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.Conv2d(8, 8, 1), nn.InstanceNorm2d(8),
        nn.Conv2d(8, 8, 1), _bn(8), nn.Flatten(), nn.LazyLinear(4), nn.LayerNorm(4),
    )
    x = torch.randn(2, 3, 6, 6)
    model(x)  # initialise LazyLinear
    model.eval()
    result = fold_bn(model, x)
    assert fates(result) == {"1": NOT_FOLDABLE, "3": NOT_FOLDABLE, "5": FOLDED, "8": NOT_FOLDABLE}
    kinds = {f.name: f.kind for f in result.report}
    assert kinds == {"1": "GroupNorm", "3": "InstanceNorm2d", "5": "BatchNorm2d", "8": "LayerNorm"}
    assert all("each input" in f.reason for f in result.report if f.fate == NOT_FOLDABLE)
    assert result.folded == 1 and result.kept == 3
    assert isinstance(result.model.get_submodule("1"), nn.GroupNorm)
    check_equal(model, result, x)


def test_bn_subclass_is_folded_only_at_the_op_level():
    # fx cannot trace into BatchNorm2d.forward (it checks input.dim()); torch.export sees the
    # batch_norm op and the subclass's own "* 2" as separate ops: only the op is folded
    class ScaledBN(nn.BatchNorm2d):
        def forward(self, x):
            return super().forward(x) * 2

    model = nn.Sequential(nn.Conv2d(3, 4, 1), randomize_bn(ScaledBN(4))).eval()
    x = torch.randn(1, 3, 5, 5)
    result = fold_bn(model, x)
    assert result.method == "torch.export"
    assert [(f.kind, f.fate, f.into) for f in result.report] == [("ScaledBN", FOLDED, "0")]
    check_equal(model, result, x)


def test_functional_batch_norm_in_fx_is_reported_and_left_alone():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.register_buffer("mean", torch.randn(4))
            self.register_buffer("var", torch.rand(4) + 0.5)

        def forward(self, x):
            return nn.functional.batch_norm(self.conv(x), self.mean, self.var, training=False)

    model = Functional().eval()
    x = torch.randn(1, 3, 5, 5)
    result = fold_bn(model, x)
    assert result.method == "torch.fx.symbolic_trace"
    assert [(f.kind, f.fate) for f in result.report] == [("batch_norm", NOT_FOLDABLE)]
    assert "as a function" in result.report[0].reason
    check_equal(model, result, x)


def test_training_mode_and_missing_running_stats_are_usage_errors():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    with pytest.raises(UsageError, match="training mode"):
        fold_bn(model.train())
    model.eval()
    model[1].train()
    with pytest.raises(UsageError, match="'1' is in training mode"):
        fold_bn(model)
    no_stats = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, track_running_stats=False)).eval()
    with pytest.raises(UsageError, match="track_running_stats=False"):
        fold_bn(no_stats)
    with pytest.raises(UsageError):
        fold_bn("resnet18")


class Untraceable(nn.Module):
    """Python control flow on a tensor's shape: symbolic_trace fails, torch.export copes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = _bn(4)
        self.act = nn.ReLU()
        self.bn2 = _bn(4, seed=1)
        self.conv2 = nn.Conv2d(4, 5, 1)
        self.bn3 = _bn(5, seed=2)
        self.convt = nn.ConvTranspose2d(5, 6, 2, stride=2, groups=1)
        self.bn4 = _bn(6, seed=3)
        self.ln = nn.LayerNorm(6)

    def forward(self, x):
        if x.shape[-1] > 4:
            x = x * 2
        y = self.conv2(self.bn2(self.act(self.bn(self.conv(x)))))
        y = self.bn4(self.convt(torch.relu(self.bn3(y))))
        return self.ln(y.mean((2, 3)))


def test_export_fallback_when_symbolic_trace_fails():
    model = Untraceable().eval()
    x = torch.randn(2, 3, 9, 9)
    with pytest.raises(UsageError, match="example_inputs"):
        fold_bn(model)
    result = fold_bn(model, x)
    assert result.method == "torch.export" and result.notes
    assert fates(result) == {"bn": FOLDED, "bn2": FOLDED_FORWARD, "bn3": FOLDED, "bn4": FOLDED,
                             "ln": NOT_FOLDABLE}
    assert {f.name: f.into for f in result.report if f.into} == {
        "bn": "conv", "bn2": "conv2", "bn3": "conv2", "bn4": "convt"}
    check_equal(model, result, x)
    assert not any("batch_norm" in str(n.target) for n in result.model.graph.nodes)
    assert not any(name.startswith("bn") for name, _ in result.model.named_buffers())
    assert bn_ops_in_export(result.model, x) == []


def test_export_fallback_keeps_affine():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = _bn(3)
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            if x.shape[-1] > 4:
                x = torch.relu(x)
            return self.conv(self.bn(x))

    model = M().eval()
    x = torch.randn(1, 3, 7, 7)
    result = fold_bn(model, x)
    assert result.method == "torch.export" and fates(result) == {"bn": KEPT_AFFINE}
    check_equal(model, result, x)
    assert bn_ops_in_export(result.model, x) == []


def test_report_is_plain_data_and_json():
    model = BNAfterReLU(padding=1).eval()
    result = fold_bn(model, torch.randn(1, 3, 8, 8))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["folded"] == 0 and data["kept"] == 1 and data["method"] == "torch.fx.symbolic_trace"
    assert data["report"][0]["fate"] == KEPT_AFFINE and set(data["report"][0]) == {
        "name", "kind", "fate", "into", "reason"}
    assert isinstance(result.report[0], BNFate)


def test_bn_without_affine_and_conv_without_bias():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), randomize_bn(nn.BatchNorm2d(4, affine=False)),
                          nn.ReLU(), randomize_bn(nn.BatchNorm2d(4, affine=False)),
                          nn.Conv2d(4, 2, 1, bias=False)).eval()
    x = torch.randn(2, 3, 8, 8)
    result = fold_bn(model)
    assert fates(result) == {"1": FOLDED, "3": FOLDED_FORWARD}
    check_equal(model, result, x)


# ------------------------------------------------------------------ properties

_settings = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def conv_cases(draw):
    kind = draw(st.sampled_from(["conv1d", "conv2d", "convt2d"]))
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 2))
    bias = draw(st.booleans())
    size = draw(st.integers(7, 10))
    depthwise = draw(st.booleans())
    if depthwise:
        groups, cout = cin, cin * draw(st.integers(1, 2))
    if kind == "conv1d":
        conv = nn.Conv1d(cin, cout, k, stride, padding, dilation, groups, bias)
        bn, shape = nn.BatchNorm1d(cout), (2, cin, size)
    elif kind == "conv2d":
        conv = nn.Conv2d(cin, cout, k, stride, padding, dilation, groups, bias)
        bn, shape = nn.BatchNorm2d(cout), (2, cin, size, size)
    else:
        out_pad = draw(st.integers(0, max(0, min(stride, dilation) - 1)))
        conv = nn.ConvTranspose2d(cin, cout, k, stride, min(padding, dilation * (k - 1)), out_pad,
                                  groups, bias, dilation)
        bn, shape = nn.BatchNorm2d(cout), (2, cin, size, size)
    return conv, bn, shape, draw(st.integers(0, 2**16))


@_settings
@given(conv_cases(), st.booleans())
def test_property_conv_then_bn_folds_exactly(case, with_inputs):
    conv, bn, shape, seed = case
    torch.manual_seed(seed)
    model = nn.Sequential(conv, randomize_bn(bn, seed)).eval()
    x = torch.randn(*shape)
    result = fold_bn(model, x if with_inputs else None)
    assert fates(result) == {"1": FOLDED}
    assert not bn_modules(result.model)
    with torch.no_grad():
        assert rel_err(model(x), result.model(x)) < TOL


@_settings
@given(conv_cases())
def test_property_bn_then_unpadded_conv_folds_forward(case):
    conv, bn, shape, seed = case
    if isinstance(conv, nn.ConvTranspose2d):
        return
    torch.manual_seed(seed)
    conv.padding = (0,) * len(conv.kernel_size)
    cls = nn.BatchNorm1d if isinstance(conv, nn.Conv1d) else nn.BatchNorm2d
    model = nn.Sequential(nn.ReLU(), randomize_bn(cls(conv.in_channels), seed), conv).eval()
    x = torch.randn(*shape)
    result = fold_bn(model, x)
    assert fates(result) == {"1": FOLDED_FORWARD}
    with torch.no_grad():
        assert rel_err(model(x), result.model(x)) < TOL


@_settings
@given(st.integers(1, 8), st.integers(1, 8), st.booleans(), st.integers(1, 4), st.integers(0, 2**16))
def test_property_linear_then_bn1d(fin, fout, bias, batch, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(fin, fout, bias=bias), randomize_bn(nn.BatchNorm1d(fout), seed)).eval()
    x = torch.randn(batch, fin)
    result = fold_bn(model, x)
    assert fates(result) == {"1": FOLDED}
    with torch.no_grad():
        assert rel_err(model(x), result.model(x)) < TOL


def test_grouped_conv_transpose_with_one_output_channel_per_group():
    # torch's fuse_conv_bn_weights(transpose=True) scales dim 1 (out/groups) and would
    # broadcast this (4, 1, 3, 3) weight to (4, 4, 3, 3); edgekit regroups it first
    model = nn.Sequential(nn.ConvTranspose2d(4, 4, 3, groups=4), _bn(4)).eval()
    x = torch.randn(2, 4, 6, 6)
    result = fold_bn(model, x)
    assert result.model.get_submodule("0").weight.shape == (4, 1, 3, 3)
    check_equal(model, result, x)
