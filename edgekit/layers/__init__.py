"""Layers: activations by name, Conv-BN-Act, Squeeze-Excite, channel shuffle."""

from edgekit.layers.activations import act_names, get_act
from edgekit.layers.channel_shuffle import ChannelShuffle, channel_shuffle
from edgekit.layers.conv_norm_act import ConvNormAct
from edgekit.layers.same_pad import SamePad2d
from edgekit.layers.squeeze_excite import SqueezeExcite, make_divisible
from edgekit.padding import same_pads

__all__ = [
    "ChannelShuffle",
    "ConvNormAct",
    "SamePad2d",
    "SqueezeExcite",
    "act_names",
    "channel_shuffle",
    "get_act",
    "make_divisible",
    "same_pads",
]
