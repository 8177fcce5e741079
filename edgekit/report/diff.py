"""Design review: the change between two versions of a model (``edgekit check --baseline OLD``).

``load_baseline(OLD, like=candidate, ...)`` turns OLD — a MODEL spec (analysed the way the
candidate was: same dtype, runtime and BN folding; a registered model keeps its own resolution,
other models get the candidate's input shape) or a JSON report saved with ``edgekit check --json`` (or a build's
``report.json``) — into a baseline. ``diff_reports(baseline, candidate)`` returns::

    {"baseline_model", "candidate_model", "threshold_pct", "rows": [...], "regressions": [names],
     "candidate_fits", "latency_targets", "notes"}

with one row per metric: ``metric``, ``key``, ``baseline``, ``candidate``, ``delta``,
``delta_pct`` (None when the baseline is 0 or missing), ``unit``, ``regression`` (True when the
candidate grew by more than ``threshold_pct``, default 1 %, of the baseline), ``estimate``.

Metrics: params, MACs, model bytes, peak activation bytes, runtime arena bytes, and the
estimated latency on each target. **Latency** comes from edgekit's emulator
(``edgekit.profile.emulate.estimate_graph``: the target's cycle or roofline model) applied to
the per-layer table both reports carry (op kind, MACs, params, input/output bytes in execution
order), so a saved JSON report and a freshly analysed model are estimated the same way. Views
are not in that table and each layer's activation input is taken from the layer before it,
which is what the emulator uses to tell fused activations apart; on the registered models and
on built .tflite files this gives the same total as ``edgekit profile --emulate`` on the full
graph (tests). A .pte's XNNPACK delegate hides its operators, so .pte reports get no latency row.
Targets: the candidate's ``--target`` when given, otherwise one phone, one Raspberry Pi (for
LiteRT/ExecuTorch reports) or two microcontrollers (for TFLite-Micro reports).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import UsageError

DEFAULT_THRESHOLD_PCT = 1.0
DEFAULT_LATENCY_TARGETS = {
    "tflite-micro": ("nrf52840-dk", "nucleo-h743zi"),
    "litert": ("raspberry-pi-4b", "pixel-6a"),
    "executorch": ("raspberry-pi-4b", "pixel-6a"),
}
# (key, label, unit)
METRICS = (
    ("params", "params", ""),
    ("macs", "MACs", ""),
    ("model_bytes", "model bytes", "B"),
    ("peak_activation_bytes", "peak activation bytes", "B"),
    ("arena_bytes", "arena bytes", "B"),
)
_REQUIRED_JSON_KEYS = ("params", "macs", "model_bytes", "arena_bytes")


class BaselineError(UsageError):
    """A baseline that cannot be read: the message names the file and the key."""


@dataclass
class Baseline:
    """What a diff needs from one version of a model (from a Report or a saved JSON report)."""

    model: str
    source: str  # "model spec" | "json:<path>"
    metrics: dict  # key -> int | None
    dtype: str | None = None
    runtime: str | None = None
    input_shape: list | None = None
    source_format: str | None = None
    layers: list = field(default_factory=list)  # dicts: name, op, output_shape, params, macs, input/output bytes
    latency_ms: dict = field(default_factory=dict)  # target id -> ms, when the JSON already carries them
    fits: bool | None = None


# ---- loading ---------------------------------------------------------------------------------

def load_baseline(old, *, like=None, target=None, sram=None, flash=None) -> Baseline:
    """A baseline from a MODEL spec / nn.Module / Analysis / saved JSON report (path or dict).

    ``like`` (the candidate Analysis) fixes dtype, runtime, folding and input shape so both sides are
    analysed the same way; ``target``/``sram``/``flash`` give the baseline its own verdict."""
    from edgekit.analysis.result import Analysis

    if isinstance(old, Baseline):
        return old
    if isinstance(old, Analysis):
        return _from_report(old, source="report")
    if isinstance(old, dict):
        return _from_json(old, "<dict>")
    if isinstance(old, (str, Path)) and str(old).lower().endswith(".json"):
        from edgekit.errors import checked_path

        p = checked_path(old, "baseline file")
        if not p.exists():
            raise BaselineError(f"no such baseline file: {old}")
        try:
            data = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BaselineError(f"{old}: not a JSON report ({type(exc).__name__}: {str(exc)[:120]}); "
                                "save one with `edgekit check MODEL --json > baseline.json`") from None
        return _from_json(data, str(old))
    from edgekit.analysis.api import analyze

    kwargs = {}
    if like is not None:
        kwargs.update(dtype=None if _is_artifact(old) else like.dtype,
                      runtime=like.runtime, fold=like.folded_bn,
                      input_shape=_shape_for(old, like))
    report = analyze(old, target=target, sram=sram, flash=flash, **kwargs)
    report.check(suggest=False)
    return _from_report(report, source="model spec")


def _is_artifact(old) -> bool:
    return isinstance(old, (str, Path)) and Path(str(old)).suffix.lower() in (".tflite", ".pte")


def _shape_for(old, like):
    """The candidate's input shape for models that do not define their own (torchvision, file.py:factory,
    an nn.Module); a registered model (its ``resolution``), a .pt2 or an artifact keeps its own."""
    if not isinstance(old, (str, Path)):
        return tuple(like.input_shape) if like.input_shape else None
    if _is_artifact(old) or str(old).lower().endswith(".pt2"):
        return None
    from edgekit.loader import parse_spec

    if parse_spec(str(old)).kind == "registered":
        return None
    return tuple(like.input_shape) if like.input_shape else None


def _from_report(report, *, source: str) -> Baseline:
    v = report.verdict
    return Baseline(model=report.model, source=source,
                    metrics={k: getattr(report, k) for k, _, _ in METRICS},
                    dtype=report.dtype, runtime=report.runtime, input_shape=list(report.input_shape),
                    source_format=report.source_format,
                    layers=[_layer_dict(r) for r in report.layers],
                    fits=v.fits if v is not None else None)


def _layer_dict(row) -> dict:
    if isinstance(row, dict):
        return row
    return {"name": row.name, "op": row.op, "output_shape": list(row.output_shape), "params": row.params,
            "macs": row.macs, "input_bytes": row.input_bytes, "output_bytes": row.output_bytes,
            "live_bytes": row.live_bytes, "source": row.source}


def _from_json(data, where: str) -> Baseline:
    if not isinstance(data, dict):
        raise BaselineError(f"{where}: expected one JSON object (an `edgekit check --json` report), "
                            f"got {type(data).__name__}")
    if data.get("schema", "").startswith("edgekit.profile"):
        raise BaselineError(f"{where}: this is an `edgekit profile` result; the baseline is a report from "
                            "`edgekit check MODEL --json` (or a build's report.json)")
    for key in _REQUIRED_JSON_KEYS:
        if key not in data:
            raise BaselineError(f"{where}: {key}: missing key; the baseline is a report from "
                                "`edgekit check MODEL --json` (or a build's report.json)")
    metrics = {}
    for key, _, _ in METRICS:
        value = data.get(key)
        if key == "arena_bytes" and isinstance(value, dict):  # a build's report.json
            value = value.get("measured") or value.get("planned_by_executorch") or value.get("predicted_pre_export")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BaselineError(f"{where}: {key}: must be a number, got {json.dumps(value)[:60]}")
        metrics[key] = value
    layers = data.get("layers") or []
    if not isinstance(layers, list) or not all(isinstance(r, dict) for r in layers):
        raise BaselineError(f"{where}: layers: must be a list of objects")
    for i, r in enumerate(layers):
        for k in ("op", "macs", "params", "input_bytes", "output_bytes", "output_shape"):
            if k not in r:
                raise BaselineError(f"{where}: layers[{i}].{k}: missing key")
    latency = data.get("latency_ms") or {}
    if not isinstance(latency, dict):
        raise BaselineError(f"{where}: latency_ms: must be an object of target -> milliseconds")
    return Baseline(model=str(data.get("model", where)), source=f"json:{where}", metrics=metrics,
                    dtype=data.get("dtype"), runtime=data.get("runtime"), input_shape=data.get("input_shape"),
                    source_format=data.get("source_format") or ("tflite" if data.get("format") == "tflite" else None),
                    layers=layers, latency_ms=dict(latency), fits=data.get("fits"))


# ---- latency from the per-layer table ----------------------------------------------------------

_ACT_DTYPE = {"int8": "int8", "fp16": "float16", "fp32": "float32"}


def graph_from_layers(layers, *, dtype: str, source_format: str = "torch", name: str = "model"):
    """A sequential edgekit Graph rebuilt from a report's per-layer table (for the emulator).

    Each layer reads one activation tensor of its ``input_bytes`` produced by the layer before it,
    writes one of its ``output_shape`` and owns ``params`` weights in ``dtype``."""
    from edgekit.graph.ir import Graph, Op, Tensor, dtype_nbytes

    act = _ACT_DTYPE.get(dtype, "float32")
    elem = dtype_nbytes(act)
    tensors: list = []
    ops: list = []
    prev_out = None
    for i, r in enumerate(layers):
        in_bytes = int(r.get("input_bytes") or 0)
        out_shape = tuple(int(d) for d in (r.get("output_shape") or [])) or (1,)
        if prev_out is not None and tensors[prev_out].nbytes == in_bytes:
            tin = prev_out
        else:
            tin = len(tensors)
            tensors.append(Tensor(tin, f"in_{i}", (max(in_bytes // elem, 1),), act, producer=i - 1 if i else None,
                                  buffer_bytes=in_bytes))
        inputs = [tin]
        if r.get("params"):
            tw = len(tensors)
            tensors.append(Tensor(tw, f"w_{i}", (int(r["params"]),), act, is_const=True))
            inputs.append(tw)
        tout = len(tensors)
        out_elems = 1
        for d in out_shape:
            out_elems *= d
        out_bytes = int(r.get("output_bytes") or out_elems * elem)
        tensors.append(Tensor(tout, f"out_{i}", out_shape, act, producer=i, buffer_bytes=out_bytes))
        ops.append(Op(index=i, kind=r["op"], name=r.get("name") or f"op_{i}", inputs=inputs, outputs=[tout],
                      macs=int(r.get("macs") or 0), params=int(r.get("params") or 0), source=r.get("source")))
        prev_out = tout
    return Graph(tensors=tensors, ops=ops, inputs=[0] if tensors else [], outputs=[prev_out] if ops else [],
                 source_format=source_format if source_format in ("torch", "tflite", "pte") else "torch",
                 name=name)


def estimate_latency_ms(side: Baseline, target) -> tuple[float | None, str | None]:
    """(ms, None) from the emulator, or (None, why not)."""
    if target in side.latency_ms:
        return float(side.latency_ms[target]), None
    if side.source_format == "pte":
        return None, f"{side.model}: a .pte hides its delegated operators; latency not estimated"
    if not side.layers:
        return None, f"{side.model}: no per-layer table to estimate latency from"
    from edgekit.errors import EdgekitError
    from edgekit.profile.emulate import estimate_graph

    try:
        g = graph_from_layers(side.layers, dtype=side.dtype or "fp32", source_format=side.source_format or "torch",
                              name=side.model)
        est = estimate_graph(g, target, dtype=side.dtype or "fp32")
    except EdgekitError as exc:
        return None, f"no latency estimate on {target}: {exc}"
    return est.total_ms, None


def latency_targets(candidate: Baseline, verdict_target: str | None) -> list[str]:
    if verdict_target:
        return [verdict_target]
    return list(DEFAULT_LATENCY_TARGETS.get(candidate.runtime or "litert", DEFAULT_LATENCY_TARGETS["litert"]))


# ---- the diff ----------------------------------------------------------------------------------

def _row(key, label, unit, old, new, threshold_pct, *, estimate=False, ndigits=None) -> dict:
    if old is None or new is None:
        delta, pct = None, None
    else:
        delta = new - old
        if ndigits is not None:
            delta = round(delta, ndigits)
        pct = (100.0 * (new - old) / old) if old else None
    regression = bool(delta is not None and delta > 0 and (pct is None or pct > threshold_pct))
    if old is not None and new is not None and old == 0 and new == 0:
        regression = False
    return {"metric": label, "key": key, "baseline": old, "candidate": new, "delta": delta if delta is not None else 0,
            "delta_pct": None if pct is None else round(pct, 2), "unit": unit, "regression": regression,
            "estimate": estimate}


def diff_reports(baseline, candidate, *, threshold_pct: float = DEFAULT_THRESHOLD_PCT,
                 targets=None) -> dict:
    """Rows of metric deltas (candidate - baseline) with regressions flagged; see the module doc."""
    if threshold_pct < 0:
        raise UsageError(f"threshold_pct must not be negative (got {threshold_pct})")
    old = load_baseline(baseline)
    verdict = getattr(candidate, "verdict", None)
    new = load_baseline(candidate)
    rows = [_row(k, label, unit, old.metrics.get(k), new.metrics.get(k), threshold_pct)
            for k, label, unit in METRICS]
    notes = []
    if old.dtype and new.dtype and old.dtype != new.dtype:
        notes.append(f"baseline is {old.dtype}, candidate is {new.dtype}: sizes and latency compare different dtypes")
    if old.runtime and new.runtime and old.runtime != new.runtime:
        notes.append(f"baseline arena is for {old.runtime}, candidate's for {new.runtime}")
    tids = list(targets) if targets is not None else latency_targets(new, getattr(verdict, "target", None))
    for tid in tids:
        a, why_a = estimate_latency_ms(old, tid)
        b, why_b = estimate_latency_ms(new, tid)
        for why in (why_a, why_b):
            if why and why not in notes:
                notes.append(why)
        if a is None and b is None:
            continue
        rows.append(_row(f"latency_ms:{tid}", f"est. latency ms ({tid})", "ms",
                         None if a is None else round(a, 3), None if b is None else round(b, 3), threshold_pct,
                         estimate=True, ndigits=3))
    return {"baseline_model": old.model, "candidate_model": new.model, "baseline_source": old.source,
            "threshold_pct": threshold_pct, "rows": rows,
            "regressions": [r["metric"] for r in rows if r["regression"]],
            "candidate_fits": None if verdict is None else verdict.fits,
            "baseline_fits": old.fits, "latency_targets": tids, "notes": notes}
