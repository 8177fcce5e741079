"""Terminal rendering with rich: tables for check, build, profile, fold, targets, models, lint."""

from __future__ import annotations

import sys
from dataclasses import asdict, is_dataclass

from edgekit.report.accuracy_text import accuracy_lines
from edgekit.units import format_bytes


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 130)


def _n(x) -> str:
    return "-" if x is None else f"{x:,}"


def _macs(m: int) -> str:
    return f"{m / 1e6:.2f} M" if m >= 1e5 else f"{m:,}"


def print_check(report, *, baseline=None, timeline: bool = False, max_rows: int = 400) -> None:
    from rich.table import Table

    c = _console()
    v = report.verdict
    c.print(f"[bold]model[/] {report.model}   [bold]input[/] {tuple(report.input_shape)}   [bold]dtype[/] "
            f"{report.dtype}   [bold]runtime[/] {report.runtime}   [bold]target[/] "
            f"{(v.target if v and v.target else '-')}   [bold]BN folded[/] {'yes' if report.folded_bn else 'no'}")
    t = Table(show_edge=False, header_style="bold")
    for col, just in (("#", "right"), ("layer", "left"), ("op", "left"), ("output", "left"), ("params", "right"),
                      ("MACs", "right"), ("in B", "right"), ("out B", "right"), ("live B", "right")):
        t.add_column(col, justify=just, overflow="fold")
    peak = report.peak_activation_bytes
    for i, r in enumerate(report.layers[:max_rows]):
        style = "bold red" if r.live_bytes == peak and peak else None
        t.add_row(str(i), r.name, r.op, "x".join(map(str, r.output_shape)), _n(r.params), _macs(r.macs),
                  _n(r.input_bytes), _n(r.output_bytes), _n(r.live_bytes), style=style)
    c.print(t)
    if len(report.layers) > max_rows:
        c.print(f"... {len(report.layers) - max_rows} more layers (use --json for all)")
    c.print(f"[bold]params[/] {report.params:,}   [bold]MACs[/] {report.macs:,} ({report.flops:,} FLOPs)")
    sizes = "   ".join(f"{k} {format_bytes(b)}" for k, b in report.model_bytes_by_dtype.items())
    c.print(f"[bold]model size[/] {sizes}   (as built: {report.model_bytes:,} B)")
    c.print(f"[bold]peak activations[/] {peak:,} B ({format_bytes(peak)}) at {report.peak_layer}   "
            f"[bold]plans[/] " + ", ".join(f"{k} {v_:,}" for k, v_ in report.plans.items()))
    bd = ", ".join(f"{k} {v_:,}" for k, v_ in report.arena_breakdown.items())
    c.print(f"[bold]{report.runtime} arena[/] {report.arena_bytes:,} B ({format_bytes(report.arena_bytes)})"
            + (f"  = {bd}" if len(report.arena_breakdown) > 1 else ""))
    for note in report.notes:
        c.print(f"  note: {note}")
    for line in accuracy_lines(report.evaluation):
        c.print(line, markup=False)
    if timeline and report.memory_plan is not None:
        from edgekit.analysis.planners import ascii_timeline

        c.print(ascii_timeline(report.memory_plan), markup=False)
    if v is not None:
        colour = "green" if v.fits else "red"
        c.print(f"[bold {colour}]{v.summary()}[/]")
        for s in v.suggestions:
            c.print(f"  try {s.change}: arena {s.arena_bytes:,} B, model {s.model_bytes:,} B -> "
                    f"{'fits' if s.fits else 'still over'}")
    if baseline is not None:
        from edgekit.report.diff import diff_reports

        print_diff(diff_reports(baseline, report))


def print_diff(diff: dict) -> None:
    from rich.table import Table

    c = _console()
    t = Table(title="change against baseline", show_edge=False, header_style="bold")
    for col in ("metric", "baseline", "candidate", "delta", ""):
        t.add_column(col, justify="left" if col in ("metric", "") else "right")
    for row in diff["rows"]:
        flag = "[red]regression[/]" if row["regression"] else ""
        t.add_row(row["metric"], _n(row["baseline"]), _n(row["candidate"]),
                  f"{row['delta']:+,} ({row['delta_pct']:+.1f} %)" if row["delta_pct"] is not None
                  else f"{row['delta']:+,}", flag)
    c.print(t)
    for note in diff.get("notes") or []:
        c.print(f"note: {note}")


def markdown(report, *, baseline=None) -> str:
    v = report.verdict
    lines = [f"### edgekit check: `{report.model}`", "",
             f"input `{tuple(report.input_shape)}`, dtype **{report.dtype}**, runtime **{report.runtime}**"
             + (f", target **{v.target}**" if v and v.target else ""), ""]
    if baseline is not None:
        from edgekit.report.diff import diff_reports

        d = diff_reports(baseline, report)
        lines += ["| metric | baseline | candidate | delta |", "|---|---:|---:|---:|"]
        for row in d["rows"]:
            mark = " :warning:" if row["regression"] else ""
            pct = f" ({row['delta_pct']:+.1f} %)" if row["delta_pct"] is not None else ""
            lines.append(f"| {row['metric']} | {_n(row['baseline'])} | {_n(row['candidate'])} | "
                         f"{row['delta']:+,}{pct}{mark} |")
        if d.get("notes"):
            lines += [""] + [f"> note: {note}" for note in d["notes"]]
    else:
        lines += ["| metric | value |", "|---|---:|",
                  f"| params | {report.params:,} |", f"| MACs | {report.macs:,} |",
                  f"| model bytes | {report.model_bytes:,} |",
                  f"| peak activations | {report.peak_activation_bytes:,} |",
                  f"| arena ({report.runtime}) | {report.arena_bytes:,} |"]
        mp = report.memory_plans or {}
        if mp.get("used") == "offline":
            lines.append(f"| arena with TFLite-Micro's own plan | {mp['tflm_arena_bytes']:,} |")
    acc = accuracy_lines(report.evaluation)
    if acc:
        lines += ["", acc[0]] + [f"- {line}" for line in acc[1:]]
    if v is not None:
        lines += ["", ("**fits**" if v.fits else "**does not fit**") + ": " + v.summary().split(": ", 1)[-1]]
    return "\n".join(lines)


class stage_printer:
    """Progress for slow stages: one line per stage with its time. On stderr when it is a terminal;
    otherwise (CI logs, pipes) on stdout above the summary, so that stderr carries nothing but the
    one-line error of a failed run."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def __call__(self, stage: str, seconds: float | None = None, detail: str = "") -> None:
        if self.quiet:
            return
        c = _console(stderr=sys.stderr.isatty())
        if seconds is None:
            c.print(f"[dim]… {stage}[/] {detail}")
        else:
            c.print(f"[green]✓[/] {stage} [dim]({seconds:.1f} s)[/] {detail}")


def _db(x) -> str:
    return f"{x:.1f} dB" if isinstance(x, (int, float)) else "-"


def print_build(result) -> None:
    c = _console()
    r = result.report.to_dict()
    c.print(f"[bold]built[/] {r.get('model')} -> {result.output}   format {r.get('format')}   dtype {r.get('dtype')}")
    for name, path in result.artifacts.items():
        c.print(f"  {name}: {path}")
    ver = r.get("verification") or {}
    for rt, m in ver.items():
        c.print(f"  verified in {rt}: cosine {m.get('cosine', float('nan')):.5f}, max abs err "
                f"{m.get('max_abs_error', float('nan')):.3g}, "
                f"top-1 agreement {m.get('top1_agreement', float('nan')):.2f}")
    for line in accuracy_lines(r.get("evaluation")):
        c.print(f"  {line}", markup=False)
    patches = (r.get("patches") or {}).get("applied")
    if patches:
        c.print(f"  patches: {patches['grid']} up to {patches['layer']} (+{patches['mac_overhead_pct']:.1f} % MACs), "
                "outputs verified bit for bit against the unpatched model in TFLite-Micro", markup=False)
    arena = r.get("arena_bytes") or {}
    labels = (("measured", "measured in TFLite-Micro"),
              ("measured_tflm_plan", "with TFLite-Micro's own plan"), ("planned_by_executorch", "planned in the .pte"),
              ("predicted_pre_export", "predicted before export"), ("predicted", "predicted from the artifact"),
              ("c_constant", "kTensorArenaSize"))
    if (r.get("executorch") or {}).get("delegates"):
        labels = tuple((k, "planned in the .pte (tensors outside the delegate; XNNPACK allocates its own)")
                       if k == "planned_by_executorch" else (k, v) for k, v in labels)
    parts = [f"{label} {_n(arena[key])} B" for key, label in labels if arena.get(key) is not None]
    if parts:
        c.print("  arena: " + ", ".join(parts))
    unknown = arena.get("not_modelled_before_export") or []
    if unknown:
        named = "; ".join(f"{u['layer']}: {u['op']}" for u in unknown[:3]) + ("; ..." if len(unknown) > 3 else "")
        c.print(f"  not predicted before export: {len(unknown)} layer(s) not modelled ({named}); measured instead")
    c.print(f"  model bytes {_n(r.get('model_bytes'))}, params {_n(r.get('params'))}, MACs {_n(r.get('macs'))}")
    mem = r.get("runtime_memory")
    if mem:
        c.print(f"  runtime memory outside the plan ({mem['runtime']}): {_n(mem['load_bytes'])} B at load + "
                f"{_n(mem['first_run_bytes'])} B at the first run (packed weights, delegate workspace; measured as "
                "RSS growth in a child process)")
    mp = r.get("memory_plan") or {}
    if mp.get("used"):
        n = len((mp.get("plan") or {}).get("inplace") or [])
        c.print(f"  offline memory plan: {_n(mp['arena_bytes'])} B measured, {_n(mp['saving_bytes'])} B below "
                f"TFLite-Micro's own plan; {n} op(s) write over their input; verified: {mp['verified']}"
                + (f"; derived: {mp['derived']}" if mp.get("derived") else ""))
    elif mp:
        c.print(f"  offline memory plan not used: {mp.get('reason', '')}")
    mo = r.get("memory_options") or {}
    cl, pad = mo.get("channels_last_io") or {}, mo.get("explicit_pad") or {}
    if cl.get("applies") and cl.get("saves_bytes"):
        c.print(f"  channels-last input: {'saved' if cl.get('used') else 'would save'} {_n(cl['saves_bytes'])} B "
                f"of arena" + ("" if cl.get("used") else " (--channels-last-io)"))
    if pad.get("pad_ops") and pad.get("would_save_bytes"):
        c.print(f"  {pad['pad_ops']} explicit PAD op(s) cost {_n(pad['would_save_bytes'])} B of arena "
                "(TFLite SAME padding on stride-2 layers would avoid them; a model change)")
    qd = r.get("quant_debug")
    if qd and qd.get("layers"):
        worst = qd["layers"][0]
        c.print(f"  int8 vs fp32 on calibration data: output SQNR {qd.get('output_sqnr_db', float('nan')):.1f} dB; "
                f"worst layer {worst.get('module') or worst.get('tensor')} (adds noise at "
                f"{_db(worst.get('added_sqnr_db', worst.get('sqnr_db')))} SQNR; "
                "every layer in report.json quant_debug)")
    for rem in (qd or {}).get("remedies") or []:
        delta = rem.get("delta_db")
        c.print(f"  remedy {rem.get('name')}: {rem.get('note')}"
                + (f" ({delta:+.2f} dB at the output)" if isinstance(delta, (int, float)) else ""))
    lint = r.get("lint")
    if lint:
        counts = lint.get("counts") or {}
        found = ", ".join(f"{n} {sev}" + ("s" if n != 1 else "") for sev, n in counts.items() if n)
        codes = sorted({f.get("code") for f in lint.get("findings", []) if f.get("severity") != "info"})
        c.print(f"  lint: {found or 'no findings'}" + (f" ({', '.join(codes)}; run `edgekit lint` for fixes)"
                                                       if codes else ""))
    resolver = r.get("op_resolver")
    if resolver:
        state = "matches" if resolver.get("ok") else "DIFFERS FROM"
        c.print(f"  op_resolver.h: {len(resolver.get('registered') or [])} ops, {state} what TFLite-Micro reports")
    verdict = r.get("verdict") or {}
    colour = "green" if result.fits else "red"
    c.print(f"[bold {colour}]{verdict.get('summary', 'fits' if result.fits else 'does not fit')}[/]")


def print_profile(result, *, max_layers: int = 60) -> None:
    from rich.table import Table

    c = _console()
    if result.notes:
        for note in result.notes:
            c.print(f"note: {note}")
    t = Table(show_edge=False, header_style="bold")
    for col in ("runtime", "where", "threads", "mean ms", "std", "min", "median", "p90", "p99", "max", "img/s"):
        t.add_column(col, justify="left" if col in ("runtime", "where") else "right")

    def row(label, m, s):
        t.add_row(label, m.where, _n(m.threads),
                  *(f"{x:.3f}" if x is not None else "-" for x in
                    (s.get("mean_ms"), s.get("std_ms"), s.get("min_ms"), s.get("median_ms"), s.get("p90_ms"),
                     s.get("p99_ms"), s.get("max_ms"))),
                  f"{s.get('throughput_per_s', 0):.1f}" if s.get("throughput_per_s") else "-")

    for m in result.measurements:
        label = m.runtime + (f" + {m.delegate}" if m.delegate and not m.delegate.startswith("none") else "")
        row(label + (" (estimate)" if m.estimate else ""), m, m.stats)
        if m.batch_stats:
            row(f"{label} @ batch {m.batch_stats.get('batch')}", m, m.batch_stats)
    c.print(t)
    proto = getattr(result, "protocol", {}) or {}
    if proto:
        c.print(f"protocol: batch 1, {proto.get('warmup')} warm-up runs not timed, {proto.get('runs')} timed runs; "
                "model loading and the first run not timed")
    for m in result.measurements:
        if not m.estimate:
            vers = ", ".join(f"{k} {v}" for k, v in (m.versions or {}).items() if v)
            first = f"; first run {m.first_run_ms:.2f} ms (not timed)" if m.first_run_ms is not None else ""
            c.print(f"  {m.runtime} on {m.where}: delegate {m.delegate or '-'}, {_n(m.threads)} threads; {vers}{first}")
        if m.estimate and m.layers and "instructions" in m.layers[0]:  # edgekit/profile/mcu_emulated.py
            _print_emulated_ops(c, m, max_layers)
        elif m.estimate and m.layers:
            lt = Table(title=f"per-layer estimate ({m.where})", show_edge=False, header_style="bold")
            for col in ("layer", "op", "MACs", "bytes", "ms", "bound"):
                lt.add_column(col, justify="left" if col in ("layer", "op", "bound") else "right", overflow="fold")
            for layer in m.layers[:max_layers]:
                lt.add_row(layer["name"], layer["op"], _macs(layer["macs"]), _n(layer["bytes"]), f"{layer['ms']:.3f}",
                           layer["bound"])
            c.print(lt)
            if len(m.layers) > max_layers:
                c.print(f"... {len(m.layers) - max_layers} more layers (use --json for all)")
            c.print(f"[bold]estimated total[/] {m.stats['mean_ms']:.3f} ms on {m.where.split(':', 1)[-1]} "
                    f"(an estimate, not a measurement)")
        elif m.ops:
            ot = Table(title=f"top operators ({m.runtime}, {m.where})", show_edge=False, header_style="bold")
            for col in ("op", "ms", "share"):
                ot.add_column(col, justify="left" if col == "op" else "right")
            for o in m.ops[:10]:
                ot.add_row(o["name"], f"{o['ms']:.3f}", f"{100 * o['share']:.1f} %")
            c.print(ot)
        for note in m.notes:
            c.print(f"  note ({m.runtime}): {note}")


def _print_emulated_ops(c, m, max_layers: int) -> None:
    """Per-operator instruction counts of an emulated MCU run, and its time."""
    from rich.table import Table

    lt = Table(title=f"per-operator instructions, emulated ({m.where})", show_edge=False, header_style="bold")
    for col in ("#", "op", "MACs", "instructions", "instr/MAC", "ms", "share"):
        lt.add_column(col, justify="left" if col == "op" else "right")
    for layer in m.layers[:max_layers]:
        n, macs = layer["instructions"], layer["macs"]
        lt.add_row(layer["name"], layer["op"], _macs(macs), f"{n:,d}", f"{n / macs:.2f}" if macs else "-",
                   f"{layer['ms']:.3f}", layer["bound"])
    c.print(lt)
    if len(m.layers) > max_layers:
        c.print(f"... {len(m.layers) - max_layers} more operators (use --json for all)")
    s = m.stats
    when = f" = {s['mean_ms']:.3f} ms" if s.get("mean_ms") is not None else ""
    c.print(f"[bold]emulated[/] {s['instructions']:,d} instructions per inference{when} on "
            f"{m.where.split(':', 1)[-1]} (an emulation with a fitted cycles-per-instruction factor, not a "
            "measurement on the board)")


def print_fold(result) -> None:
    from rich.table import Table

    c = _console()
    t = Table(show_edge=False, header_style="bold")
    for col in ("normalization", "type", "fate", "into", "reason"):
        t.add_column(col, overflow="fold")
    d = result.to_dict()
    for f in d.get("report", []):
        t.add_row(str(f.get("name")), str(f.get("kind")), str(f.get("fate")), str(f.get("into") or "-"),
                  str(f.get("reason") or ""))
    c.print(t)
    c.print(f"folded {d.get('folded', 0)}, kept {d.get('kept', 0)}")


def target_dict(t) -> dict:
    return asdict(t) if is_dataclass(t) else dict(t)


def print_targets(targets) -> None:
    from rich.table import Table

    c = _console()
    t = Table(show_edge=False, header_style="bold")
    for col in ("id", "name", "kind", "core", "MHz", "SRAM/RAM", "flash", "runtime", "dtype", "profile"):
        t.add_column(col)
    for x in targets:
        mem = x.memory
        ram = (format_bytes(x.sram_bytes) if x.kind == "mcu" else
               format_bytes(getattr(mem, "ram_mib", 0) * 1024 * 1024) if getattr(mem, "ram_mib", None) else "-")
        flash = format_bytes(x.flash_bytes) if x.flash_bytes else "-"
        t.add_row(x.id, x.name, x.kind, x.cpu.core, _n(x.cpu.freq_mhz), ram, flash, x.runtime.default,
                  x.runtime.dtype, x.runtime.profile)
    c.print(t)


def print_target(t) -> None:
    import json

    c = _console()
    c.print(f"[bold]{t.id}[/] — {t.name} ({t.kind})")
    c.print(json.dumps(target_dict(t), indent=2, default=str))


def print_models(infos) -> None:
    from rich.table import Table

    c = _console()
    t = Table(show_edge=False, header_style="bold")
    for col in ("name", "resolution", "description"):
        t.add_column(col)
    for info in infos:
        t.add_row(info["name"] + (" (default)" if info.get("default") else ""), str(info.get("default_resolution")),
                  info.get("description", ""))
    c.print(t)


def print_lint(result) -> None:
    c = _console()
    if not result.findings:
        c.print("[green]no findings[/]")
    for f in result.findings:
        colour = {"error": "red", "warning": "yellow"}.get(f.severity, "cyan")
        where = getattr(f, "where", "")
        c.print(f"[bold {colour}]{f.severity}[/] {f.code}" + (f" [bold]{where}[/]" if where else "")
                + f": {f.message}", markup=True, highlight=False)
        cost = f.cost.describe() if getattr(f, "cost", None) is not None else ""
        if cost:
            c.print(f"    cost: {cost}", highlight=False)
        if f.fix:
            c.print(f"    fix: {f.fix}", highlight=False)
    counts = {s: sum(1 for f in result.findings if f.severity == s) for s in ("error", "warning", "info")}
    if result.findings:
        c.print(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
                + (" - unusable on this target" if result.unusable else ""))
