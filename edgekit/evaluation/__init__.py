"""Accuracy on labelled data, for PyTorch and for an artifact in each runtime.

``load_eval_data`` (a folder of class folders of images, or an ``.npz`` with ``x`` and ``y``),
``evaluate_build`` / ``evaluate_torch`` / ``evaluate_litert`` / ``evaluate_tflm`` /
``evaluate_executorch`` (each runtime in one child process for the whole set), ``score`` and
``wilson_interval`` (the metrics). Importing this package does not import torch.
"""

from edgekit.evaluation.data import EvalData, check_labels, load_eval_data
from edgekit.evaluation.metrics import Accuracy, Agreement, EvalResult, score, wilson_interval
from edgekit.evaluation.runners import (
    EvalReport,
    evaluate_build,
    evaluate_executorch,
    evaluate_litert,
    evaluate_tflm,
    evaluate_torch,
    run_executorch,
    run_litert,
    run_tflm,
    run_torch,
)

__all__ = [
    "Accuracy", "Agreement", "EvalData", "EvalReport", "EvalResult", "check_labels", "evaluate_build",
    "evaluate_executorch", "evaluate_litert", "evaluate_tflm", "evaluate_torch", "load_eval_data", "run_executorch",
    "run_litert", "run_tflm", "run_torch", "score", "wilson_interval",
]
