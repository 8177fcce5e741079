"""`edgekit sweep`: a model family's design space on a set of targets, analysed, Pareto-ranked and
the front built and verified for real — serially, or on Ray (``edgekit[sweep]``) when installed.

``sweep(family, grid, targets=...)`` (``run.py``) returns a ``SweepResult``; the pieces are
``grid`` (axes, candidates), ``config`` (checks, resume keys), ``analytic`` and ``verify`` (the two
phases), ``pareto``, ``store`` (result files, resume), ``executors``/``ray_executor`` and
``accuracy`` (the ``--eval`` hook). Importing this package imports neither torch nor Ray.
"""

from edgekit.sweep.accuracy import DataEvaluator, EvalRequest
from edgekit.sweep.config import SweepConfig, make_config
from edgekit.sweep.grid import Candidate, Grid, make_grid
from edgekit.sweep.pareto import default_objectives, front
from edgekit.sweep.result import Row, SweepResult, Verified
from edgekit.sweep.run import SweepProgress, sweep

__all__ = ["Candidate", "DataEvaluator", "EvalRequest", "Grid", "Row", "SweepConfig", "SweepProgress",
           "SweepResult", "Verified", "default_objectives", "front", "make_config", "make_grid", "sweep"]
