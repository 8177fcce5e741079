"""The recipe bundles' templates as files (fast: no model is built).

- Every generated file that is not a script (ModelRunner.kt, main.cc, the three READMEs) is byte
  for byte what edgekit/recipe.py wrote before it became a package: the expected files in
  tests/golden/recipe/ were written by that code (85ee47e) from the inputs in cases.json, over
  every branch (fp32/int8 input and output, NCHW/NHWC, RGB/gray, with and without a .pte, an MCU
  build with and without arena figures).
- The Python templates compile, and ``edgekit_io.py`` (the module predict.py and run_on_host.py
  share) preprocesses as model_io.json says: checked against the formula written out here.
- The rendered main.cc compiles (g++ -fsyntax-only) against stand-ins for TFLite-Micro's headers,
  with a model_data.h and an op_resolver.h written by edgekit's own generators.
- ``render`` fails on a placeholder without a value, a value without a placeholder, and a
  malformed placeholder; every template's placeholders are exactly the values its bundle passes.
"""

from __future__ import annotations

import ast
import json
import py_compile
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from tflm_stubs import HAVE_GPP, gpp_syntax, write_stubs

from edgekit.recipe import BUNDLES, BundleJob, Recipe, kotlin_snippet, main_cc
from edgekit.recipe.render import TemplateError, placeholders, render_text, template_text
from edgekit.targets import load_target

GOLDEN = Path(__file__).resolve().parent / "golden" / "recipe"
CASES = json.loads((GOLDEN / "cases.json").read_text())
TEMPLATES = Path(__file__).resolve().parent.parent / "edgekit" / "recipe" / "templates"
SPECS = CASES["specs"]


def _recipe(kind: str) -> Recipe:
    r = CASES["recipe"]
    return Recipe(path=Path(r["path"]), kind=kind, name=r["name"], description="", model=r["model"],
                  input_shape=None, labels=None, mean=None, std=None, device=CASES["targets"][kind], dtype=None,
                  calibration=None, backend=None, formats=("tflite",), out_dir="out", html_report=True, runs=1,
                  warmup=0, threads=None)


def _job(kind: str, builds: dict, spec: dict) -> BundleJob:
    return BundleJob(recipe=_recipe(kind), target=load_target(CASES["targets"][kind]), builds=builds, spec=spec,
                     labels=CASES["labels"], latency=CASES["latency"], folder=Path(CASES["bundle"]))


def _expected(name: str) -> str:
    return (GOLDEN / name).read_text()


@pytest.mark.parametrize("case", sorted(SPECS))
def test_kotlin_and_main_cc_are_byte_for_byte_as_before(case):
    model = CASES["recipe"]["model"]
    assert kotlin_snippet(SPECS[case], model=model) == _expected(f"ModelRunner.{case}.kt")
    assert main_cc(SPECS[case], CASES["labels"], model=model) == _expected(f"main.{case}.cc")


@pytest.mark.parametrize("kind", ["raspberry-pi", "phone"])
@pytest.mark.parametrize("formats", ["pte", "tflite"])
def test_pi_and_phone_readmes_are_byte_for_byte_as_before(kind, formats):
    builds = {fmt: {} for fmt in (("tflite", "pte") if formats == "pte" else ("tflite",))}
    text = BUNDLES[kind].readme(_job(kind, builds, SPECS["fp32_nchw_rgb"]))
    assert text == _expected(f"README.{kind}.{formats}.md")


@pytest.mark.parametrize("build", sorted(CASES["mcu_builds"]))
def test_mcu_readme_is_byte_for_byte_as_before(build):
    text = BUNDLES["mcu"].readme(_job("mcu", {"tflite": CASES["mcu_builds"][build]}, SPECS["int8_nhwc_gray"]))
    assert text == _expected(f"README.mcu.{build}.md")


def test_python_templates_compile(tmp_path):
    scripts = sorted(TEMPLATES.glob("*.py"))
    assert {p.name for p in scripts} == {"edgekit_io.py", "predict.py", "run_on_host.py"}
    for p in scripts:
        py_compile.compile(str(p), cfile=str(tmp_path / f"{p.stem}.pyc"), doraise=True)
        assert template_text(p.name) == p.read_text(), "the package ships the file as it is in the repository"
    # the scripts import nothing of edgekit's but their shared module: a bundle runs without edgekit
    for p in scripts:
        tree = ast.parse(p.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert {n for n in names if n.split(".")[0].startswith("edgekit")} <= {"edgekit_io"}, (p.name, names)


def test_edgekit_io_preprocesses_as_model_io_json_says(tmp_path):
    """load_input on a PNG against the formula computed here with PIL and numpy; quantize against
    round/clip written out; run in a fresh interpreter beside model_io.json, as in a bundle."""
    from PIL import Image

    rgb = (np.random.default_rng(3).random((30, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    spec = json.loads(json.dumps(SPECS["int8_in_fp32_out_nhwc_rgb"]))
    (tmp_path / "model_io.json").write_text(json.dumps(spec))
    code = ("import json, sys, numpy as np\nfrom edgekit_io import load_input, load_spec, quantize\n"
            f"spec, folder = load_spec({str(tmp_path / 'model.tflite')!r})\n"
            f"x = load_input({str(tmp_path / 'x.png')!r}, spec)\n"
            "np.save(sys.argv[1], x)\nnp.save(sys.argv[2], quantize(x, spec['inputs'][0]))\n")
    (tmp_path / "edgekit_io.py").write_text(template_text("edgekit_io.py"))  # as a bundle has it
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"), str(tmp_path / "q.npy")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    h, w = spec["preprocess"]["resize"]
    img = np.asarray(Image.fromarray(rgb).resize((w, h)), np.float64) / 255.0
    want = ((img - 0.5) / 0.25)[None]  # mean 0.5, std 0.25 in cases.json; NHWC
    got = np.load(tmp_path / "x.npy")
    assert got.shape == (1, 32, 40, 3) and np.allclose(got, want, atol=1e-5)
    q = spec["inputs"][0]["quantization"]
    want_q = np.clip(np.floor(want / q["scale"] + 0.5) + q["zero_point"], -128, 127)
    diff = np.abs(np.load(tmp_path / "q.npy").astype(np.int32) - want_q)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99  # 1 only at a .5 tie (round half to even) in float32


@pytest.mark.skipif(not HAVE_GPP, reason="g++ not installed")
@pytest.mark.parametrize("case", sorted(SPECS))
def test_rendered_main_cc_compiles(case, tmp_path):
    from edgekit.export.c_source import model_data_sources
    from edgekit.export.op_resolver import op_resolver_header

    inc = write_stubs(tmp_path / "stubs")
    src = tmp_path / "bundle"
    src.mkdir()
    header, source = model_data_sources(b"\x1c\x00\x00\x00TFL3" * 4, arena_bytes=4096, measured_arena_bytes=3000)
    (src / "model_data.h").write_text(header)
    graph = SimpleNamespace(ops=[SimpleNamespace(kind=k.lower(), attrs={"opcode": k})
                                 for k in ("CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX")])
    (src / "op_resolver.h").write_text(op_resolver_header(graph))
    (src / "main.cc").write_text(main_cc(SPECS[case], CASES["labels"]))
    r = gpp_syntax(src / "main.cc", inc, src)
    assert r.returncode == 0, r.stderr


def test_every_template_is_rendered_with_exactly_its_placeholders(monkeypatch, tmp_path):
    """The values each bundle passes to each template, captured from the bundles' own calls."""
    import edgekit.recipe.render as render_mod

    values: dict[str, dict] = {}
    real = render_mod.render_text

    def spy(text, vals, *, name="template"):
        values.setdefault(name, {}).update(vals)
        return real(text, vals, name=name)

    monkeypatch.setattr(render_mod, "render_text", spy)
    for case in SPECS:
        kotlin_snippet(SPECS[case])
        main_cc(SPECS[case], CASES["labels"])
    for kind, builds in (("raspberry-pi", {"tflite": {}}), ("phone", {"tflite": {}}),
                         ("mcu", {"tflite": CASES["mcu_builds"]["measured"]})):
        job = _job(kind, builds, SPECS["fp32_nchw_rgb"])
        BUNDLES[kind].readme(job)
    BUNDLES["raspberry-pi"].write(BundleJob(**{**job.__dict__, "folder": tmp_path}))
    monkeypatch.undo()
    filled = {p.name for p in TEMPLATES.iterdir() if p.is_file() and placeholders(p.read_text())}
    assert filled == set(values), "every template with placeholders is rendered by a bundle, and only those"
    for name, vals in values.items():
        assert placeholders(template_text(name)) == set(vals), name
        out = render_text(template_text(name), {k: "x" for k in vals}, name=name)
        assert "{{" not in out and "}}" not in out, name


@pytest.mark.parametrize("text,values,fragment", [
    ("a {{x}} {{y}}", {"x": 1}, "no value for {{y}}"),
    ("a {{x}}", {"x": 1, "z": 2}, "no placeholder for the value(s) z"),
    ("a {{x}} {{ y }}", {"x": 1}, "malformed placeholder"),
    ("a {{x}} {{y}", {"x": 1}, "malformed placeholder"),
])
def test_render_refuses_a_mismatch(text, values, fragment):
    with pytest.raises(TemplateError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        render_text(text, values, name="t")


def test_render_fills_in_one_pass():
    """A value that looks like a placeholder (a label "{{x}}") is written as it is."""
    assert render_text("{{a}}|{{b}}", {"a": "{{b}}", "b": "$x {y}"}) == "{{b}}|$x {y}"


@pytest.mark.slow
def test_a_wheel_ships_every_template(tmp_path):
    """A non-editable install reads the templates from the package: build the wheel (setuptools, no
    network) from a copy of the sources and look for every file of templates/ in it."""
    import shutil
    import zipfile

    root = TEMPLATES.parents[2]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, src / name)
    shutil.copytree(root / "edgekit", src / "edgekit", ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("edgekit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for p in TEMPLATES.iterdir():
        if p.is_file():
            assert f"edgekit/recipe/templates/{p.name}" in names, p.name
