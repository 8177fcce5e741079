"""`edgekit sweep`: the command and its progress bars (one per phase, drawn on stderr)."""

from __future__ import annotations

from edgekit.cli.base import EXIT_FITS, EXIT_OVER_BUDGET
from edgekit.errors import EdgekitError


def cmd_sweep(args) -> int:
    from edgekit.sweep import sweep

    evaluator = None
    if args.eval:
        from edgekit.sweep import DataEvaluator

        evaluator = DataEvaluator(args.eval)
    if args.workers is not None and args.workers < 1:
        raise EdgekitError(f"--workers must be at least 1 (got {args.workers})")
    bars = _SweepBars(quiet=args.json)
    with bars:
        result = sweep(args.family, args.grid, targets=args.targets, dtype=args.dtype, memory_plan=args.memory_plan,
                       verify=args.verify, calibration=args.calibration, evaluator=evaluator,
                       objectives=args.objective, output=args.output, executor="serial" if args.serial else "auto",
                       ray_address=args.ray_address, workers=args.workers, progress=bars.update)
    if args.json:
        import json

        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_sweep(result)
    return EXIT_FITS if all(result.best(t) is not None for t in result.targets) else EXIT_OVER_BUDGET


class _SweepBars:
    """A rich progress bar per phase: candidates done / total and the current best per target."""

    def __init__(self, quiet: bool):
        self.quiet, self.bars, self.tasks = quiet, None, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bars is not None:
            self.bars.__exit__(*exc)

    def _start(self):  # on the first event: a sweep refused before any work draws nothing
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=_stderr_console())
        self.bars.__enter__()

    def update(self, e) -> None:
        if self.quiet:
            return
        if self.bars is None:
            self._start()
        if e.phase not in self.tasks:
            self.tasks[e.phase] = self.bars.add_task(e.phase, total=max(e.total, 1))
        best = "; ".join(f"{t}: {b or 'nothing fits yet'}" for t, b in e.best.items())
        fails = f", {e.failed} failed" if e.failed else ""
        reused = f", {e.reused} from an earlier run" if e.reused else ""
        self.bars.update(self.tasks[e.phase], completed=e.done, total=max(e.total, 1),
                         description=f"{e.phase}{reused}{fails} | best: {best}")


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _print_sweep(result) -> None:
    print(f"sweep {result.family}: {len(result.candidates)} candidates x {len(result.targets)} targets on "
          f"{result.executor} ({result.workers} workers) -> {result.output}")
    for t in result.targets:
        rows = [r for r in result.rows if r.target == t]
        best = result.best(t)
        print(f"  {t}: {sum(r.eligible for r in rows)}/{len(rows)} fit, Pareto front {len(result.fronts[t])}, "
              f"pick {best.candidate if best else 'none'}")
        for v in (v for v in result.verified if v.target == t):
            arena = f"measured arena {v.measured_arena_bytes:,} B (predicted {v.predicted_arena_bytes:,} B)" \
                if v.measured_arena_bytes is not None else f"arena {v.arena_bytes or 0:,} B"
            print(f"    built {v.candidate}: {v.status}" + (f", {arena}" if v.status != "error" else f": {v.error}"))
    for f in result.failures():
        print(f"  failed ({f['phase']}) {f['candidate']} on {f['target']}: {f['error']}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"  wrote sweep.json, sweep.csv, sweep.html and the Pareto plots in {result.output}")
