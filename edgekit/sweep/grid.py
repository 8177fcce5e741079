"""The design space of a sweep: a registered model family, its grid, and the candidates in it.

``--grid width=0.25,0.35,0.5 resolution=64,96,128`` names model arguments (the registry's
``MODEL_KWARGS``: width, resolution, num_classes); ``--dtype int8,fp32`` and
``--memory-plan auto,tflm`` are build axes. The candidates are the cartesian product, in the
order the axes and values were given (``itertools.product``), so every run of the same sweep
enumerates the same candidates with the same ids, whatever executes them.

Everything here is checked before any work starts (no torch): an unknown family, an axis that is
not a model argument, a value that is not a number, a resolution the registry refuses, a repeated
axis or value are one ``UsageError`` naming the offending text. Whether an architecture accepts a
width (``shufflenet_v2`` takes 0.5/1.0/1.5/2.0 only) is known only by building it: such a
candidate fails in the analytic phase and is reported, like any other failed candidate.
"""

from __future__ import annotations

import itertools
import numbers
import re
from dataclasses import dataclass

from edgekit.errors import UsageError
from edgekit.models.catalog import MODEL_KWARGS
from edgekit.plan import MEMORY_PLANS
from edgekit.units import parse_dtype

BUILD_AXES = ("dtype", "memory_plan")
MAX_CANDIDATES = 100_000  # a typo such as resolution=32,...,4096 step 1 is refused before any work


@dataclass(frozen=True)
class Candidate:
    """One point of the grid: ``model`` (model arguments) and ``build`` (dtype, memory plan) as
    (name, value) pairs in axis order; ``index`` is its place in the enumeration."""

    family: str
    model: tuple[tuple[str, int | float], ...]
    build: tuple[tuple[str, str], ...] = ()
    index: int = 0

    @property
    def spec(self) -> str:
        """The MODEL spec that builds it: ``mcunet_tiny:width=0.5,resolution=64``."""
        args = ",".join(f"{k}={_fmt(v)}" for k, v in self.model)
        return f"{self.family}:{args}" if args else self.family

    @property
    def id(self) -> str:
        """Stable and readable: ``width=0.5,resolution=64,dtype=int8`` (the family alone when the
        grid is empty)."""
        parts = [f"{k}={_fmt(v)}" for k, v in (*self.model, *self.build)]
        return ",".join(parts) or self.family

    @property
    def slug(self) -> str:
        """The id as a file name: ``width-0.5_resolution-64_dtype-int8``."""
        return re.sub(r"[^A-Za-z0-9.+-]", "_", self.id.replace("=", "-").replace(",", "_"))

    @property
    def dtype(self) -> str | None:
        return dict(self.build).get("dtype")

    @property
    def memory_plan(self) -> str | None:
        return dict(self.build).get("memory_plan")

    def to_dict(self) -> dict:
        return {"id": self.id, "index": self.index, "spec": self.spec, "model": dict(self.model),
                "build": dict(self.build)}


@dataclass(frozen=True)
class Grid:
    family: str
    model_axes: tuple[tuple[str, tuple], ...]
    build_axes: tuple[tuple[str, tuple], ...] = ()

    @property
    def size(self) -> int:
        n = 1
        for _, values in (*self.model_axes, *self.build_axes):
            n *= len(values)
        return n

    def candidates(self) -> list[Candidate]:
        names = [k for k, _ in self.model_axes]
        bnames = [k for k, _ in self.build_axes]
        out = []
        for i, combo in enumerate(itertools.product(*(v for _, v in self.model_axes),
                                                    *(v for _, v in self.build_axes))):
            model = tuple(zip(names, combo[:len(names)]))
            build = tuple(zip(bnames, combo[len(names):]))
            out.append(Candidate(self.family, model, build, i))
        return out

    def to_dict(self) -> dict:
        return {"family": self.family, "axes": {k: list(v) for k, v in (*self.model_axes, *self.build_axes)}}


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def parse_axis(text: str) -> tuple[str, tuple]:
    """``"width=0.25,0.35"`` -> ("width", (0.25, 0.35)): values in the given order, numbers typed."""
    name, sep, values = str(text).partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"bad grid axis {text!r}: expected NAME=V1,V2,... such as width=0.25,0.35,0.5")
    if name not in MODEL_KWARGS:
        hint = " (give dtypes with --dtype, memory plans with --memory-plan)" if name in BUILD_AXES else ""
        raise UsageError(f"unknown grid axis {name!r} in {text!r}: a grid varies the model's arguments "
                         f"{', '.join(MODEL_KWARGS)}{hint}")
    items = [v.strip() for v in values.split(",")]
    if not values.strip() or any(not v for v in items):
        raise UsageError(f"grid axis {text!r} has an empty value: expected {name}=V1,V2,...")
    typed = tuple(_axis_value(name, v, text) for v in items)
    dup = next((v for i, v in enumerate(typed) if v in typed[:i]), None)
    if dup is not None:
        raise UsageError(f"grid axis {text!r} lists {_fmt(dup)} twice")
    return name, typed


def _axis_value(name: str, text: str, axis: str) -> int | float:
    try:
        v = float(text)
    except ValueError:
        raise UsageError(f"grid value {text!r} of {axis!r} is not a number") from None
    if not v > 0 or v != v or v == float("inf"):
        raise UsageError(f"grid value {text!r} of {axis!r} must be a positive number")
    if name in ("resolution", "num_classes"):
        if not v.is_integer():
            raise UsageError(f"grid value {text!r} of {axis!r}: {name} must be an integer")
        v = int(v)
        if name == "resolution" and v < 32:
            raise UsageError(f"grid value {text!r} of {axis!r}: resolution must be >= 32 pixels")
    return v


def parse_choices(text, name: str, allowed, check=None) -> tuple[str, ...]:
    """A build axis given as ``"int8,fp32"`` (or a list): each value checked, no repeats."""
    if text is None:
        return ()
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    if not items or any(not s for s in items):
        raise UsageError(f"bad --{name.replace('_', '-')} {text!r}: expected V1,V2,...")
    out = []
    for s in items:
        v = check(s) if check else s
        if v not in allowed:
            raise UsageError(f"unknown {name.replace('_', ' ')} {s!r}: choose from {', '.join(allowed)}")
        if v in out:
            raise UsageError(f"--{name.replace('_', '-')} lists {v} twice")
        out.append(v)
    return tuple(out)


def make_grid(family: str, axes=(), *, dtype=None, memory_plan=None) -> Grid:
    """Parse and check a whole grid (see the module doc); raises UsageError before any work."""
    from edgekit.models.registry import list_models

    known = {m.name for m in list_models()}
    if not isinstance(family, str) or family not in known:
        raise UsageError(f"unknown model family {family!r}: a sweep varies a registered model; "
                         f"known: {', '.join(sorted(known))}")
    if isinstance(axes, dict):  # {"width": [0.25, 0.5]} as well as ["width=0.25,0.5"]
        axes = [f"{k}={','.join(_fmt(v) if isinstance(v, numbers.Real) else str(v) for v in vs)}"
                for k, vs in axes.items()]
    model_axes = []
    for a in ([axes] if isinstance(axes, str) else list(axes)):
        name, values = parse_axis(a)
        if any(name == k for k, _ in model_axes):
            raise UsageError(f"grid axis {name!r} is given twice")
        model_axes.append((name, values))
    build_axes = []
    dts = parse_choices(dtype, "dtype", ("int8", "fp16", "fp32"), check=parse_dtype)
    if dts:
        build_axes.append(("dtype", dts))
    mps = parse_choices(memory_plan, "memory_plan", MEMORY_PLANS)
    if mps:
        build_axes.append(("memory_plan", mps))
    grid = Grid(family, tuple(model_axes), tuple(build_axes))
    if grid.size > MAX_CANDIDATES:
        raise UsageError(f"the grid has {grid.size:,} candidates; more than {MAX_CANDIDATES:,} is refused")
    return grid
