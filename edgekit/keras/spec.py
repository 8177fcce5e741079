"""Recognise a Keras/TensorFlow MODEL and check it before TensorFlow is started (no TensorFlow here).

Forms (``edgekit.loader.parse_spec`` kind ``"keras"``):

- ``model.keras``: the Keras 3 format, a zip archive with ``config.json`` (the architecture) and
  ``model.weights.h5`` (keras/src/saving/saving_lib.py ``_CONFIG_FILENAME``, ``_VARS_FNAME``);
- ``model.h5`` / ``model.hdf5``: the legacy HDF5 format (an HDF5 file: its superblock signature
  ``\\x89HDF\\r\\n\\x1a\\n`` at offset 0, 512, 1024, ... — the HDF5 file format specification,
  "Format Signature");
- a SavedModel folder: ``saved_model.pb`` (or ``saved_model.pbtxt``) inside
  (tensorflow/python/saved_model/constants.py ``SAVED_MODEL_FILENAME_PB``).

A file that is not what its name says is one :class:`~edgekit.errors.ArtifactError` here, before a
child process spends seconds importing TensorFlow; a file that passes these checks and still does not
load is the child's one-line error (``edgekit.isolate.ChildFailure``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from edgekit.errors import ArtifactError, MissingExtraError, UsageError

KERAS_SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except (OSError, ValueError):  # a name the OS refuses (too long, NUL): not a Keras model
        return False


def is_saved_model_dir(path) -> bool:
    p = Path(path)
    try:
        return p.is_dir() and any((p / f).is_file() for f in SAVED_MODEL_FILES)
    except (OSError, ValueError):
        return False


def keras_kind(text: str) -> str | None:
    """``"keras"``, ``"h5"`` or ``"savedmodel"`` when ``text`` names a Keras/TensorFlow model, else
    None. A ``.keras``/``.h5`` name is checked (UsageError when missing, ArtifactError when it is not
    such a file); a folder counts only when it holds ``saved_model.pb`` (see :func:`not_a_saved_model`)."""
    p = Path(text)
    kind = KERAS_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        return "savedmodel" if is_saved_model_dir(p) else None
    check_keras_path(p, kind)
    return kind


def check_keras_path(path, kind: str) -> None:
    p = Path(path)
    if not _exists(p):
        raise UsageError(f"no such file: {path}")
    if p.is_dir():
        if kind == "savedmodel" and is_saved_model_dir(p):
            return
        raise UsageError(f"{path} is a directory, expected a {'.keras' if kind == 'keras' else '.h5'} file")
    if kind == "keras":
        _check_keras_zip(p)
    elif kind == "h5":
        _check_hdf5(p)


def _check_keras_zip(p: Path) -> None:
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            bad = z.testzip()  # CRC of every member: a damaged archive is caught here
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ArtifactError(f"{p} is not a Keras model: a .keras file is a zip archive and this one cannot be "
                            f"read ({type(exc).__name__}: {str(exc)[:120]}); save it again with model.save()") from None
    if bad is not None:
        raise ArtifactError(f"{p} is corrupt: its member {bad} fails its CRC check; save the model again")
    if "config.json" not in names:
        raise ArtifactError(f"{p} is a zip archive without config.json, not a Keras model; save it with "
                            "model.save('model.keras')")


def _check_hdf5(p: Path) -> None:
    size = p.stat().st_size
    with p.open("rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            if f.read(8) == _HDF5_SIGNATURE:
                return
            offset = 512 if offset == 0 else offset * 2
    raise ArtifactError(f"{p} is not an HDF5 file (no HDF5 signature), so not a legacy Keras .h5 model; "
                        "save it again with model.save('model.h5') or model.save('model.keras')")


def not_a_saved_model(path) -> UsageError:
    """The error for a folder given as MODEL that holds no SavedModel."""
    return UsageError(f"{path} is a directory but not a TensorFlow SavedModel (no saved_model.pb inside); "
                      "give a SavedModel folder, a .keras or .h5 file, or a PyTorch model")


def require_tensorflow() -> None:
    """MissingExtraError naming ``edgekit[keras]`` when TensorFlow is not installed (looked up, not
    imported: TensorFlow is only imported in child processes)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtraError("tensorflow", "keras")
