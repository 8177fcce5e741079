"""The guard behind ``EDGEKIT_FORBID_EXPORT=1`` (``make test-fast``): every converter entry point,
in the test process and in every Python child it starts, fails instead of converting.

Guarded: edgekit's converters (``edgekit.export.tflite.convert_fp32 / quantize_int8 /
quantize_fp16``, ``edgekit.export.executorch.export_pte``, the quantization debugger's
re-quantization ``edgekit.lint.quant_debug._quantize``) and the libraries' own entry points, for
tests that call them directly (``litert_torch.convert``, ``ai_edge_quantizer``'s
``Quantizer.quantize``, ``executorch.exir.to_edge`` / ``to_edge_transform_and_lower``). A module is
patched when it is imported (a ``sys.meta_path`` finder wraps its loader), so nothing heavy is
imported up front and a lazy ``from edgekit.export.tflite import convert_fp32`` inside a function
still gets the refusal.

A refused call raises ``AssertionError`` and appends one line to the file named by
``EDGEKIT_FORBID_EXPORT_LOG``: a child process (``edgekit build`` run by ``run_cli``, a
``run_isolated`` worker) or a ``try/except Exception`` may swallow the exception, the log still
tells ``conftest.py``, which fails the test. Children get the guard from
``tests/export_guard_site/sitecustomize.py`` (``conftest.py`` puts that folder on ``PYTHONPATH``);
a child started with a ``PYTHONPATH`` of its own is not guarded.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from pathlib import Path

LOG_ENV = "EDGEKIT_FORBID_EXPORT_LOG"
SITE_DIR = Path(__file__).resolve().parent / "export_guard_site"

GUARDED: dict[str, tuple[str, ...]] = {
    "edgekit.export.tflite": ("convert_fp32", "quantize_int8", "quantize_fp16"),
    "edgekit.export.executorch": ("export_pte",),
    "edgekit.lint.quant_debug": ("_quantize",),
    "edgekit.keras.capture": ("convert_keras",),  # TensorFlow's converter, in a child process
    "litert_torch": ("convert",),
    "ai_edge_quantizer.quantizer": ("Quantizer.quantize",),
    "executorch.exir": ("to_edge", "to_edge_transform_and_lower"),
}


def active() -> bool:
    return os.environ.get("EDGEKIT_FORBID_EXPORT") == "1"


def _refusal(qualname: str):
    def refused(*args, **kwargs):
        where = " ".join(sys.argv)[:200]
        msg = (f"{qualname} called with EDGEKIT_FORBID_EXPORT=1 (pid {os.getpid()}: {where}); "
               f"a test that converts needs @pytest.mark.export")
        log = os.environ.get(LOG_ENV)
        if log:
            with open(log, "a") as f:
                f.write(msg.replace("\n", " ") + "\n")
        raise AssertionError(msg)
    refused.__name__ = qualname.rsplit(".", 1)[-1]
    refused.edgekit_export_guard = True
    return refused


def _patch(module) -> None:
    for attr in GUARDED[module.__name__]:
        owner, _, name = attr.rpartition(".")
        target = getattr(module, owner) if owner else module
        setattr(target, name, _refusal(f"{module.__name__}.{attr}"))


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then replaces the guarded names of the fresh module."""

    def __init__(self, inner):
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        _patch(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self._inner, name)


class _Finder(importlib.abc.MetaPathFinder):
    # marks every copy of this class: the module can be imported twice under two names (the test
    # process's ``export_guard`` and the child processes' site hook), and two guards asking each
    # other would recurse forever
    edgekit_export_guard = True

    def find_spec(self, fullname, path, target=None):
        if fullname not in GUARDED:
            return None
        for finder in sys.meta_path:
            if getattr(finder, "edgekit_export_guard", False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Patch the guarded modules already imported and every one imported from now on."""
    for name in GUARDED:
        if name in sys.modules:
            _patch(sys.modules[name])
    if not any(getattr(f, "edgekit_export_guard", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
