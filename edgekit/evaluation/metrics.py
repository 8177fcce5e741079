"""Accuracy on a labelled set, and how far a model's outputs are from a reference's.

Everything is computed on the whole set at once (no per-batch averaging):

- **top-1 / top-5 accuracy** with a 95 % **Wilson score interval** (Wilson 1927; the interval
  ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`` gives): unlike the normal
  approximation it stays inside [0, 1] and keeps its coverage near 0 % and 100 % accuracy, where
  small held-out sets of good models live. Top-5 only with at least 10 classes (below that it
  says little). A prediction is ``argmax`` of the output (ties: the lowest index, as NumPy and
  ``torch.argmax`` do); top-k ranks with a stable sort, so ties keep the lower index first.
- **per-class accuracy** (recall of each true class) and the **confusion matrix** (rows: true
  class, columns: predicted class; ``sklearn.metrics.confusion_matrix``'s layout).
- **against a reference** (normally PyTorch fp32 on the same samples) the figures of
  STM32Cube.AI / ST Edge AI ``validate`` (evaluation_metrics: ACC, RMSE, MAE, L2R, COS), over the
  flattened outputs of the whole set, with r the reference and p the outputs:
  ``cosine = <r, p> / (|r| |p|)``, ``l2_relative_error = |p - r| / |r|``,
  ``mae = mean |p - r|``, ``rmse = sqrt(mean (p - r)^2)``; plus top-1 agreement (same argmax),
  the accuracy delta in percentage points and the samples the model gets right that the reference
  gets wrong (``gained``) and the reverse (``lost``): delta = (gained - lost) / N.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from edgekit.errors import UsageError

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def wilson_interval(successes: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion ``successes / n``."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class Accuracy:
    correct: int
    samples: int
    accuracy: float
    ci_low: float  # 95 % Wilson score interval
    ci_high: float

    @classmethod
    def of(cls, hits: np.ndarray) -> Accuracy:
        k, n = int(np.sum(hits)), len(hits)
        lo, hi = wilson_interval(k, n)
        return cls(k, n, k / n if n else 0.0, lo, hi)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Agreement:
    """Outputs of a model against a reference's on the same samples."""

    reference: str
    cosine: float
    l2_relative_error: float
    mae: float
    rmse: float
    top1_agreement: float
    accuracy_delta_pp: float  # (this model's top-1 - the reference's) in percentage points
    gained: int  # samples this model gets right and the reference wrong
    lost: int  # samples the reference gets right and this model wrong

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalResult:
    """One model in one runtime on one labelled set."""

    name: str  # "PyTorch fp32", "TFLite-Micro int8", ...
    runtime: str  # "pytorch" | "litert" | "tflite-micro" | "executorch"
    samples: int
    num_classes: int
    top1: Accuracy
    top5: Accuracy | None
    per_class: list[dict]  # {"class", "name", "samples", "correct", "accuracy"}
    confusion: list[list[int]]  # [true][predicted]
    vs_reference: Agreement | None = None
    details: dict = field(default_factory=dict)  # e.g. {"arena_bytes": ...}
    outputs: np.ndarray | None = field(default=None, repr=False)  # (N, K) float, not in to_dict
    hits: np.ndarray | None = field(default=None, repr=False)  # (N,) top-1 correct, not in to_dict

    @property
    def accuracy(self) -> float:
        return self.top1.accuracy

    def to_dict(self) -> dict:
        return {"name": self.name, "runtime": self.runtime, "samples": self.samples,
                "num_classes": self.num_classes, "top1": self.top1.to_dict(),
                "top5": self.top5.to_dict() if self.top5 else None, "per_class": self.per_class,
                "confusion": self.confusion,
                "vs_reference": self.vs_reference.to_dict() if self.vs_reference else None,
                "details": self.details}


def _as_logits(outputs) -> np.ndarray:
    out = np.asarray(outputs, np.float64)
    if out.ndim < 2:
        raise UsageError(f"classification outputs must be (N, classes), got shape {out.shape}")
    return out.reshape(len(out), -1)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return cm


def topk_hits(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """True where the label is among the k largest outputs (stable: ties favour lower indices)."""
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return np.any(order == np.asarray(labels)[:, None], axis=1)


def agreement(reference: EvalResult, outputs: np.ndarray, hits: np.ndarray) -> Agreement:
    r = _as_logits(reference.outputs)
    p = _as_logits(outputs)
    if r.shape != p.shape:
        raise UsageError(f"outputs of shape {p.shape} cannot be compared with {reference.name}'s {r.shape}")
    rf, pf = r.ravel(), p.ravel()
    nr, np_ = float(np.linalg.norm(rf)), float(np.linalg.norm(pf))
    diff = pf - rf
    cosine = float(rf @ pf / (nr * np_)) if nr > 0 and np_ > 0 else float(np.array_equal(rf, pf))
    l2r = float(np.linalg.norm(diff) / nr) if nr > 0 else float(np.linalg.norm(diff) > 0) * math.inf
    ref_hits = np.asarray(reference.hits, bool)
    n = len(hits)
    return Agreement(reference=reference.name, cosine=cosine, l2_relative_error=l2r,
                     mae=float(np.mean(np.abs(diff))), rmse=float(np.sqrt(np.mean(diff * diff))),
                     top1_agreement=float(np.mean(np.argmax(r, 1) == np.argmax(p, 1))),
                     accuracy_delta_pp=100.0 * (int(hits.sum()) - int(ref_hits.sum())) / n,
                     gained=int(np.sum(hits & ~ref_hits)), lost=int(np.sum(~hits & ref_hits)))


def score(outputs, labels, *, name: str, runtime: str, class_names=(), reference: EvalResult | None = None,
          details: dict | None = None) -> EvalResult:
    """Accuracy figures of ``outputs`` (N, K) for ``labels`` (N,), optionally against a reference."""
    logits = _as_logits(outputs)
    labels = np.asarray(labels, np.int64)
    n, k = logits.shape
    if len(labels) != n:
        raise UsageError(f"{name}: {n} outputs for {len(labels)} labels")
    if n == 0:
        raise UsageError(f"{name}: no samples to score")
    if labels.min() < 0 or labels.max() >= k:
        raise UsageError(f"label {int(labels.max() if labels.max() >= k else labels.min())} is outside the "
                         f"model's {k} classes (0..{k - 1})")
    predicted = np.argmax(logits, axis=1)
    hits = predicted == labels
    cm = confusion_matrix(labels, predicted, k)
    names = list(class_names) + [""] * (k - len(class_names))
    per_class = [{"class": c, "name": names[c], "samples": int(cm[c].sum()), "correct": int(cm[c, c]),
                  "accuracy": float(cm[c, c] / cm[c].sum()) if cm[c].sum() else None} for c in range(k)]
    res = EvalResult(name=name, runtime=runtime, samples=n, num_classes=k, top1=Accuracy.of(hits),
                     top5=Accuracy.of(topk_hits(logits, labels, 5)) if k >= 10 else None,
                     per_class=per_class, confusion=cm.tolist(), details=dict(details or {}),
                     outputs=np.asarray(outputs), hits=hits)
    if reference is not None:
        res.vs_reference = agreement(reference, logits, hits)
    return res
