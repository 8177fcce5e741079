"""The command line as a user runs it: real processes, exit codes, one-line errors, no torch
where none is needed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from artifacts import TINY_CNN
from helpers import assert_one_line_error
from helpers import run_cli as run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def small_tflite(artifact):
    return artifact(TINY_CNN)  # fp32: conv 3->8 (16x16), conv 8->8 stride 2 (8x8), mean, linear 8->4


def test_help_lists_subcommands_without_importing_torch():
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "edgekit", "--help"], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0
    for cmd in ("check", "build", "profile", "fold", "targets", "models", "lint"):
        assert cmd in p.stdout
    imported = {ln.split("|")[-1].strip().split(".")[0] for ln in p.stderr.splitlines() if "|" in ln}
    assert "torch" not in imported and "numpy" not in imported


@pytest.mark.export
def test_check_tflite_imports_no_torch(small_tflite):
    code = ("import sys, json; from edgekit.cli import main; rc = main(['check', sys.argv[1], '--json']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, str(small_tflite)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["source_format"] == "tflite" and d["dtype"] == "fp32" and d["runtime"] == "litert"
    # MACs of the two convs and the linear layer, by hand
    assert d["macs"] == 16 * 16 * 8 * 27 + 8 * 8 * 8 * 72 + 8 * 4


@pytest.mark.slow  # ~7-30 s: CLI processes that import torch; `make test` runs it
def test_check_default_json_schema_and_exit_codes():
    p = run("check", "--json", "--sram", "256kB", "--flash", "1MB", "--dtype", "int8", "--runtime", "tflite-micro")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for key in ("model", "input_shape", "dtype", "runtime", "params", "macs", "flops", "model_bytes",
                "peak_activation_bytes", "arena_bytes", "sram_bytes", "flash_bytes", "fits", "layers"):
        assert key in d, key
    assert d["fits"] is True and d["sram_bytes"] == 262144 and d["flops"] == 2 * d["macs"]
    for key in ("name", "op", "output_shape", "params", "macs", "output_bytes", "live_bytes"):
        assert key in d["layers"][0]
    p = run("check", "--sram", "16kB", "--dtype", "int8")
    assert p.returncode == 1
    assert "exceeds SRAM" in p.stdout


@pytest.mark.slow  # ~7-30 s: CLI processes that import torch; `make test` runs it
def test_markdown_output():
    p = run("check", "--markdown", "--target", "nrf52840-dk")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("### edgekit check") and "| arena" in p.stdout


@pytest.mark.parametrize("args,fragments", [
    (("check", "no_such_model"), ("unknown model",)),
    (("check", "mobilenet_v2", "--target", "no-such-board"), ("unknown target",)),
    (("check", "--sram", "256 parsecs"), ("bad size",)),
    (("check", "missing.tflite"), ("no such file",)),
    (("check", "--input-shape", "1,3,a"), ("input shape",)),
    (("check", "--input-shape", "1,3"), ("input shape",)),
    (("check", "--input-shape", "1,5,96,96"), ("input shape",)),
    (("check", "--dtype", "int4"), ("invalid choice",)),
    (("build", "--target", "no-such-board", "-o", "OUT"), ("unknown target",)),
    (("profile", "--runs", "0"), ("--runs",)),
    (("targets", "no-such-board"), ("unknown target",)),
])
def test_bad_input_is_one_clear_line(tmp_path, args, fragments):
    args = tuple(str(tmp_path / "OUT") if a == "OUT" else a for a in args)
    p = run(*args, cwd=tmp_path)
    assert_one_line_error(p, *fragments)
    assert list(tmp_path.iterdir()) == [], "nothing written"


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\x00" * 64, b"1234TFL3" + b"\xff" * 200])
def test_corrupt_tflite_is_one_clear_line(tmp_path, content):
    f = tmp_path / "bad.tflite"
    f.write_bytes(content)
    p = run("check", str(f))
    assert_one_line_error(p, "bad.tflite")


@pytest.mark.export
def test_truncated_real_tflite(tmp_path, small_tflite):
    data = small_tflite.read_bytes()
    for cut in (16, len(data) // 3, len(data) - 10):
        f = tmp_path / f"cut{cut}.tflite"
        f.write_bytes(data[:cut])
        p = run("check", str(f))
        assert p.returncode in (0, 2), p.stderr
        assert "Traceback" not in p.stderr


def test_debug_shows_traceback():
    p = run("--debug", "check", "no_such_model")
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_targets_and_models_listing():
    p = run("targets")
    assert p.returncode == 0 and "nucleo-h743zi" in p.stdout and "raspberry-pi-4b" in p.stdout
    p = run("targets", "nrf52840-dk", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["id"] == "nrf52840-dk"
    p = run("models")
    assert p.returncode == 0 and "mcu_mobilenet_v1" in p.stdout and "mobilenet_v2" in p.stdout
