"""Activation names -> torch's own modules (exporters and fusers recognise these types)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from edgekit.errors import UsageError

ActLayer = str | Callable[..., nn.Module] | None

_CANONICAL: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hard_swish": nn.Hardswish,
    "hard_sigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "identity": nn.Identity,
}
_ALIASES: dict[str, str] = {
    "hswish": "hard_swish",
    "hardswish": "hard_swish",
    "h_swish": "hard_swish",
    "hsigmoid": "hard_sigmoid",
    "hardsigmoid": "hard_sigmoid",
    "h_sigmoid": "hard_sigmoid",
    "swish": "silu",
    "none": "identity",
    "linear": "identity",
}


def act_names() -> list[str]:
    """Every accepted activation name, canonical names first."""
    return list(_CANONICAL) + list(_ALIASES)


def get_act(name: ActLayer) -> Callable[..., nn.Module]:
    """Resolve an activation name (or factory) to a module factory.

    Names are case-insensitive and '-' equals '_'. A callable (e.g. ``nn.GELU`` or a
    ``functools.partial``) is returned as-is; ``None`` means ``nn.Identity``.
    Raises UsageError listing the valid names for an unknown name.
    """
    if name is None:
        return nn.Identity
    if isinstance(name, str):
        key = name.strip().lower().replace("-", "_")
        key = _ALIASES.get(key, key)
        if key in _CANONICAL:
            return _CANONICAL[key]
        raise UsageError(
            f"unknown activation {name!r}; valid names: {', '.join(act_names())}"
        )
    if callable(name):
        return name
    raise UsageError(
        f"activation must be a name or a module factory, got {name!r}; "
        f"valid names: {', '.join(act_names())}"
    )
