"""ShuffleNetV2 as a table; widths 0.5/1.0/1.5/2.0 use the paper's (torchvision's) channels."""

from __future__ import annotations

from torch import nn

from edgekit.layers import ConvNormAct
from edgekit.models._decode import EdgeNet, check_num_classes, check_width, decode, linear_head

# width -> output channels of conv1, stage2, stage3, stage4, conv5 (paper Table 5)
SHUFFLENET_V2_CHANNELS = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
SHUFFLENET_V2_REPEATS = (4, 8, 4)


def shufflenet_v2_table(width: float) -> tuple:
    conv1, s2, s3, s4, _ = SHUFFLENET_V2_CHANNELS[width]
    r2, r3, r4 = SHUFFLENET_V2_REPEATS
    return (
        ("conv", 3, conv1, 2, "relu"),
        ("maxpool", 3, 2, "same"),
        ("shuffle", s2, r2),
        ("shuffle", s3, r3),
        ("shuffle", s4, r4),
    )


def shufflenet_v2(*, width: float = 1.0, num_classes: int = 1000) -> EdgeNet:
    check_width("shufflenet_v2", width, tuple(SHUFFLENET_V2_CHANNELS))
    check_num_classes(num_classes)
    features, c = decode(shufflenet_v2_table(width))
    last = SHUFFLENET_V2_CHANNELS[width][-1]
    head = nn.Sequential(ConvNormAct(c, last, 1), *linear_head(last, num_classes))
    return EdgeNet(features, head)
