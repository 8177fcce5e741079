"""`edgekit build` end to end with the real converters and runtimes, and the pre-export
arena prediction checked against the arena TFLite-Micro really needs for the built file."""

import json

import numpy as np
import pytest
import torch
import torchvision

from edgekit.build import build
from edgekit.errors import EdgekitError, UsageError
from edgekit.models import create_model
from edgekit.passes.bn_stats import reestimate_bn_stats
from edgekit.plan import resolve
from edgekit.runtime.tflm import tflm_run


def _prepared(model, shape, n=16, seed=0):
    """An untrained model with BN statistics of realistic scale, and its calibration array."""
    g = torch.Generator().manual_seed(seed)
    cal = torch.rand((n, *shape), generator=g) * 4 - 2
    model = reestimate_bn_stats(model.eval(), [c for c in cal])
    return model, cal.numpy()


@pytest.mark.export
def test_default_model_builds_fits_and_runs_in_tflm(tmp_path):
    out = tmp_path / "out" / "demo"  # missing parents are created, as `mkdir -p` would
    res = build(None, target="tflite", sram="256kB", output=out)
    assert res.fits and res.written
    # the default model ships its held-out digits: the build measures accuracy and draws the confusion matrix
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "model.tflite", "model_data.cc", "model_data.h",
                                                     "op_resolver.h", "report.json"]
    rep = json.loads((out / "report.json").read_text())
    arena = rep["arena_bytes"]
    assert rep["dtype"] == "int8" and rep["runtime"] == "tflite-micro"
    # the number in the firmware header is the measured minimum plus the stated margin
    assert arena["c_constant"] >= arena["measured"]
    assert f"kTensorArenaSize = {arena['c_constant']};" in (out / "model_data.h").read_text()
    # prediction before export vs the real interpreter: within 2 %, never under by more than 1 %
    assert abs(arena["predicted_pre_export"] - arena["measured"]) <= 0.02 * arena["measured"]
    assert arena["predicted_pre_export"] >= 0.99 * arena["measured"]
    assert arena["measured"] <= 256 * 1024
    assert rep["verification"]["tflite-micro_vs_litert"]["max_abs_error"] == 0.0
    # the artifact really runs in TFLite-Micro inside the arena we wrote down
    x = np.zeros((1, 3, 96, 96), np.int8)
    (y,) = tflm_run(out / "model.tflite", [x], arena_size=arena["c_constant"])
    assert y.shape == (1, 10)
    for key in ("model", "target", "dtype", "params", "macs", "model_bytes", "timings_s", "versions"):
        assert key in rep


@pytest.mark.slow  # ~7-30 s: CLI processes that import torch; `make test` runs it
def test_over_budget_fails_fast_and_writes_nothing(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    res = build(None, target="tflite", sram="32kB", output=out)
    assert not res.fits and not res.written
    assert res.report.to_dict()["verdict"]["stage"] == "predicted before export"
    assert res.report.to_dict()["verdict"]["suggestions"], "suggestions computed by re-analysing the model"
    nested = tmp_path / "new" / "deeper"
    assert not build(None, target="tflite", sram="32kB", output=nested).written
    assert not (tmp_path / "new").exists(), "a build that writes nothing creates no folders either"
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not list(tmp_path.glob(".edgekit-build-*")), "staging folder removed"


@pytest.mark.parametrize("target,expected", [
    (("tflite", None), ("tflite", "litert", "fp32")),
    (("tflite", "256kB"), ("tflite", "tflite-micro", "int8")),
    (("executorch", None), ("pte", "executorch", "fp32")),
    (("nucleo-h743zi", None), ("tflite", "tflite-micro", "int8")),
])
def test_resolve(target, expected):
    p = resolve(target=target[0], sram=target[1])
    assert (p.format, p.runtime, p.dtype) == expected


def test_unknown_target_and_missing_calibration(tmp_path):
    with pytest.raises(EdgekitError, match="unknown target"):
        build(None, target="no-such-board", output=tmp_path / "x")
    with pytest.raises(UsageError, match="calibration"):
        build("mcunet_tiny", target="tflite", sram="256kB", output=tmp_path / "y")
    with pytest.raises(UsageError, match="no images"):
        (tmp_path / "empty").mkdir()
        build("mcunet_tiny", target="tflite", sram="256kB", calibration=str(tmp_path / "empty"),
              output=tmp_path / "z")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 3, 32, 32), np.float32))
    with pytest.raises(UsageError, match="shape"):
        build("mcunet_tiny", target="tflite", sram="256kB", calibration=str(bad), output=tmp_path / "w")
    assert not (tmp_path / "w").exists()


PREDICTION_SET = [
    ("mcunet_tiny", lambda: create_model("mcunet_tiny"), (1, 3, 96, 96)),
    ("mobilenet_v2_0.35", lambda: create_model("mobilenet_v2", width=0.35, resolution=96), (1, 3, 96, 96)),
    ("squeezenet1_1", lambda: create_model("squeezenet1_1", resolution=96), (1, 3, 96, 96)),
    ("mobilenet_v3_small", lambda: create_model("mobilenet_v3_small", resolution=96), (1, 3, 96, 96)),
    ("tv_mnasnet0_5", lambda: torchvision.models.mnasnet0_5(weights=None), (1, 3, 96, 96)),
    ("shufflenet_v2_0.5", lambda: create_model("shufflenet_v2", width=0.5, resolution=96), (1, 3, 96, 96)),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,factory,shape", PREDICTION_SET, ids=[p[0] for p in PREDICTION_SET])
@pytest.mark.export
def test_pre_export_prediction_matches_tflm(tmp_path, name, factory, shape):
    torch.manual_seed(0)
    model, cal = _prepared(factory(), shape)
    res = build(model, target="tflite", sram="2MB", calibration=cal, input_shape=shape, output=tmp_path / name,
                force=True)
    arena = res.report.to_dict()["arena_bytes"]
    err = (arena["predicted_pre_export"] - arena["measured"]) / arena["measured"]
    print(f"{name}: measured {arena['measured']} predicted {arena['predicted_pre_export']} ({100 * err:+.2f} %)")
    assert -0.01 <= err <= 0.02
    # same graph, TFLite-Micro vs LiteRT's reference kernels: equal up to rare 1-LSB rounding differences
    assert res.report.to_dict()["verification"]["tflite-micro_vs_litert"]["cosine"] >= 0.9999
    # a clean edgekit build: lint finds nothing that makes it unusable on TFLite-Micro, the
    # op resolver registers what the interpreter reports, the quantization debugger mapped layers
    lint = res.report.to_dict()["lint"]
    assert lint["runtime"] == "tflite-micro" and not lint["unusable"], [f["message"] for f in lint["findings"]
                                                                        if f["severity"] == "error"]
    assert not [f for f in lint["findings"] if f["code"] == "rank-gt-4"]
    assert res.report.to_dict()["op_resolver"]["ok"], res.report.to_dict()["op_resolver"]["problems"]
    assert (tmp_path / name / "op_resolver.h").exists()
    qd = res.report.to_dict()["quant_debug"]
    assert qd["matched"] > 0 and qd["layers"] and all(lay["module"] for lay in qd["layers"][:3])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mcu_mobilenet_v1", "mcunet_tiny", "mobilenet_v2:width=0.35,resolution=96",
                                  "shufflenet_v2:width=0.5,resolution=96", "squeezenet1_0:resolution=96",
                                  "squeezenet1_1:resolution=96", "mobilenet_v3_small:resolution=96",
                                  "mobilenet_v3_large:resolution=96"])
@pytest.mark.parametrize("fmt", ["tflite", "executorch"])
@pytest.mark.export
def test_reference_networks_fp32_build_and_verify(tmp_path, name, fmt):
    res = build(name, target=fmt, output=tmp_path / "o")
    assert res.written
    rt = "litert" if fmt == "tflite" else "executorch"
    v = res.report.to_dict()["verification"][rt]
    assert v["cosine"] > 0.9999 and v["max_rel_error"] < 1e-3


def test_model_rejecting_its_input_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="rejects input shape"):
        build(None, target="tflite", input_shape=(1, 5, 96, 96), output=tmp_path / "x")


@pytest.mark.slow
@pytest.mark.export
def test_channels_last_io_saving_is_predicted_and_measured(tmp_path):
    """--channels-last-io drops the input TRANSPOSE: the saving build reports before export equals
    the difference of the two arenas TFLite-Micro measures, and the NHWC artifact computes the
    same outputs as the NCHW one on the same (transposed) inputs."""
    torch.manual_seed(0)
    shape = (1, 3, 96, 96)
    model, cal = _prepared(create_model("mobilenet_v2", width=0.35, resolution=96), shape)
    a = build(model, target="tflite", sram="2MB", calibration=cal, input_shape=shape, output=tmp_path / "nchw")
    b = build(model, target="tflite", sram="2MB", calibration=cal, input_shape=shape, output=tmp_path / "nhwc",
              channels_last_io=True)
    pred = a.report.to_dict()["memory_options"]["channels_last_io"]
    assert pred["used"] is False and b.report.to_dict()["memory_options"]["channels_last_io"]["used"] is True
    measured_saving = a.report.to_dict()["arena_bytes"]["measured"] - b.report.to_dict()["arena_bytes"]["measured"]
    print(f"channels-last input: predicted saving {pred['saves_bytes']} B, measured {measured_saving} B")
    assert measured_saving > 0
    assert abs(pred["saves_bytes"] - measured_saving) <= 0.01 * a.report.to_dict()["arena_bytes"]["measured"]
    from edgekit.graph.tflite_reader import read_tflite

    ops_a = [o.attrs["opcode"] for o in read_tflite(tmp_path / "nchw" / "model.tflite").ops]
    ops_b = [o.attrs["opcode"] for o in read_tflite(tmp_path / "nhwc" / "model.tflite").ops]
    assert ops_a[0] == "TRANSPOSE" and ops_b[0] != "TRANSPOSE" and len(ops_b) == len(ops_a) - 1
    assert b.report.to_dict()["verification"]["tflite-micro_vs_litert"]["cosine"] >= 0.9999


@pytest.mark.slow
@pytest.mark.export
def test_fp16_tflite_halves_the_weights_and_verifies(tmp_path):
    a = build("mcu_mobilenet_v1", target="tflite", dtype="fp32", output=tmp_path / "f32")
    b = build("mcu_mobilenet_v1", target="tflite", dtype="fp16", output=tmp_path / "f16")
    assert b.written and b.report.to_dict()["dtype"] == "fp16"
    # 212,906 fp32 params = 851,624 B of weights; fp16 keeps half of that
    saved = a.report.to_dict()["model_bytes"] - b.report.to_dict()["model_bytes"]
    assert 0.45 * 4 * a.report.to_dict()["params"] <= 2 * saved <= 1.05 * 4 * a.report.to_dict()["params"], saved
    assert b.report.to_dict()["verification"]["litert"]["cosine"] > 0.999
    # fp32 compute: the activations (and so the predicted arena) are fp32's
    assert (b.report.to_dict()["arena_bytes"]["predicted_pre_export"]
            == a.report.to_dict()["arena_bytes"]["predicted_pre_export"])
    with pytest.raises(UsageError, match="no fp16 kernels"):
        build("mcu_mobilenet_v1", target="tflite", sram="256kB", dtype="fp16", output=tmp_path / "x")


@pytest.mark.slow
@pytest.mark.export
def test_lint_error_fails_the_build_and_writes_nothing(tmp_path):
    """A rank-5 channel shuffle (the textbook view) runs in TFLite-Micro's reference kernels but not
    in CMSIS-NN's: lint calls it an error for an MCU build, and the build refuses like over budget --
    before export, from the same runnability table (one truth; tests/test_one_truth.py runs lint too)."""
    from torch import nn

    class Naive(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(8, 8, 1)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

        def forward(self, x):
            x = torch.relu(self.a(x))
            n, c, h, w = x.shape
            y = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
            return self.head(self.b(x + y))  # the shuffle meets its own input: no weight can absorb it

    torch.manual_seed(0)
    shape = (1, 3, 16, 16)
    cal = np.random.default_rng(0).uniform(-1, 1, (8, *shape)).astype(np.float32)
    out = tmp_path / "o"
    res = build(Naive().eval(), target="tflite", sram="256kB", calibration=cal, input_shape=shape, output=out)
    assert not res.fits and not res.written and not out.exists()
    report = res.report.to_dict()
    verdict = report["verdict"]
    assert verdict["stage"] == "predicted before export", verdict
    assert any(r.startswith("cannot run on TFLite-Micro: TRANSPOSE with a rank-5") for r in verdict["reasons"]), verdict
    assert report["arena_bytes"]["predicted_pre_export"] <= 256 * 1024  # the arena fits: runnability refused it
    assert report["shuffle_free"]["shuffles_removed"] == 0 and report["shuffle_free"]["notes"]
