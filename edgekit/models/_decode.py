"""The one decoder that turns an architecture table into layers.

A table is a sequence of rows; the first item of a row names its kind:

=========  ===================================  =========================================
kind       fields after the kind                 builds
=========  ===================================  =========================================
conv       k, c, s, act[, "same"|"valid"]       ConvNormAct (k x k, c out, stride s)
maxpool    k, s, "same"|"ceil"                  MaxPool2d (padding k//2, or 0 + ceil_mode)
dws        c, n, s                              n DepthwiseSeparable (MobileNetV1)
ir         t, c, n, s                           n InvertedResidual, expand ratio t (MobileNetV2)
bneck      k, exp, c, se, act, s                one InvertedResidual with SE flag (MobileNetV3)
shuffle    c, n                                 n ShuffleUnit, the first with stride 2
fire       squeeze, expand1x1, expand3x3        Fire (SqueezeNet)
=========  ===================================  =========================================

Channel fields of conv/dws/ir/bneck go through the model's ``round_channels``
(width multiplier); shuffle and fire channels are taken as written. In repeated rows
(n > 1) only the first layer has stride s. An unknown kind, a wrong field count or an
unknown token raises UsageError (a ValueError) naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from edgekit.blocks import DepthwiseSeparable, Fire, InvertedResidual, ShuffleUnit
from edgekit.errors import UsageError
from edgekit.layers import ConvNormAct, get_act

Row = tuple


@dataclass(frozen=True)
class Style:
    """Model-wide settings the table rows do not repeat."""

    round_channels: Callable[[float], int] = lambda c: int(c)
    act: str = "relu"  # for dws and ir rows
    norm: bool = True
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    pad_mode: str = "torch"  # "same": TFLite SAME padding for conv/dws/ir/bneck (edgekit.layers.same_pad)

    @property
    def bn(self) -> dict[str, float]:
        return {"bn_eps": self.bn_eps, "bn_momentum": self.bn_momentum}


def _conv(c_in, row, style):
    k, c, s, act, *pad = row[1:]
    same = "same" if style.pad_mode == "same" else None
    padding = _token(row, pad[0] if pad else "same", {"same": same, "valid": 0})
    c_out = style.round_channels(c)
    layer = ConvNormAct(c_in, c_out, k, stride=s, padding=padding, norm=style.norm,
                        act_layer=act, **(style.bn if style.norm else {}))
    return [layer], c_out


def _maxpool(c_in, row, style):
    k, s, mode = row[1:]
    mode = _token(row, mode, {"same": "same", "ceil": "ceil"})
    if mode == "same":
        return [nn.MaxPool2d(k, s, padding=k // 2)], c_in
    return [nn.MaxPool2d(k, s, ceil_mode=True)], c_in


def _dws(c_in, row, style):
    c, n, s = row[1:]
    c_out = style.round_channels(c)
    layers = []
    for i in range(n):
        layers.append(DepthwiseSeparable(c_in, c_out, stride=s if i == 0 else 1,
                                         act_layer=style.act, pad_mode=style.pad_mode, **style.bn))
        c_in = c_out
    return layers, c_out


def _ir(c_in, row, style):
    t, c, n, s = row[1:]
    c_out = style.round_channels(c)
    layers = []
    for i in range(n):
        layers.append(InvertedResidual(c_in, c_out, expand_ratio=t, stride=s if i == 0 else 1,
                                       act_layer=style.act, pad_mode=style.pad_mode, **style.bn))
        c_in = c_out
    return layers, c_out


def _bneck(c_in, row, style):
    k, exp, c, se, act, s = row[1:]
    if not isinstance(se, bool):
        raise UsageError(f"bad SE flag {se!r} in table row {row!r}: expected True or False")
    get_act(act)  # an unknown activation token fails here, naming the token
    c_out = style.round_channels(c)
    layer = InvertedResidual(c_in, c_out, exp_channels=style.round_channels(exp), kernel_size=k,
                             stride=s, use_se=se, act_layer=act, pad_mode=style.pad_mode, **style.bn)
    return [layer], c_out


def _shuffle(c_in, row, style):
    c, n = row[1:]
    layers = []
    for i in range(n):
        layers.append(ShuffleUnit(c_in, c, stride=2 if i == 0 else 1))
        c_in = c
    return layers, c


def _fire(c_in, row, style):
    squeeze, e1, e3 = row[1:]
    layer = Fire(c_in, squeeze, e1, e3, norm=style.norm)
    return [layer], e1 + e3


# kind -> (number of fields after the kind, builder); conv takes one optional field.
_KINDS: dict[str, tuple[tuple[int, ...], Callable]] = {
    "conv": ((4, 5), _conv),
    "maxpool": ((3,), _maxpool),
    "dws": ((3,), _dws),
    "ir": ((4,), _ir),
    "bneck": ((6,), _bneck),
    "shuffle": ((2,), _shuffle),
    "fire": ((3,), _fire),
}


def _token(row: Row, value: Any, allowed: dict[str, Any]) -> Any:
    if value not in allowed:
        raise UsageError(
            f"unknown token {value!r} in table row {row!r}; expected one of {', '.join(allowed)}"
        )
    return allowed[value]


def decode(table: Sequence[Row], *, style: Style = Style(), in_channels: int = 3
           ) -> tuple[nn.Sequential, int]:
    """Build the layers of ``table``; return them as one flat Sequential and the output width."""
    layers: list[nn.Module] = []
    c = in_channels
    for row in table:
        if not isinstance(row, tuple) or not row or not isinstance(row[0], str):
            raise UsageError(f"bad table row {row!r}: expected (kind, fields...)")
        kind = row[0]
        if kind not in _KINDS:
            raise UsageError(
                f"unknown layer kind {kind!r} in table row {row!r}; known kinds: {', '.join(_KINDS)}"
            )
        counts, build = _KINDS[kind]
        if len(row) - 1 not in counts:
            raise UsageError(
                f"table row {row!r}: {kind!r} takes {' or '.join(map(str, counts))} fields, "
                f"got {len(row) - 1}"
            )
        new, c = build(c, row, style)
        layers.extend(new)
    return nn.Sequential(*layers), c


class EdgeNet(nn.Module):
    """``features`` (the decoded table) then ``head`` (pooling and classifier)."""

    def __init__(self, features: nn.Sequential, head: nn.Sequential):
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def linear_head(c_in: int, num_classes: int, *, dropout: float = 0.0) -> list[nn.Module]:
    """global average pool -> flatten -> [dropout] -> linear."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(c_in, num_classes))
    return layers


def check_width(model: str, width: float, allowed: Sequence[float] | None = None) -> float:
    if allowed is not None and width not in allowed:
        raise UsageError(
            f"{model}: width {width!r} is not available; valid widths: "
            f"{', '.join(str(w) for w in allowed)}"
        )
    if not width > 0:
        raise UsageError(f"{model}: width must be > 0, got {width!r}")
    return width


def check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise UsageError(f"num_classes must be a positive integer, got {num_classes!r}")
    return num_classes
