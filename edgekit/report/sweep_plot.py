"""The Pareto plot of one target of a sweep (matplotlib, as ``report/plots.py``): every analysed
candidate at (predicted arena, estimated latency), coloured by MACs (or accuracy when measured);
candidates that do not fit as grey crosses; the Pareto front as red rings joined in arena order;
verified builds as black diamonds at their measured arena; the SRAM budget as a dashed line."""

from __future__ import annotations

from pathlib import Path

from edgekit.report.plots import _pyplot, _save


def pareto_plot(d: dict, target: str, path) -> Path:
    """``d``: a sweep's ``to_dict()``; writes ``path`` atomically and returns it."""
    plt = _pyplot()
    rows = [r for r in d["rows"] if r["target"] == target and r["status"] == "ok"]
    front = set(d["fronts"].get(target, []))
    ver = {v["candidate"]: v for v in d["verified"] if v["target"] == target}
    colour_by = "accuracy" if any(r.get("accuracy") is not None for r in rows) else "macs"
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=110)
    ok = [r for r in rows if r["fits"]]
    over = [r for r in rows if not r["fits"]]
    if ok:
        sc = ax.scatter([r["arena_bytes"] / 1024 for r in ok], [r["latency_ms"] for r in ok],
                        c=[r.get(colour_by) or 0 for r in ok], cmap="viridis", s=28, zorder=2)
        fig.colorbar(sc, ax=ax, label="accuracy" if colour_by == "accuracy" else "MACs")
    if over:
        ax.scatter([r["arena_bytes"] / 1024 for r in over], [r["latency_ms"] for r in over], marker="x",
                   color="#9a9a9a", s=24, label=f"does not fit ({len(over)})", zorder=1)
    fr = sorted((r for r in ok if r["candidate"] in front), key=lambda r: (r["arena_bytes"], r["latency_ms"]))
    if fr:
        ax.plot([r["arena_bytes"] / 1024 for r in fr], [r["latency_ms"] for r in fr], "-", color="#c44e52", lw=1,
                zorder=3)
        ax.scatter([r["arena_bytes"] / 1024 for r in fr], [r["latency_ms"] for r in fr], s=90, facecolors="none",
                   edgecolors="#c44e52", lw=1.5, label=f"Pareto front ({len(fr)})", zorder=4)
    measured = [(r, ver[r["candidate"]]) for r in rows if r["candidate"] in ver and ver[r["candidate"]]["arena_bytes"]]
    if measured:
        ax.scatter([v["arena_bytes"] / 1024 for _, v in measured], [r["latency_ms"] for r, _ in measured],
                   marker="D", s=22, color="black", label="built: measured arena", zorder=5)
    sram = next((r["sram_bytes"] for r in rows if r.get("sram_bytes")), None)
    if sram:
        ax.axvline(sram / 1024, color="#dd8452", ls="--", label=f"SRAM budget {sram / 1024:,.0f} KiB")
    ax.set_xlabel("arena (KiB, predicted before export)")
    ax.set_ylabel("latency (ms, estimated)")
    ax.set_title(f"{d['family']} on {target}: {len(rows)} candidates", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, Path(path))
