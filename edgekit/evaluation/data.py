"""Labelled evaluation data: a folder of class folders of images, or an ``.npz`` with ``x`` and ``y``.

``load_eval_data(source, input_shape)`` returns ``EvalData``: the samples as the model takes them,
``x`` float32 (N, 1, C, H, W) (each sample with its batch of 1, like the calibration arrays), and
``y`` int64 (N,).

- **Folder**: every sub-folder is a class and holds its images (any depth below it; suffixes in
  ``edgekit.images.IMAGE_SUFFIXES``, other files are ignored). When every class folder's name is
  an integer ("0", "7", "12") that integer is the label; otherwise the labels follow the sorted
  names, as torchvision's ``ImageFolder`` numbers them. Images are preprocessed by
  ``edgekit.images`` (bicubic resize, RGB, /255, ImageNet mean/std), as for calibration.
- **.npz**: ``y`` integer labels (N,); ``x`` either uint8 pictures (N, H, W) or (N, H, W, 1|3),
  preprocessed like image files (so the shipped digits and the same digits saved as PNGs give
  identical samples), or float samples already preprocessed, shaped (N, C, H, W) or
  (N, 1, C, H, W) for the model input. An optional ``class_names`` array names the classes.

Bad data is one ``UsageError`` naming the file or folder: no images, an image that does not
decode, labels that are not integers or lie outside the model's classes, ``x`` and ``y`` of
different lengths, samples that do not fit the model input, NaN/inf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.errors import UsageError, checked_path
from edgekit.images import IMAGE_SUFFIXES, image_file_sample, pixel_samples


@dataclass
class EvalData:
    x: np.ndarray  # (N, 1, C, H, W) float32, model-ready
    y: np.ndarray  # (N,) int64
    source: str
    class_names: list[str] = field(default_factory=list)  # index -> name ("" when unnamed)
    files: list[str] | None = None  # per sample, for a folder

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        """The classes the data names (folders or class_names), else the largest label + 1."""
        return max(len(self.class_names), int(self.y.max()) + 1 if len(self.y) else 0)

    def describe(self) -> dict:
        counts = np.bincount(self.y, minlength=self.num_classes)
        return {"source": self.source, "samples": len(self), "classes": self.num_classes,
                "class_names": list(self.class_names), "samples_per_class": [int(c) for c in counts]}


def load_eval_data(source, input_shape, *, num_classes: int | None = None) -> EvalData:
    """Read labelled data for a model taking ``input_shape`` (1, C, H, W); see the module docstring.
    ``num_classes`` (the model's output width) refuses labels outside 0..num_classes-1."""
    if isinstance(source, EvalData):
        data = source
    else:
        text = str(source)
        p = checked_path(text, "evaluation data path")
        if not p.exists():
            raise UsageError(f"no such evaluation data file or folder: {text}")
        if p.is_dir():
            data = _from_folder(p, tuple(input_shape))
        elif p.suffix.lower() == ".npz":
            data = _from_npz(p, tuple(input_shape))
        else:
            raise UsageError(f"evaluation data must be a folder of class folders of images or an .npz with x "
                             f"and y (got {text})")
    if num_classes is not None:
        check_labels(data, num_classes)
    return data


def check_labels(data: EvalData, num_classes: int) -> None:
    """Every label must name one of the model's ``num_classes`` outputs."""
    bad = data.y[(data.y < 0) | (data.y >= num_classes)]
    if len(bad):
        raise UsageError(f"{data.source}: label {int(bad[0])} is outside the model's {num_classes} classes "
                         f"(0..{num_classes - 1}); {len(bad)} sample(s) have such labels")
    if len(data.class_names) > num_classes:
        raise UsageError(f"{data.source} has {len(data.class_names)} classes, the model outputs {num_classes}")


# ---- folder --------------------------------------------------------------------------------

def _from_folder(root: Path, input_shape) -> EvalData:
    entries = sorted(root.iterdir())
    stray = [f for f in entries if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if stray:
        raise UsageError(f"evaluation folder {root}: image {stray[0].name} is not inside a class folder "
                         f"(expected {root}/<class>/<image>)")
    classes = [d for d in entries if d.is_dir() and not d.name.startswith(".")]
    images = {d: sorted(f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
              for d in classes}
    if not any(images.values()):
        raise UsageError(f"evaluation folder {root} has no images in class folders ({root}/<class>/<image>, "
                         f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    names = [d.name for d in classes]
    if all(_is_int(n) for n in names):
        labels = {d: int(d.name) for d in classes}
        class_names = [""] * (max(labels.values()) + 1)
        for d, i in labels.items():
            class_names[i] = d.name
    else:
        labels = {d: i for i, d in enumerate(classes)}
        class_names = names
    files, ys = [], []
    for d in classes:
        files += images[d]
        ys += [labels[d]] * len(images[d])
    x = np.stack([image_file_sample(f, input_shape) for f in files])
    return EvalData(x=x, y=np.asarray(ys, np.int64), source=str(root), class_names=class_names,
                    files=[str(f) for f in files])


def _is_int(name: str) -> bool:
    return name.isdigit() and len(name) < 10


# ---- .npz ----------------------------------------------------------------------------------

def _from_npz(p: Path, input_shape) -> EvalData:
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise UsageError(f"cannot read {p} as an .npz archive: {type(exc).__name__}: {str(exc)[:160]}") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise UsageError(f"{p} has no {key!r} array (it has: {', '.join(sorted(arrays)) or 'nothing'}); "
                             "expected x (samples) and y (integer labels)")
    x, y = arrays["x"], arrays["y"]
    y = _labels(p, y)
    if x.ndim == 0 or len(x) != len(y):
        raise UsageError(f"{p}: x holds {len(x) if x.ndim else 0} sample(s) but y holds {len(y)} label(s)")
    if len(y) == 0:
        raise UsageError(f"{p} holds no samples")
    if x.dtype == np.uint8:
        samples = _pictures(p, x, input_shape)
    elif np.issubdtype(x.dtype, np.floating):
        samples = _float_samples(p, x, input_shape)
    else:
        raise UsageError(f"{p}: x has dtype {x.dtype}; expected uint8 pictures (0..255) or float samples "
                         "preprocessed for the model")
    names = arrays.get("class_names")
    class_names = [str(n) for n in names.tolist()] if names is not None and names.ndim == 1 else []
    return EvalData(x=samples, y=y, source=str(p), class_names=class_names)


def _labels(p: Path, y: np.ndarray) -> np.ndarray:
    if y.ndim != 1:
        raise UsageError(f"{p}: y must be one integer label per sample, shape (N,); got shape {y.shape}")
    if np.issubdtype(y.dtype, np.integer):
        return y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return y.astype(np.int64)
    raise UsageError(f"{p}: y must hold integer class labels; got dtype {y.dtype}"
                     + (f" (e.g. {y.ravel()[0]!r})" if y.size else ""))


def _pictures(p: Path, x: np.ndarray, input_shape) -> np.ndarray:
    ok = x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (1, 3))
    if not ok:
        raise UsageError(f"{p}: uint8 x must be pictures shaped (N, H, W) or (N, H, W, 3); got {x.shape}")
    return pixel_samples(x, input_shape)


def _float_samples(p: Path, x: np.ndarray, input_shape) -> np.ndarray:
    x = x.astype(np.float32)
    if x.shape[1:] == tuple(input_shape):
        out = x
    elif input_shape[0] == 1 and x.shape[1:] == tuple(input_shape[1:]):
        out = x[:, None]
    else:
        raise UsageError(f"{p}: float x has shape {x.shape}, which does not fit the model input "
                         f"{tuple(input_shape)}: expected (N, {', '.join(map(str, input_shape[1:]))}) "
                         "(or uint8 pictures)")
    if not np.all(np.isfinite(out)):
        raise UsageError(f"{p}: x contains NaN or infinite values")
    return out
