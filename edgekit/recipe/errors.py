"""The recipe's error: a configuration error naming the recipe file and the dotted key."""

from __future__ import annotations

from edgekit.errors import ConfigError


class RecipeError(ConfigError):
    """An invalid recipe: ``path`` is the file, ``key`` the dotted key (or None)."""
