"""Ask the real runtimes what they take, in child processes (they can crash).

- ``tflm_check(path)``: the TFLite-Micro Python interpreter loads the model (its resolver
  registers every builtin kernel it has) and invokes it once on zeros. Missing kernels come
  from its "Failed to get registration from op code X" log (``tflm_ops`` parses the same), any
  other refusal (a kernel's Prepare or Eval failing) is reported with TFLite-Micro's own log.
- ``xnnpack_check(path)``: LiteRT with its default XNNPACK delegate; the DELEGATE nodes in the
  interpreter's node list are the partitions, and every original node that lies between a
  partition's inputs and outputs was taken by XNNPACK. The rest run on LiteRT's own kernels.

Functions whose names start with ``_child_`` run in the child.
"""

from __future__ import annotations

import os
import re

from edgekit.isolate import ChildFailure, run_isolated

_MISSING = re.compile(r"(?:registration from op code|find op for builtin opcode)\s+'?([A-Z0-9_]+)")


def tflm_check(path, *, invoke: bool = True, timeout_s: float = 180.0) -> dict:
    """{"ok": bool, "ops": {opcode: has kernel}, "missing": [...], "log": str, "stage": load|invoke|None,
    "crash": bool}. Raises ArtifactError for files TFLite-Micro must not be given (offset buffers)."""
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.runtime import tflm

    p = tflm._check_path(path)  # ArtifactError on offset buffers: the caller turns it into a finding
    g = read_tflite(p)
    ops = sorted({op.attrs.get("opcode", op.kind) for op in g.ops})
    try:
        res = run_isolated(__name__, "_child_tflm", {"path": p, "arena_size": tflm._huge_arena(p), "invoke": invoke},
                           timeout_s=timeout_s, runtime="TFLite-Micro", artifact=path)
        val = res.value
        crash = False
    except ChildFailure as exc:
        val = {"ok": False, "log": str(exc), "stage": "load"}
        crash = exc.kind == "crash"
    missing = sorted(set(_MISSING.findall(val.get("log", ""))))
    return {"ok": bool(val["ok"]), "ops": {name: name not in missing for name in ops}, "missing": missing,
            "log": val.get("log", ""), "stage": val.get("stage"), "crash": crash}


def xnnpack_check(path, *, timeout_s: float = 120.0) -> dict:
    """{"ok": bool, "partitions": int, "delegated": [op indices], "not_delegated": [op indices], "ops": n,
    "error": message when LiteRT refused the model}."""
    p = os.path.abspath(str(path))
    try:
        res = run_isolated(__name__, "_child_xnnpack", {"path": p}, timeout_s=timeout_s, runtime="LiteRT",
                           artifact=path)
    except ChildFailure as exc:  # LiteRT/XNNPACK refuses the model (prepare failed) or crashed
        return {"ok": False, "error": exc.exc_message or str(exc), "partitions": 0, "ops": 0, "delegated": [],
                "not_delegated": []}
    return {"ok": True, **res.value}


# ---- child side ------------------------------------------------------------------------------

def _child_tflm(path: str, arena_size: int, invoke: bool) -> dict:
    import numpy as np

    from edgekit.runtime.tflm import CaptureFd2, load_interpreter

    try:
        interp = load_interpreter(path, arena_size)
    except RuntimeError as exc:
        return {"ok": False, "log": str(exc), "stage": "load"}
    if not invoke:
        return {"ok": True, "log": "", "stage": None}
    with CaptureFd2() as cap:
        try:
            i = 0
            while True:
                try:
                    d = interp.get_input_details(i)
                except Exception:
                    break
                interp.set_input(np.zeros([int(s) for s in d["shape"]], dtype=d["dtype"]), i)
                i += 1
            interp.invoke()
            err = None
        except Exception as exc:  # a kernel's Eval failed
            err = exc
    if err is not None:
        return {"ok": False, "log": f"{err} ({cap.text.strip()[:400]})", "stage": "invoke"}
    return {"ok": True, "log": "", "stage": None}


def _child_xnnpack(path: str) -> dict:
    from ai_edge_litert import interpreter as lr

    it = lr.Interpreter(model_path=path)
    it.allocate_tensors()
    nodes = it._get_ops_details()
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    originals = [n for n in nodes if n["op_name"] != "DELEGATE"]
    producer = {}
    for n in originals:
        for t in n["outputs"]:
            producer[int(t)] = n
    delegated: set[int] = set()
    for d in delegates:
        inputs = {int(t) for t in d["inputs"]}
        stack = [int(t) for t in d["outputs"]]
        seen = set()
        while stack:
            t = stack.pop()
            if t in seen or t in inputs:
                continue
            seen.add(t)
            n = producer.get(t)
            if n is None or n["index"] in delegated:
                continue
            delegated.add(int(n["index"]))
            stack.extend(int(x) for x in n["inputs"] if int(x) >= 0)
    return {"partitions": len(delegates), "ops": len(originals), "delegated": sorted(delegated),
            "not_delegated": sorted(int(n["index"]) for n in originals if int(n["index"]) not in delegated)}
