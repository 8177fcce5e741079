"""Every CLI output on the default model, byte for byte, against files recorded before a change.

A refactor must not change what users see. These tests run the commands a user runs on the
default model and compare their stdout (and the build's report.json) with `tests/golden/`,
after removing what legitimately varies between runs: wall-clock timings, tool versions,
temporary paths and the report page's date.

A deliberate change of an output (a fix, a new line) updates the files in the same commit:
``EDGEKIT_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` rewrites them, and the diff of
`tests/golden/` shows the reviewer exactly what changed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("EDGEKIT_UPDATE_GOLDEN") == "1"

_VOLATILE_KEYS = {"timings_s", "versions", "elapsed_s", "planning_s"}


def _run(args: list[str], cwd: Path, capsys) -> subprocess.CompletedProcess:
    """The CLI in this process (one torch import for the whole file), as a user would see it."""
    from edgekit.cli import main

    old = Path.cwd()
    os.chdir(cwd)
    try:
        capsys.readouterr()
        code = main(args)
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def _run_child(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in a child process: for build, whose converters log differently under pytest's logging."""
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)


_REPO = str(Path(__file__).resolve().parents[1])  # the checkout's path differs between machines


def _normalize_text(text: str, tmp: Path) -> str:
    text = text.replace(str(tmp), "<TMP>").replace(_REPO, "<REPO>")
    text = re.sub(r"\(\d+\.\d+ s\)", "(<T> s)", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "<DATE>", text)
    return text


def _drop_volatile(obj):
    if isinstance(obj, dict):
        return {k: _drop_volatile(v) for k, v in obj.items() if k not in _VOLATILE_KEYS}
    if isinstance(obj, list):
        return [_drop_volatile(v) for v in obj]
    return obj


def _normalize_json(text: str, tmp: Path) -> str:
    return json.dumps(_drop_volatile(json.loads(_normalize_text(text, tmp))), indent=2, sort_keys=True) + "\n"


def _compare(name: str, got: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
        return
    assert path.exists(), f"no golden file {path}: record it with EDGEKIT_UPDATE_GOLDEN=1"
    want = path.read_text()
    if got != want:
        import difflib

        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), str(path), "now", n=1))
        pytest.fail(f"{name} changed:\n{diff[:6000]}")


CHECKS = {
    "check.txt": ["check"],
    "check_sram.txt": ["check", "--sram", "256kB"],
    "check_sram.json": ["check", "--sram", "256kB", "--json"],
    "check_target.md": ["check", "--target", "nrf52840-dk", "--markdown"],
    "check_over_budget.txt": ["check", "--sram", "64kB"],
    "check_tflite_runtime.json": ["check", "--runtime", "tflite-micro", "--dtype", "int8", "--json"],
    "fold.json": ["fold", "--json"],
    "profile_emulated.json": ["profile", "--target", "nrf52840-dk", "--json"],
    "profile_emulated.txt": ["profile", "--target", "nrf52840-dk"],
    "targets.txt": ["targets"],
    "models.txt": ["models"],
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_cli_output_unchanged(name, tmp_path, capsys):
    p = _run(CHECKS[name], tmp_path, capsys)
    assert p.returncode in (0, 1), p.stderr
    out = _normalize_json(p.stdout, tmp_path) if name.endswith(".json") else _normalize_text(p.stdout, tmp_path)
    _compare(name, f"exit {p.returncode}\n" + out)


def test_report_page_unchanged(tmp_path, capsys):
    p = _run(["report", "--sram", "256kB", "-o", str(tmp_path / "r.html")], tmp_path, capsys)
    assert p.returncode in (0, 1), p.stderr
    _compare("report_stdout.txt", f"exit {p.returncode}\n" + _normalize_text(p.stdout, tmp_path))
    _compare("report.html", _normalize_text((tmp_path / "r.html").read_text(), tmp_path))


@pytest.mark.slow
@pytest.mark.export
def test_build_outputs_unchanged(tmp_path, capsys):
    out = tmp_path / "out"
    p = _run_child(["build", "--target", "tflite", "--sram", "256kB", "-o", str(out)], tmp_path)
    assert p.returncode == 0, p.stderr
    _compare("build.txt", _normalize_text(p.stdout, tmp_path))
    _compare("build_report.json", _normalize_json((out / "report.json").read_text(), tmp_path))
    for name in ("model_data.h", "op_resolver.h"):
        _compare(f"build_{name}", _normalize_text((out / name).read_text(), tmp_path))
    lint = _run(["lint", str(out / "model.tflite"), "--target", "nrf52840-dk", "--json"], tmp_path, capsys)
    assert lint.returncode == 0, lint.stderr
    _compare("lint.json", _normalize_json(lint.stdout, tmp_path))
