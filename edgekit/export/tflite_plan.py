"""Read and write TFLite-Micro's offline memory plan in a .tflite (no TensorFlow, no torch).

The plan is a metadata entry named exactly ``OfflineMemoryAllocation`` whose buffer holds little-endian
int32s ``[version, subgraphs, n, offset_0 .. offset_{n-1}]``, one offset per tensor of the model (weights
included), ``-1`` = planned by TFLite-Micro (micro_allocation_info.cc ``GetOfflinePlannedOffsets``;
micro/docs/memory_management.md). TFLite-Micro reads the *last* entry of that name, requires ``n`` to
equal the tensor count and checks nothing else. edgekit writes version 0 and 1 subgraph, as Vela does
(ethos-u-vela tflite_writer ``SerialiseTensorAddresses``).

A model that already carries an entry (Vela writes them) is never given a second one: ``apply_plan``
replaces every entry of that name by exactly one; ``plan_tflite`` reads the existing entry, checks it
and keeps it when it is sound and at least as small as edgekit's plan (``existing="auto"``).

Writing goes through the flatbuffer object API of ``ai_edge_litert.schema_py_generated`` (pure Python,
no TensorFlow import) and ``flatbuffers``; buffers are written 16-byte aligned (the schema's
``force_align: 16``, which the Python object API drops). Operators are written in the plan's order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from edgekit.analysis.offline_plan import OfflinePlan, PlanningError, check_plan, plan_graph
from edgekit.analysis.tflm_arena import predict_tflm_arena
from edgekit.errors import ArtifactError, UsageError
from edgekit.graph.tflite_reader import parse_tflite, schema

OFFLINE_METADATA = "OfflineMemoryAllocation"
_VERSION = 0  # as Vela writes it; TFLite-Micro ignores the version and the subgraph fields
_HEADER = 3


@dataclass
class ExistingPlan:
    """The ``OfflineMemoryAllocation`` entry a model already carries (the last one: TFLite-Micro's)."""

    entries: int  # how many metadata entries carry the name
    version: int | None = None
    subgraphs: int | None = None
    offsets: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what makes TFLite-Micro refuse or misread it

    def as_dict(self) -> dict[int, int]:
        return {i: o for i, o in enumerate(self.offsets) if o >= 0}


def read_offline_plan(data: bytes) -> ExistingPlan | None:
    """The model's offline plan entry, or None if it has none."""
    s = schema()
    model = s.Model.GetRootAsModel(data, 0)
    found = []
    for i in range(model.MetadataLength()):
        md = model.Metadata(i)
        if md.Name() is not None and md.Name().decode(errors="replace") == OFFLINE_METADATA:
            found.append(int(md.Buffer()))
    if not found:
        return None
    plan = ExistingPlan(entries=len(found))
    if len(found) > 1:
        plan.problems.append(f"{len(found)} {OFFLINE_METADATA} entries (TFLite-Micro reads only the last)")
    bidx = found[-1]
    if not 0 <= bidx < model.BuffersLength():
        plan.problems.append(f"its buffer index {bidx} is out of range")
        return plan
    buf = model.Buffers(bidx)
    if buf.DataLength() == 0:
        plan.problems.append("its buffer is empty or stored outside the flatbuffer (TFLite-Micro reads "
                             "buffer->data() only)")
        return plan
    raw = buf.DataAsNumpy().tobytes()
    if len(raw) < 4 * _HEADER or len(raw) % 4:
        plan.problems.append(f"its buffer has {len(raw)} bytes: not a [version, subgraphs, n, offsets] table")
        return plan
    plan.version, plan.subgraphs, n = struct.unpack_from("<iii", raw, 0)
    words = (len(raw) - 4 * _HEADER) // 4
    if n != words:
        plan.problems.append(f"it announces {n} offsets but holds {words}")
    plan.offsets = list(struct.unpack_from(f"<{min(n, words)}i", raw, 4 * _HEADER)) if n >= 0 else []
    n_tensors = sum(model.Subgraphs(k).TensorsLength() for k in range(model.SubgraphsLength()))
    if n != n_tensors:
        plan.problems.append(f"it has {n} offsets for {n_tensors} tensors (TFLite-Micro refuses the model)")
    return plan


def encode_offsets(offsets: list[int]) -> bytes:
    """The metadata buffer for one subgraph: ``[0, 1, n, offsets...]`` as little-endian int32."""
    return struct.pack(f"<{_HEADER + len(offsets)}i", _VERSION, 1, len(offsets), *offsets)


def _aligned_buffer_class(s):
    class AlignedBufferT(s.BufferT):
        """BufferT whose data is written 16-byte aligned (schema: ``data:[ubyte] (force_align: 16)``)."""

        def Pack(self, builder):
            vec = None
            if self.data is not None:
                raw = self.data.tobytes() if hasattr(self.data, "tobytes") else bytes(self.data)
                builder.StartVector(1, len(raw), 16)
                builder.head = builder.head - len(raw)
                builder.Bytes[builder.head:builder.head + len(raw)] = raw
                builder.vectorNumElems = len(raw)
                vec = builder.EndVector()
            s.BufferStart(builder)
            if vec is not None:
                s.BufferAddData(builder, vec)
            s.BufferAddOffset(builder, self.offset)
            s.BufferAddSize(builder, self.size)
            return s.BufferEnd(builder)
    return AlignedBufferT


def pack_model(model) -> bytes:
    import flatbuffers

    s = schema()
    cls = _aligned_buffer_class(s)
    for b in model.buffers or []:
        b.__class__ = cls
    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _name(md) -> str:
    n = md.name
    return n.decode(errors="replace") if isinstance(n, bytes) else str(n or "")


def apply_plan(data: bytes, plan: OfflinePlan | None, *, check: bool = True) -> bytes:
    """``data`` with ``plan`` written in: operators in ``plan.op_order`` and exactly one
    ``OfflineMemoryAllocation`` entry (any existing ones removed, never stacked). ``plan=None`` removes
    the entries and keeps the operator order. A plan that fails ``check_plan`` (for its kernel library)
    raises ArtifactError (``check=False`` only to build a deliberately wrong model in tests). The result
    is read back and compared with the plan before it is returned."""
    s = schema()
    if len(data) < 16 or data[4:8] != b"TFL3":
        raise ArtifactError("not a .tflite model (no TFL3 identifier)")
    if plan is not None and check:
        problems = check_plan(parse_tflite(data), plan.offsets, plan.op_order, kernels=plan.kernels)
        if problems:
            raise ArtifactError(f"the offline plan is unsound ({plan.kernels} kernels): {problems[0]}"
                                + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
    if len(model.subgraphs or []) != 1:
        raise ArtifactError(f"the model has {len(model.subgraphs or [])} subgraphs: only single-subgraph "
                            f"models get an offline plan")
    sg = model.subgraphs[0]
    n_ops, n_t = len(sg.operators or []), len(sg.tensors or [])
    if any(b.data is None and (b.size or 0) > 0 for b in model.buffers or []):
        raise ArtifactError("the model stores buffers outside the flatbuffer; re-serialize it with inline "
                            "buffers first (edgekit.export.tflite.inline_buffers)")
    if plan is not None:
        if plan.n_tensors != n_t or sorted(plan.op_order) != list(range(n_ops)):
            raise UsageError(f"the plan is for another model ({plan.n_tensors} tensors, {len(plan.op_order)} "
                             f"ops; this one has {n_t} tensors, {n_ops} ops)")
        sg.operators = [sg.operators[i] for i in plan.op_order]
    old = [md.buffer for md in model.metadata or [] if _name(md) == OFFLINE_METADATA]
    model.metadata = [md for md in model.metadata or [] if _name(md) != OFFLINE_METADATA]
    used = {t.buffer for t in sg.tensors or []} | {md.buffer for md in model.metadata}
    for b in old:  # orphaned plan buffers: emptied (indices stay valid)
        if b not in used and 0 <= b < len(model.buffers):
            model.buffers[b].data = None
    if plan is not None:
        reuse = next((b for b in old if b not in used and 0 <= b < len(model.buffers)), None)
        if reuse is None:
            model.buffers.append(s.BufferT())
            reuse = len(model.buffers) - 1
        import numpy as np

        model.buffers[reuse].data = np.frombuffer(encode_offsets(plan.offset_table()), dtype=np.uint8)
        md = s.MetadataT()
        md.name, md.buffer = OFFLINE_METADATA, reuse
        model.metadata.append(md)
    out = pack_model(model)
    _check_written(data, out, plan)
    return out


def strip_plan(data: bytes) -> bytes:
    """``data`` without any ``OfflineMemoryAllocation`` entry (TFLite-Micro plans it itself)."""
    return apply_plan(data, None)


def _check_written(before: bytes, after: bytes, plan: OfflinePlan | None) -> None:
    """Read the written model back: same tensors, the ops in the plan's order, exactly the plan's entry."""
    g0, g1 = parse_tflite(before), parse_tflite(after)
    order = plan.op_order if plan is not None else list(range(len(g0.ops)))
    same_ops = [(o.attrs.get("opcode"), o.inputs, o.outputs) for o in (g0.ops[i] for i in order)] == \
               [(o.attrs.get("opcode"), o.inputs, o.outputs) for o in g1.ops]
    same_tensors = [(t.shape, t.dtype, t.is_const, t.nbytes) for t in g0.tensors] == \
                   [(t.shape, t.dtype, t.is_const, t.nbytes) for t in g1.tensors]
    entry = read_offline_plan(after)
    ok_entry = (entry is None) if plan is None else (
        entry is not None and entry.entries == 1 and not entry.problems and entry.offsets == plan.offset_table())
    if not (same_ops and same_tensors and ok_entry and g0.inputs == g1.inputs and g0.outputs == g1.outputs):
        raise ArtifactError("internal error: the re-written .tflite does not read back as planned "
                            f"(ops {same_ops}, tensors {same_tensors}, plan entry {ok_entry})")


def plan_tflite(data: bytes, *, kernels: str = "reference", existing: str = "auto",
                orders: bool = True) -> OfflinePlan:
    """Plan a .tflite held in memory (no torch): the best ``OfflinePlan`` for TFLite-Micro.

    ``existing`` (what to do with an ``OfflineMemoryAllocation`` entry the model already has):
    ``"auto"`` keeps it when it passes ``check_plan`` under this kernel library and predicts an arena no
    larger than edgekit's plan, else replaces it; ``"replace"`` always replans; ``"keep"`` keeps it and
    raises ArtifactError when it is unsound. The decision is in ``plan.notes``."""
    if existing not in ("auto", "replace", "keep"):
        raise UsageError(f"existing must be 'auto', 'replace' or 'keep', got {existing!r}")
    g = parse_tflite(data)
    if g.meta.get("offline_buffers"):
        raise ArtifactError("the model stores its weights outside the flatbuffer; TFLite-Micro cannot load it "
                            "(re-serialize it with edgekit.export.tflite.inline_buffers)")
    old = read_offline_plan(data)
    kept = _existing_plan(g, old, kernels) if old is not None and existing != "replace" else None
    if existing == "keep":
        if old is None:
            raise UsageError("the model has no OfflineMemoryAllocation entry to keep")
        if isinstance(kept, str):
            raise ArtifactError(f"the model's existing OfflineMemoryAllocation entry is unsound: {kept}")
        return kept
    try:
        plan = plan_graph(g, kernels=kernels, orders=orders)
    except PlanningError as exc:
        raise ArtifactError(str(exc)) from None
    if old is not None:
        if isinstance(kept, OfflinePlan) and kept.arena_bytes <= plan.arena_bytes:
            kept.notes.append(f"kept the model's own OfflineMemoryAllocation entry: sound, and it predicts "
                              f"{kept.arena_bytes:,d} B <= edgekit's {plan.arena_bytes:,d} B")
            return kept
        why = (f"it is unsound ({kept})" if isinstance(kept, str) else
               "asked to replace it" if kept is None else
               f"edgekit's plan predicts {plan.arena_bytes:,d} B < its {kept.arena_bytes:,d} B")
        plan.notes.append(f"replaced the model's existing OfflineMemoryAllocation entry: {why}")
    return plan


def _existing_plan(g, old: ExistingPlan, kernels: str) -> OfflinePlan | str:
    """The existing entry as an OfflinePlan (original operator order), or why it is unsound."""
    if old.problems:
        return "; ".join(old.problems)
    offsets = old.as_dict()
    planned_ids = {t.id for t in g.tensors if not t.is_const and t.nbytes > 0}
    partial = {tid: off for tid, off in offsets.items() if tid in planned_ids}  # TFLite-Micro ignores the rest
    problems = check_plan(g, partial, kernels=kernels, partial=True)
    if problems:
        return "; ".join(problems[:3])
    own = predict_tflm_arena(g)
    est = predict_tflm_arena(g, offline_offsets=partial)
    return OfflinePlan(offsets=partial, op_order=list(range(len(g.ops))), head_bytes=est.head_bytes,
                       arena_bytes=est.total_bytes, tflm_head_bytes=own.head_bytes,
                       tflm_arena_bytes=own.total_bytes, n_tensors=len(g.tensors), kernels=kernels,
                       strategy="the model's existing OfflineMemoryAllocation entry")
