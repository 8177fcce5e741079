"""Plots (matplotlib, imported lazily, Agg backend: no display needed). Each function writes a
PNG (or any format matplotlib infers from the suffix) and returns its path."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        from edgekit.errors import MissingExtraError

        raise MissingExtraError("matplotlib", "all") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    """Write the figure atomically (temp file, then rename); a bad path or format is one UsageError."""
    from edgekit.errors import UsageError
    from edgekit.fileio import atomic_write, output_file

    try:
        path = output_file(path, what="plot file", example="plot.png")
        fmt = path.suffix.lower().lstrip(".") or "png"
        supported = fig.canvas.get_supported_filetypes()
        if fmt not in supported:
            raise UsageError(f"cannot write the plot {path}: unknown image format {fmt!r}; use one of "
                             f"{', '.join(sorted(supported))}")
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt))
    finally:
        plt.close(fig)
    return path


def latency_histogram(result, path) -> Path:
    """Histogram of the timed runs of every measurement in a ProfileResult (one colour each),
    with the median and p99 marked; estimates (no runs) are drawn as dashed vertical lines."""
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    measured = [m for m in result.measurements if m.times_ms]
    lo = min((min(m.times_ms) for m in measured), default=0.0)
    # the axis ends a little past the largest p99: a few scheduler hiccups would squash the rest
    hi = max((m.stats.get("p99_ms") or max(m.times_ms) for m in measured), default=1.0)
    hi = lo + (hi - lo) * 1.15 if hi > lo else hi
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, m in enumerate(measured):
        c = colors[i % len(colors)]
        label = f"{m.runtime}" + (f" + {m.delegate}" if m.delegate and not str(m.delegate).startswith("none") else "")
        label += f" ({m.where}, {m.threads} thr): median {m.stats['median_ms']:.3f} ms, p99 {m.stats['p99_ms']:.3f}"
        beyond = sum(t > hi for t in m.times_ms)
        if beyond:
            label += f"; {beyond} run(s) beyond the axis, max {max(m.times_ms):.3f}"
        bins = max(10, min(60, len(m.times_ms) // 3))
        ax.hist([min(t, hi) for t in m.times_ms], bins=bins, range=(lo, hi) if hi > lo else None, alpha=0.55,
                color=c, label=label)
        ax.axvline(m.stats["median_ms"], color=c, lw=1.5)
        if m.stats.get("p99_ms") is not None:
            ax.axvline(m.stats["p99_ms"], color=c, lw=1, ls=":")
    for j, m in enumerate(e for e in result.measurements if e.estimate):
        c = colors[(len(measured) + j) % len(colors)]
        ax.axvline(m.stats["mean_ms"], color=c, lw=1.5, ls="--",
                   label=f"{m.runtime} on {m.where.split(':', 1)[-1]}: {m.stats['mean_ms']:.3f} ms (estimate)")
    proto = getattr(result, "protocol", {}) or {}
    ax.set_xlabel("latency per inference (ms), batch 1")
    ax.set_ylabel("timed runs")
    ax.set_title(f"{result.model}: {proto.get('runs', '?')} timed runs after {proto.get('warmup', '?')} warm-up "
                 "(solid: median, dotted: p99)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _save(plt, fig, path)


def memory_plot(report, path) -> Path:
    """Live activation bytes per layer (bars) with the target's SRAM budget as a line and the
    peak labelled."""
    plt = _pyplot()
    path = Path(path)
    layers = list(report.layers)
    live = [r.live_bytes for r in layers]
    fig, ax = plt.subplots(figsize=(max(6.0, min(18.0, 0.12 * len(layers) + 4)), 4.5), dpi=110)
    ax.bar(range(len(live)), [b / 1024 for b in live], color="#4c72b0", width=0.9, label="live activations")
    if live:
        i = max(range(len(live)), key=live.__getitem__)
        ax.bar([i], [live[i] / 1024], color="#c44e52", width=0.9)
        ax.annotate(f"peak {live[i]:,} B\n{layers[i].name}", (i, live[i] / 1024), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)
    sram = getattr(getattr(report, "verdict", None), "sram_bytes", None)
    if sram:
        ax.axhline(sram / 1024, color="#dd8452", ls="--", label=f"SRAM budget {sram:,} B")
    ax.set_xlabel("layer (execution order)")
    ax.set_ylabel("KiB")
    ax.set_title(f"{report.model}: live activation memory per layer", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, path)
