"""Size strings and shapes as users type them (no torch here)."""

from __future__ import annotations

import re

from edgekit.errors import UsageError

# Microcontroller datasheets say "256 KB" and mean 262,144 bytes: every k/K/kB/KB/KiB is 1024.
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$")

SIZE_HELP = (
    "a size such as 256kB, 256KiB, 256k, 1MB, 1.5MiB or plain bytes; "
    "k, K, kB, KB and KiB all mean 1024 bytes, as in microcontroller datasheets"
)


def parse_size(text: str | int) -> int:
    """Parse '256kB' -> 262144. Raises UsageError naming the bad string."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise UsageError(f"size must not be negative: {text}")
        if text > 2**62:  # the same bound as a size string
            raise UsageError(f"bad size {text}: too large")
        return text
    if not isinstance(text, str):
        raise UsageError(f"bad size {text!r}: expected {SIZE_HELP}")
    m = _SIZE_RE.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"bad size {text!r}: expected {SIZE_HELP}")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value != value or value > 2**62:
        raise UsageError(f"bad size {text!r}: too large")
    nbytes = int(round(value))
    if m.group(2) == "" and "." in m.group(1):
        raise UsageError(f"bad size {text!r}: a plain byte count must be a whole number")
    return nbytes


def format_bytes(nbytes: int | float | None) -> str:
    """Human size with binary units (1 kB = 1024 B, as parse_size)."""
    if nbytes is None:
        return "-"
    n = float(nbytes)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def parse_shape(text: str | tuple | list) -> tuple[int, ...]:
    """Parse '1,3,96,96' (or 1x3x96x96) into a tuple of positive ints."""
    if isinstance(text, (tuple, list)):
        parts = list(text)
    else:
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"bad input shape {text!r}: expected e.g. 1,3,96,96")
        parts = re.split(r"[,x×\s]+", text.strip().strip("()[]"))
    try:
        shape = tuple(int(p) for p in parts if str(p) != "")
    except (TypeError, ValueError):
        raise UsageError(f"bad input shape {text!r}: expected comma-separated integers, e.g. 1,3,96,96") from None
    if not shape or any(d <= 0 for d in shape) or len(shape) > 6:
        raise UsageError(f"bad input shape {text!r}: expected 1 to 6 positive integers, e.g. 1,3,96,96")
    if any(d > 1 << 20 for d in shape):
        raise UsageError(f"bad input shape {text!r}: a dimension is implausibly large")
    return shape


DTYPES = ("fp32", "fp16", "int8")
_DTYPE_ALIASES = {"float32": "fp32", "f32": "fp32", "float": "fp32", "float16": "fp16", "f16": "fp16",
                  "half": "fp16", "qint8": "int8", "i8": "int8"}


def parse_dtype(text: str) -> str:
    key = (text or "").strip().lower()
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPES:
        raise UsageError(f"unknown dtype {text!r}: choose one of {', '.join(DTYPES)}")
    return key
