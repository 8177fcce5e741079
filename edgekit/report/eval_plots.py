"""Confusion matrices of an evaluation (matplotlib, Agg, imported lazily), one panel per
model/runtime side by side, for the HTML report and `--plot`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.report.plots import _pyplot, _save


def _results(evaluation) -> list[dict]:
    """An EvalReport, an EvalResult, their to_dict(), or a list of results -> list of result dicts."""
    if hasattr(evaluation, "to_dict"):
        evaluation = evaluation.to_dict()
    if isinstance(evaluation, dict):
        return list(evaluation["results"]) if "results" in evaluation else [evaluation]
    return [r.to_dict() if hasattr(r, "to_dict") else r for r in evaluation]


def confusion_matrix_plot(evaluation, path, *, normalize: bool = True) -> Path:
    """One confusion matrix per result (rows: true class, columns: predicted), coloured by the share
    of each true class (``normalize``) with the counts written in the cells up to 20 classes."""
    plt = _pyplot()
    results = _results(evaluation)
    n = max(1, len(results))
    k = len(results[0]["confusion"]) if results else 0
    side = 3.2 + 0.22 * min(k, 40)
    fig, axes = plt.subplots(1, n, figsize=(side * n, side + 0.6), dpi=110, squeeze=False)
    for ax, res in zip(axes[0], results):
        cm = np.asarray(res["confusion"], dtype=np.float64)
        rows = cm.sum(axis=1, keepdims=True)
        shade = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) if normalize else cm
        ax.imshow(shade, cmap="Blues", vmin=0, vmax=1 if normalize else max(1.0, cm.max()))
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    if cm[i, j]:
                        ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                                color="white" if shade[i, j] > 0.5 * (1 if normalize else cm.max()) else "black")
        names = [p.get("name") or str(p["class"]) for p in res.get("per_class", [])] or [str(i) for i in range(k)]
        if k <= 40:
            ax.set_xticks(range(k), names, rotation=90 if max(map(len, names), default=1) > 3 else 0, fontsize=7)
            ax.set_yticks(range(k), names, fontsize=7)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        t1 = res["top1"]
        ax.set_title(f"{res['name']}: top-1 {100 * t1['accuracy']:.2f} % "
                     f"[{100 * t1['ci_low']:.1f}, {100 * t1['ci_high']:.1f}]\n{res['samples']} samples", fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, Path(path))
