"""The bundle's templates (``edgekit/recipe/templates/``, package data) and the one function that fills them.

A placeholder is ``{{name}}`` (letters, digits, ``_``): it cannot clash with the braces of C++,
Kotlin or Markdown, nor with Kotlin's ``$``. :func:`render` substitutes every placeholder in one
pass (a value is never scanned for placeholders itself) and fails on a placeholder without a value,
a value without a placeholder, and a stray ``{{``/``}}`` left in the template.
"""

from __future__ import annotations

import re
from importlib.resources import files

_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")


class TemplateError(ValueError):
    """A template and its values disagree: a bug in edgekit, not in the user's input."""


def template_text(name: str) -> str:
    """The text of ``templates/<name>`` as shipped in the package."""
    return files("edgekit.recipe").joinpath("templates", name).read_text(encoding="utf-8")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def render_text(text: str, values: dict, *, name: str = "template") -> str:
    """``text`` with every ``{{key}}`` replaced by ``str(values[key])``."""
    wanted = placeholders(text)
    missing = sorted(wanted - set(values))
    unused = sorted(set(values) - wanted)
    problems = ([f"no value for {', '.join('{{' + m + '}}' for m in missing)}"] if missing else []) + (
        [f"no placeholder for the value(s) {', '.join(unused)}"] if unused else [])
    if problems:
        raise TemplateError(f"{name}: {'; '.join(problems)}")
    stray = _PLACEHOLDER.sub("", text)
    if "{{" in stray or "}}" in stray:
        line = next(ln for ln in stray.splitlines() if "{{" in ln or "}}" in ln)
        raise TemplateError(f"{name}: a malformed placeholder in {line.strip()!r}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def render(template: str, /, **values) -> str:
    """``templates/<template>`` filled with ``values`` (see :func:`render_text`)."""
    return render_text(template_text(template), values, name=template)
