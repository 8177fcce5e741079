"""Recipes end to end on this machine (no device: emulated profiling), and the bundles they write
proved on the host: the Pi's predict.py run with the venv python on an image and an array (LiteRT,
the tflite_runtime fallback and ExecuTorch), the phone's I/O spec against the interpreters and its
Kotlin checked textually (no Kotlin compiler here), the MCU's main.cc compiled with
``g++ -fsyntax-only`` against stub TFLite-Micro headers and its model run in the TFLite-Micro
Python interpreter with the arena from model_data.h."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tflm_stubs import HAVE_GPP, gpp_syntax, resolver_stub, write_stubs

from edgekit.errors import UsageError
from edgekit.recipe import RecipeError, io_spec, kotlin_snippet, load_recipe, run_recipe

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"
LABELS = (RECIPES / "mcu" / "labels.txt").read_text().split()


def _py(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _png(path: Path, seed=0) -> Path:
    from PIL import Image

    a = (np.random.default_rng(seed).random((120, 160, 3)) * 255).astype(np.uint8)
    Image.fromarray(a).save(path)
    return path


def _prediction(stdout: str) -> str:
    m = re.search(r"^prediction: (\S+) \(class (\d+)", stdout, re.M)
    assert m, stdout
    return m.group(1)


# ---- validation (fast) ---------------------------------------------------------------------------

GOOD = """kind = "mcu"
[model]
spec = "mcu_mobilenet_v1"
[target]
device = "nrf52840-dk"
dtype = "int8"
"""


def _write(tmp_path, text, name="recipe.toml"):
    d = tmp_path / "r"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_text(text)
    return p


def test_shipped_recipes_validate():
    kinds = {load_recipe(RECIPES / d).kind for d in ("raspberry-pi", "phone", "mcu")}
    assert kinds == {"raspberry-pi", "phone", "mcu"}
    for d in ("raspberry-pi", "phone", "mcu"):
        assert (RECIPES / d / "README.md").is_file(), f"recipes/{d} needs its walk-through"


@pytest.mark.parametrize("text,key,fragment", [
    ("colour = 1\n" + GOOD, "colour", "unknown key"),
    (GOOD.replace("[target]", "[target]\ndevise = \"x\""), "target.devise", "did you mean 'device'"),
    (GOOD.replace('kind = "mcu"', 'kind = "pi"'), "kind", "choose one of raspberry-pi, phone, mcu"),
    (GOOD.replace('"nrf52840-dk"', '"pixel-6a"'), "target.device", "needs a target of kind mcu"),
    (GOOD.replace('"nrf52840-dk"', '"no-such-board"'), "target.device", "unknown target"),
    (GOOD.replace('"int8"', '"fp32"'), "target.dtype", "int8"),
    (GOOD.replace('"mcu_mobilenet_v1"', '"no_such_net"'), "model.spec", "unknown model"),
    (GOOD.replace('"mcu_mobilenet_v1"', "3"), "model.spec", "must be a string"),
    (GOOD + '[outputs]\nformats = ["tflite", "pte"]\n', "outputs.formats", "tflite"),
    (GOOD + '[outputs]\nformats = ["onnx"]\n', "outputs.formats[0]", "unknown value 'onnx'"),
    (GOOD + "[profile]\nruns = 0\n", "profile.runs", "at least 1"),
    (GOOD.replace("[model]", "[model]\nlabels = \"missing.txt\""), "model.labels", "no such file"),
    (GOOD.replace("[model]", "[model]\ninput_shape = [1, 3, 96]"), "model.input_shape", "4 values"),
    (GOOD.replace("[target]", "[target]\ncalibration = \"imgs/\""), "target.calibration", "no such folder"),
    ("kind = \"mcu\"\n", "model", "missing table [model]"),
    ("kind = [\n", None, "not valid TOML"),
])
def test_invalid_recipes_name_file_and_key(tmp_path, text, key, fragment):
    p = _write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(p.parent)
    msg = str(info.value)
    assert str(p) in msg and fragment in msg, msg
    assert info.value.key == key
    if key:
        assert f": {key}: " in msg


def test_calibration_for_fp32_and_phone_device_rules(tmp_path):
    (tmp_path / "r").mkdir()
    np.save(tmp_path / "r" / "cal.npy", np.zeros((2, 1, 3, 96, 96), np.float32))
    p = _write(tmp_path, """kind = "phone"\n[model]\nspec = "mcu_mobilenet_v1"\n[target]\ndevice = "pixel-6a"
calibration = "cal.npy"\n""")
    with pytest.raises(RecipeError, match="target.calibration: calibration data is for int8"):
        load_recipe(p)
    p.write_text("""kind = "phone"\n[model]\nspec = "mcu_mobilenet_v1"\n[target]\ndevice = "raspberry-pi-4b"\n""")
    with pytest.raises(RecipeError,
                       match="raspberry-pi-4b is a sbc device; a phone recipe needs a target of kind phone"):
        load_recipe(p)


def _board(tmp_path, source: str, runtime_default: str) -> str:
    """A copy of a shipped target whose runtime.default is ``runtime_default`` (own id: the file name)."""
    text = (ROOT / "targets" / f"{source}.toml").read_text()
    text = re.sub(r"(?m)^id = .*$", "", text)
    text = re.sub(r'(?m)^default = "[^"]*"', f'default = "{runtime_default}"', text)
    (tmp_path / "r").mkdir(exist_ok=True)
    (tmp_path / "r" / "board.toml").write_text(text)
    return "board.toml"


def test_which_build_makes_which_format(tmp_path):
    """One rule (edgekit.plan.resolve): the device's own runtime builds its format for the device;
    the other format is built for its runtime with no device, in the recipe's dtype."""
    from edgekit.recipe.run import format_plans

    pi = format_plans(load_recipe(RECIPES / "raspberry-pi"))
    target, plan = pi["tflite"]
    assert target == "raspberry-pi-4b" and (plan.runtime, plan.dtype, plan.target.id) == ("litert", "fp32",
                                                                                            "raspberry-pi-4b")
    target, plan = pi["pte"]
    assert target == "executorch" and (plan.runtime, plan.dtype, plan.target, plan.backend) == (
        "executorch", "fp32", None, "xnnpack")
    ((target, plan),) = format_plans(load_recipe(RECIPES / "mcu")).values()
    assert (target, plan.runtime, plan.dtype, plan.sram_bytes) == ("nrf52840-dk", "tflite-micro", "int8", 256 * 1024)
    # a board whose own runtime is ExecuTorch: the .pte is built for it, the .tflite for LiteRT alone
    board = _board(tmp_path, "raspberry-pi-4b", "executorch")
    p = _write(tmp_path, f'kind = "raspberry-pi"\n[model]\nspec = "mcu_mobilenet_v1"\n[target]\ndevice = "{board}"\n'
                         'backend = "portable"\n')
    plans = format_plans(load_recipe(p))
    assert plans["tflite"][0] == "litert" and plans["tflite"][1].target is None
    assert plans["pte"][0].endswith("board.toml") and plans["pte"][1].target.kind == "sbc"
    assert plans["pte"][1].backend == "portable" and plans["tflite"][1].backend is None


def test_mcu_recipe_needs_a_tflite_micro_board(tmp_path):
    board = _board(tmp_path, "nrf52840-dk", "executorch")
    p = _write(tmp_path, GOOD.replace('"nrf52840-dk"', f'"{board}"'))
    with pytest.raises(RecipeError, match="runs executorch by default; a microcontroller recipe builds for "
                                          "TFLite-Micro") as info:
        load_recipe(p)
    assert info.value.key == "target.device"


def test_device_transport_must_match_the_recipe(tmp_path):
    with pytest.raises(UsageError, match="--ssh profiles a Raspberry Pi"):
        run_recipe(RECIPES / "mcu", output=tmp_path / "o", ssh="pi@localhost")
    with pytest.raises(UsageError, match="--adb profiles an Android phone"):
        run_recipe(RECIPES / "raspberry-pi", output=tmp_path / "o", adb="")
    assert not (tmp_path / "o").exists(), "nothing written before the arguments are checked"


def test_cli_recipe_errors_are_one_line(tmp_path):
    p = _write(tmp_path, "colour = 1\n" + GOOD)
    r = subprocess.run([sys.executable, "-m", "edgekit", "recipe", "run", str(p.parent)], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "colour: unknown key" in lines[0]


# ---- the three recipes end to end (slow) ------------------------------------------------------------

@pytest.fixture(scope="session")
def mcu_run(tmp_path_factory):
    return run_recipe(RECIPES / "mcu", output=tmp_path_factory.mktemp("mcu") / "out")


@pytest.fixture(scope="session")
def pi_run(tmp_path_factory):
    """The Raspberry Pi recipe through the CLI, as a user runs it."""
    out = tmp_path_factory.mktemp("pi") / "out"
    r = subprocess.run([sys.executable, "-m", "edgekit", "recipe", "run", str(RECIPES / "raspberry-pi"), "-o",
                        str(out), "--json"], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout), out


@pytest.fixture(scope="session")
def phone_run(tmp_path_factory):
    return run_recipe(RECIPES / "phone", output=tmp_path_factory.mktemp("phone") / "out")


@pytest.mark.slow
@pytest.mark.export
def test_mcu_recipe_end_to_end(mcu_run, tmp_path):
    res = mcu_run
    b = res.bundle
    assert res.fits and res.kind == "mcu"
    assert set(res.files) == {"README.md", "edgekit_io.py", "labels.txt", "main.cc", "model.tflite", "model_data.cc",
                              "model_data.h", "model_io.json", "op_resolver.h", "run_on_host.py"}
    arena = res.builds["tflite"]["arena_bytes"]
    header = (b / "model_data.h").read_text()
    assert f"kTensorArenaSize = {arena['c_constant']};" in header
    assert arena["measured"] <= arena["c_constant"] <= 256 * 1024
    assert res.builds["tflite"]["dtype"] == "int8" and res.builds["tflite"]["runtime"] == "tflite-micro"
    main = (b / "main.cc").read_text()
    for needle in ('#include "model_data.h"', '#include "op_resolver.h"', "kTensorArenaSize", "g_model",
                   "EdgekitOpResolver", "AllocateTensors", "Invoke"):
        assert needle in main
    for label in LABELS:
        assert f'"{label}"' in main
    # the profile: always emulated on an MCU
    prof = json.loads((res.output / "profile.json").read_text())
    (m,) = prof["model.tflite"]["measurements"]
    assert m["estimate"] and m["where"] == "emulated:nrf52840-dk" and m["stats"]["mean_ms"] > 0
    assert json.loads((res.output / "recipe.json").read_text())["fits"] is True
    assert (res.output / "report.html").read_text().count('<tr class="peak">') >= 1
    # run the bundle's host script: TFLite-Micro, the arena from model_data.h
    img = _png(tmp_path / "x.png")
    r = _py(b / "run_on_host.py", img)
    assert r.returncode == 0, r.stderr
    assert _prediction(r.stdout) in LABELS
    assert f"arena {arena['c_constant']} bytes" in r.stdout
    r0 = _py(b / "run_on_host.py")
    assert r0.returncode == 0 and _prediction(r0.stdout) in LABELS


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_GPP, reason="g++ not installed: main.cc only checked textually")
@pytest.mark.export
def test_mcu_main_cc_compiles_against_stub_tflm_headers(mcu_run, tmp_path):
    """g++ -fsyntax-only: main.cc + op_resolver.h + model_data.h/.cc against stand-ins for TFLite-Micro's
    headers declaring the real signatures (tests/tflm_stubs.py)."""
    inc = write_stubs(tmp_path / "stubs")
    b = mcu_run.bundle
    for src in ("main.cc", "model_data.cc"):
        r = gpp_syntax(b / src, inc, b)
        assert r.returncode == 0, f"{src}:\n{r.stderr}"
    # a resolver without the model's Add methods must not compile: the check is not vacuous
    write_stubs(inc, resolver=resolver_stub().replace("TfLiteStatus AddConv2D()", "TfLiteStatus AddConv2DRemoved()"))
    r = gpp_syntax(b / "main.cc", inc, b, werror=False)
    assert r.returncode != 0 and "AddConv2D" in r.stderr


@pytest.mark.slow
@pytest.mark.export
def test_raspberry_pi_recipe_end_to_end(pi_run, tmp_path):
    summary, out = pi_run
    b = out / "bundle"
    assert summary["fits"] and summary["kind"] == "raspberry-pi"
    assert set(summary["files"]) == {"README.md", "edgekit_io.py", "labels.txt", "model.pte", "model.tflite",
                                     "model_io.json", "predict.py", "requirements.txt"}
    assert summary["pip"] == "python3 -m pip install ai-edge-litert numpy pillow"
    readme = (b / "README.md").read_text()
    assert summary["pip"] in readme and "tflite-runtime" in readme
    prof = json.loads((out / "profile.json").read_text())
    (m,) = prof["model.tflite"]["measurements"]
    assert m["estimate"] and m["where"] == "emulated:raspberry-pi-4b"
    assert summary["builds"]["tflite"]["verification"]["litert"]["cosine"] > 0.999
    assert summary["builds"]["pte"]["verification"]["executorch"]["cosine"] > 0.999
    labels = (b / "labels.txt").read_text().split()
    img = _png(tmp_path / "photo.png")
    # LiteRT (ai_edge_litert), on an image and on a preprocessed array
    r = _py(b / "predict.py", b / "model.tflite", img, "--top", "3")
    assert r.returncode == 0, r.stderr
    assert "backend: LiteRT (ai_edge_litert)" in r.stdout
    tfl_pred = _prediction(r.stdout)
    assert tfl_pred in labels
    x = np.random.default_rng(1).standard_normal((1, 3, 96, 96)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = _py(b / "predict.py", b / "model.tflite", tmp_path / "x.npy")
    assert r.returncode == 0, r.stderr
    # predict.py's answer is LiteRT's answer on the same array
    from edgekit.runtime.litert import litert_run

    (y,) = litert_run(b / "model.tflite", [[x]])[0]
    assert _prediction(r.stdout) == labels[int(np.argmax(y))]
    # the tflite_runtime fallback: ai_edge_litert hidden, a tflite_runtime shim in its place
    shim = tmp_path / "shim"
    (shim / "ai_edge_litert").mkdir(parents=True)
    (shim / "ai_edge_litert" / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    (shim / "tflite_runtime").mkdir()
    (shim / "tflite_runtime" / "__init__.py").write_text("")
    (shim / "tflite_runtime" / "interpreter.py").write_text(
        f"import sys\nsys.path.remove({str(shim)!r})\nsys.modules.pop('ai_edge_litert', None)\n"
        "from ai_edge_litert.interpreter import Interpreter  # the same kernels under the old name\n")
    r = _py(b / "predict.py", b / "model.tflite", img, env={"PYTHONPATH": str(shim)})
    assert r.returncode == 0, r.stderr
    assert "backend: tflite_runtime" in r.stdout and _prediction(r.stdout) == tfl_pred
    # the .pte in ExecuTorch gives the same class
    r = _py(b / "predict.py", b / "model.pte", img)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "backend: ExecuTorch" in r.stdout and _prediction(r.stdout) == tfl_pred


@pytest.mark.slow
@pytest.mark.export
def test_phone_recipe_end_to_end(phone_run, tmp_path):
    res = phone_run
    b = res.bundle
    assert res.fits and set(res.files) == {"ModelRunner.kt", "README.md", "edgekit_io.py", "labels.txt", "model.pte",
                                           "model.tflite", "model_io.json", "predict.py"}
    spec = json.loads((b / "model_io.json").read_text())
    # the spec agrees with the LiteRT interpreter itself
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(b / "model.tflite"))
    ind, outd = it.get_input_details()[0], it.get_output_details()[0]
    assert spec["inputs"][0]["shape"] == ind["shape"].tolist() and spec["inputs"][0]["dtype"] == np.dtype(
        ind["dtype"]).name
    assert spec["outputs"][0]["shape"] == outd["shape"].tolist() == [1, 10]
    assert spec["inputs"][0]["quantization"] is None and spec["inputs"][0]["layout"] == "NCHW"
    assert spec["pte"]["model"] == "model.pte" and spec["num_classes"] == 10
    kt = (b / "ModelRunner.kt").read_text()
    _check_kotlin(kt, spec)
    assert "writeFloat" in kt and "readFloat" in kt and "writeInt8" not in kt
    assert res.builds["pte"]["verification"]["executorch"]["cosine"] > 0.999
    r = _py(b / "predict.py", b / "model.tflite", _png(tmp_path / "p.png"))
    assert r.returncode == 0 and _prediction(r.stdout) in LABELS, r.stderr
    assert "--adb" in " ".join(res.notes)


def _check_kotlin(kt: str, spec: dict) -> None:
    """Textual checks (no kotlinc here): the LiteRT API calls, the constants match the spec, and the
    braces/parentheses balance."""
    for needle in ("import com.google.ai.edge.litert.CompiledModel", "import com.google.ai.edge.litert.Accelerator",
                   'CompiledModel.create(context.assets, "model.tflite", CompiledModel.Options(Accelerator.CPU))',
                   "createInputBuffers()", "createOutputBuffers()", "model.run(inputBuffers, outputBuffers)",
                   '"labels.txt"', "com.google.ai.edge.litert:litert:"):
        assert needle in kt, needle
    h, w = spec["preprocess"]["resize"]
    assert f"const val WIDTH = {w}" in kt and f"const val HEIGHT = {h}" in kt
    code = re.sub(r'"(\\.|[^"\\])*"', '""', re.sub(r"//[^\n]*", "", kt))
    for o, c in ("{}", "()", "[]"):
        assert code.count(o) == code.count(c), (o, c)


@pytest.mark.slow
@pytest.mark.export
def test_int8_io_spec_and_kotlin(mcu_run):
    """The spec of an int8 model carries the quantization TFLite-Micro itself reports, and the Kotlin
    for such a model quantizes its input and dequantizes its output with those numbers."""
    from tflite_micro.python.tflite_micro import runtime

    tfl = mcu_run.bundle / "model.tflite"
    spec = io_spec(tfl)
    arena = int(re.search(r"kTensorArenaSize = (\d+)", (mcu_run.bundle / "model_data.h").read_text()).group(1))
    it = runtime.Interpreter.from_file(str(tfl), arena_size=arena)
    for ours, theirs in ((spec["inputs"][0], it.get_input_details(0)), (spec["outputs"][0], it.get_output_details(0))):
        q = theirs["quantization_parameters"]
        assert ours["dtype"] == "int8" and ours["shape"] == theirs["shape"].tolist()
        assert ours["quantization"]["zero_point"] == int(q["zero_points"][0])
        assert ours["quantization"]["scale"] == pytest.approx(float(q["scales"][0]), rel=1e-6)
    kt = kotlin_snippet(spec)
    _check_kotlin(kt, spec)
    assert "writeInt8(quantizeInput(" in kt and "readInt8()" in kt
    assert f"INPUT_ZERO_POINT = {spec['inputs'][0]['quantization']['zero_point']}" in kt


def test_device_profiling_goes_through_the_profile_api(tmp_path, monkeypatch):
    """--ssh / --adb reach edgekit.profile.api.profile with the device options, once per artifact
    (the transports themselves are tested against a real sshd and a fake adb in test_profile_*)."""
    import edgekit.profile.api as api
    from edgekit.recipe.run import DeviceAccess, profile_builds

    calls = []

    class _R:
        def to_dict(self):
            return {"measurements": [{"estimate": False, "stats": {"median_ms": 1.0}, "runtime": "LiteRT",
                                      "where": "device"}]}

    monkeypatch.setattr(api, "profile", lambda art, **kw: calls.append((Path(art).name, kw)) or _R())
    from edgekit.targets import load_target

    builds = {fmt: {"artifacts": {f"model.{fmt}": str(tmp_path / "build" / fmt / f"model.{fmt}")}}
              for fmt in ("tflite", "pte")}
    rec = load_recipe(RECIPES / "raspberry-pi")
    access = DeviceAccess(ssh="pi@board", port=2222, identity="k", accept_new_host_key=True,
                          remote_python="python3.11")
    prof, notes = profile_builds(rec, load_target(rec.device), builds, access, runs=7, warmup=1)
    assert [c[0] for c in calls] == ["model.tflite", "model.pte"] and set(prof) == {"model.tflite", "model.pte"}
    assert notes == [], "measured on the device: no estimate notes"
    kw = calls[0][1]
    assert kw["ssh"] == "pi@board" and kw["port"] == 2222 and kw["identity"] == "k" and kw["runs"] == 7
    assert kw["accept_new_host_key"] and kw["remote_python"] == "python3.11" and kw["threads"] == 4
    calls.clear()
    rec = load_recipe(RECIPES / "phone")
    profile_builds(rec, load_target(rec.device), builds, DeviceAccess(adb="SERIAL1"), runs=5, warmup=0)
    assert [c[1]["adb"] for c in calls] == ["SERIAL1", "SERIAL1"]


@pytest.mark.slow
def test_over_budget_recipe_exits_1_and_writes_no_bundle(tmp_path):
    """A board file of the recipe's own with too little SRAM: the build stops before export."""
    board = (ROOT / "targets" / "nrf52840-dk.toml").read_text()
    board = re.sub(r"(?m)^id = .*$", "", board)
    board = re.sub(r"(?m)^sram_kib = .*$", "sram_kib = 64", board)
    board = re.sub(r"(?m)^arena_budget_kib = .*$", "", board)
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "tiny-board.toml").write_text(board)
    (d / "recipe.toml").write_text(GOOD.replace('"nrf52840-dk"', '"tiny-board.toml"')
                                   + "[outputs]\nhtml_report = false\n")
    r = subprocess.run([sys.executable, "-m", "edgekit", "recipe", "run", str(d), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1, r.stderr[-2000:]
    assert "does not fit" in r.stdout and "exceeds SRAM" in r.stdout
    assert not (tmp_path / "o" / "bundle").exists()
    assert json.loads((tmp_path / "o" / "recipe.json").read_text())["fits"] is False
