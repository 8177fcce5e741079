"""The sweep's HTML page (``OUT/sweep.html``): one self-contained file in the design-review page's
style (``report/html.py``'s CSS, no network): per target the pick, the Pareto front with the
verified builds beside the predictions, the Pareto plot inlined, then every candidate × target,
and the failures. Works on a sweep's ``to_dict()``."""

from __future__ import annotations

import base64
import datetime as _dt
from pathlib import Path

from edgekit.report.html import _E, CSS, _macs, _n
from edgekit.report.sweep_table import table

_EXTRA_CSS = "tr.front td { background: #eef6ee; } img.pareto { max-width: 100%; border: 1px solid var(--line); }"


def render(d: dict, *, plots: dict[str, Path] | None = None) -> str:
    from edgekit import __version__

    lines = table(d)
    axes = list(d["grid"]["axes"])
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>edgekit sweep: "
             f"{_E(d['family'])}</title><style>{CSS}{_EXTRA_CSS}</style></head><body>",
             f"<h1>Sweep of {_E(d['family'])}</h1>",
             f'<div class="meta">{len(d["candidates"])} candidates × {len(d["targets"])} targets · grid '
             + " · ".join(f"<b>{_E(a)}</b> {_E(', '.join(map(str, v)))}" for a, v in d["grid"]["axes"].items())
             + f" · Pareto objectives {_E(', '.join(d['objectives']))} · ran on {_E(str(d.get('executor', '')))}"
             f" ({d.get('workers', 1)} workers)</div>"]
    for note in d.get("notes", []):
        parts.append(f'<p class="note">note: {_E(note)}</p>')
    for t in d["targets"]:
        parts.append(_target_section(d, t, [x for x in lines if x["target"] == t], axes, (plots or {}).get(t)))
    parts.append("<h2>Every candidate</h2>" + _table(lines, axes, all_targets=True))
    fails = d.get("failures", [])
    if fails:
        parts.append(f"<h2>Failures ({len(fails)})</h2><table id=\"failures\"><tr><th class=\"l\">phase</th>"
                     "<th class=\"l\">candidate</th><th class=\"l\">target</th><th class=\"l\">error</th></tr>"
                     + "".join(f"<tr><td class=\"l\">{_E(f['phase'])}</td><td class=\"l\">{_E(f['candidate'])}</td>"
                               f"<td class=\"l\">{_E(str(f['target']))}</td><td class=\"l\">{_E(str(f['error']))}</td>"
                               "</tr>" for f in fails) + "</table>")
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<footer>edgekit {_E(__version__)} · generated {stamp} · arena and flash in bytes, predicted "
                 "before export unless marked measured; latency is the target's cost-model estimate, not a "
                 "measurement.</footer></body></html>")
    return "\n".join(parts)


def _target_section(d: dict, t: str, lines: list[dict], axes: list[str], plot: Path | None) -> str:
    best = d.get("best", {}).get(t)
    fits = sum(1 for x in lines if x["fits"])
    out = [f'<h2 id="target-{_E(t)}">{_E(t)}</h2>',
           f'<div class="verdict {"ok" if best else "bad"}">'
           + (f"pick: {_E(best)} — {fits} of {len(lines)} candidates fit" if best
              else f"no candidate fits {_E(t)}") + "</div>"]
    front = [x for x in lines if x["pareto"]]
    out.append(f"<p>Pareto front: {len(front)} candidate(s).</p>" + _table(front, axes, all_targets=False))
    if plot is not None and Path(plot).is_file():
        data = base64.b64encode(Path(plot).read_bytes()).decode()
        out.append(f'<img class="pareto" alt="Pareto plot for {_E(t)}" src="data:image/png;base64,{data}">')
    return "\n".join(out)


def _table(lines: list[dict], axes: list[str], *, all_targets: bool) -> str:
    head = "".join(f"<th>{_E(a)}</th>" for a in axes)
    rows = []
    for x in lines:
        cls = ' class="front"' if x["pareto"] else ""
        tgt = f"<td class=\"l\">{_E(x['target'])}</td>" if all_targets else ""
        status = x["status"] if x["status"] != "ok" else ("fits" if x["fits"] else "over")
        acc = "-" if x.get("accuracy") is None else f"{x['accuracy']:.1%}"
        meas = x.get("measured_arena_bytes") or x.get("built_arena_bytes")
        ver = x.get("verify_status") or ""
        cos = "" if x.get("min_cosine") is None else f"{x['min_cosine']:.4f}"
        why = x.get("error") or x.get("reasons") or ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{_E(str(x.get(a)))}</td>" for a in axes) + tgt
                    + f"<td class=\"l\">{_E(status)}</td><td class=\"l\">{_E(str(x.get('dtype') or '-'))}</td>"
                    f"<td>{_n(x.get('arena_bytes'))}</td><td>{_n(meas)}</td><td>{_n(x.get('model_bytes'))}</td>"
                    f"<td>{_macs(x['macs']) if x.get('macs') is not None else '-'}</td>"
                    f"<td>{'-' if x.get('latency_ms') is None else format(x['latency_ms'], ',.2f')}</td>"
                    f"<td>{acc}</td><td class=\"l\">{_E(ver)}</td><td>{cos}</td>"
                    f"<td class=\"l name\" title=\"{_E(why)}\">{_E(why[:120])}</td></tr>")
    return ("<table><tr>" + head + ("<th class=\"l\">target</th>" if all_targets else "")
            + "<th class=\"l\">status</th><th class=\"l\">dtype</th><th>arena B (pred.)</th><th>arena B (measured)</th>"
            "<th>flash B</th><th>MACs</th><th>latency ms (est.)</th><th>accuracy</th><th class=\"l\">built</th>"
            "<th>min cosine</th><th class=\"l\">why</th></tr>" + "".join(rows) + "</table>")
