"""The project's error types. The CLI turns an EdgekitError into one line and exit code 2."""


class EdgekitError(Exception):
    """A problem with the user's input or environment; the message says what and what to do."""


class UsageError(EdgekitError, ValueError):
    """A bad argument value: a size string, a shape, a model spec, a target name."""


class ConfigError(UsageError):
    """A configuration file (a target, a recipe) that is not valid: ``path`` is the file, ``key``
    the dotted key (or None)."""

    def __init__(self, message: str, *, path=None, key: str | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.key = key


class MissingExtraError(EdgekitError, ImportError):
    """An optional backend is not installed."""

    def __init__(self, module: str, extra: str):
        super().__init__(
            f"{module} is not installed; install it with: pip install 'edgekit[{extra}]'"
        )


class ArtifactError(EdgekitError):
    """A .tflite/.pte/.pt2 file that cannot be read or run."""


class NotModelledError(EdgekitError):
    """An analysis cannot give an exact number for this model and will not guess: ``layers``
    lists what it does not model as (layer path, op, why)."""

    def __init__(self, message: str, layers=()):
        super().__init__(message)
        self.layers = list(layers)


class RuntimeFailure(EdgekitError):
    """A native runtime crashed, hung or refused the artifact (run in a child process)."""


def require(module: str, extra: str):
    """Import an optional backend or raise MissingExtraError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(module, extra) from exc


def checked_path(path, what: str = "path"):
    """``Path(path)``, or a UsageError when the OS cannot even look the name up (a component
    longer than the file system allows, an embedded NUL byte): such a name is a typing error,
    not a missing file, and ``Path.exists()`` raises on it instead of returning False."""
    from pathlib import Path

    p = Path(path)
    try:
        p.exists()
    except (OSError, ValueError) as exc:
        text = str(path)
        shown = text if len(text) <= 80 else text[:77] + "..."
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"bad {what} {shown!r}: {reason}") from None
    return p


class UnmodelledError(EdgekitError):
    """A prediction was asked for something its model does not cover (an op, a tensor type);
    the message names it. Raised instead of a silent guess."""
