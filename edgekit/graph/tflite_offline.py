"""The offline memory plan a .tflite may already carry: TFLite-Micro's ``OfflineMemoryAllocation`` entry.

A metadata entry named exactly ``OfflineMemoryAllocation`` whose buffer holds little-endian int32s
``[version, subgraphs, n, offset_0 .. offset_{n-1}]``, one offset per tensor of the model (weights
included), ``-1`` = planned by TFLite-Micro (micro_allocation_info.cc ``GetOfflinePlannedOffsets``;
micro/docs/memory_management.md). TFLite-Micro reads the *last* entry of that name, requires ``n`` to
equal the tensor count and checks nothing else. Vela writes such entries; so does
``edgekit.export.tflite_plan``. Reading it needs no torch and no TensorFlow.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


def schema():
    from edgekit.graph.tflite_reader import schema as _s

    return _s()


OFFLINE_METADATA = "OfflineMemoryAllocation"
PLAN_VERSION = 0  # as Vela writes it; TFLite-Micro ignores the version and the subgraph fields
HEADER_WORDS = 3


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
    """The ``OfflineMemoryAllocation`` entry of a .tflite held in memory, or None if it has none."""
    return offline_entry(schema().Model.GetRootAsModel(data, 0))


def offline_entry(model) -> ExistingPlan | None:
    """The entry of a parsed flatbuffer ``Model`` (what ``tflite_reader`` stores in
    ``graph.meta["offline_plan"]``), or None."""
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
    if len(raw) < 4 * HEADER_WORDS or len(raw) % 4:
        plan.problems.append(f"its buffer has {len(raw)} bytes: not a [version, subgraphs, n, offsets] table")
        return plan
    plan.version, plan.subgraphs, n = struct.unpack_from("<iii", raw, 0)
    words = (len(raw) - 4 * HEADER_WORDS) // 4
    if n != words:
        plan.problems.append(f"it announces {n} offsets but holds {words}")
    plan.offsets = list(struct.unpack_from(f"<{min(n, words)}i", raw, 4 * HEADER_WORDS)) if n >= 0 else []
    n_tensors = sum(model.Subgraphs(k).TensorsLength() for k in range(model.SubgraphsLength()))
    if n != n_tensors:
        plan.problems.append(f"it has {n} offsets for {n_tensors} tensors (TFLite-Micro refuses the model)")
    return plan
