"""Write a finished sweep's files: ``sweep.csv``, ``pareto-<target>.png`` (when matplotlib is
installed; otherwise a note), ``sweep.html``. ``sweep.json`` is written by ``run.sweep`` last."""

from __future__ import annotations

from edgekit.errors import MissingExtraError
from edgekit.sweep.result import SweepResult
from edgekit.sweep.store import Store


def write_outputs(result: SweepResult, store: Store) -> None:
    from edgekit.report.sweep_html import render
    from edgekit.report.sweep_table import csv_text

    d = result.to_dict()
    store.write_text("sweep.csv", csv_text(d))
    plots = {}
    try:
        from edgekit.report.sweep_plot import pareto_plot

        for t in result.targets:
            plots[t] = pareto_plot(d, t, store.root / f"pareto-{t}.png")
    except MissingExtraError as exc:
        result.notes.append(f"no Pareto plots: {exc}")
        d = result.to_dict()
    store.write_text("sweep.html", render(d, plots=plots))
