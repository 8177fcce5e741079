"""Keras and TensorFlow models in (issue #18): check, build, fold, lint and profile a ``.keras``, ``.h5``
or SavedModel like a PyTorch model, with TensorFlow only in child processes.

The models are made by ``tests/keras_models.py`` in a TensorFlow process of its own
(``keras.applications`` MobileNet / MobileNetV2 with ``weights=None`` at 96x96, a DS-CNN keyword
spotter, and two small nets), which also writes the oracles computed from Keras alone: parameter
counts, MACs from the layers' shapes, each BatchNorm's producer and the Keras outputs on the first
calibration samples. The tests compare edgekit's numbers with those, with TFLite-Micro's measured
arena and with LiteRT running the written ``model.tflite``.

Tests that need TensorFlow skip when ``edgekit[keras]`` is not installed (``.ci/run`` installs it);
the import checks and the missing-extra error run everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parent.parent
HAS_TF = importlib.util.find_spec("tensorflow") is not None
_skip = pytest.mark.skipif(not HAS_TF, reason="edgekit[keras] (TensorFlow) is not installed: pip install -e '.[keras]'")


def needs_tf(fn):
    """TensorFlow tests convert (in a TensorFlow child): the 'export' marker keeps them out of test-fast."""
    return _skip(pytest.mark.export(fn))

KERAS_TIMEOUT = 1500
BUILT = ["mobilenet", "mobilenet_v2", "dscnn"]


def _cosine(a, b) -> float:
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _in_child(code: str, *args, timeout: float = KERAS_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


# ---------------------------------------------------------------- without TensorFlow

def _tiny_tflite(path: Path) -> Path:
    from tflite_builder import TfliteModel

    m = TfliteModel()
    g = m.main
    x = g.tensor((1, 8), "float32")
    w = g.const(np.ones((4, 8), np.float32))
    y = g.tensor((1, 4), "float32")
    from ai_edge_litert import schema_py_generated as s

    g.op("FULLY_CONNECTED", [x, w, -1], [y], s.FullyConnectedOptionsT())
    g.inputs, g.outputs = [x], [y]
    path.write_bytes(m.to_bytes())
    return path


def _keras_like_zip(path: Path) -> Path:
    """A .keras file that passes edgekit's checks without TensorFlow (a zip with config.json)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", "{}")
    return path


def test_help_imports_no_tensorflow():
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "edgekit", "--help"], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0
    imported = {ln.split("|")[-1].strip().split(".")[0] for ln in p.stderr.splitlines() if "|" in ln}
    assert not imported & {"tensorflow", "keras", "torch"}, imported & {"tensorflow", "keras", "torch"}


def test_tflite_check_and_pytorch_check_import_no_tensorflow(tmp_path):
    tfl = _tiny_tflite(tmp_path / "tiny.tflite")
    code = ("import sys; from edgekit.cli import main; rc = main(['check', sys.argv[1], '--json']); "
            "bad = {'tensorflow', 'keras', 'torch'} & set(sys.modules); assert not bad, bad; sys.exit(rc)")
    p = _in_child(code, tfl, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["macs"] == 4 * 8
    # a PyTorch path (the default model) imports torch, never TensorFlow
    code = ("import sys; from edgekit.cli import main; rc = main(['check', '--json']); "
            "assert 'torch' in sys.modules; bad = {'tensorflow', 'keras'} & set(sys.modules); assert not bad, bad; "
            "sys.exit(rc)")
    p = _in_child(code, timeout=600)
    assert p.returncode in (0, 1), p.stderr


def test_missing_tensorflow_is_the_usual_one_line(tmp_path):
    path = _keras_like_zip(tmp_path / "m.keras")
    code = ("import sys; sys.modules['tensorflow'] = None; from edgekit.cli import main; "
            "sys.exit(main(['check', sys.argv[1]]))")
    p = _in_child(code, path, timeout=120)
    line = assert_one_line_error(p, "tensorflow", "pip install 'edgekit[keras]'")
    assert "Traceback" not in p.stderr and line


def test_parse_spec_knows_keras_forms(tmp_path):
    from edgekit.errors import ArtifactError, UsageError
    from edgekit.loader import load_model, parse_spec

    k = parse_spec(str(_keras_like_zip(tmp_path / "a.keras")))
    assert (k.kind, k.kwargs["format"], k.name) == ("keras", "keras", "a")
    sm = tmp_path / "sm"
    sm.mkdir()
    (sm / "saved_model.pb").write_bytes(b"\x08\x01")
    assert parse_spec(str(sm)).kwargs["format"] == "savedmodel"
    (tmp_path / "w.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    assert parse_spec(str(tmp_path / "w.h5")).kwargs["format"] == "h5"
    (tmp_path / "plain").mkdir()
    with pytest.raises(UsageError, match="not a TensorFlow SavedModel"):
        parse_spec(str(tmp_path / "plain"))
    (tmp_path / "bad.h5").write_bytes(b"not hdf5" * 100)
    with pytest.raises(ArtifactError, match="HDF5"):
        parse_spec(str(tmp_path / "bad.h5"))
    with pytest.raises(UsageError, match="Keras"):
        load_model(k)  # the PyTorch loader refuses it by name
    with pytest.raises(UsageError, match="PyTorch model"):
        parse_spec(str(tmp_path / "a.keras") + "@" + str(_weights(tmp_path)))


def _weights(tmp_path: Path) -> Path:
    p = tmp_path / "w.pt"
    p.write_bytes(b"x")
    return p


# ---------------------------------------------------------------- with TensorFlow

@pytest.fixture(scope="session")
def kmodels(tmp_path_factory):
    if not HAS_TF:
        pytest.skip("edgekit[keras] (TensorFlow) is not installed")
    d = tmp_path_factory.mktemp("keras")
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "keras_models.py"), str(d)], capture_output=True,
                       text=True, timeout=KERAS_TIMEOUT)
    assert p.returncode == 0, p.stderr[-3000:]
    return d, json.loads((d / "facts.json").read_text())


_BUILDS: dict = {}
# LiteRT's own interpreter, quantizing and dequantizing with the details it reports (no edgekit code)
_LITERT_RUN = """
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1])
it.allocate_tensors()
i, o = it.get_input_details()[0], it.get_output_details()[0]
(si, zi), (so, zo) = i["quantization"], o["quantization"]
outs = []
for x in np.load(sys.argv[2])[:4]:
    it.set_tensor(i["index"], np.clip(np.round(x[None] / si + zi), -128, 127).astype(i["dtype"]))
    it.invoke()
    outs.append(((it.get_tensor(o["index"]).astype(np.float64) - zo) * so).tolist())
print(json.dumps({"outputs": outs, "dtypes": [np.dtype(i["dtype"]).name, np.dtype(o["dtype"]).name]}))
"""


def _build(kmodels, name: str, target: str = "tflite-micro", **kw):
    """edgekit.build in this process (it imports neither torch nor TensorFlow for a Keras model)."""
    from edgekit.build import build

    d, _ = kmodels
    key = (name, target, tuple(sorted(kw.items())))
    if key not in _BUILDS:
        cal = d / f"{name}_calibration.npy"
        _BUILDS[key] = build(str(d / f"{name}.keras"), target=target, calibration=str(cal),
                             output=d / f"out_{name}_{target}", **kw)
    return _BUILDS[key]


def _check_json(path, *args) -> dict:
    p = run_cli("check", path, "--json", *args, timeout=KERAS_TIMEOUT)
    assert p.returncode in (0, 1), p.stderr[-2000:]
    return json.loads(p.stdout)


@needs_tf
@pytest.mark.slow
@pytest.mark.parametrize("name", BUILT)
def test_int8_build_verified_in_litert_and_tflm_against_keras(kmodels, name):
    d, facts = kmodels
    f = facts[name]
    res = _build(kmodels, name)
    rep = res.report.to_dict()
    assert res.written and rep["dtype"] == "int8" and rep["runtime"] == "tflite-micro"
    v = rep["verification"]
    print(f"{name}: cosine vs Keras in TFLite-Micro {v['tflite-micro']['cosine']:.5f}, "
          f"TFLite-Micro vs LiteRT reference max abs {v['tflite-micro_vs_litert']['max_abs_error']}")
    assert v["tflite-micro"]["cosine"] >= 0.9  # measured 0.954 (MobileNetV2) .. 0.9999 (DS-CNN)
    assert v["tflite-micro_vs_litert"]["max_abs_error"] == 0.0
    # independent: LiteRT runs the written file on the samples the oracle script ran Keras on
    p = _in_child(_LITERT_RUN, res.artifacts["model.tflite"], d / f"{name}_calibration.npy", timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout)
    assert got["dtypes"] == ["int8", "int8"], "full-integer: int8 input and output"
    cos = _cosine(np.array(f["outputs"]), np.array(got["outputs"]))
    print(f"{name}: LiteRT int8 vs Keras (oracle script) cosine {cos:.5f}")
    assert cos >= 0.9
    # counts from Keras alone
    assert rep["params"] == f["params"]
    assert rep["macs"] == f["macs"]
    # every BatchNormalization folded into the convolution feeding it (what the converter did)
    fates = {x["name"]: x for x in rep["fold_bn"]["report"]}
    assert rep["fold_bn"]["folded"] == len(f["batchnorms"]) == len(fates)
    for bn, info in f["batchnorms"].items():
        assert fates[bn]["fate"] == "folded into" and fates[bn]["into"] == info["producer"], fates[bn]
    assert rep["op_resolver"]["ok"]
    assert not [x for x in rep["lint"]["findings"] if x["severity"] == "error"]


@needs_tf
@pytest.mark.slow
@pytest.mark.parametrize("name", BUILT)
def test_check_before_conversion_predicts_the_measured_arena(kmodels, name):
    """`edgekit check model.keras` (its own int8 conversion with random calibration) against the
    arena TFLite-Micro measured on the built file: -1 % ... +2 %."""
    d, facts = kmodels
    measured = _build(kmodels, name).report.arena_bytes.measured
    a = _check_json(d / f"{name}.keras", "--runtime", "tflite-micro", "--dtype", "int8")
    err = (a["arena_bytes"] - measured) / measured
    print(f"{name}: check predicted {a['arena_bytes']} B, TFLite-Micro measured {measured} B ({100 * err:+.2f} %)")
    assert -0.01 <= err <= 0.02
    assert a["macs"] == facts[name]["macs"] and a["params"] == facts[name]["params"]
    # every Conv2D/DepthwiseConv2D/Dense layer names exactly one convolution / fully connected row
    affine_rows = [r["name"] for r in a["layers"] if r["op"] in ("conv2d", "depthwise_conv2d", "linear")]
    assert sorted(affine_rows) == sorted(facts[name]["affine_layers"])


@needs_tf
def test_check_imports_neither_torch_nor_tensorflow_in_the_parent(kmodels):
    d, facts = kmodels
    code = ("import sys, json; from edgekit.cli import main; rc = main(['check', sys.argv[1], '--json']); "
            "bad = {'tensorflow', 'keras', 'torch'} & set(sys.modules); assert not bad, bad; sys.exit(rc)")
    p = _in_child(code, d / "dscnn.keras")
    assert p.returncode == 0, p.stderr[-2000:]
    a = json.loads(p.stdout)
    assert a["runtime"] == "litert" and a["dtype"] == "fp32" and a["input_shape"] == [1, 49, 10, 1]
    assert a["macs"] == facts["dscnn"]["macs"]
    assert {r["name"] for r in a["layers"]} >= {"conv_in", "dw0", "pw0", "dw1", "pw1", "pool", "logits", "probs"}


@needs_tf
def test_check_refuses_an_op_tflite_micro_lacks(kmodels):
    d, _ = kmodels
    p = run_cli("check", d / "gelu_net.keras", "--target", "nrf52840-dk", timeout=KERAS_TIMEOUT)
    assert p.returncode == 1, p.stderr[-2000:]  # refused: the verdict, whatever the budget
    assert "cannot run on TFLite-Micro: GELU has no kernel in TFLite-Micro (1 op) at gelu" in " ".join(p.stdout.split())
    a = _check_json(d / "gelu_net.keras", "--target", "nrf52840-dk")
    assert not a["fits"] and [(r["opcode"], r["modules"]) for r in a["runnability"]] == [("GELU", ["gelu"])]
    ok = _check_json(d / "gelu_net.keras", "--runtime", "litert")  # LiteRT has GELU: not a crash, a runtime fact
    assert any(r["op"] == "gelu" and r["name"] == "gelu" for r in ok["layers"])


@needs_tf
def test_h5_and_saved_model_give_the_graph_of_the_keras_file(kmodels):
    d, facts = kmodels
    k = _check_json(d / "dscnn.keras")
    h5 = _check_json(d / "dscnn.h5")
    sm = _check_json(d / "dscnn_savedmodel")
    assert k["macs"] == h5["macs"] == sm["macs"] == facts["dscnn"]["macs"]
    assert k["arena_bytes"] == h5["arena_bytes"] == sm["arena_bytes"]
    assert h5["params"] == facts["dscnn"]["params"]
    assert [r["name"] for r in k["layers"]] == [r["name"] for r in h5["layers"]]


@needs_tf
def test_fold_reports_what_the_converter_folded_per_keras_layer(kmodels):
    d, _ = kmodels
    p = run_cli("fold", d / "bn_after_add.keras", "--json", timeout=KERAS_TIMEOUT)
    assert p.returncode == 0, p.stderr[-2000:]
    r = {x["name"]: x for x in json.loads(p.stdout)["report"]}
    assert r["bn_c3"]["fate"] == "folded into" and r["bn_c3"]["into"] == "c3"
    assert r["bn_after_add"]["fate"] == "kept as" and "MUL" in r["bn_after_add"]["reason"]
    assert "add" in r["bn_after_add"]["reason"].lower()


@needs_tf
@pytest.mark.slow
def test_litert_build_lints_with_keras_layer_names(kmodels):
    res = _build(kmodels, "bn_after_add", target="litert")
    rep = res.report.to_dict()
    assert res.written and rep["dtype"] == "fp32"
    assert rep["verification"]["litert"]["max_rel_error"] < 1e-4
    modules = {x["module"] for x in rep["lint"]["findings"]}
    assert "bn_after_add" in modules, rep["lint"]["findings"]
    norm = [x for x in rep["lint"]["findings"] if x["code"] == "unfolded-norm"]
    assert norm and norm[0]["module"] == "bn_after_add" and norm[0]["module_type"] == "BatchNormalization"


@needs_tf
@pytest.mark.slow
def test_profile_runs_keras_eager_next_to_the_tflite(kmodels):
    d, _ = kmodels
    p = run_cli("profile", d / "dscnn.keras", "--compare", "--runs", "5", "--warmup", "1", "--json",
                timeout=KERAS_TIMEOUT)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout)
    runtimes = [m["runtime"] for m in r["measurements"] if not m["estimate"]]
    assert runtimes == ["TensorFlow eager (Keras)", "LiteRT"], runtimes
    assert all(m["stats"]["runs"] == 5 for m in r["measurements"] if not m["estimate"])


@needs_tf
def test_a_truncated_h5_is_one_line(kmodels, tmp_path):
    d, _ = kmodels
    bad = tmp_path / "trunc.h5"
    data = (d / "dscnn.h5").read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    p = run_cli("check", bad, timeout=KERAS_TIMEOUT)
    assert_one_line_error(p, "trunc.h5")
