"""Checked reads from a parsed TOML document (targets/*.toml, recipes/*/recipe.toml): each
failure is one error naming the file and the dotted key, with a did-you-mean for typos."""

from __future__ import annotations

import difflib
import math

from edgekit.errors import EdgekitError


def describe(value) -> str:
    """What a wrong value is, for an error message: 'a string ('abc')', 'a table', ..."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    return f"a {type(value).__name__} ({str(value)[:40]})"


def _did_you_mean(value: str, choices) -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _full(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


class TomlChecker:
    """Subclasses set ``error`` (an EdgekitError taking ``message, path=, key=``)."""

    error: type = EdgekitError

    def __init__(self, source):
        self.source = source

    def fail(self, key: str | None, message: str):
        where = f"{self.source}: {key}: " if key else f"{self.source}: "
        raise self.error(where + message, path=self.source, key=key)

    def table(self, parent: dict, key: str, where: str = "", *, required: bool = True) -> dict | None:
        full = _full(where, key)
        if key not in parent:
            if required:
                self.fail(full, f"missing table [{full}]")
            return None
        value = parent[key]
        if not isinstance(value, dict):
            self.fail(full, f"must be a table, got {describe(value)}")
        return value

    def keys(self, d: dict, allowed, where: str, *, hint: str = ""):
        for k in d:
            if k not in allowed:
                self.fail(_full(where, k), f"unknown key{_did_you_mean(k, allowed)}; allowed here: "
                                           f"{', '.join(allowed)}{hint}")

    def forbid(self, d: dict, keys, where: str, why: str):
        for k in keys:
            if k in d:
                self.fail(_full(where, k), why)

    def string(self, d: dict, key: str, where: str, *, required: bool = True, choices=None) -> str | None:
        full = _full(where, key)
        if key not in d:
            if required:
                self.fail(full, "missing required key" + (f" (one of {', '.join(choices)})" if choices else ""))
            return None
        value = d[key]
        if not isinstance(value, str):
            self.fail(full, f"must be a string, got {describe(value)}")
        if not value.strip():
            self.fail(full, "must not be empty")
        if choices is not None and value not in choices:
            self.fail(full, f"unknown value {value!r}{_did_you_mean(value, choices)}; choose one of "
                            f"{', '.join(choices)}")
        return value

    def number(self, d: dict, key: str, where: str, *, required: bool = True, positive: bool = True,
               maximum: float | None = None) -> float | None:
        full = _full(where, key)
        if key not in d:
            if required:
                self.fail(full, "missing required key")
            return None
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(full, f"must be a number, got {describe(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(full, f"must be a finite number, got {value}")
        if positive and value <= 0:
            self.fail(full, f"must be greater than 0, got {value}")
        if not positive and value < 0:
            self.fail(full, f"must not be negative, got {value}")
        if maximum is not None and value > maximum:
            self.fail(full, f"implausibly large: {value} (more than {maximum:g})")
        return value

    def integer(self, d: dict, key: str, where: str, *, required: bool = True, default=None, minimum: int = 1,
                maximum: int | None = None) -> int | None:
        full = _full(where, key)
        if key not in d:
            if required:
                self.fail(full, "missing required key")
            return default
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(full, f"must be an integer, got {describe(value)}")
        if value < minimum:
            self.fail(full, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.fail(full, f"must be at most {maximum}, got {value}")
        return value

    def boolean(self, d: dict, key: str, where: str, *, default: bool = False) -> bool:
        if key not in d:
            return default
        value = d[key]
        if not isinstance(value, bool):
            self.fail(_full(where, key), f"must be true or false, got {describe(value)}")
        return value

    def string_list(self, d: dict, key: str, where: str, *, choices, default=(), nonempty: bool = False) -> tuple:
        full = _full(where, key)
        if key not in d:
            return default
        value = d[key]
        if not isinstance(value, list) or (nonempty and not value):
            self.fail(full, f"must be a {'non-empty ' if nonempty else ''}list of strings, got {describe(value)}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"{full}[{i}]", f"must be a string, got {describe(item)}")
            if item not in choices:
                self.fail(f"{full}[{i}]", f"unknown value {item!r}{_did_you_mean(item, choices)}; choose from "
                                         f"{', '.join(choices)}")
            if item in out:
                self.fail(f"{full}[{i}]", f"{item!r} is listed twice")
            out.append(item)
        return tuple(out)

    def numbers(self, d: dict, key: str, where: str, *, length=None, integer: bool = False,
                positive: bool = False) -> list | None:
        full = _full(where, key)
        if key not in d:
            return None
        v = d[key]
        if not isinstance(v, list) or not v:
            self.fail(full, f"must be a non-empty list of numbers, got {describe(v)}")
        for i, x in enumerate(v):
            ok = isinstance(x, int) if integer else isinstance(x, (int, float))
            if isinstance(x, bool) or not ok or (isinstance(x, float) and not math.isfinite(x)):
                self.fail(f"{full}[{i}]", f"must be {'an integer' if integer else 'a number'}, got {describe(x)}")
            if positive and x <= 0:
                self.fail(f"{full}[{i}]", f"must be greater than 0, got {x}")
        if length is not None and len(v) != length:
            self.fail(full, f"must have {length} values, got {len(v)}")
        return list(v)
