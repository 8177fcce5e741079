"""Terminal rendering of a patch search (``analysis.patch_search.PatchSearch``) and a patched build
(``runtime.patch_verify.PatchedTflite``): the table of candidates, the pick and what was measured."""

from __future__ import annotations

from edgekit.report.text import _console, _n


def print_patch_search(search, *, max_rows: int = 60) -> None:
    """The candidates (split x grid -> arena, MAC overhead, estimated latency) and the pick."""
    from rich.table import Table

    c = _console()
    plan = search.planned_arena_bytes is not None
    c.print(f"[bold]patch-based inference[/]: unpatched arena {search.arena_bytes:,d} B (TFLite-Micro's plan)"
            + (f", {search.planned_arena_bytes:,d} B with the offline plan" if plan else "")
            + (f"; budget {search.budget_bytes:,d} B" if search.budget_bytes is not None else "")
            + f"; MAC overhead at most {100 * search.max_mac_overhead:.0f} %")
    t = Table(show_edge=False, header_style="bold")
    cols = [("patches", "left"), ("arena B", "right"), ("head B", "right")]
    cols += [("+plan B", "right"), ("+plan head B", "right")] if plan else []
    cols += [("MACs", "right"), ("latency ms", "right"), ("", "left")]
    for col, just in cols:
        t.add_column(col, justify=just)
    for cand in search.candidates[:max_rows]:
        row = [cand.spec, _n(cand.arena_bytes), _n(cand.head_bytes)]
        row += [_n(cand.planned_arena_bytes), _n(cand.planned_head_bytes)] if plan else []
        lat = f"{cand.latency_ms:.1f}" if cand.latency_ms is not None else "-"
        row += [f"+{100 * cand.mac_overhead:.1f} %", lat, cand.status]
        t.add_row(*row, style="bold green" if cand.status == "picked" else None)
    c.print(t)
    if len(search.candidates) > max_rows:
        c.print(f"... {len(search.candidates) - max_rows} more candidates")
    pick = search.suggestion()
    c.print(f"[bold]pick[/]: {pick} ({search.reason})" if pick else f"[bold]no patches[/]: {search.reason}")
    for note in search.notes:
        c.print(f"note: {note}")


def print_patched(out) -> None:
    """What a patched build measured in TFLite-Micro."""
    c = _console()
    if out.check is None or not out.check.ok:
        c.print(f"[bold red]patches not used[/]: {out.reason}")
        return
    ck = out.check
    c.print(f"[bold]{out.grid[0]}x{out.grid[1]} patches up to {out.label}[/]: MACs +{100 * out.mac_overhead:.1f} % "
            f"({out.extra_macs:,d} recomputed); verified in TFLite-Micro: {ck.outputs_compared} output(s), "
            f"{ck.rest_tensors_compared} tensors of the rest and {ck.patch_tensors_compared} patch tensors "
            f"bit-identical on {ck.input_sets} inputs")
    for what, m in (("unpatched", out.original), ("patched", out.measured), ("patched + offline plan",
                                                                            out.planned_measured)):
        if m is not None:
            c.print(f"  {what:24s} arena {m.arena_bytes:>9,d} B = head {m.head_bytes:>9,d} B + tail "
                    f"{m.tail_bytes:>7,d} B")
    if out.reason:
        c.print(f"note: {out.reason}")
    c.print("note: the whole input image stays in the arena through the patch stage and is counted")
