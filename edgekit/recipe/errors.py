"""The recipe's error: a project UsageError naming the recipe file and the dotted key."""

from __future__ import annotations

from edgekit.errors import UsageError


class RecipeError(UsageError):
    """An invalid recipe: ``path`` is the file, ``key`` the dotted key (or None)."""

    def __init__(self, message: str, *, path=None, key: str | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.key = key
