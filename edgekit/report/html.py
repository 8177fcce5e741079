"""A self-contained HTML design-review page (``edgekit report MODEL --target NAME -o report.html``).

One file, no network: inline CSS, charts drawn here as inline SVG (no JavaScript, no fonts, no
images to fetch), so it can be attached to a pull request or a CI run and opened anywhere.

Sections: the verdict and summary (params, MACs, model bytes, peak activations, the runtime's
arena against the SRAM budget, estimated latency), the memory-per-layer chart (live bytes per
layer, the SRAM budget and the runtime arena as lines, the peak labelled), the latency breakdown
(edgekit's emulator per op kind and the slowest layers; an estimate, not a measurement), the
per-layer table (with each layer's estimated milliseconds), the arena breakdown and plans, the
suggestions, and — with a baseline — the change against it.
"""

from __future__ import annotations

import datetime as _dt
import html as _html
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.plan import device

_E = _html.escape

CSS = """
:root { --ok:#1a7f37; --bad:#cf222e; --fg:#1f2328; --muted:#656d76; --line:#d0d7de; --bar:#4c72b0;
        --peak:#c44e52; --sram:#dd8452; --arena:#8172b2; --bg2:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1180px; padding: 24px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px;
     border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta { color: var(--muted); margin-bottom: 14px; }
.verdict { padding: 10px 14px; border-radius: 6px; font-weight: 600; margin: 10px 0 16px; color: #fff; }
.verdict.ok { background: var(--ok); } .verdict.bad { background: var(--bad); } .verdict.none { background: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; background: var(--bg2); }
.card .k { color: var(--muted); font-size: 12px; } .card .v { font-size: 18px; font-weight: 600; }
.card .s { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: var(--bg2); position: sticky; top: 0; }
td.l, th.l { text-align: left; } td.name { max-width: 360px; overflow: hidden; text-overflow: ellipsis; }
tr.peak td { background: #ffebe9; font-weight: 600; }
tr.regression td { background: #fff8c5; }
.livebar { display: inline-block; height: 8px; background: var(--bar); vertical-align: middle; margin-right: 4px; }
.note { color: var(--muted); font-size: 12.5px; margin: 4px 0; }
svg text { font-family: inherit; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; align-items: start; }
footer { color: var(--muted); font-size: 12px; margin-top: 30px; }
"""  # noqa: E501 (verbatim CSS: tests/golden/report.html holds it byte for byte)


def _n(x) -> str:
    return "-" if x is None else f"{x:,}"


def _kib(b) -> str:
    if b is None:
        return "-"
    return f"{b / 1024:,.1f} KiB" if b < 1024 * 1024 else f"{b / 1024 / 1024:,.2f} MiB"


def _macs(m) -> str:
    return f"{m / 1e6:,.2f} M" if m >= 1e5 else f"{m:,}"


# ---- latency -----------------------------------------------------------------------------------

def latency_estimate(report, target):
    """(Estimate, None) from edgekit's emulator on the report's per-layer table, or (None, why).

    Uses the same layer rows as the table below, so every row gets its own estimated ms."""
    from edgekit.profile.emulate import estimate_graph

    if report.source_format == "pte":
        return None, "latency breakdown not available for a .pte: its XNNPACK delegate hides the operators"
    from edgekit.report.diff import graph_from_layers, load_baseline

    side = load_baseline(report)
    try:
        g = graph_from_layers(side.layers, dtype=report.dtype, source_format=report.source_format, name=report.model)
        return estimate_graph(g, target, dtype=report.dtype, model=report.model), None
    except EdgekitError as exc:
        return None, f"no latency estimate on {getattr(target, 'id', target)}: {exc}"


# ---- SVG charts ---------------------------------------------------------------------------------

def memory_svg(report, *, sram_bytes=None, width: int = 1120, height: int = 340) -> str:
    """Bars of live activation bytes per layer; SRAM budget and runtime arena as lines; peak labelled."""
    layers = list(report.layers)
    live = [r.live_bytes for r in layers]
    left, right, top, bottom = 70, 20, 30, 46
    pw, ph = width - left - right, height - top - bottom
    ymax = max([*live, 1] + ([sram_bytes] if sram_bytes else []) + [report.arena_bytes or 0]) * 1.12
    n = max(len(live), 1)
    bw = pw / n

    def y(v):
        return top + ph - ph * (v / ymax)

    out = [f'<svg id="memory-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="live activation memory per layer">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    # y grid and ticks
    unit = 1024 * 1024 if ymax >= 4 * 1024 * 1024 else (1024 if ymax >= 4096 else 1)
    step = _nice_step(ymax / unit / 5) * unit
    v = 0.0
    while v <= ymax:
        yy = y(v)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eaeef2"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" fill="#656d76">'
                   f'{_E(_tick(v))}</text>')
        v += step
    peak_i = max(range(len(live)), key=live.__getitem__) if live else None
    for i, (r, b) in enumerate(zip(layers, live)):
        x = left + i * bw
        cls = "bar peak" if i == peak_i else "bar"
        fill = "#c44e52" if i == peak_i else "#4c72b0"
        out.append(f'<rect class="{cls}" x="{x + bw * 0.08:.2f}" y="{y(b):.2f}" width="{max(bw * 0.84, 0.6):.2f}" '
                   f'height="{top + ph - y(b):.2f}" fill="{fill}"><title>#{i} {_E(r.name)} ({_E(r.op)}): '
                   f'{b:,} B live</title></rect>')
    if sram_bytes:
        yy = y(sram_bytes)
        out.append(f'<line class="sram-line" x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   f'stroke="#dd8452" stroke-width="2" stroke-dasharray="7 4"/>')
        out.append(f'<text x="{left + pw - 4}" y="{yy - 5:.1f}" font-size="12" text-anchor="end" fill="#b35c1e">'
                   f'SRAM budget {sram_bytes:,} B</text>')
    if report.arena_bytes:
        yy = y(report.arena_bytes)
        out.append(f'<line class="arena-line" x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   f'stroke="#8172b2" stroke-width="1.5" stroke-dasharray="2 3"/>')
        out.append(f'<text x="{left + 4}" y="{yy - 5:.1f}" font-size="12" fill="#5a4d99">'
                   f'{_E(report.runtime)} arena {report.arena_bytes:,} B</text>')
    if peak_i is not None:
        px = left + (peak_i + 0.5) * bw
        anchor = "start" if px < left + pw * 0.6 else "end"
        dx = 6 if anchor == "start" else -6
        out.append(f'<text class="peak-label" x="{px + dx:.1f}" y="{max(y(live[peak_i]) - 6, top + 12):.1f}" '
                   f'font-size="12" font-weight="600" text-anchor="{anchor}" fill="#a02c30">peak {live[peak_i]:,} B '
                   f'at {_E(_short(layers[peak_i].name, 48))}</text>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#57606a"/>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#57606a"/>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 10}" font-size="12" text-anchor="middle" fill="#1f2328">'
               f'layer (execution order, {len(layers)} layers)</text>')
    out.append(f'<text x="14" y="{top + ph / 2:.0f}" font-size="12" text-anchor="middle" fill="#1f2328" '
               f'transform="rotate(-90 14 {top + ph / 2:.0f})">live activation bytes</text>')
    out.append("</svg>")
    return "\n".join(out)


def latency_kind_svg(est, *, width: int = 560, row_h: int = 24) -> str:
    """Horizontal bars: estimated ms per op kind."""
    kinds = sorted(((k, ms) for k, ms in est.by_kind().items() if ms > 0), key=lambda kv: -kv[1])
    left, right = 130, 140
    height = 20 + row_h * max(len(kinds), 1)
    total = est.total_ms or 1.0
    vmax = max([ms for _, ms in kinds] + [1e-9])
    out = [f'<svg id="latency-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="estimated latency per op kind">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    for i, (k, ms) in enumerate(kinds):
        yy = 10 + i * row_h
        w = (width - left - right) * ms / vmax
        out.append(f'<text x="{left - 8}" y="{yy + 15}" font-size="12" text-anchor="end" fill="#1f2328">{_E(k)}</text>')
        out.append(f'<rect class="lat-bar" x="{left}" y="{yy + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
                   f'fill="#55a868"><title>{_E(k)}: {ms:.3f} ms</title></rect>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{yy + 15}" font-size="12" fill="#1f2328">'
                   f'{ms:.3f} ms ({100 * ms / total:.0f} %)</text>')
    out.append("</svg>")
    return "\n".join(out)


def _nice_step(x: float) -> float:
    import math

    if x <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= x:
            return m * e
    return 10 * e


def _tick(v: float) -> str:
    if v >= 1024 * 1024:
        return f"{v / 1024 / 1024:.1f} MiB"
    if v >= 1024:
        return f"{v / 1024:.0f} KiB"
    return f"{v:.0f} B"


def _short(s: str, n: int) -> str:
    s = str(s)
    return s if len(s) <= n else "…" + s[-(n - 1):]


# ---- the page -----------------------------------------------------------------------------------

def render(report, *, target=None, latency_target=None, estimate=None, latency_note: str | None = None,
           diff: dict | None = None, title: str | None = None) -> str:
    """The HTML page as a string. ``target``: the Target (or id) the budget was checked against;
    ``latency_target``: where to estimate latency (default ``target``); ``estimate``: an emulator
    Estimate to show instead of computing one; ``diff``: ``diff_reports(...)`` to include."""
    v = report.verdict
    tgt = device(target)
    lat_tgt = device(latency_target) if latency_target is not None else tgt
    if estimate is None and lat_tgt is not None and latency_note is None:
        estimate, latency_note = latency_estimate(report, lat_tgt)
    sram = v.sram_bytes if v is not None else None
    title = title or f"edgekit report: {report.model}"
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             f"<title>{_E(title)}</title><style>{CSS}</style></head><body>"]
    parts += _header_html(report, tgt)
    parts.append(_cards_html(report, sram, estimate))
    if v is not None and v.suggestions:
        parts += _suggestions_html(v.suggestions)
    if diff is not None:
        parts.append(_diff_html(diff))
    if report.evaluation:
        parts.append(accuracy_html(report.evaluation))
    parts += _memory_html(report, sram)
    parts += _latency_section_html(report, estimate, latency_note, tgt, lat_tgt)
    parts += _arena_html(report)
    parts += _layers_html(report, estimate)
    parts.append(_footer_html())
    return "\n".join(parts)


def _header_html(report, tgt) -> list[str]:
    v = report.verdict
    where = f"{tgt.name} ({tgt.id})" if tgt is not None else (v.target if v and v.target else "no target")
    out = [f"<h1>{_E(report.model)}</h1>",
           f'<div class="meta">input {_E(str(tuple(report.input_shape)))} · dtype <b>{_E(report.dtype)}</b> · '
           f'runtime <b>{_E(report.runtime)}</b> · target <b>{_E(where)}</b> · source {_E(report.source_format)}'
           f' · BatchNorm {"folded" if report.folded_bn else "not folded"}</div>']
    if v is None:
        out.append('<div id="verdict" class="verdict none">no budget given: pass --target, --sram or --flash</div>')
    else:
        out.append(f'<div id="verdict" class="verdict {"ok" if v.fits else "bad"}">{_E(v.summary())}</div>')
    return out


def _cards_html(report, sram, estimate) -> str:
    v = report.verdict
    cards = [("params", _n(report.params), ""), ("MACs", _macs(report.macs), f"{report.flops:,} FLOPs"),
             ("model bytes", _n(report.model_bytes), _kib(report.model_bytes)
              + (f" of {_kib(v.flash_bytes)} flash" if v is not None and v.flash_bytes else "")),
             ("peak activations", _n(report.peak_activation_bytes), f"at {_short(report.peak_layer or '-', 40)}"),
             (f"arena ({report.runtime})", _n(report.arena_bytes), _kib(report.arena_bytes)
              + (f" of {_kib(sram)} SRAM" if sram else ""))]
    mp = report.memory_plans or {}
    if mp.get("used") == "offline":
        cards[-1] = (f"arena ({report.runtime}, offline plan)", _n(report.arena_bytes), _kib(report.arena_bytes)
                     + (f" of {_kib(sram)} SRAM" if sram else ""))
        cards.append(("TFLite-Micro's own plan", _n(mp["tflm_arena_bytes"]),
                      f"{len(mp.get('in_place') or [])} ops write over their input with edgekit's plan"))
    if estimate is not None:
        cards.append((f"est. latency ({estimate.target})", f"{estimate.total_ms:,.3f} ms",
                      f"{estimate.cost_model} model, {estimate.dtype}; an estimate"))
    return '<div class="cards" id="summary">' + "".join(
        f'<div class="card"><div class="k">{_E(k)}</div><div class="v">{_E(val)}</div><div class="s">{_E(s)}</div>'
        "</div>" for k, val, s in cards) + "</div>"


def _suggestions_html(suggestions) -> list[str]:
    out = ["<h2>Changes that would fit</h2><table id=\"suggestions\"><tr><th class=\"l\">change</th>"
           "<th>arena B</th><th>model B</th><th class=\"l\">result</th></tr>"]
    for s in suggestions:
        out.append(f"<tr><td class=\"l\">{_E(s.change)}</td><td>{_n(s.arena_bytes)}</td>"
                   f"<td>{_n(s.model_bytes)}</td><td class=\"l\">{'fits' if s.fits else 'still over'}</td></tr>")
    out.append("</table>")
    return out


def _memory_html(report, sram) -> list[str]:
    return ["<h2>Memory per layer</h2>", memory_svg(report, sram_bytes=sram),
            '<p class="note">Bars: activation bytes alive while each layer runs (its inputs, its output and '
            "tensors held for later residual adds / concats). The peak bar is red. "
            + ("The dashed orange line is the SRAM budget; " if sram else "No SRAM budget (not a microcontroller "
               "target, or none given); ")
            + f"the dotted line is the arena {_E(report.runtime)} needs (planned activations plus its own "
              "persistent data), which is what must fit.</p>"]


def _latency_section_html(report, estimate, latency_note, tgt, lat_tgt) -> list[str]:
    out = ["<h2>Latency breakdown (estimate)</h2>"]
    if estimate is None:
        note = latency_note or "no target: pass --target NAME for a latency estimate"
        return out + [f'<p class="note" id="latency-missing">{_E(note)}</p>']
    if tgt is None and lat_tgt is not None:
        out.append(f'<p class="note">no --target given: estimated on {_E(lat_tgt.name)} ({_E(lat_tgt.id)}), '
                   f"a typical {_E(report.runtime)} device.</p>")
    return out + [_latency_html(estimate)]


def _arena_html(report) -> list[str]:
    out = ["<h2>Arena</h2><div class=\"two\"><table id=\"arena\"><tr><th class=\"l\">part</th><th>bytes</th></tr>"]
    for k, b in report.arena_breakdown.items():
        out.append(f"<tr><td class=\"l\">{_E(k)}</td><td>{_n(b)}</td></tr>")
    out.append(f"<tr><td class=\"l\"><b>total ({_E(report.runtime)})</b></td><td><b>{_n(report.arena_bytes)}</b>"
               "</td></tr></table><table id=\"plans\"><tr><th class=\"l\">activation plan</th><th>bytes</th></tr>")
    for k, b in report.plans.items():
        out.append(f"<tr><td class=\"l\">{_E(k)}</td><td>{_n(b)}</td></tr>")
    out.append("</table></div>")
    return out + [f'<p class="note">note: {_E(note)}</p>' for note in report.notes]


def _layers_html(report, estimate) -> list[str]:
    per_layer_ms = None
    if estimate is not None and len(estimate.layers) == len(report.layers):
        per_layer_ms = [x.ms for x in estimate.layers]
    peak = report.peak_activation_bytes
    out = [f"<h2>Layers ({len(report.layers)})</h2><table id=\"layers\"><thead><tr><th>#</th>"
           "<th class=\"l\">layer</th><th class=\"l\">op</th><th class=\"l\">output</th><th>params</th>"
           "<th>MACs</th><th>in B</th><th>out B</th><th class=\"l\">live B</th>"
           + ("<th>est. ms</th>" if per_layer_ms else "") + "</tr></thead><tbody>"]
    for i, r in enumerate(report.layers):
        w = 120 * r.live_bytes / peak if peak else 0
        cls = ' class="peak"' if peak and r.live_bytes == peak else ""
        ms = f"<td>{per_layer_ms[i]:.4f}</td>" if per_layer_ms else ""
        out.append(f"<tr{cls}><td>{i}</td><td class=\"l name\" title=\"{_E(r.name)}\">{_E(r.name)}</td>"
                   f"<td class=\"l\">{_E(r.op)}</td><td class=\"l\">{_E('x'.join(map(str, r.output_shape)))}</td>"
                   f"<td>{_n(r.params)}</td><td>{_macs(r.macs)}</td><td>{_n(r.input_bytes)}</td>"
                   f"<td>{_n(r.output_bytes)}</td><td class=\"l\"><span class=\"livebar\" style=\"width:{w:.0f}px\">"
                   f"</span>{_n(r.live_bytes)}</td>{ms}</tr>")
    out.append("</tbody></table>")
    return out


def _footer_html() -> str:
    from edgekit import __version__

    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<footer>edgekit {_E(__version__)} · generated {stamp} · every size is bytes (KiB = 1024 B); "
            "latency figures are estimates from the target's cost model, not measurements "
            "(measure with <code>edgekit profile --ssh/--adb</code>).</footer></body></html>")


def _latency_html(est) -> str:
    counted = [x for x in est.layers if x.cost_kind not in ("fused", "free")]
    top = sorted(counted, key=lambda x: -x.ms)[:10]
    total = est.total_ms or 1.0
    rows = "".join(f"<tr><td class=\"l name\" title=\"{_E(x.name)}\">{_E(x.name)}</td><td class=\"l\">{_E(x.op)}</td>"
                   f"<td>{_macs(x.macs)}</td><td>{x.ms:.4f}</td><td>{100 * x.ms / total:.1f} %</td>"
                   f"<td class=\"l\">{_E(x.bound)}</td></tr>" for x in top)
    notes = "".join(f'<p class="note">{_E(n)}</p>' for n in est.notes)
    return (f'<p id="latency-total"><b>{est.total_ms:,.3f} ms</b> estimated on <b>{_E(est.target)}</b> '
            f"({_E(est.cost_model)} model, {_E(est.dtype)}, {est.threads or 1} thread(s), {len(counted)} operators "
            "that cost time; activations fused into the op before them cost nothing).</p>"
            f'<div class="two"><div>{latency_kind_svg(est)}</div><div><table id="latency-top"><tr>'
            "<th class=\"l\">slowest layers</th><th class=\"l\">op</th><th>MACs</th><th>ms</th><th>share</th>"
            f"<th class=\"l\">bound</th></tr>{rows}</table></div></div>{notes}")


def accuracy_html(evaluation: dict) -> str:
    """The accuracy section: one row per runtime and the confusion matrix (rows: true class, columns:
    predicted), coloured by the share of each true class, as an inline SVG (no image files)."""
    d = evaluation["data"]
    rows = []
    for r in evaluation["results"]:
        t1, ref, t5 = r["top1"], r.get("vs_reference"), r.get("top5")
        top5 = f"{100 * t5['accuracy']:.2f} %" if t5 else ""
        delta = f"{ref['accuracy_delta_pp']:+.2f} pp" if ref else ""
        rows.append(f"<tr><td class=\"l\">{_E(r['name'])}</td><td>{100 * t1['accuracy']:.2f} %</td>"
                    f"<td>{100 * t1['ci_low']:.2f}-{100 * t1['ci_high']:.2f} %</td>"
                    f"<td>{top5}</td><td>{delta}</td></tr>")
    cm = evaluation["results"][0]["confusion"]
    return (f"<h2>Accuracy on {_E(d['source'])}</h2>"
            f"<p class=\"note\">{d['samples']:,} samples, {d['classes']} classes; "
            "95 % Wilson intervals; deltas against the first row</p><div class=\"two\"><table id=\"accuracy\">"
            "<tr><th class=\"l\">model</th><th>top-1</th><th>95 % interval</th><th>top-5</th><th>delta</th></tr>"
            + "".join(rows) + "</table>" + confusion_svg(cm, title=evaluation["results"][-1]["name"]) + "</div>")


def confusion_svg(matrix: list[list[int]], *, title: str = "", cell: int = 18) -> str:
    """A confusion matrix as SVG: each cell's colour is its share of the true class (row)."""
    k = len(matrix)
    size = 40 + cell * k
    out = [f'<svg id="confusion" xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size + 20}" '
           f'role="img" aria-label="confusion matrix"><text x="40" y="12" font-size="11">{_E(title)}: '
           "true (rows) vs predicted</text>"]
    for i, row in enumerate(matrix):
        total = max(sum(row), 1)
        for j, n in enumerate(row):
            share = n / total
            shade = int(255 - 200 * share)
            out.append(f'<rect x="{40 + j * cell}" y="{20 + i * cell}" width="{cell - 1}" height="{cell - 1}" '
                       f'fill="rgb({shade},{shade},255)"><title>true {i}, predicted {j}: {n}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def _diff_html(diff: dict) -> str:
    rows = []
    for r in diff["rows"]:
        pct = f" ({r['delta_pct']:+.1f} %)" if r.get("delta_pct") is not None else ""
        cls = ' class="regression"' if r["regression"] else ""
        rows.append(f"<tr{cls}><td class=\"l\">{_E(r['metric'])}</td><td>{_n(r['baseline'])}</td>"
                    f"<td>{_n(r['candidate'])}</td><td>{r['delta']:+,}{pct}</td>"
                    f"<td class=\"l\">{'regression' if r['regression'] else ''}</td></tr>")
    notes = "".join(f'<p class="note">{_E(n)}</p>' for n in diff.get("notes", []))
    return (f"<h2>Change against baseline <code>{_E(diff['baseline_model'])}</code></h2>"
            "<table id=\"diff\"><tr><th class=\"l\">metric</th><th>baseline</th><th>candidate</th><th>delta</th>"
            f"<th class=\"l\"></th></tr>{''.join(rows)}</table>"
            f"<p class=\"note\">regression: an increase of more than {diff['threshold_pct']:g} %.</p>{notes}")


def default_latency_target(report, target=None):
    """The target the page estimates latency for: the given one, else a typical device for the runtime."""
    if target is not None:
        return device(target)
    from edgekit.report.diff import DEFAULT_LATENCY_TARGETS

    return device(DEFAULT_LATENCY_TARGETS.get(report.runtime, DEFAULT_LATENCY_TARGETS["litert"])[0])


def write_html(report, path, **kwargs) -> Path:
    """Render and write atomically (a reader never sees half a page); returns the path."""
    from edgekit.fileio import atomic_write, output_file

    path = output_file(path, example="report.html")
    text = render(report, **kwargs)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
