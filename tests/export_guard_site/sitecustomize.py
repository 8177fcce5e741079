"""Installs tests/export_guard.py in every Python child of a test run with EDGEKIT_FORBID_EXPORT=1.

tests/conftest.py puts this folder first on PYTHONPATH; Python imports ``sitecustomize`` at start-up.
The guard is loaded from its file, so tests/ itself is not put on the child's path. A
``sitecustomize`` further down the path (a distribution's own), which this one shadows, is run after it.
"""

import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))


def _run_file(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if os.environ.get("EDGEKIT_FORBID_EXPORT") == "1":
    _run_file("_edgekit_export_guard", os.path.join(os.path.dirname(_here), "export_guard.py")).install()

for _dir in sys.path:
    _other = os.path.join(_dir or ".", "sitecustomize.py")
    if os.path.abspath(_dir or ".") != _here and os.path.isfile(_other):
        _run_file("_next_sitecustomize", _other)
        break
