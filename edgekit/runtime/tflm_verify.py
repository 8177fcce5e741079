"""Verify an offline memory plan by running it: every intermediate tensor, bit for bit.

TFLite-Micro trusts an ``OfflineMemoryAllocation`` entry completely (no overlap, alignment or bounds
check): a wrong offset gives silently wrong numbers, and often only in an intermediate tensor (some
networks give the same output for every input). So a plan is accepted only when

1. it passes the static check (``analysis.offline_plan.check_plan``) under the kernel library it was
   made for, and
2. in TFLite-Micro, at the planned model's **minimum arena** (found by bisection), every activation
   tensor holds, right before its last reader runs, exactly the bytes it holds in the unplanned model,
   on every input given (random int8 and inputs spanning the range by default).

How the tensors are obtained (the comparison in ``compare_tensors`` does not care):

- **Reference**: the unplanned model (any offline entry stripped) in TFLite-Micro with
  ``kPreserveAllTensors`` (LinearMemoryPlanner: no buffer is ever reused) and ``GetTensor``. It refuses
  offline plans, so it cannot read the planned model.
- **Planned** (``truncated_models``): for each cut *m* of the planned operator order, a copy of the
  planned model that stops after op *m*, with the tensors whose last reader is op *m + 1* (or, for
  tensors nobody reads, whose producer is op *m*) as its graph outputs. Same tensor table, same
  ``OfflineMemoryAllocation`` entry, same ops 0..m: the offline tensors sit at the same offsets and ops
  0..m write exactly what they write in the full model; the tensors read out are alive past *m* in the
  full model too, so making them outputs changes no offline lifetime. Only where TFLite-Micro puts the
  kernel scratch buffers around the offline ones may differ, and it places those itself from lifetimes
  it computes. Each copy runs at the full planned model's minimum arena.

Everything native runs in child processes (``edgekit.isolate``): a crash fails the plan with a reason.
Another tensor source (a Cortex-M emulator running CMSIS-NN) plugs in as a function
``(model bytes, input sets, {cut: [tensor ids]}) -> {tensor id: [array per input set]}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import RuntimeFailure
from edgekit.fileio import scratch_file
from edgekit.isolate import ChildFailure, run_isolated

RUNTIME = "TFLite-Micro"
_PRESERVE_ARENA = 64 << 20


@dataclass
class TensorMismatch:
    tensor_id: int
    name: str
    input_index: int
    differing_bytes: int
    total_bytes: int


@dataclass
class PlanCheck:
    """The verdict on a planned model. ``ok`` False: drop it (``reason`` says why)."""

    ok: bool
    reason: str = ""
    arena_bytes: int | None = None  # measured minimum arena of the planned model
    tensors_compared: int = 0
    input_sets: int = 0
    truncated_models: int = 0
    mismatches: list[TensorMismatch] = field(default_factory=list)
    static_problems: list[str] = field(default_factory=list)
    runtime: str = "TFLite-Micro reference kernels (host)"
    elapsed_s: float = 0.0


def check_dict(check: PlanCheck) -> dict:
    """JSON-ready verdict (first 10 mismatches)."""
    return {"ok": check.ok, "reason": check.reason, "arena_bytes": check.arena_bytes,
            "tensors_compared": check.tensors_compared, "input_sets": check.input_sets,
            "truncated_models": check.truncated_models, "runtime": check.runtime,
            "static_problems": check.static_problems[:10], "elapsed_s": round(check.elapsed_s, 2),
            "mismatches": [vars(m) for m in check.mismatches[:10]]}


def compare_tensors(reference: dict, planned: dict, names: dict[int, str] | None = None) -> list[TensorMismatch]:
    """Byte-wise comparison of ``{tensor id: [array per input set]}``; a tensor missing from ``planned``
    counts as entirely different."""
    import numpy as np

    out = []
    for tid, refs in sorted(reference.items()):
        got = planned.get(tid)
        for k, ref in enumerate(refs):
            r = np.ascontiguousarray(ref).view(np.uint8).ravel()
            if got is None or k >= len(got):
                out.append(TensorMismatch(tid, (names or {}).get(tid, str(tid)), k, r.size, r.size))
                continue
            a = np.ascontiguousarray(got[k]).view(np.uint8).ravel()
            if a.size != r.size:
                out.append(TensorMismatch(tid, (names or {}).get(tid, str(tid)), k, r.size, r.size))
                continue
            diff = int(np.count_nonzero(a != r))
            if diff:
                out.append(TensorMismatch(tid, (names or {}).get(tid, str(tid)), k, diff, r.size))
    return out


# ---- what to read, when -----------------------------------------------------------------------------

def read_schedule(g) -> dict[int, list[int]]:
    """{cut m: tensor ids to read after op m of ``g`` (ops in execution order)}.

    A tensor is read right before its last reader runs (after op L-1, L its last reader): any clobbering
    before that shows. A graph output is read after the last op; a tensor nobody reads, after its
    producer. Graph inputs read first by op 0 are what the caller set: not read."""
    last_reader: dict[int, int] = {}
    producer: dict[int, int] = {}
    for op in g.ops:
        for t in op.inputs:
            last_reader[t] = op.index
        for t in op.outputs:
            producer[t] = op.index
    end = len(g.ops) - 1
    cuts: dict[int, list[int]] = {}
    for t in g.tensors:
        if t.is_const or t.nbytes == 0 or (t.id not in producer and t.id not in g.inputs):
            continue
        if t.id in g.outputs:
            m = end
        elif t.id in last_reader:
            m = last_reader[t.id] - 1
        else:
            m = producer.get(t.id, -1)
        if m >= 0:
            cuts.setdefault(m, []).append(t.id)
    return dict(sorted(cuts.items()))


def default_inputs(g, *, n_random: int = 3, seed: int = 0) -> list[list]:
    """Input sets: ``n_random`` uniform random ones over the whole type range, a ramp through the range,
    and the two extremes (int types); floats: uniform in [-1, 1], a ramp, zeros, +/-1."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sets: list[list] = [[] for _ in range(n_random + 3)]
    for tid in g.inputs:
        t = g.tensors[tid]
        dt = np.dtype(t.dtype)
        shape = tuple(t.shape)
        n = int(np.prod(shape)) if shape else 1
        if dt.kind in "iu":
            lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
            rand = [rng.integers(lo, hi + 1, shape, dtype=dt) for _ in range(n_random)]
            ramp = (lo + np.arange(n) % (hi - lo + 1)).astype(dt).reshape(shape)
            fixed = [np.full(shape, lo, dt), np.full(shape, hi, dt)]
        else:
            rand = [rng.uniform(-1, 1, shape).astype(dt) for _ in range(n_random)]
            ramp = np.linspace(-1, 1, n).astype(dt).reshape(shape)
            fixed = [np.zeros(shape, dt), np.where(np.arange(n) % 2, 1, -1).astype(dt).reshape(shape)]
        for k, arr in enumerate(rand + [ramp] + fixed):
            sets[k].append(arr)
    return sets


# ---- tensor sources (parent side) ---------------------------------------------------------------------

def tflm_reference_tensors(model: bytes, input_sets: list, tensor_ids: list[int], *,
                           timeout_s: float = 600.0) -> dict[int, list]:
    """Every listed tensor of the unplanned ``model`` after a run, per input set (kPreserveAllTensors)."""
    with scratch_file(model, prefix="edgekit-plan-") as path:
        arena = max(_PRESERVE_ARENA, 4 * len(model))
        res = run_isolated(__name__, "_child_reference", {"path": path, "inputs": input_sets,
                                                          "tensor_ids": list(tensor_ids), "arena_size": arena},
                           timeout_s=timeout_s, runtime=RUNTIME, artifact="the unplanned model")
    return {int(k): v for k, v in res.value.items()}


def tflm_truncated_tensors(model: bytes, input_sets: list, cuts: dict[int, list[int]], arena_size: int, *,
                           timeout_s: float = 900.0) -> dict[int, list]:
    """The tensors of ``cuts`` read from truncated copies of the planned ``model`` (see the module doc)."""
    with scratch_file(model, prefix="edgekit-plan-") as path:
        res = run_isolated(__name__, "_child_truncated",
                           {"path": path, "inputs": input_sets, "cuts": [[m, t] for m, t in cuts.items()],
                            "arena_size": int(arena_size)},
                           timeout_s=timeout_s, runtime=RUNTIME, artifact="the planned model")
    return {int(k): v for k, v in res.value.items()}


# ---- the verdict --------------------------------------------------------------------------------------

def planned_op_order(g_original, g_planned) -> list[int] | None:
    """Original op index of each op of the planned model, or None if they are not the same ops."""
    key = {}
    for op in g_original.ops:
        key.setdefault((op.attrs.get("opcode"), tuple(op.inputs), tuple(op.outputs)), []).append(op.index)
    order = []
    for op in g_planned.ops:
        cands = key.get((op.attrs.get("opcode"), tuple(op.inputs), tuple(op.outputs)))
        if not cands:
            return None
        order.append(cands.pop(0))
    return order if sorted(order) == list(range(len(g_original.ops))) else None


def verify_plan(original: bytes, planned: bytes, inputs: list | None = None, *, kernels: str = "reference",
                tensor_source=None, arena_size: int | None = None, static_check: bool = True,
                timeout_s: float = 900.0) -> PlanCheck:
    """Accept or reject ``planned`` (``original`` with an offline plan) — see the module doc.

    ``inputs``: input sets (each a list with one array per model input, model dtype); default
    ``default_inputs``. ``kernels``: the library the plan's static check uses (the host run is always
    TFLite-Micro's reference kernels). ``tensor_source(model, input_sets, cuts, arena_size)`` replaces
    the host TFLite-Micro run for the planned model. ``arena_size``: run at this arena instead of
    bisecting. ``static_check=False`` skips the static check (only to test the run itself)."""
    from edgekit.analysis.offline_plan import check_plan
    from edgekit.export.tflite_plan import read_offline_plan, strip_plan
    from edgekit.graph.tflite_reader import parse_tflite

    t0 = time.perf_counter()
    g0, g1 = parse_tflite(original, where="the original model"), parse_tflite(planned, where="the planned model")

    def fail(reason, **kw):
        return PlanCheck(False, reason, elapsed_s=time.perf_counter() - t0, **kw)

    entry = read_offline_plan(planned)
    if entry is None:
        return fail("the planned model has no OfflineMemoryAllocation entry")
    if entry.problems:
        return fail("its OfflineMemoryAllocation entry is malformed: " + "; ".join(entry.problems))
    if [(t.shape, t.dtype, t.nbytes) for t in g0.tensors] != [(t.shape, t.dtype, t.nbytes) for t in g1.tensors]:
        return fail("the planned model's tensors differ from the original's")
    order = planned_op_order(g0, g1)
    if order is None:
        return fail("the planned model's operators are not a reordering of the original's")
    static = check_plan(g0, entry.as_dict(), order, kernels=kernels) if static_check else []
    if static:
        return fail(f"static check: {static[0]}" + (f" (+{len(static) - 1} more)" if len(static) > 1 else ""),
                    static_problems=static)
    input_sets = inputs if inputs is not None else default_inputs(g1)
    _check_inputs(g1, input_sets)
    cuts = read_schedule(g1)
    ids = sorted({t for ts in cuts.values() for t in ts})
    try:
        if arena_size is None:
            from edgekit.runtime.tflm import tflm_min_arena

            with scratch_file(planned, prefix="edgekit-plan-") as path:
                arena_size = tflm_min_arena(path, verify=True)
        reference = tflm_reference_tensors(strip_plan(original), input_sets, ids)
        source = tensor_source or tflm_truncated_tensors
        got = source(planned, input_sets, cuts, arena_size)
    except ChildFailure as exc:
        return fail(f"{RUNTIME} failed on the planned model: {exc}", arena_bytes=arena_size)
    except RuntimeFailure as exc:
        return fail(f"{RUNTIME} cannot run the planned model: {exc}", arena_bytes=arena_size)
    names = {t.id: t.name for t in g1.tensors}
    bad = compare_tensors(reference, got, names)
    check = PlanCheck(not bad, arena_bytes=arena_size, tensors_compared=len(ids), input_sets=len(input_sets),
                      truncated_models=len(cuts), mismatches=bad, elapsed_s=time.perf_counter() - t0)
    if bad:
        worst = bad[0]
        n_t = len({m.tensor_id for m in bad})
        check.reason = (f"{n_t} of {len(ids)} tensors differ from the unplanned model (first: {worst.name!r}, "
                        f"input set {worst.input_index}: {worst.differing_bytes} of {worst.total_bytes} bytes)")
    return check


def _check_inputs(g, input_sets: list) -> None:
    import numpy as np

    from edgekit.errors import UsageError

    if not input_sets:
        raise UsageError("no input sets to verify the plan with")
    for k, xs in enumerate(input_sets):
        if len(xs) != len(g.inputs):
            raise UsageError(f"input set {k} has {len(xs)} array(s); the model has {len(g.inputs)} input(s)")
        for x, tid in zip(xs, g.inputs):
            t = g.tensors[tid]
            x = np.asarray(x)
            if x.dtype.name != t.dtype or tuple(x.shape) != tuple(t.shape):
                raise UsageError(f"input set {k}: expected {t.dtype}{list(t.shape)}, got {x.dtype.name}{list(x.shape)}")


# ---- child side -----------------------------------------------------------------------------------------

def _interpreter(data: bytes, arena_size: int, preserve: bool = False):
    from edgekit.runtime.tflm import CaptureFd2, native_reason, require_tflm

    rt = require_tflm()
    cfg = rt.InterpreterConfig.kPreserveAllTensors if preserve else rt.InterpreterConfig.kAllocationRecording
    with CaptureFd2() as cap:
        try:
            return rt.Interpreter.from_bytes(data, arena_size=int(arena_size), intrepreter_config=cfg)
        except RuntimeError as exc:
            err = exc
    raise RuntimeError(f"{err} with arena_size={int(arena_size)} ({native_reason(cap.text)})")


def _run(interp, xs) -> None:
    import numpy as np

    for i, x in enumerate(xs):
        interp.set_input(np.asarray(x), i)
    interp.invoke()


def _child_reference(path: str, inputs: list, tensor_ids: list, arena_size: int) -> dict:
    import numpy as np

    interp = _interpreter(Path(path).read_bytes(), arena_size, preserve=True)
    out: dict[str, list] = {str(t): [] for t in tensor_ids}
    for xs in inputs:
        _run(interp, xs)
        for t in tensor_ids:
            out[str(t)].append(np.array(interp.GetTensor(int(t), 0)["tensor_data"]))
    return out


def _child_truncated(path: str, inputs: list, cuts: list, arena_size: int) -> dict:
    import numpy as np

    from edgekit.export.tflite_plan import pack_model
    from edgekit.graph.tflite_reader import schema

    s = schema()
    model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(Path(path).read_bytes(), 0))
    sg = model.subgraphs[0]
    ops = list(sg.operators)
    out: dict[str, list] = {}
    for m, tids in cuts:
        sg.operators = ops[:int(m) + 1]
        sg.outputs = [int(t) for t in tids]
        blob = pack_model(model)
        try:
            interp = _interpreter(blob, arena_size)
        except RuntimeError:
            # more graph outputs than the full model can mean a few more tail bytes; the offline head
            # (where the plan lives) is the same at any arena size
            interp = _interpreter(blob, arena_size + (64 << 10))
        for xs in inputs:
            _run(interp, xs)
            for k, t in enumerate(tids):
                out.setdefault(str(t), []).append(np.array(interp.get_output(k)))
    return out


# ---- plan, write, verify: what a build calls -------------------------------------------------------------

@dataclass
class PlannedTflite:
    """``data`` is the verified planned model, or None: use the original (TFLite-Micro's own plan)."""

    data: bytes | None
    plan: object | None = None  # analysis.offline_plan.OfflinePlan
    check: PlanCheck | None = None
    reason: str = ""  # why ``data`` is None

    @property
    def verified(self) -> bool:
        return self.data is not None


def make_planned_tflite(data: bytes, *, kernels: str = "reference", inputs: list | None = None,
                        existing: str = "auto", plan=None, timeout_s: float = 900.0) -> PlannedTflite:
    """Plan ``data`` offline, write the plan in, verify it in TFLite-Micro; never return an unverified plan.

    ``kernels``: the library the board runs. Plans are made with rules that hold for it *and* for the
    reference kernels (``"cmsis-nn"`` plans with ``"reference+cmsis-nn"``), so that the host run checks
    the plan bit-exactly; the CMSIS-NN side of the rules is derived from its sources, not run.
    ``plan``: use this plan instead of planning (tests). A plan that does not lower the predicted arena,
    fails the static check or differs in any tensor is dropped with the reason."""
    from edgekit.analysis.memory_plans import planning_kernels
    from edgekit.errors import ArtifactError
    from edgekit.export.tflite_plan import apply_plan, plan_tflite

    try:
        plan = plan if plan is not None else plan_tflite(data, kernels=planning_kernels(kernels), existing=existing)
    except ArtifactError as exc:
        return PlannedTflite(None, reason=f"no offline plan: {exc}")
    if plan.arena_bytes >= plan.tflm_arena_bytes and not plan.strategy.startswith("the model's existing"):
        return PlannedTflite(None, plan, reason=f"the offline plan predicts no saving ({plan.arena_bytes:,d} B "
                                                f"vs TFLite-Micro's own {plan.tflm_arena_bytes:,d} B)")
    try:
        planned = apply_plan(data, plan)
    except ArtifactError as exc:
        return PlannedTflite(None, plan, reason=f"the offline plan was not written: {exc}")
    check = verify_plan(data, planned, inputs, kernels=plan.kernels, timeout_s=timeout_s)
    if not check.ok:
        return PlannedTflite(None, plan, check, reason=f"the offline plan failed verification: {check.reason}")
    return PlannedTflite(planned, plan, check)
