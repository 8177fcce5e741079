"""The built-in model names, without importing torch.

Data only: `edgekit.models.registry` reads this table (and `edgekit models` lists it through
the registry); the builders (which import torch) are named as "module:function" strings and
imported only by `create_model`.
"""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_MODEL = "mcu_mobilenet_v1"

# Every built-in model expects RGB in [0, 1] normalised with the ImageNet mean/std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Built-ins that ship trained weights: name -> what they were trained on, and with which options
# (edgekit.models.digits; any other option set is an untrained architecture).
TRAINED = {DEFAULT_MODEL: "scikit-learn load_digits (width=0.25, num_classes=10, resolution=96 only)"}

# Keyword arguments `create_model` accepts for every model.
MODEL_KWARGS = ("width", "resolution", "num_classes")


class CatalogEntry(NamedTuple):
    name: str
    builder: str  # "module:function", imported lazily
    default_resolution: int
    description: str


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "mobilenet_v2", "edgekit.models.mobilenet:mobilenet_v2", 224,
        "MobileNetV2 (Sandler et al. 2018), any width, ~300M MACs at 224 for 1.0",
    ),
    CatalogEntry(
        "mobilenet_v3_small", "edgekit.models.mobilenet:mobilenet_v3_small", 224,
        "MobileNetV3-Small (Howard et al. 2019), ~56M MACs at 224",
    ),
    CatalogEntry(
        "mobilenet_v3_large", "edgekit.models.mobilenet:mobilenet_v3_large", 224,
        "MobileNetV3-Large (Howard et al. 2019), ~217M MACs at 224",
    ),
    CatalogEntry(
        "shufflenet_v2", "edgekit.models.shufflenet:shufflenet_v2", 224,
        "ShuffleNetV2 (Ma et al. 2018), width 0.5/1.0/1.5/2.0, ~146M MACs at 224 for 1.0",
    ),
    CatalogEntry(
        "squeezenet1_0", "edgekit.models.squeezenet:squeezenet1_0", 224,
        "SqueezeNet 1.0 (Iandola et al. 2016), Fire modules, no BN",
    ),
    CatalogEntry(
        "squeezenet1_1", "edgekit.models.squeezenet:squeezenet1_1", 224,
        "SqueezeNet 1.1, 2.4x fewer MACs than 1.0",
    ),
    CatalogEntry(
        "mcu_mobilenet_v1", "edgekit.models.mcu:mcu_mobilenet_v1", 96,
        "MobileNetV1 0.25 at 96x96, 10 classes (the TFLM person-detection shape); trained on scikit-learn "
        "digits with these defaults, untrained with other options",
    ),
    CatalogEntry(
        "mcunet_tiny", "edgekit.models.mcu:mcunet_tiny", 96,
        "MobileNetV2-style net with small widths at 96x96, 10 classes",
    ),
)
