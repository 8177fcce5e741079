"""Verify a patched model in TFLite-Micro, and make one for a build (patches, then the offline plan).

``verify_patched(original, patched, inputs)`` runs both models in the TFLite-Micro interpreter with
``kPreserveAllTensors`` (no buffer is reused, so every tensor can be read after the run;
``runtime.tflm_verify.tflm_reference_tensors``) on every input set and compares, byte for byte:

- every **output** of the patched model with the original's;
- every tensor of the **rest of the graph** (a tensor of the patched model whose name is the name of
  one original tensor) with that tensor;
- every **patch tensor** (``analysis.patches.PREFIX`` names say which original tensor it is a region of,
  and which box) with that box of the original tensor, on the part inside the tensor (the rows and
  columns a PAD added past the border have no original to compare with; what they hold shows in
  every tensor computed from them).

The comparison uses the names and the original model only, not the rewrite that made the model.

``make_patched_tflite(data, split, grid)``: rewrite (``export.tflite_patch``), verify, then plan offline
(``runtime.tflm_verify.make_planned_tflite``, which verifies the plan against the patched model:
every intermediate tensor at the planned minimum arena); measures both arenas in TFLite-Micro.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from edgekit.fileio import scratch_file
from edgekit.isolate import ChildFailure
from edgekit.runtime.tflm_verify import TensorMismatch, default_inputs, tflm_reference_tensors

RUNTIME = "TFLite-Micro"


@dataclass
class PatchCheck:
    """The verdict on a patched model. ``ok`` False: do not use it (``reason`` says why)."""

    ok: bool
    reason: str = ""
    outputs_compared: int = 0
    rest_tensors_compared: int = 0  # tensors of the unpatched rest of the graph
    patch_tensors_compared: int = 0  # per-patch tensors against their region of the original
    input_sets: int = 0
    mismatches: list[TensorMismatch] = field(default_factory=list)
    runtime: str = "TFLite-Micro reference kernels (host), kPreserveAllTensors"
    elapsed_s: float = 0.0

    def to_dict(self) -> dict:
        return {"ok": self.ok, "reason": self.reason, "outputs_compared": self.outputs_compared,
                "rest_tensors_compared": self.rest_tensors_compared,
                "patch_tensors_compared": self.patch_tensors_compared, "input_sets": self.input_sets,
                "runtime": self.runtime, "elapsed_s": round(self.elapsed_s, 2),
                "mismatches": [vars(m) for m in self.mismatches[:10]]}


def _activations(g) -> list[int]:
    return [t.id for t in g.tensors if not t.is_const and t.nbytes > 0 and (t.producer is not None or t.id in g.inputs)]


def _pairs(g0, g1) -> tuple[list, list, list]:
    """(outputs, rest, patch) comparisons: (patched tensor id, original tensor id, box or None)."""
    from edgekit.analysis.patches import is_patch_name, parse_patch_name

    outputs = [(p, o, None) for p, o in zip(g1.outputs, g0.outputs)]
    by_name: dict[str, list[int]] = {}
    for t in g0.tensors:
        by_name.setdefault(t.name, []).append(t.id)
    rest, patch = [], []
    done = set(g1.outputs)
    for tid in _activations(g1):
        if tid in done:
            continue
        name = g1.tensors[tid].name
        if is_patch_name(name):
            parsed = parse_patch_name(name)
            if parsed is None:
                raise ValueError(f"malformed patch tensor name {name!r}")
            patch.append((tid, parsed[2], parsed[3]))
        elif len(by_name.get(name, ())) == 1:
            rest.append((tid, by_name[name][0], None))
    return outputs, rest, patch


def _region(orig, box, shape):
    """(the part of ``orig`` inside ``box``, the index of that part in the patch tensor) or None."""
    import numpy as np

    if len(box) != orig.ndim or len(shape) != orig.ndim:
        return None
    src, dst = [], []
    for (lo, hi), n, m in zip(box, orig.shape, shape):
        a, b = max(lo, 0), min(hi, n)
        if b <= a or hi - lo != m:
            return None
        src.append(slice(a, b))
        dst.append(slice(a - lo, b - lo))
    return np.ascontiguousarray(orig[tuple(src)]), tuple(dst)


def compare_patched(ref: dict, got: dict, comparisons: list, names: dict) -> list[TensorMismatch]:
    """Byte-wise: for each (patched id, original id, box), ``got[patched]`` against ``ref[original]``
    (the box's inside part when a box is given)."""
    import numpy as np

    out = []
    for pid, oid, box in comparisons:
        for k, r in enumerate(ref[oid]):
            a = np.asarray(got[pid][k])
            if box is None:
                want, have = np.asarray(r), a
            else:
                part = _region(np.asarray(r), box, a.shape)
                if part is None:
                    out.append(TensorMismatch(pid, names[pid], k, a.nbytes, a.nbytes))
                    continue
                want, have = part[0], np.ascontiguousarray(a[part[1]])
            if want.shape != have.shape or want.dtype != have.dtype:
                out.append(TensorMismatch(pid, names[pid], k, have.nbytes, have.nbytes))
                continue
            diff = int(np.count_nonzero(want.view(np.uint8) != have.view(np.uint8)))
            if diff:
                out.append(TensorMismatch(pid, names[pid], k, diff, want.nbytes))
    return out


def verify_patched(original: bytes, patched: bytes, inputs: list | None = None, *,
                   timeout_s: float = 900.0) -> PatchCheck:
    """Accept or reject ``patched`` (``original`` run on patches) — see the module doc. ``inputs``: input
    sets (each a list with one array per model input); default ``tflm_verify.default_inputs``."""
    from edgekit.errors import RuntimeFailure
    from edgekit.export.tflite_plan import strip_plan
    from edgekit.graph.tflite_reader import parse_tflite

    t0 = time.perf_counter()
    g0 = parse_tflite(original, where="the original model")
    g1 = parse_tflite(patched, where="the patched model")
    fail = lambda reason: PatchCheck(False, reason, elapsed_s=time.perf_counter() - t0)  # noqa: E731
    if [(g0.tensors[a].shape, g0.tensors[a].dtype) for a in g0.inputs] != \
            [(g1.tensors[a].shape, g1.tensors[a].dtype) for a in g1.inputs]:
        return fail("the patched model's inputs differ from the original's")
    if len(g0.outputs) != len(g1.outputs):
        return fail("the patched model has another number of outputs")
    outputs, rest, patch = _pairs(g0, g1)
    sets = inputs if inputs is not None else default_inputs(g0)
    try:
        ref = tflm_reference_tensors(strip_plan(original), sets, sorted({o for _, o, _ in outputs + rest + patch}),
                                     timeout_s=timeout_s)
        got = tflm_reference_tensors(strip_plan(patched), sets, sorted({p for p, _, _ in outputs + rest + patch}),
                                     timeout_s=timeout_s)
    except (ChildFailure, RuntimeFailure) as exc:
        return fail(f"{RUNTIME} failed: {exc}")
    names = {t.id: t.name for t in g1.tensors}
    bad = compare_patched(ref, got, outputs + rest + patch, names)
    check = PatchCheck(not bad, outputs_compared=len(outputs), rest_tensors_compared=len(rest),
                       patch_tensors_compared=len(patch), input_sets=len(sets), mismatches=bad,
                       elapsed_s=time.perf_counter() - t0)
    if bad:
        n = len({m.tensor_id for m in bad})
        w = bad[0]
        check.reason = (f"{n} tensor(s) differ from the unpatched model (first: {w.name[:80]!r}, input set "
                        f"{w.input_index}: {w.differing_bytes} of {w.total_bytes} bytes)")
    return check


# ---- patch, verify, plan, verify, measure: what a build calls ---------------------------------------

@dataclass
class Measured:
    """TFLite-Micro's numbers for one model: the minimum arena (bisection) and the RecordingMicroAllocator
    split of it (head: the planned activations and scratch buffers; tail: persistent data)."""

    arena_bytes: int
    head_bytes: int
    tail_bytes: int


@dataclass
class PatchedTflite:
    """``data``: the model to ship (patched, and planned when the plan verified), or None: keep the
    original (``reason`` says why). Arenas are measured in TFLite-Micro on the host."""

    data: bytes | None
    split: int
    label: str
    grid: tuple[int, int]
    macs: int = 0  # the patched model's
    extra_macs: int = 0  # recomputed in the halos
    mac_overhead: float = 0.0  # extra_macs / the original model's MACs
    patched: bytes | None = None  # patched, TFLite-Micro's own plan
    check: PatchCheck | None = None
    original: Measured | None = None
    measured: Measured | None = None  # the patched model, TFLite-Micro's own plan
    planned_measured: Measured | None = None  # the patched model with the offline plan
    planned: object | None = None  # runtime.tflm_verify.PlannedTflite
    reason: str = ""

    @property
    def verified(self) -> bool:
        return self.data is not None

    def to_dict(self) -> dict:
        m = lambda x: vars(x) if x is not None else None  # noqa: E731
        plan = self.planned
        return {"split": self.split, "layer": self.label, "grid": f"{self.grid[0]}x{self.grid[1]}",
                "verified": self.verified, "reason": self.reason, "macs": self.macs, "extra_macs": self.extra_macs,
                "mac_overhead_pct": round(100 * self.mac_overhead, 2), "original": m(self.original),
                "patched": m(self.measured), "patched_planned": m(self.planned_measured),
                "check": self.check.to_dict() if self.check else None,
                "plan": plan.plan.to_dict() if plan is not None and plan.plan is not None else None,
                "plan_reason": plan.reason if plan is not None else None}


def measure_tflm(data: bytes) -> Measured:
    """The minimum arena of ``data`` in TFLite-Micro and the head/tail split at that arena."""
    from edgekit.runtime.tflm import tflm_allocations, tflm_min_arena

    with scratch_file(data, prefix="edgekit-patch-") as path:
        arena = tflm_min_arena(path, verify=True)
        rep = tflm_allocations(path, arena_size=arena, probe_total=False)
    return Measured(arena, rep.head_bytes, rep.tail_bytes)


def make_patched_tflite(data: bytes, split, grid, *, plan: bool = True, kernels: str = "reference",
                        inputs: list | None = None, measure: bool = True, timeout_s: float = 900.0) -> PatchedTflite:
    """Patch ``data`` at ``split`` with ``grid`` (``export.tflite_patch.apply_patches``: a rewrite that is
    predicted not to lower the arena raises UsageError), verify it in TFLite-Micro (``verify_patched``),
    then, with ``plan``, plan it offline and verify the plan (``tflm_verify.make_planned_tflite``, for
    ``kernels``). ``measure``: the minimum arenas of the original, the patched and the planned patched
    model, measured in TFLite-Micro. A model that fails verification is never returned as ``data``."""
    from edgekit.analysis.patch_rewrite import patch_rewrite
    from edgekit.analysis.patches import parse_grid, resolve_split, split_label
    from edgekit.export.tflite_patch import apply_patches
    from edgekit.graph.tflite_reader import parse_tflite
    from edgekit.runtime.tflm_verify import make_planned_tflite

    g = parse_tflite(data)
    tid = resolve_split(g, split)
    patched = apply_patches(data, tid, grid)
    rw = patch_rewrite(g, tid, parse_grid(grid))
    out = PatchedTflite(None, tid, split_label(g, tid), rw.grid, macs=g.macs + rw.extra_macs,
                        extra_macs=rw.extra_macs, mac_overhead=rw.extra_macs / max(g.macs, 1), patched=patched)
    out.check = verify_patched(data, patched, inputs, timeout_s=timeout_s)
    if not out.check.ok:
        out.reason = f"the patched model failed verification: {out.check.reason}"
        return out
    if measure:
        out.original, out.measured = measure_tflm(data), measure_tflm(patched)
    out.data = patched
    if plan:
        out.planned = make_planned_tflite(patched, kernels=kernels, inputs=inputs, timeout_s=timeout_s)
        if out.planned.verified:
            out.data = out.planned.data
            if measure:
                out.planned_measured = measure_tflm(out.planned.data)
        else:
            out.reason = f"patched without an offline plan: {out.planned.reason}"
    return out
