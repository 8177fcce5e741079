"""Hardening: every subcommand, fed bad input, prints ONE clear line on stderr, exits 2, shows no
traceback and writes nothing (the working and output folders are unchanged); the parsers and the
artifact readers, fed fuzzed input, raise only edgekit's own errors.

The CLI cases run real processes (``python -m edgekit`` in a fresh folder). Most fail before torch
is imported (a fraction of a second each); the ones that need torch cost ~3-5 s and the rarer
variants are marked ``slow``. A "read-only" output folder is a path under /proc or below a regular
file: the tests run as root, for whom a chmod-ed folder is still writable.
"""

import json
import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error as assert_clean_error
from helpers import run_cli as run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.errors import EdgekitError

ROOT = Path(__file__).resolve().parent.parent
LONG = "x" * 300  # longer than a file name may be (ENAMETOOLONG, not "no such file")


def snapshot(root: Path) -> dict:
    """Every file and folder under root: relative name -> size (None for a folder)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = os.path.getsize(p)
    return out


# ---------------------------------------------------------------- seed artifacts (real, tiny)

def _tiny_module():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4)).eval()


@pytest.fixture(scope="session")
def seeds(tmp_path_factory):
    """A real .tflite and a real .pte (portable kernels) of the same tiny CNN, 1x3x16x16."""
    import torch

    from edgekit.export.executorch import export_pte
    from edgekit.export.tflite import convert_fp32

    d = tmp_path_factory.mktemp("seeds")
    m, x = _tiny_module(), torch.randn(1, 3, 16, 16)
    (d / "tiny.tflite").write_bytes(convert_fp32(m, x))
    (d / "tiny.pte").write_bytes(export_pte(m, x, backend="portable", compare_default=False)["bytes"])
    return {"tflite": (d / "tiny.tflite").read_bytes(), "pte": (d / "tiny.pte").read_bytes(), "dir": d}


MODEL_PY = """\
import torch
from torch import nn


class Boom(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        raise RuntimeError("boom in forward")


def boom():
    return Boom()


def small():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def raises():
    raise ValueError("factory failed")
"""

RECIPE = """\
kind = "mcu"
[model]
spec = "model.py:{factory}"
input_shape = [1, 3, 16, 16]
[target]
device = "{device}"
calibration = "{calibration}"
[outputs]
dir = "{out}"
"""


@pytest.fixture
def ws(tmp_path, seeds):
    """A working folder full of bad inputs (and a good .tflite), the process's cwd."""
    tfl, pte = seeds["tflite"], seeds["pte"]
    files = {
        "good.tflite": tfl,
        "empty.tflite": b"",
        "trunc.tflite": tfl[:len(tfl) // 2],
        "garbage.tflite": b"this is not a flatbuffer\n" * 8,
        "empty.pte": b"",
        "trunc.pte": pte[:len(pte) // 2],
        "future.pte": pte[:4] + b"ET99" + pte[8:],
        "empty.pt2": b"",
        "garbage.pt2": bytes(random.Random(1).randrange(256) for _ in range(300)),
        "bad.toml": b'name = "x"\nram = [1, 2\n',
        "empty.toml": b"",
        "trunc.toml": (ROOT / "targets" / "nrf52840-dk.toml").read_bytes()[:150],
        "binary.toml": b"\xff\xfe\x00\x01name = 'x'\n",
        "cal_empty.npy": b"",
        "model.py": MODEL_PY.encode(),
        "syntax.py": b"def broken(:\n",
        "plain.txt": b"a regular file, used where a folder is expected\n",
        "existing_out/keep.txt": b"left from an earlier run\n",
        "existing_out/report.html": b"<html>an earlier report</html>\n",
        "existing_out/bundle/old.txt": b"an earlier bundle\n",
        "calib_bad/a.png": b"not a png",
        "garbage.keras": b"this is not a zip archive\n" * 8,
        "noconfig.keras": _zip({"model.weights.h5": b"x"}),
        "crc.keras": _zip({"config.json": b"{" + b" " * 200 + b"}"}, corrupt=True),
        "garbage.h5": b"this is not an HDF5 file\n" * 8,
        "not_a_savedmodel/variables.txt": b"a folder without saved_model.pb\n",
        "recipe_badtoml/recipe.toml": b"kind = \n",
        "recipe_badtarget/recipe.toml": RECIPE.format(factory="small", device="no-such-board",
                                                      calibration="random", out="rout").encode(),
        "recipe_ok/recipe.toml": RECIPE.format(factory="small", device="nrf52840-dk", calibration="random",
                                               out="rout").encode(),
        "recipe_boom/recipe.toml": RECIPE.format(factory="boom", device="nrf52840-dk", calibration="random",
                                                 out="rout").encode(),
        "recipe_cal/recipe.toml": RECIPE.format(factory="small", device="nrf52840-dk",
                                                calibration="../cal_nan.npy", out="rout").encode(),
    }
    for name, data in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for r in ("recipe_badtarget", "recipe_ok", "recipe_boom", "recipe_cal"):
        (tmp_path / r / "model.py").write_bytes(MODEL_PY.encode())
    (tmp_path / "calib_empty").mkdir()
    np.save(tmp_path / "cal_nan.npy", np.full((4, 3, 16, 16), np.nan, np.float32))
    np.save(tmp_path / "cal_shape.npy", np.zeros((4, 5, 7), np.float32))
    np.save(tmp_path / "cal_str.npy", np.array(["a", "b"]))
    (tmp_path / "cal_trunc.npy").write_bytes((tmp_path / "cal_shape.npy").read_bytes()[:100])
    return tmp_path


def _zip(members: dict, corrupt: bool = False) -> bytes:
    """A zip archive in memory; ``corrupt`` flips one byte of the first member's stored data."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    blob = bytearray(buf.getvalue())
    if corrupt:
        first = next(iter(members.values()))
        at = bytes(blob).index(first) + len(first) // 2
        blob[at] ^= 0xFF
    return bytes(blob)


# ---------------------------------------------------------------- the bad-input matrix

SLOW = pytest.mark.slow
SMALL = ("model.py:small", "--input-shape", "1,3,16,16")
INT8 = ("--dtype", "int8")


def case(*args, frags=(), marks=(), id=None):
    return pytest.param(args, frags, marks=marks, id=id)


CASES = [
    # ---- check
    case("check", "empty.tflite", frags=("empty.tflite", "empty or truncated"), id="check-empty-tflite"),
    case("check", "trunc.tflite", frags=("trunc.tflite", "corrupt"), id="check-truncated-tflite"),
    case("check", "trunc.pte", frags=("trunc.pte", "truncated"), id="check-truncated-pte"),
    case("check", "future.pte", frags=("future.pte", "schema"), id="check-foreign-pte"),
    case("check", "empty.pt2", frags=("empty.pt2", ".pt2"), id="check-empty-pt2"),
    case("check", LONG + ".tflite", frags=("no such file",), id="check-name-too-long"),
    case("check", "good.tflite", "--input-shape", "1,3,8,8", frags=("input shape", "does not apply"),
         id="check-artifact-rejects-shape"),
    case("check", "good.tflite", "--dtype", "int8", frags=("fp32", "--dtype int8"), id="check-artifact-dtype"),
    case("check", "good.tflite", "--runtime", "tvm", frags=("invalid choice",), id="check-unknown-runtime"),
    case("check", "good.tflite", "--flash", "1.5.5MB", frags=("bad size", "1.5.5MB"), id="check-bad-flash"),
    case("check", "good.tflite", "--target", "binary.toml", frags=("binary.toml", "utf-8"),
         id="check-binary-target-toml"),
    case("check", "good.tflite", "--target", LONG + ".toml", frags=("target file",), id="check-target-too-long"),
    case("check", "good.tflite", "--plot", "/proc/edgekit-plot.png", frags=("cannot write",),
         id="check-plot-unwritable"),
    case("check", "good.tflite", "--plot", "plain.txt/x.png", frags=("plain.txt", "not a folder"),
         id="check-plot-below-a-file"),
    case("check", "good.tflite", "--plot", "chart.xyz", frags=("format", "xyz"), id="check-plot-bad-format"),
    case("check", "model.py:boom", "--input-shape", "1,3,16,16", frags=("boom in forward",), marks=SLOW,
         id="check-forward-raises"),
    case("check", "syntax.py:broken", frags=("syntax.py", "SyntaxError"), id="check-python-syntax-error"),
    # Keras / TensorFlow input (#18): refused before any TensorFlow child starts
    case("check", "garbage.keras", frags=("garbage.keras", "zip archive"), id="check-corrupt-keras"),
    case("check", "noconfig.keras", frags=("noconfig.keras", "config.json"), id="check-keras-without-config"),
    case("check", "crc.keras", frags=("crc.keras", "CRC"), id="check-keras-bad-crc"),
    case("check", "garbage.h5", frags=("garbage.h5", "HDF5"), id="check-corrupt-h5"),
    case("check", "missing.keras", frags=("no such file", "missing.keras"), id="check-missing-keras"),
    case("check", "not_a_savedmodel", frags=("not_a_savedmodel", "not a TensorFlow SavedModel"),
         id="check-dir-not-a-savedmodel"),
    case("build", "garbage.h5", "--target", "nrf52840-dk", "-o", "out", "--json", frags=("garbage.h5", "HDF5"),
         id="build-corrupt-h5"),
    case("build", "not_a_savedmodel", "-o", "existing_out", frags=("not a TensorFlow SavedModel",),
         id="build-dir-not-a-savedmodel"),
    case("profile", "garbage.keras", frags=("garbage.keras", "zip archive"), id="profile-corrupt-keras"),
    case("fold", "crc.keras", frags=("crc.keras", "CRC"), id="fold-keras-bad-crc"),
    case("lint", "good.tflite", "--model", "garbage.h5", frags=("garbage.h5", "HDF5"), id="lint-model-corrupt-h5"),
    # ---- profile
    case("profile", "empty.tflite", frags=("empty.tflite",), id="profile-empty-tflite"),
    case("profile", "trunc.pte", "--runs", "2", frags=("trunc.pte", "truncated"), id="profile-truncated-pte"),
    case("profile", "good.tflite", "--runtime", "tvm", frags=("invalid choice",), id="profile-unknown-runtime"),
    case("profile", "good.tflite", "--target", "bad.toml", frags=("bad.toml", "TOML"), id="profile-bad-toml"),
    case("profile", "good.tflite", "--input-shape", "1;3;a;16", frags=("input shape",), id="profile-bad-shape"),
    case("profile", "model.py:boom", "--input-shape", "1,3,16,16", "--runs", "2", "--warmup", "0",
         frags=("rejects input shape", "boom in forward"), id="profile-forward-raises"),
    case("profile", "model.py:small", "--input-shape", "1,5,16,16", "--runs", "2", "--warmup", "0",
         frags=("rejects input shape", "(1, 5, 16, 16)"), marks=SLOW, id="profile-model-rejects-shape"),
    # ---- fold
    case("fold", "model.py:small", "--input-shape", "1,5,16,16", frags=("input shape",),
         id="fold-model-rejects-shape"),
    case("fold", *SMALL, "-o", "/proc/edgekit-folded.pt2", frags=("cannot write",), id="fold-out-unwritable"),
    case("fold", *SMALL, "-o", "plain.txt/f.pt2", frags=("plain.txt", "not a folder"), marks=SLOW,
         id="fold-out-below-a-file"),
    case("fold", "empty.pt2", frags=("empty.pt2",), marks=SLOW, id="fold-empty-pt2"),
    case("fold", "model.py:raises", frags=("factory failed",), marks=SLOW, id="fold-factory-raises"),
    case("fold", "good.tflite", frags=("built artifact",), marks=SLOW, id="fold-artifact"),
    # ---- build (--json: errors after the first stage are not preceded by progress lines, see below)
    case("build", *SMALL, "--sram", "256 parsecs", "-o", "out", frags=("bad size",), id="build-bad-size"),
    case("build", *SMALL, "--dtype", "fp64", "-o", "out", frags=("invalid choice",), id="build-bad-dtype"),
    case("build", *SMALL, "--target", "trunc.toml", "-o", "out", frags=("trunc.toml",), id="build-truncated-toml"),
    case("build", "no_such_model", "-o", "existing_out", "--json", frags=("unknown model",),
         id="build-unknown-model"),
    case("build", "model.py:boom", "--input-shape", "1,3,16,16", "-o", "out", "--json",
         frags=("rejects input shape", "boom in forward"), id="build-forward-raises"),
    case("build", *SMALL, *INT8, "--calibration", "cal_empty.npy", "-o", "existing_out", "--json",
         frags=("cal_empty.npy",), id="build-calibration-empty-npy"),
    case("build", *SMALL, *INT8, "--calibration", "cal_trunc.npy", "-o", "out", "--json",
         frags=("cal_trunc.npy",), marks=SLOW, id="build-calibration-truncated-npy"),
    case("build", *SMALL, *INT8, "--calibration", "cal_nan.npy", "-o", "out", "--json",
         frags=("NaN",), marks=SLOW, id="build-calibration-nan"),
    case("build", *SMALL, *INT8, "--calibration", "calib_bad", "-o", "out", "--json",
         frags=("a.png",), marks=SLOW, id="build-calibration-corrupt-image"),
    case("build", "good.tflite", "-o", "out", frags=("re-plans it for TFLite-Micro",), id="build-tflite-not-for-mcu"),
    case("build", "trunc.tflite", "--target", "nrf52840-dk", "-o", "out", frags=("trunc.tflite", "corrupt"),
         id="build-truncated-tflite"),
    case("build", "good.tflite", "--target", "nrf52840-dk", "--memory-plan", "vela", "-o", "out",
         frags=("invalid choice",), id="build-bad-memory-plan"),
    case("build", *SMALL, "--target", "executorch", "--dtype", "fp16", "-o", "out", "--json", frags=("fp16",),
         marks=SLOW, id="build-pte-fp16"),
    # ---- lint
    case("lint", "empty.tflite", frags=("empty.tflite",), id="lint-empty-tflite"),
    case("lint", "trunc.pte", frags=("trunc.pte", "truncated"), id="lint-truncated-pte"),
    case("lint", "garbage.tflite", frags=("garbage.tflite",), id="lint-garbage-tflite"),
    case("lint", "missing.pte", frags=("no such file",), id="lint-missing"),
    case("lint", LONG + ".tflite", frags=("artifact path",), id="lint-name-too-long"),
    case("lint", "model.py", frags=("model.py",), id="lint-not-an-artifact"),
    case("lint", "good.tflite", "--target", "empty.toml", frags=("empty.toml",), id="lint-empty-toml"),
    case("lint", "good.tflite", "--model", "no_such_model", frags=("unknown model",), id="lint-unknown-model"),
    # ---- report
    case("report", "good.tflite", "-o", "/proc/edgekit-report.html", frags=("cannot write",),
         id="report-out-unwritable"),
    case("report", "good.tflite", "-o", "plain.txt/r.html", frags=("plain.txt", "not a folder"),
         id="report-out-below-a-file"),
    case("report", "good.tflite", "-o", LONG + ".html", frags=("output file",), id="report-out-name-too-long"),
    case("report", "empty.tflite", "-o", "r.html", frags=("empty.tflite",), id="report-empty-tflite"),
    case("report", "good.tflite", "--sram=-5kB", frags=("bad size",), id="report-negative-size"),
    case("report", "good.tflite", "--target", "trunc.toml", frags=("trunc.toml",), id="report-truncated-toml"),
    case("report", "good.tflite", "--input-shape", "1,3,0,0", frags=("input shape",), id="report-zero-shape"),
    case("report", "model.py:small", "--input-shape", "1,5,16,16", "-o", "r.html", frags=("(1, 5, 16, 16)",),
         marks=SLOW, id="report-model-rejects-shape"),
    # ---- targets
    case("targets", "bad.toml", frags=("bad.toml", "TOML"), id="targets-syntax-error"),
    case("targets", "binary.toml", frags=("binary.toml", "utf-8"), id="targets-binary"),
    case("targets", "trunc.toml", frags=("trunc.toml",), id="targets-truncated"),
    case("targets", "empty.toml", frags=("empty.toml",), id="targets-empty"),
    case("targets", "no-such-dir/board.toml", frags=("no such target file",), id="targets-missing-file"),
    # ---- recipe run
    case("recipe", frags=("recipe run",), id="recipe-no-action"),
    case("recipe", "run", "no_such_recipe", frags=("no recipe",), id="recipe-missing"),
    case("recipe", "run", "recipe_badtoml", frags=("not valid TOML",), id="recipe-bad-toml"),
    case("recipe", "run", "recipe_badtarget", frags=("target.device", "no-such-board"), id="recipe-unknown-target"),
    case("recipe", "run", "recipe_ok", "-o", "/proc/edgekit-recipe", frags=("cannot create",),
         id="recipe-out-unwritable"),
    case("recipe", "run", "recipe_ok", "-o", "plain.txt/out", frags=("plain.txt", "not a folder"),
         id="recipe-out-below-a-file"),
    case("recipe", "run", "recipe_ok", "-o", LONG, frags=("output folder",), id="recipe-out-name-too-long"),
    case("recipe", "run", "recipe_boom", "-o", "existing_out", "--json", frags=("boom in forward",),
         id="recipe-forward-raises-existing-out"),
    case("recipe", "run", "recipe_boom", "--json", frags=("boom in forward",), marks=SLOW,
         id="recipe-forward-raises-new-out"),
    case("recipe", "run", "recipe_cal", "--json", frags=("calibration", "NaN"), marks=SLOW,
         id="recipe-calibration-nan"),
]


@pytest.mark.parametrize("args,frags", CASES)
def test_bad_input_is_one_clear_line_and_writes_nothing(ws, args, frags):
    before = snapshot(ws)
    p = run(*args, cwd=ws)
    assert_clean_error(p, *frags)
    assert snapshot(ws) == before, "the working folder (inputs and output folders) changed"
    for a in args:
        if a.startswith("/proc/edgekit"):
            assert not os.path.exists(a)


@pytest.mark.parametrize("source,frags", [
    ("cal_empty.npy", ("cal_empty.npy",)), ("cal_trunc.npy", ("cal_trunc.npy",)), ("cal_nan.npy", ("NaN",)),
    ("cal_shape.npy", ("shape (4, 5, 7)",)), ("cal_str.npy", ("dtype",)), ("calib_empty", ("no images",)),
    ("calib_bad", ("a.png",)), ("missing.npy", ("no such",)), ("plain.txt", ("plain.txt",)),
    (LONG + ".npy", ("calibration path",)),
])
def test_bad_calibration_in_process(ws, source, frags):
    """Every calibration file the CLI rows above do not spend a process on: one UsageError each."""
    from edgekit.calibration import load_calibration
    from edgekit.errors import UsageError

    cwd = os.getcwd()
    os.chdir(ws)
    try:
        with pytest.raises(UsageError) as ei:
            load_calibration(source, (1, 3, 16, 16))
    finally:
        os.chdir(cwd)
    msg = str(ei.value)
    assert "\n" not in msg and all(f.lower() in msg.lower() for f in frags), msg


def test_debug_shows_the_traceback(ws):
    p = run("--debug", "report", "good.tflite", "-o", "/proc/edgekit-report.html", cwd=ws)
    assert p.returncode != 0 and "Traceback" in p.stderr and "cannot write" in p.stderr


# Unwritable output folders, unreadable baseline names, and a build failing after its first stage.

@pytest.mark.parametrize("out", ["/proc/edgekit-out", "plain.txt/out"])
def test_build_into_unwritable_folder(ws, out):
    before = snapshot(ws)
    p = run("build", *SMALL, "-o", out, cwd=ws)
    assert_clean_error(p, "cannot write")
    assert snapshot(ws) == before


def test_baseline_name_too_long(ws):
    p = run("check", "good.tflite", "--baseline", LONG + ".json", cwd=ws)
    assert_clean_error(p, "baseline file")


def test_build_error_after_the_first_stage_is_one_line_without_json(ws):
    p = run("build", "model.py:boom", "--input-shape", "1,3,16,16", "-o", "out", cwd=ws)
    assert_clean_error(p, "boom in forward")


# ---------------------------------------------------------------- fuzz: parsers (in process)

_units = st.sampled_from(["", "b", "B", "k", "K", "kB", "KB", "KiB", "kib", "m", "MB", "MiB", "g", "GiB", "T", "TB",
                          "kBs", "bytes", "µB", "ｋB", "%", "e3", "E-2", "x"])
_number = st.one_of(
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.from_regex(r"[0-9]{0,40}(\.[0-9]{0,20})?", fullmatch=True),
    st.text(alphabet="0123456789.,_-+ ٣١२०", max_size=12),  # Arabic-Indic and Devanagari digits are \d too
)
_space = st.sampled_from(["", " ", "  ", "\t", "\n", "\u00a0", "\u2009"])
size_strings = st.builds(lambda a, n, b, u, c: a + n + b + u + c, _space, _number, _space, _units, _space)


@settings(max_examples=300, deadline=None)
@given(st.one_of(size_strings, st.integers(-2**70, 2**70), st.floats(), st.none(), st.booleans(), st.binary(max_size=8),
                 st.lists(st.integers(), max_size=2)))
def test_fuzz_parse_size_only_edgekit_errors(value):
    from edgekit.units import parse_size

    try:
        n = parse_size(value)
    except EdgekitError as exc:
        assert str(exc).strip() and "\n" not in str(exc)
        return
    assert type(n) is int and 0 <= n <= 2**62, (value, n)


_REGISTERED = ["mcu_mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1", "shufflenet_v2"]
_spec_piece = st.one_of(
    st.sampled_from(_REGISTERED + ["torchvision", "edgekit.models", "os.path", "model.py", "x.tflite", "x.pte",
                                   "x.pt2", "EXISTING", "DIR", LONG, LONG + ".py", "a\x00b", "~", "..", "/", "C:"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,12}", fullmatch=True),
    st.text(max_size=10),
)
_opt = st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["width", "resolution", "num_classes", "1x", "", "a b"]),
                 st.one_of(st.sampled_from(["0.35", "96", "true", "-1", "nan", "1e400", ""]), st.text(max_size=5)))
spec_strings = st.builds(
    lambda head, sep, rest, opts: head + sep + rest + ("," .join(opts) if opts else ""),
    _spec_piece, st.sampled_from(["", ":", "::", ":x:"]), st.sampled_from(["", "factory", "1bad", "a.b", ":"]),
    st.lists(_opt, max_size=3))


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("specs")
    for name in ("model.py", "x.tflite", "x.pte", "x.pt2"):
        (d / name).write_bytes(b"")
    (d / "DIR.tflite").mkdir()
    return d


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(spec_strings, st.text(max_size=40), st.none()))
def test_fuzz_parse_spec_only_edgekit_errors(spec_dir, text):
    """parse_spec classifies without importing torch or user code: a spec is a ModelSpec or one
    EdgekitError, whatever the string (paths that exist, directories, names too long, NUL bytes)."""
    from edgekit.loader import parse_spec

    if text is not None:
        text = text.replace("EXISTING", str(spec_dir / "x.tflite")).replace("DIR", str(spec_dir / "DIR.tflite"))
    cwd = os.getcwd()
    os.chdir(spec_dir)  # "model.py", "x.tflite" ... exist here
    try:
        spec = parse_spec(text)
    except EdgekitError as exc:
        assert str(exc).strip()
        return
    finally:
        os.chdir(cwd)
    assert spec.kind in ("registered", "torchvision", "python", "pt2", "tflite", "pte"), spec


# ---------------------------------------------------------------- fuzz: artifacts (in process)

def mutations(n: int):
    """Byte-level mutations of an n-byte file: (family, parameters); apply with ``mutate``."""
    return st.one_of(
        st.tuples(st.just("bitflip"), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 7)),
                                               min_size=1, max_size=8)),
        st.tuples(st.just("truncate"), st.integers(0, n - 1)),
        st.tuples(st.just("insert"), st.integers(0, n), st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), st.integers(0, n - 1), st.integers(1, 64)),
        st.tuples(st.just("overwrite"), st.integers(0, n - 1), st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("fill"), st.integers(0, n - 1), st.integers(1, 256), st.sampled_from([0x00, 0xFF, 0x7F])),
    )


def mutate(blob: bytes, m) -> bytes:
    b = bytearray(blob)
    kind = m[0]
    if kind == "bitflip":
        for i, bit in m[1]:
            b[i] ^= 1 << bit
    elif kind == "truncate":
        del b[m[1]:]
    elif kind == "insert":
        b[m[1]:m[1]] = m[2]
    elif kind == "delete":
        del b[m[1]:m[1] + m[2]]
    elif kind == "overwrite":
        b[m[1]:m[1] + len(m[2])] = m[2][:len(b) - m[1]]
    elif kind == "fill":
        end = min(len(b), m[1] + m[2])
        b[m[1]:end] = bytes([m[3]]) * (end - m[1])
    return bytes(b)


def _analyse_in_process(path: Path, reader):
    """What `edgekit check FILE --json` does in process: read, analyse, verdict, JSON."""
    from edgekit.analysis.api import analyze

    try:
        g = reader(path)
    except EdgekitError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), str(exc)
        g = None
    try:
        report = analyze(str(path))
        report.check(None, sram="256kB", flash="1MB")
        json.dumps(report.to_dict())
    except EdgekitError as exc:
        assert str(exc).strip()
        return None
    assert g is not None, "analyze accepted a file its reader refused"
    return report


@pytest.fixture
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_tflite_mutations_only_edgekit_errors(seeds, fuzz_dir, data):
    """read, analyse and lint (graph rules; the runtime checks run in child processes)."""
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.lint import lint

    blob = seeds["tflite"]
    m = data.draw(mutations(len(blob)), label="mutation")
    p = fuzz_dir / "mut.tflite"
    p.write_bytes(mutate(blob, m))
    if _analyse_in_process(p, read_tflite) is not None:
        try:
            lint(p, runtime_checks=False)
        except EdgekitError as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip()


def _edited_tflite(blob: bytes, edit) -> bytes:
    from ai_edge_litert.tools import flatbuffer_utils as fu

    model = fu.read_model_from_bytearray(bytearray(blob))
    edit(model)
    return bytes(fu.convert_object_to_bytearray(model))


def test_tensor_types(seeds, tmp_path):
    """Found by the fuzzer: a tensor type code outside TFLite's TensorType crashed the analysis
    (ValueError: unknown tensor dtype); a real but unusual type (UINT16, which the reader also
    misnamed uint32) must be analysed, not crash."""
    from edgekit.analysis.api import analyze
    from edgekit.errors import ArtifactError

    def set_output_type(code):
        def edit(model):
            sg = model.subgraphs[0]
            sg.tensors[sg.outputs[0]].type = code
        return edit

    bad = tmp_path / "type99.tflite"
    bad.write_bytes(_edited_tflite(seeds["tflite"], set_output_type(99)))
    with pytest.raises(ArtifactError, match="type code 99"):
        analyze(str(bad))
    assert_clean_error(run("check", bad.name, cwd=tmp_path), "type99.tflite", "type code 99")
    odd = tmp_path / "uint16.tflite"
    odd.write_bytes(_edited_tflite(seeds["tflite"], set_output_type(16)))  # TensorType.UINT16
    report = analyze(str(odd))
    out = next(r for r in reversed(report.layers))
    assert out.output_bytes == 2 * 4, out  # 4 logits, 2 bytes each


def test_operator_without_output_is_a_corrupt_file(seeds, tmp_path):
    """Found by the fuzzer: a TRANSPOSE whose outputs vector is empty crashed lint (IndexError)."""
    import numpy as np
    from ai_edge_litert.tools import flatbuffer_utils as fu

    from edgekit.errors import ArtifactError
    from edgekit.graph.tflite_reader import opcode_names, read_tflite

    model = fu.read_model_from_bytearray(bytearray(seeds["tflite"]))
    names = opcode_names()
    ops = model.subgraphs[0].operators
    k = next(i for i, op in enumerate(ops) if names[max(model.operatorCodes[op.opcodeIndex].builtinCode,
                                                        model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)]
             == "TRANSPOSE")
    ops[k].outputs = np.array([], dtype=np.int32)
    f = tmp_path / "no_output.tflite"
    f.write_bytes(bytes(fu.convert_object_to_bytearray(model)))
    with pytest.raises(ArtifactError, match=f"operator {k} \\(TRANSPOSE\\) has no output"):
        read_tflite(f)
    assert_clean_error(run("lint", f.name, cwd=tmp_path), "no_output.tflite", "no output")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_pte_mutations_only_edgekit_errors(seeds, fuzz_dir, data):
    from edgekit.graph.pte_reader import read_pte

    blob = seeds["pte"]
    program = struct.unpack_from("<Q", blob, 16)[0]  # aim half of the mutations at the FlatBuffer itself
    n = program if data.draw(st.booleans(), label="in program") else len(blob)
    m = data.draw(mutations(n), label="mutation")
    p = fuzz_dir / "mut.pte"
    p.write_bytes(mutate(blob, m))
    _analyse_in_process(p, read_pte)


def test_unmutated_seeds_analyse(seeds, fuzz_dir):
    """The fuzz above starts from files edgekit reads: the mutations are what fails, not the seeds."""
    from edgekit.graph.pte_reader import read_pte
    from edgekit.graph.tflite_reader import read_tflite

    for kind, reader in (("tflite", read_tflite), ("pte", read_pte)):
        p = fuzz_dir / f"seed.{kind}"
        p.write_bytes(seeds[kind])
        report = _analyse_in_process(p, reader)
        assert report is not None and report.macs > 0 and report.input_shape == [1, 3, 16, 16]


# ---------------------------------------------------------------- fuzz: mutated files through the CLI

def _cli_mutants(blob: bytes, count: int, seed: int):
    rng = random.Random(seed)
    n = len(blob)
    out = []
    for i in range(count):
        kind = ["bitflip", "truncate", "insert", "delete", "overwrite", "fill"][i % 6]
        if kind == "bitflip":
            m = (kind, [(rng.randrange(n), rng.randrange(8)) for _ in range(rng.randint(1, 8))])
        elif kind == "truncate":
            m = (kind, rng.randrange(16, n))
        elif kind == "insert":
            m = (kind, rng.randrange(n), bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))))
        elif kind == "delete":
            m = (kind, rng.randrange(n), rng.randint(1, 64))
        elif kind == "overwrite":
            m = (kind, rng.randrange(n), bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))))
        else:
            m = (kind, rng.randrange(n), rng.randint(1, 256), rng.choice([0, 255]))
        out.append(mutate(blob, m))
    return out


def _assert_survives(p):
    assert p.returncode in (0, 1, 2), (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    if p.returncode == 2:
        assert_clean_error(p)


@pytest.mark.parametrize("kind,count", [("tflite", 6), pytest.param("pte", 3, marks=SLOW)])
def test_mutated_artifacts_through_the_cli(seeds, tmp_path, kind, count):
    """check and profile on mutated files: a result or one clean error line, never a traceback, a
    signal or a hang (the native runtime runs in a child process)."""
    for i, blob in enumerate(_cli_mutants(seeds[kind], count, seed=7 if kind == "tflite" else 11)):
        f = tmp_path / f"mut{i}.{kind}"
        f.write_bytes(blob)
        _assert_survives(run("check", f.name, cwd=tmp_path, timeout=120))
        _assert_survives(run("profile", f.name, "--runs", "2", "--warmup", "0", cwd=tmp_path, timeout=180))
