"""The sweep table: one line per candidate × target, joined from a sweep's ``to_dict()`` (the
analytic row, whether it is on the target's Pareto front, and its verified build if any).
Used by the CSV and the HTML page; works on plain dicts, so it imports nothing of the sweep."""

from __future__ import annotations

import csv
import io

COLUMNS = ("candidate", "target", "status", "runtime", "dtype", "memory_plan", "params", "macs", "model_bytes",
           "arena_bytes", "latency_ms", "sram_bytes", "flash_bytes", "fits", "pareto", "accuracy",
           "verify_status", "measured_arena_bytes", "built_arena_bytes", "built_model_bytes", "min_cosine",
           "artifact_accuracy", "reasons", "error")


def table(d: dict) -> list[dict]:
    """The joined lines, in the sweep's order (candidates, then targets)."""
    axes = list(d["grid"]["axes"])
    cands = {c["id"]: c for c in d["candidates"]}
    fronts = {t: set(ids) for t, ids in d["fronts"].items()}
    ver = {(v["candidate"], v["target"]): v for v in d["verified"]}
    out = []
    for r in d["rows"]:
        c = cands[r["candidate"]]
        v = ver.get((r["candidate"], r["target"]))
        vals = {**c["model"], **c["build"]}
        line = {a: vals.get(a) for a in axes}
        line.update({k: r.get(k) for k in COLUMNS if k in r})
        line["pareto"] = r["candidate"] in fronts.get(r["target"], set())
        line["reasons"] = "; ".join(r.get("reasons") or [])
        if v is not None:
            cos = [m.get("cosine") for m in v["verification"].values() if m.get("cosine") is not None]
            line.update(verify_status=v["status"], measured_arena_bytes=v["measured_arena_bytes"],
                        built_arena_bytes=v["arena_bytes"], built_model_bytes=v["model_bytes"],
                        min_cosine=min(cos) if cos else None, artifact_accuracy=v.get("accuracy"))
            if v.get("error"):
                line["error"] = v["error"]
        out.append(line)
    return out


def csv_text(d: dict) -> str:
    lines = table(d)
    cols = list(d["grid"]["axes"]) + [c for c in COLUMNS if c not in d["grid"]["axes"]]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for line in lines:
        w.writerow({k: "" if line.get(k) is None else line.get(k) for k in cols})
    return buf.getvalue()
