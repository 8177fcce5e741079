"""Quantization debugger: per-layer error (compounded and added), module names, calibration
checks and measured remedies, on small models quantized with ai-edge-quantizer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_quantizer")
import artifacts  # noqa: E402
from torch import nn  # noqa: E402

from edgekit.lint.quant_debug import check_calibration, quant_debug  # noqa: E402


class Net(nn.Module):
    """conv -> relu -> dw conv -> relu -> Fire-like concat -> one badly scaled conv -> pool -> fc."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.e1 = nn.Conv2d(8, 8, 1)
        self.e3 = nn.Conv2d(8, 8, 3, padding=1)
        self.loud = nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(16, 4)
        with torch.no_grad():  # one output channel 1000x louder than the rest
            self.loud.weight[0] *= 1000.0

    def forward(self, x):
        y = torch.relu(self.dw(torch.relu(self.conv(x))))
        y = torch.cat([torch.relu(self.e1(y)), torch.relu(self.e3(y))], 1)
        y = self.loud(y)
        return self.fc(y.mean((2, 3)))


def _cal(n=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 1, 3, 16, 16)).astype(np.float32)


QNET = artifacts.Net("quant_debug", Net, (1, 3, 16, 16), calibration=_cal)  # the model matters: its loud channel


@pytest.fixture(scope="session")
def pair(artifact):
    return artifact(QNET, "fp32"), artifact(QNET, "int8")


@pytest.fixture(scope="session")
def report(pair):
    return quant_debug(pair[0], pair[1], _cal(), samples=4, remedies=("per_channel", "shared_concat_scales",
                                                                      "float_worst:1"))


@pytest.mark.export
def test_per_layer_errors_worst_first_with_modules(report):
    assert report.matched >= 8 and report.samples == 4
    keys = [lay.added_sqnr_db if lay.added_sqnr_db is not None else lay.sqnr_db for lay in report.layers]
    assert keys == sorted(keys)  # worst first
    mods = {lay.module for lay in report.layers}
    assert {"conv", "dw", "e1", "e3", "loud", "fc"} <= mods
    assert 0 < report.output_cosine <= 1 and np.isfinite(report.output_sqnr_db)
    assert report.by_module("loud")


@pytest.mark.export
def test_added_error_of_the_first_layer_equals_its_compounded_error(report):
    # the first conv sees the same quantized input in both runs: nothing upstream to compound
    first = min((lay for lay in report.layers if lay.opcode == "CONV_2D"), key=lambda lay: lay.index)
    assert first.added_sqnr_db == pytest.approx(first.sqnr_db, abs=0.05)
    # deeper layers compound: their error in the int8 model is at least what they add alone (allow noise)
    last = max((lay for lay in report.layers if lay.opcode in ("CONV_2D", "FULLY_CONNECTED")),
               key=lambda lay: lay.index)
    assert last.added_sqnr_db is not None and last.sqnr_db <= last.added_sqnr_db + 1.0


@pytest.mark.export
def test_remedies_are_measured(report):
    by = {r.name: r for r in report.remedies}
    pc = by["per_channel"]
    # measured, whichever way it goes: at the output of this net the loud channel dominates, and per-tensor
    # weights happen to serve it as well as per-channel ones
    assert pc.applied and np.isfinite(pc.delta_db) and pc.output_sqnr_db is not None and pc.baseline_sqnr_db
    assert "already uses per-channel" in pc.note
    assert not by["shared_concat_scales"].applied  # ai-edge-quantizer already shares concat scales
    fw = by["float_worst:1"]
    assert fw.applied and fw.extra_ops >= 1 and fw.output_sqnr_db is not None and len(fw.layers) == 1
    assert report.to_dict()["remedies"][0]["name"] == "per_channel"


def test_calibration_checks():
    rng = np.random.default_rng(0)
    few = check_calibration(rng.standard_normal((4, 1, 3, 8, 8)).astype(np.float32))
    assert any(f.code == "calibration-samples" and f.severity == "warning" for f in few)
    raw = check_calibration((rng.random((32, 1, 3, 8, 8)) * 255).astype(np.float32))
    assert any(f.code == "calibration-range" and "0..255" in f.message for f in raw)
    unit = check_calibration(rng.random((32, 1, 3, 8, 8)).astype(np.float32))
    assert any(f.code == "calibration-range" and "[0, 1]" in f.message for f in unit)
    same = check_calibration(np.ones((16, 1, 3, 8, 8), np.float32))
    assert any("identical" in f.message for f in same)
    bad = np.zeros((16, 1, 3, 8, 8), np.float32)
    bad[0, 0, 0, 0, 0] = np.nan
    assert check_calibration(bad)[-1].severity == "error"
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 1, 3, 1, 1)
    good = check_calibration(((rng.random((64, 1, 3, 8, 8)) - mean) / std).astype(np.float32))
    assert not good


@pytest.mark.export
def test_calibration_against_the_int8_input_range(pair):
    wide = (np.random.default_rng(1).standard_normal((16, 1, 3, 16, 16)) * 10).astype(np.float32)
    f = check_calibration(wide, expected_input=None, int8_path=pair[1])
    assert any("outside the int8 input range" in x.message for x in f)


@pytest.mark.export
def test_unknown_remedy_is_a_usage_error(pair):
    from edgekit.errors import UsageError

    with pytest.raises(UsageError, match="unknown quantization remedy"):
        quant_debug(pair[0], pair[1], _cal(4), samples=1, remedies=("magic",))


class DeadNet(nn.Module):
    """conv -> relu -> a conv whose bias keeps every output negative (dead after its ReLU) -> conv -> fc."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dead = nn.Conv2d(8, 8, 1)
        self.tail = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(16, 4)
        with torch.no_grad():
            self.dead.weight.mul_(0.01)
            self.dead.bias.fill_(-100.0)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        z = torch.relu(self.dead(y))
        return self.fc(torch.cat([self.tail(y).mean((2, 3)), z.mean((2, 3))], 1))


@pytest.mark.export
def test_dead_layers_are_flagged_not_ranked(tmp_path):
    from edgekit.export.tflite import convert_fp32, quantize_int8

    torch.manual_seed(0)
    model = DeadNet().eval()
    fp32 = convert_fp32(model, torch.randn(1, 3, 16, 16))
    int8 = quantize_int8(fp32, _cal())
    with torch.no_grad():  # the layer really outputs only zeros on the calibration data (checked in PyTorch)
        assert all(float(torch.relu(model.dead(torch.relu(model.conv(torch.from_numpy(s))))).abs().max()) == 0
                   for s in _cal())
    rep = quant_debug(fp32, int8, _cal(), samples=4)
    # the dead conv, then what only it feeds (its mean over H, W: zeros too), in graph order
    assert rep.dead_layers[0].module == "dead" and rep.dead_layers[0].opcode == "CONV_2D"
    assert [lay.index for lay in rep.dead_layers] == sorted(lay.index for lay in rep.dead_layers)
    assert not {lay.module for lay in rep.dead_layers[1:]} & {"conv", "tail", "fc"}
    assert {"conv", "tail", "fc"} <= {lay.module for lay in rep.layers}
    assert all(lay.dead and lay.sqnr_db is None for lay in rep.dead_layers)
    assert "dead" not in {lay.module for lay in rep.layers} and all(np.isfinite(lay.sqnr_db) for lay in rep.layers)
    assert any(f.code == "quant-dead-layers" and "dead" in f.message for f in rep.calibration)
    assert rep.to_dict()["dead_layers"][0]["module"] == "dead"


def _litert_accuracy(model_bytes, x, y):
    from ai_edge_litert import interpreter as lr

    it = lr.Interpreter(model_content=bytes(model_bytes),
                        experimental_op_resolver_type=lr.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    ind, outd = it.get_input_details()[0], it.get_output_details()[0]
    (si,), (zi,) = ind["quantization_parameters"]["scales"], ind["quantization_parameters"]["zero_points"]
    hits = 0
    for s, label in zip(x, y):
        it.set_tensor(ind["index"], np.clip(np.round(s / si) + zi, -128, 127).astype(np.int8))
        it.invoke()
        hits += int(np.argmax(it.get_tensor(outd["index"])) == label)
    return hits / len(y)


@pytest.mark.export
def test_remedies_report_the_accuracy_they_buy(pair):
    from edgekit.evaluation import EvalData

    x = _cal(40, seed=5)
    # labels: what the fp32 network itself predicts, so accuracy measures how much int8 keeps
    from ai_edge_litert import interpreter as lr

    it = lr.Interpreter(model_path=str(pair[0]))
    it.allocate_tensors()
    y = []
    for s in x:
        it.set_tensor(it.get_input_details()[0]["index"], s)
        it.invoke()
        y.append(int(np.argmax(it.get_tensor(it.get_output_details()[0]["index"]))))
    data = EvalData(x=x, y=np.array(y), source="fp32 labels")
    rep = quant_debug(pair[0], pair[1], _cal(), samples=2, remedies=("per_channel", "float_worst:1"), eval_data=data)
    for rem in rep.remedies:
        assert rem.eval_samples == 40
        assert rem.accuracy == pytest.approx(_litert_accuracy(rem.model, x, y))
        base = rem.baseline_model if rem.name == "per_channel" else pair[1].read_bytes()
        assert rem.baseline_accuracy == pytest.approx(_litert_accuracy(base, x, y))
        assert rem.accuracy_delta_pp == pytest.approx(100 * (rem.accuracy - rem.baseline_accuracy))
        assert "model" not in rem.to_dict() and rem.to_dict()["accuracy"] == rem.accuracy
