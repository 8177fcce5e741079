"""What a bundle is: the files a recipe leaves for one kind of device, written from the builds.

A new kind of device (a Jetson, an ESP32) is one subclass of :class:`Bundle` in its own module, its
templates in ``edgekit/recipe/templates/``, and one entry in ``edgekit.recipe.bundles.BUNDLES``.
The files every bundle has (the models, ``labels.txt``, ``model_io.json``) are written by
``bundles.common.write_bundle`` before the bundle's own; ``README.md`` after them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.plan import Plan
from edgekit.targets import Target

if TYPE_CHECKING:
    from edgekit.recipe.schema import Recipe


@dataclass(frozen=True)
class BundleJob:
    """Everything a bundle is written from."""

    recipe: Recipe
    target: Target
    builds: dict  # format -> the recipe's build summary ("artifacts", "arena_bytes", "model_bytes", ...)
    spec: dict  # model_io.json
    labels: list[str]  # one per output index
    latency: str  # one line: estimated or measured latency per artifact, or "not profiled"
    folder: Path  # OUTDIR/bundle

    @property
    def have_pte(self) -> bool:
        return "pte" in self.builds

    def artifact(self, fmt: str) -> Path:
        return Path(self.builds[fmt]["artifacts"][f"model.{fmt}"])


class Bundle:
    """One kind of device. Subclasses set the class attributes and implement :meth:`write` and
    :meth:`readme`; :meth:`validate` adds the kind's own rules to the recipe schema."""

    kind: str  # the recipe's `kind`
    device_kinds: tuple[str, ...]  # target kinds (`edgekit targets`) this bundle is for
    formats: tuple[str, ...]  # default outputs.formats
    transport: str | None = None  # "ssh" | "adb": how `edgekit recipe run` measures on the device
    measure_hint: str | None = None  # the flag that says so in a note ("--ssh USER@HOST")
    pip: str | None = None  # the install line printed after a run (None: nothing to install)

    def validate(self, recipe: Recipe, plan: Plan) -> Iterable[tuple[str, str]]:
        """(dotted key, message) for each rule of this kind the recipe breaks; ``plan`` is what its
        device runs (runtime, dtype)."""
        return ()

    def write(self, job: BundleJob) -> list[str]:
        """Write this kind's own files into ``job.folder``; return their names."""
        raise NotImplementedError

    def readme(self, job: BundleJob) -> str:
        """The bundle's README.md."""
        raise NotImplementedError


def tflite_required(kind: str, formats: tuple[str, ...]) -> list[tuple[str, str]]:
    """The rule of the bundles built around the .tflite (model_io.json is read from it)."""
    if "tflite" in formats:
        return []
    return [("outputs.formats", f"the {kind} bundle is built around the .tflite: include \"tflite\"")]
