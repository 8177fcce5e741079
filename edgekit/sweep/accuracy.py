"""The accuracy hook of a sweep (``--eval DATA``): a callable the sweep calls with an ``EvalRequest``.

An evaluator is any picklable callable ``evaluator(request) -> float | None`` (a fraction in
[0, 1]); it runs inside the candidate's task (on a Ray worker, in the task's own working folder):

* in the analytic phase with ``request.artifact is None``: the candidate's PyTorch model
  (``request.module``, eval mode, the weights it was built with). The answer fills the ``accuracy``
  column and **replaces MACs** among the Pareto objectives (``pareto.default_objectives``);
* in the verify phase with ``request.artifact`` (the built .tflite/.pte), ``request.runtime`` and
  ``request.arena_bytes`` (the measured arena, for TFLite-Micro): the accuracy of what will be
  deployed, stored on the ``Verified`` record beside the PyTorch figure.

An optional ``key`` attribute (a string) identifies the evaluator and its data in the resume
fingerprint: results measured with other data are never reused.

``DataEvaluator(path)`` is the one ``--eval DATA`` makes. It delegates to the evaluation library
(``edgekit.evaluation``, issue 17: ``load_eval_data``, ``evaluate_torch`` and ``evaluate_build``)
and reports top-1 accuracy; on a checkout without that library it refuses before any work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import UsageError


@dataclass
class EvalRequest:
    candidate: Any  # edgekit.sweep.grid.Candidate
    spec: str
    module: Any  # the nn.Module (eval mode)
    input_shape: tuple
    artifact: Path | None = None  # the built artifact (verify phase only)
    runtime: str | None = None
    arena_bytes: int | None = None


class DataEvaluator:
    """Top-1 accuracy on labelled data (a folder of class folders, or an .npz with x and y)."""

    def __init__(self, path):
        try:
            import edgekit.evaluation  # noqa: F401  (issue 17's library)
        except ImportError:
            raise UsageError("--eval needs edgekit's evaluation library (edgekit.evaluation, issue 17), "
                             "which this edgekit does not have yet") from None
        p = Path(path)
        if not p.exists():
            raise UsageError(f"no such evaluation data: {path}")
        self.path = str(p.resolve())
        h = hashlib.sha256()
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file():
                h.update(f.name.encode())
                h.update(f.read_bytes())
        self.key = f"eval:{h.hexdigest()[:16]}"

    def __call__(self, req: EvalRequest) -> float | None:
        from edgekit.evaluation import evaluate_build, evaluate_torch, load_eval_data

        data = load_eval_data(self.path, req.input_shape)
        if req.artifact is None:
            return _top1(evaluate_torch(req.module, data))
        report = evaluate_build(data, module=req.module, artifact=req.artifact, runtime=req.runtime,
                                arena_size=req.arena_bytes, litert=req.runtime != "tflite-micro")
        return _top1(report.results[-1])  # the artifact in its runtime (the last one evaluated)


def _top1(result) -> float:
    return float(result.accuracy)  # EvalResult.accuracy: top-1, a fraction
