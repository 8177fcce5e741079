"""Shared test set-up: the guard that keeps `make test-fast` free of conversions.

Markers (registered in pyproject.toml):
- ``export``: the test converts a model (litert-torch, ai-edge-quantizer, ExecuTorch) or builds one
  with ``edgekit build`` — seconds to minutes each. ``make test-fast`` deselects them.
- ``slow``: long even among those (many models, long interpreter runs).

With ``EDGEKIT_FORBID_EXPORT=1`` (``make test-fast`` sets it) the converter entry points are replaced,
before any test module is imported, by functions that fail the test: a test that converts without the
``export`` marker fails loudly instead of quietly making the fast suite slow. Disk-cached artifacts
(``tests/tflm_models.py``, ``EDGEKIT_TFLM_CACHE``) convert only when the cache is cold, as it is in
CI: their tests carry the marker too.
"""

from __future__ import annotations

import importlib
import os

_CONVERTERS = [
    ("edgekit.export.tflite", ("convert_fp32", "quantize_int8", "quantize_fp16")),
    ("edgekit.export.executorch", ("export_pte",)),
    ("edgekit.build", ("build",)),
    ("edgekit.keras.capture", ("convert_keras",)),  # TensorFlow's converter, in a child process
]


def _refuse(name: str):
    def converter(*args, **kwargs):
        raise AssertionError(f"{name} called in a test without the 'export' marker (EDGEKIT_FORBID_EXPORT=1)")
    return converter


def pytest_configure(config):
    if os.environ.get("EDGEKIT_FORBID_EXPORT") != "1":
        return
    for module, names in _CONVERTERS:
        mod = importlib.import_module(module)
        for name in names:
            setattr(mod, name, _refuse(f"{module}.{name}"))
