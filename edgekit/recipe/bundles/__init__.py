"""The bundles, one module per kind of device, registered by recipe ``kind``.

To add a kind: a ``Bundle`` subclass in its own module (see ``base.py``), its templates in
``edgekit/recipe/templates/``, and one entry here. The order is the order of ``kind`` in error
messages.
"""

from __future__ import annotations

from edgekit.recipe.bundles.base import Bundle, BundleJob
from edgekit.recipe.bundles.mcu import McuBundle
from edgekit.recipe.bundles.phone import PhoneBundle
from edgekit.recipe.bundles.raspberry_pi import RaspberryPiBundle

BUNDLES: dict[str, Bundle] = {b.kind: b for b in (RaspberryPiBundle(), PhoneBundle(), McuBundle())}

__all__ = ["BUNDLES", "Bundle", "BundleJob"]
