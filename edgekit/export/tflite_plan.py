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

from edgekit.analysis.memory_plans import choose_plan
from edgekit.analysis.offline_plan import OfflinePlan, PlanningError, check_plan
from edgekit.errors import ArtifactError, UsageError
from edgekit.graph.tflite_offline import HEADER_WORDS, OFFLINE_METADATA, PLAN_VERSION, read_offline_plan
from edgekit.graph.tflite_reader import parse_tflite, schema


def encode_offsets(offsets: list[int]) -> bytes:
    """The metadata buffer for one subgraph: ``[0, 1, n, offsets...]`` as little-endian int32."""
    return struct.pack(f"<{HEADER_WORDS + len(offsets)}i", PLAN_VERSION, 1, len(offsets), *offsets)


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

    ``existing`` (what to do with an ``OfflineMemoryAllocation`` entry the model already has): see
    ``edgekit.analysis.memory_plans.choose_plan``; the decision is in ``plan.notes``."""
    if existing not in ("auto", "replace", "keep"):
        raise UsageError(f"existing must be 'auto', 'replace' or 'keep', got {existing!r}")
    g = parse_tflite(data)
    if g.meta.get("offline_buffers"):
        raise ArtifactError("the model stores its weights outside the flatbuffer; TFLite-Micro cannot load it "
                            "(re-serialize it with edgekit.export.tflite.inline_buffers)")
    if existing == "keep" and g.meta.get("offline_plan") is None:
        raise UsageError("the model has no OfflineMemoryAllocation entry to keep")
    try:
        return choose_plan(g, kernels=kernels, existing=existing, orders=orders)
    except PlanningError as exc:
        raise ArtifactError(str(exc)) from None
