"""One paper block per file, built from edgekit.layers."""

from edgekit.blocks.depthwise_separable import DepthwiseSeparable
from edgekit.blocks.fire import Fire
from edgekit.blocks.inverted_residual import InvertedResidual
from edgekit.blocks.shuffle_unit import ShuffleUnit

__all__ = ["DepthwiseSeparable", "Fire", "InvertedResidual", "ShuffleUnit"]
