"""The test infrastructure itself: the export guard of ``make test-fast`` (tests/export_guard.py) and
the cache key of the artifact factory (tests/artifacts.py). Nothing here converts a model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import artifacts
import export_guard
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _child(code: str, tmp_path, env: dict) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(export_guard.SITE_DIR), str(ROOT)])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": path, **env})


def test_guard_refuses_in_a_child_and_logs_even_when_swallowed(tmp_path):
    """A child process (as `edgekit build` run by run_cli is) gets the guard from sitecustomize; a
    refusal caught by the code under test still reaches the log the conftest reads."""
    log = tmp_path / "refused.log"
    p = _child("""
        import sys
        from edgekit.export.tflite import convert_fp32, quantize_int8
        from edgekit.export.executorch import export_pte
        for f in (convert_fp32, quantize_int8, export_pte):
            try:
                f(None, None)
            except AssertionError as exc:
                print("refused", f.__name__)
        print("torch" in sys.modules)
    """, tmp_path, {"EDGEKIT_FORBID_EXPORT": "1", export_guard.LOG_ENV: str(log)})
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split("\n")[:4] == ["refused convert_fp32", "refused quantize_int8", "refused export_pte",
                                        "False"], p.stdout
    lines = log.read_text().splitlines()
    assert [ln.split(" called")[0] for ln in lines] == ["edgekit.export.tflite.convert_fp32",
                                                        "edgekit.export.tflite.quantize_int8",
                                                        "edgekit.export.executorch.export_pte"]
    assert all("@pytest.mark.export" in ln for ln in lines)


def test_guard_is_off_without_the_variable(tmp_path):
    p = _child("""
        from edgekit.export.tflite import convert_fp32
        print(getattr(convert_fp32, "edgekit_export_guard", False))
    """, tmp_path, {"EDGEKIT_FORBID_EXPORT": "0"})
    assert p.returncode == 0 and p.stdout.strip() == "False", p.stderr[-2000:]


def test_guard_patches_a_module_imported_before_install(monkeypatch, tmp_path):
    """The library entry points (litert_torch.convert, ...) are patched on import, and a module already
    imported when the guard is installed is patched at once."""
    import types

    fake = types.ModuleType("litert_torch")
    fake.convert = lambda *a: "converted"
    monkeypatch.setitem(sys.modules, "litert_torch", fake)
    for name in export_guard.GUARDED:  # install() patches what is imported: only the fake, here
        if name != "litert_torch" and name in sys.modules:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv(export_guard.LOG_ENV, str(tmp_path / "log"))
    finders = list(sys.meta_path)
    try:
        export_guard.install()
        with pytest.raises(AssertionError, match="litert_torch.convert called"):
            fake.convert()
    finally:
        sys.meta_path[:] = finders
    assert "litert_torch.convert" in (tmp_path / "log").read_text()


def _net_file(tmp_path, body: str, name: str):
    """A network defined in a file of its own, imported from there (as a test module defines one)."""
    import importlib.util

    f = tmp_path / f"{name}.py"
    f.write_text(body)
    spec = importlib.util.spec_from_file_location(name, f)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cache_key_follows_the_builder_source_and_options(tmp_path):
    body = "def build():\n    from torch import nn\n    return nn.Conv2d(3, 4, 3)\n"
    a = _net_file(tmp_path, body, "net_a")
    net = artifacts.Net("k", a.build, (1, 3, 8, 8))
    key = artifacts.cache_key(net, "tflite")
    assert key == artifacts.cache_key(artifacts.Net("k", a.build, (1, 3, 8, 8)), "tflite")
    assert key != artifacts.cache_key(artifacts.Net("k", a.build, (1, 3, 9, 9)), "tflite")
    assert key != artifacts.cache_key(net, "pte")
    assert artifacts.cache_key(net, "pte", {"backend": "portable"}) != artifacts.cache_key(net, "pte")
    b = _net_file(tmp_path, body.replace("nn.Conv2d(3, 4, 3)", "nn.Conv2d(3, 5, 3)"), "net_b")
    assert artifacts.cache_key(artifacts.Net("k", b.build, (1, 3, 8, 8)), "tflite") != key
    p = artifacts.cached_path(net, "int8", cache_dir=tmp_path)
    assert p.parent == tmp_path and p.name == f"k.int8.{key}.tflite" and not p.exists()


def test_cache_key_covers_the_edgekit_code_that_converts(tmp_path):
    """The exporter's imports, followed transitively (function-level ones and "module:function"
    builder strings included), are hashed: a change to the planner re-exports every .pte."""
    f = tmp_path / "uses_registry.py"
    f.write_text('def build():\n    from edgekit.passes.fold_bn import fold_bn\n    return "edgekit.models.mcu:x"\n')
    tfl = artifacts._edgekit_closure(frozenset([f.resolve()]), "edgekit.export.tflite")
    pte = artifacts._edgekit_closure(frozenset(), "edgekit.export.executorch")
    assert {"edgekit.export.tflite", "edgekit.passes.eval_mode", "edgekit.passes.fold_bn",
            "edgekit.models.mcu"} <= set(tfl)
    assert {"edgekit.export.executorch", "edgekit.analysis.et_planner", "edgekit.analysis.planners"} <= set(pte)
    assert all(p.is_file() and p.suffix == ".py" for p in tfl.values())
