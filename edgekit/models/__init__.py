"""Reference and microcontroller networks, by name.

Importing this package does not import torch: the names live in `catalog`, the
builders are imported by `create_model`, `calibration_data` on first use.
"""

from edgekit.models.catalog import DEFAULT_MODEL
from edgekit.models.registry import (
    ModelInfo,
    create_model,
    list_models,
    parse_model_spec,
    register_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "ModelInfo",
    "calibration_data",
    "create_model",
    "list_models",
    "parse_model_spec",
    "register_model",
]


def __getattr__(name):
    if name == "calibration_data":
        from edgekit.models.calibration import calibration_data

        return calibration_data
    raise AttributeError(f"module 'edgekit.models' has no attribute {name!r}")
