"""edgekit lint: models built on purpose to show each finding, exported with litert-torch, and
the reference networks, which must come out without errors.

Every model is converted once per cache key (tests/artifacts.py, 2-5 s each); the runtime checks run the real
TFLite-Micro and LiteRT interpreters in child processes.
"""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")
import artifacts  # noqa: E402
from torch import nn  # noqa: E402

from edgekit.graph.names import ModuleTable, locations, primary  # noqa: E402
from edgekit.lint import lint  # noqa: E402
from edgekit.lint.findings import Cost, Finding, LintResult  # noqa: E402

X = (1, 3, 16, 16)


# ----------------------------------------------------------------------------- test models

class BNAfterReLU(nn.Module):
    """conv -> ReLU -> BatchNorm -> maxpool: nothing before the BN can absorb it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        with torch.no_grad():  # statistics that differ per channel, as after training
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.pool(self.bn(self.act(self.conv(x))))


class NaiveShuffle(nn.Module):
    """Channel shuffle written the naive way: a 5-D view."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.shuffle = Shuffle5D(2)
        self.head = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        return self.head(self.shuffle(self.conv(x)))


class Shuffle5D(nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous()
        return x.view(b, c, h, w)


class RoundedHSwish(nn.Module):
    """h-swish with a rounded 1/6: the converter does not recognise it."""

    def forward(self, x):
        return x * torch.nn.functional.relu6(x + 3) * 0.1667


class HSwishNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = RoundedHSwish()
        self.se_conv = nn.Conv2d(8, 8, 1)
        self.gate = nn.Hardsigmoid()
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = self.act(self.conv(x))
        return self.head(y * self.gate(self.se_conv(y)))


class GroupedNative(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.gconv = nn.Conv2d(8, 8, 3, padding=1, groups=4)

    def forward(self, x):
        return self.gconv(self.conv(x))


class GroupedByHand(nn.Module):
    """A grouped conv written as chunk + one conv per group + cat."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.branches = nn.ModuleList(nn.Conv2d(2, 2, 3, padding=1) for _ in range(4))

    def forward(self, x):
        parts = torch.chunk(self.conv(x), 4, dim=1)
        return torch.cat([b(p) for b, p in zip(self.branches, parts)], dim=1)


class Branchy(nn.Module):
    """ReLU6 on a conv output that is also used elsewhere, and a ReLU6 after a concat."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU6()
        self.post = nn.ReLU6()

    def forward(self, x):
        a = self.conv(x)
        y = torch.cat([self.act(a), self.conv2(x)], 1)
        return self.post(y), a


class Fire(nn.Module):
    """A SqueezeNet Fire module: two expand convs concatenated."""

    def __init__(self):
        super().__init__()
        self.squeeze = nn.Conv2d(3, 4, 1)
        self.expand1x1 = nn.Conv2d(4, 8, 1)
        self.expand3x3 = nn.Conv2d(4, 8, 3, padding=1)

    def forward(self, x):
        s = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(s)), torch.relu(self.expand3x3(s))], 1)


class GroupNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)

    def forward(self, x):
        return self.gn(self.conv(x))


class GeluNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.GELU()
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.head(self.act(self.conv(x)))


def _calib(n=8, seed=0, shape=X):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


# each model is built to show one finding: each is its own network
LINT_NETS = {name: artifacts.Net(f"lint_{name}", cls, X, calibration=_calib) for name, cls in [
    ("bn_after_relu", BNAfterReLU), ("shuffle", NaiveShuffle), ("hswish", HSwishNet), ("grouped", GroupedNative),
    ("grouped_by_hand", GroupedByHand), ("branchy", Branchy), ("fire", Fire), ("groupnorm", GroupNormNet),
    ("gelu", GeluNet)]}


@pytest.fixture(scope="session")
def built(artifact):
    """fp32 (and some int8) .tflite files of the test models, converted once (tests/artifacts.py)."""
    out = {name: artifact(net) for name, net in LINT_NETS.items()}
    out.update({f"{name}_int8": artifact(LINT_NETS[name], "int8") for name in ("shuffle", "fire")})
    return out


def _one(result: LintResult, code: str, module: str | None = None) -> Finding:
    found = [f for f in result.by_code(code) if module is None or f.module == module]
    assert found, f"no {code} finding{' at ' + module if module else ''}: " + "; ".join(
        f"{f.code}@{f.module}" for f in result.findings)
    return found[0]


# ----------------------------------------------------------------------------- names

def test_module_paths_from_litert_tensor_names():
    name = ("torch.nn.modules.container.Sequential_features/edgekit.blocks.inverted_residual.InvertedResidual_3/"
            "edgekit.layers.conv_norm_act.ConvNormAct_expand/torch.nn.modules.conv.Conv2d_conv;2")
    (loc,) = locations(name)
    assert loc.path == "features.3.expand.conv" and loc.cls == "torch.nn.modules.conv.Conv2d"
    fused = "__main__.Net/torch.nn.modules.activation.ReLU6_act;;__main__.Net/torch.nn.modules.conv.Conv2d_conv;1"
    locs = locations(fused)
    assert [lc.path for lc in locs] == ["act", "conv"]
    assert primary(locs, "conv2d").path == "conv"  # a conv op is reported under its conv
    assert locations("__main__.Net;3")[0].path == ""  # the model's own forward
    assert locations("arith.constant12") == [] and locations("serving_default_output_0_output") == []
    # attribute names with underscores, resolved against the real module table
    table = ModuleTable({"": "m.Net", "my_block": "m.My_Block", "my_block.conv_a": "torch.nn.modules.conv.Conv2d"})
    (loc,) = locations("m.Net/m.My_Block_my_block/torch.nn.modules.conv.Conv2d_conv_a;1", table.classes)
    assert loc.path == "my_block.conv_a"


def test_finding_and_result_serialize():
    f = Finding("transpose", "warning", "m", "fix", ops=[1], cost=Cost(1, 100, 2.5, "x"))
    r = LintResult("a.tflite", "tflite", None, "litert", [f])
    d = json.loads(json.dumps(r.to_dict()))
    assert d["counts"] == {"error": 0, "warning": 1, "info": 0} and not d["unusable"]
    assert "1 extra op" in f.cost.describe()
    r.findings.append(Finding("tflm-unsupported-op", "error", "x"))
    assert r.unusable


# ----------------------------------------------------------------------------- findings

@pytest.mark.export
def test_unfolded_batchnorm_after_relu(built):
    r = lint(built["bn_after_relu"])
    f = _one(r, "unfolded-norm", "bn")
    assert f.severity == "warning" and f.module_type.endswith("BatchNorm2d")
    assert "after an activation" in f.message and "before the activation" in f.fix
    assert f.cost.extra_ops >= 1 and f.cost.bytes > 0
    assert not r.unusable


@pytest.mark.export
def test_groupnorm_left_in_graph(built):
    r = lint(built["groupnorm"])
    f = _one(r, "unfolded-norm", "gn")
    assert f.details["norm"] == "GroupNorm" and f.cost.extra_ops > 5
    # BROADCAST_TO from the GroupNorm is not taken by XNNPACK: the graph splits
    nd = _one(r, "not-delegated")
    assert nd.details["partitions"] >= 2 and nd.module == "gn"


@pytest.mark.export
def test_rank5_shuffle_and_transposes(built):
    r = lint(built["shuffle"], target="litert")
    rank = _one(r, "rank-gt-4", "shuffle")
    assert rank.severity == "warning" and "x.view(b, g, c // g, h * w)" in rank.fix
    tr = r.by_code("transpose")
    assert sum(len(f.ops) for f in tr) == r.summary["transposes"]["count"] == 5
    positions = {f.details["position"] for f in tr}
    assert positions == {"input", "output", "interior"}
    assert any(f.module == "shuffle" and f.severity == "warning" for f in tr)
    assert all(f.cost.bytes > 0 for f in tr)


@pytest.mark.export
def test_rank5_int8_transpose_is_an_error_on_cortex_m(built):
    r = lint(built["shuffle_int8"], target="nucleo-h743zi")
    f = _one(r, "rank-gt-4", "shuffle")
    assert f.severity == "error" and "CMSIS-NN" in f.message
    assert r.unusable
    assert r.checks["tflite-micro"]["ok"]  # the Python interpreter's reference kernels do run it
    assert any(f.cost.est_us for f in r.by_code("transpose"))  # time estimated for the target


@pytest.mark.export
def test_decomposed_hswish_and_hsigmoid(built):
    r = lint(built["hswish"])
    f = _one(r, "decomposed-hswish", "act")
    assert f.severity == "warning" and "HARD_SWISH" in f.message and f.cost.extra_ops >= 1
    g = _one(r, "decomposed-hsigmoid", "gate")
    assert g.severity == "info"


@pytest.mark.export
def test_grouped_conv_native_and_by_hand(built):
    r = lint(built["grouped"])
    f = _one(r, "grouped-conv", "gconv")
    assert f.details["groups"] == 4 and f.severity == "info"
    r2 = lint(built["grouped_by_hand"])
    # the ModuleList is never called, so the tensor names say "0".."3": the common module is the model
    g = _one(r2, "grouped-conv-split", "")
    assert g.details["groups"] == 4 and g.cost.extra_ops >= 4 and "groups=G" in g.fix
    assert sorted(g.modules)[:4] == ["", "0", "1", "2"]


@pytest.mark.export
def test_unfused_activations(built):
    r = lint(built["branchy"])
    shared = _one(r, "unfused-activation", "act")
    assert "also used" in shared.message
    cat = _one(r, "unfused-activation", "post")
    assert "CONCATENATION" in cat.message and "each branch" in cat.fix


@pytest.mark.export
def test_float_island_from_a_recipe_override(built, tmp_path):
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.lint.quant_debug import _quantize

    # keep expand3x3 float with an ai-edge-quantizer per-op override
    g = read_tflite(built["fire"])
    conv = next(op for op in g.ops if "expand3x3" in g.tensors[op.outputs[0]].name)
    data = _quantize(built["fire"], _calib(), keep=[g.tensors[conv.outputs[0]].name])
    p = tmp_path / "island.tflite"
    p.write_bytes(data)
    r = lint(p, target="tflite-micro")
    f = _one(r, "float-island", "expand3x3")
    ops = [n.rsplit("_", 1)[0] for n in f.op_names]
    assert "DEQUANTIZE" in ops and "QUANTIZE" in ops and "CONV_2D" in ops
    assert f.cost.extra_ops >= 2


@pytest.mark.export
def test_concat_scales_error_on_tflite_micro_and_shared_scales_fix(built, tmp_path):
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    from edgekit.export.tflite import inline_buffers
    from edgekit.lint.quant_debug import share_concat_scales

    clean = lint(built["fire_int8"], target="tflite-micro")
    assert not clean.by_code("concat-scales")  # ai-edge-quantizer shares concat scales
    # break it: one concat input gets its own scale
    model = fbu.read_model_from_bytearray(bytearray(built["fire_int8"].read_bytes()))
    sg = model.subgraphs[0]
    names = {i: n for i, n in enumerate(fbu.opcode_to_name(model, k) for k in range(len(model.operatorCodes)))}
    cat = next(op for op in sg.operators if names[op.opcodeIndex] == "CONCATENATION")
    q = sg.tensors[cat.inputs[0]].quantization
    q.scale = [float(q.scale[0]) * 2.0]
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(inline_buffers(bytes(fbu.convert_object_to_bytearray(model))))
    r = lint(broken, target="tflite-micro")
    f = _one(r, "concat-scales", "")
    assert f.severity == "error" and "without rescaling" in f.message and r.unusable
    on_litert = lint(broken, target="litert")
    assert on_litert.by_code("concat-scales")[0].severity == "warning"
    assert _one(on_litert, "litert-refused").severity == "error"  # XNNPACK fails to prepare that concat
    fixed_bytes, changed, impossible = share_concat_scales(broken.read_bytes())
    assert changed == 1 and impossible == 0
    fixed = tmp_path / "fixed.tflite"
    fixed.write_bytes(fixed_bytes)
    assert not lint(fixed, target="tflite-micro").by_code("concat-scales")


@pytest.mark.export
def test_op_tflite_micro_lacks_makes_it_unusable(built):
    r = lint(built["gelu"], target="tflite-micro")
    f = _one(r, "tflm-unsupported-op", "act")
    assert f.severity == "error" and "GELU" in f.message and r.unusable
    assert r.checks["tflite-micro"]["missing"] == ["GELU"]
    assert not lint(built["gelu"], target="litert").unusable


@pytest.mark.export
def test_cli_lint_exit_codes_and_json(built, capsys):
    from edgekit.cli import main

    assert main(["lint", str(built["gelu"]), "--target", "tflite-micro"]) == 1
    capsys.readouterr()
    assert main(["lint", str(built["bn_after_relu"]), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["unusable"] is False and any(f["code"] == "unfolded-norm" and f["module"] == "bn" for f in d["findings"])


@pytest.mark.export
def test_offline_buffers_are_an_error_for_tflite_micro(built, tmp_path, monkeypatch):
    from edgekit.errors import ArtifactError
    from edgekit.lint import runtimes

    def refuse(path, **kw):
        raise ArtifactError(f"{path} stores its weights outside the flatbuffer (offset buffers)")

    monkeypatch.setattr(runtimes, "tflm_check", refuse)
    r = lint(built["bn_after_relu"], target="tflite-micro")
    assert _one(r, "offline-buffers").severity == "error" and r.unusable


@pytest.mark.export
def test_graph_rules_without_runtime_checks(built):
    r = lint(built["shuffle"], runtime_checks=False)
    assert r.checks == {} and r.by_code("rank-gt-4")


@pytest.mark.export
def test_model_given_resolves_module_names(built):
    r = lint(built["grouped_by_hand"], model=GroupedByHand(), runtime_checks=False)
    assert _one(r, "grouped-conv-split", "branches")


# ----------------------------------------------------------------------------- reference networks

def _reference(name, **kw):
    """(BN-folded module, example, calibration) of a registered network, as edgekit build makes them."""
    from edgekit.models import create_model
    from edgekit.models.calibration import calibration_data
    from edgekit.passes.bn_stats import reestimate_bn_stats
    from edgekit.passes.fold_bn import fold_bn

    res = kw.get("resolution", 96)
    m = create_model(name, **kw).eval()
    cal = calibration_data(name, n=8, resolution=res)
    m = reestimate_bn_stats(m, [cal])
    m = fold_bn(m, (cal[:1],)).model.eval()  # as edgekit build does
    return m, cal[:1], cal[:, None].numpy()


def _reference_artifact(artifact, name, **kw):
    return artifact(artifacts.Net(f"lint_ref_{name}", make=partial(_reference, name, **kw),
                                  params=tuple(sorted(kw.items()))), "int8")


@pytest.fixture(scope="session")
def mcu_default(artifact):
    return _reference_artifact(artifact, "mcu_mobilenet_v1", resolution=64)


@pytest.mark.export
def test_default_mcu_model_has_no_errors_on_an_mcu(mcu_default):
    r = lint(mcu_default, target="nucleo-h743zi")
    assert not r.errors, [f.message for f in r.errors]
    assert r.checks["tflite-micro"]["ok"] and r.summary["int8"]
    codes = r.codes()
    assert not codes & {"unfolded-norm", "float-island", "concat-scales", "rank-gt-4", "unfused-activation"}
    # every op is mapped back to a module but the I/O bookkeeping
    assert r.summary["modules_named"] >= r.summary["ops"] - 1


@pytest.mark.slow
@pytest.mark.parametrize("name,kw", [("mobilenet_v2", {"width": 0.35, "resolution": 96}),
                                     ("mobilenet_v3_small", {"resolution": 96}),
                                     ("squeezenet1_1", {"resolution": 96})])
@pytest.mark.export
def test_reference_networks_have_no_errors(artifact, name, kw):
    p = _reference_artifact(artifact, name, **kw)
    for target in ("tflite-micro", "litert"):
        r = lint(p, target=target)
        assert not r.errors, (target, [f.message for f in r.errors])
