"""Model registry: names -> builders, `create_model`, `list_models`, `parse_model_spec`.

No torch import at module level: listing and parsing must stay fast for the CLI.
"""

from __future__ import annotations

import importlib
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from edgekit.errors import UsageError
from edgekit.models.catalog import CATALOG, DEFAULT_MODEL, MODEL_KWARGS, TRAINED

Builder = Callable[..., Any] | str


class ModelInfo(NamedTuple):
    name: str
    description: str
    default_resolution: int


@dataclass(frozen=True)
class _Entry:
    name: str
    builder: Builder  # a callable, or "module:function" imported on first use
    default_resolution: int
    description: str

    def resolve(self) -> Callable[..., Any]:
        if callable(self.builder):
            return self.builder
        module, _, attr = self.builder.partition(":")
        return getattr(importlib.import_module(module), attr)


_REGISTRY: dict[str, _Entry] = {
    e.name: _Entry(e.name, e.builder, e.default_resolution, e.description) for e in CATALOG
}


def _check_resolution(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 32:
        raise UsageError(f"resolution must be an integer >= 32 (pixels), got {value!r}")
    return int(value)


def register_model(
    name: str,
    fn: Builder,
    *,
    default_resolution: int,
    description: str,
    replace: bool = False,
) -> None:
    """Add a model. ``fn(*, width=..., num_classes=...)`` returns an ``nn.Module``
    (or ``fn`` is a "module:function" string, imported on first use)."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise UsageError(f"model name must be letters, digits, '_', '.', '-': got {name!r}")
    if not (callable(fn) or (isinstance(fn, str) and ":" in fn)):
        raise UsageError(f"model builder must be a callable or 'module:function', got {fn!r}")
    if name in _REGISTRY and not replace:
        raise UsageError(f"model {name!r} is already registered (pass replace=True)")
    _REGISTRY[name] = _Entry(name, fn, _check_resolution(default_resolution), str(description))


def list_models() -> list[ModelInfo]:
    """(name, description, default_resolution) for every registered model, sorted by name."""
    return [
        ModelInfo(e.name, e.description, e.default_resolution)
        for e in sorted(_REGISTRY.values(), key=lambda e: e.name)
    ]


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UsageError(
            f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}"
        ) from None


def builder(name: str) -> Callable[..., Any]:
    """The function that builds a registered model (imported on first use)."""
    return _entry(name).resolve()


def default_resolution(name: str) -> int:
    return _entry(name).default_resolution


def _check_kwargs(kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - set(MODEL_KWARGS))
    if unknown:
        raise UsageError(
            f"unknown model argument(s) {', '.join(unknown)}; valid: {', '.join(MODEL_KWARGS)}"
        )


def create_model(name: str, **kwargs: Any):
    """Build a registered model, in eval mode, with ``model.default_input_shape``.

    kwargs: ``width`` (channel multiplier; the valid values depend on the model),
    ``resolution`` (input side in pixels; default from the registry; stored as
    ``model.default_input_shape = (1, 3, resolution, resolution)``), ``num_classes``.
    """
    entry = _entry(name)
    _check_kwargs(kwargs)
    resolution = _check_resolution(kwargs.pop("resolution", entry.default_resolution))
    if "width" in kwargs:
        width = kwargs["width"]
        if isinstance(width, bool) or not isinstance(width, numbers.Real) or not width > 0:
            raise UsageError(f"width must be a positive number, got {width!r}")
        kwargs["width"] = float(width)
    if "num_classes" in kwargs:
        nc = kwargs["num_classes"]
        if isinstance(nc, bool) or not isinstance(nc, numbers.Integral) or nc <= 0:
            raise UsageError(f"num_classes must be a positive integer, got {nc!r}")
        kwargs["num_classes"] = int(nc)
    model = entry.resolve()(**kwargs)
    model.default_input_shape = (1, 3, resolution, resolution)
    model.model_name = name
    return model.eval()


_INT_RE = re.compile(r"^[+-]?\d+$")


def _number(key: str, text: str) -> int | float:
    text = text.strip()
    if _INT_RE.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"model argument {key}={text!r} is not a number") from None


def parse_model_spec(spec: str) -> tuple[str, dict[str, int | float]]:
    """"mobilenet_v2:width=0.35,resolution=96" -> ("mobilenet_v2", {"width": 0.35, "resolution": 96}).

    Values become int when they look like ints, else float. The model name is not
    checked here (``create_model`` does); argument names are.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"empty model spec {spec!r}; expected NAME[:key=value,...]")
    name, sep, rest = spec.strip().partition(":")
    name = name.strip()
    if not name:
        raise UsageError(f"model spec {spec!r} has no model name; expected NAME[:key=value,...]")
    kwargs: dict[str, int | float] = {}
    if sep and not rest.strip():
        raise UsageError(f"model spec {spec!r} has ':' but no arguments")
    for part in rest.split(",") if sep else ():
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise UsageError(f"bad model argument {part!r} in {spec!r}; expected key=value")
        if key in kwargs:
            raise UsageError(f"model argument {key!r} given twice in {spec!r}")
        kwargs[key] = _number(key, value)
    _check_kwargs(kwargs)
    return name, kwargs


def model_names() -> list[str]:
    """Every registered model name (built-ins and `register_model` additions), sorted."""
    return [info.name for info in list_models()]


def list_model_info() -> list[dict]:
    """JSON-ready rows for `edgekit models`: name, default_resolution, description, default, trained."""
    return [
        {
            "name": info.name,
            "default_resolution": info.default_resolution,
            "description": info.description,
            "default": info.name == DEFAULT_MODEL,
            # which options load trained weights (None: every option is an untrained architecture)
            "trained": TRAINED.get(info.name),
        }
        for info in list_models()
    ]
