"""Shared int8 scales for concatenations: one calibration range for every tensor a concat
joins, so that no QUANTIZE op has to rescale a concat input.

Why requantizes appear: ai-edge-quantizer gives a CONCATENATION's inputs the output's scale
(``common_quantize.materialize_concatenation``, SAME_AS_OUTPUT_SCALE) and a SLICE, RESHAPE or
TRANSPOSE output its input's scale (SAME_AS_INPUT_SCALE). In ShuffleNet the branch that passes
through a unit is a slice of the previous unit's concat, so it carries that concat's scale
into the next concat, whose calibrated range differs by a few per cent: the quantizer inserts a
QUANTIZE (int8 -> int8) on every such input (13 in ShuffleNetV2-0.5, measured).

What this does: a union-find over tensor names, joining every concat output with its inputs
and every scale-preserving op's input with its output; each group of tensors then gets the
union of its members' calibrated ranges, so the quantizer computes one scale for all of them
and the requantizes disappear. The cost is resolution: a member whose own range is smaller
than the group's loses ``log2(group range / own range)`` bits. Groups are only merged while
that loss stays at or below ``max_loss_bits`` for every member; the others keep their own
scale (and their requantize). The quantization debugger (``edgekit.lint.quant_debug``)
measures what sharing costs at the output.

Reads the fp32 .tflite with ``edgekit.graph.tflite_reader`` (no torch, no TensorFlow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# ops ai-edge-quantizer constrains to their input's scale (common_quantize.py, SAME_AS_INPUT_SCALE)
SCALE_PRESERVING = {"RESHAPE", "SLICE", "STRIDED_SLICE", "SPLIT", "SPLIT_V", "TRANSPOSE", "PAD", "MAX_POOL_2D",
                    "AVERAGE_POOL_2D", "UNPACK", "GATHER", "GATHER_ND", "BROADCAST_TO", "RESIZE_BILINEAR",
                    "RESIZE_NEAREST_NEIGHBOR"}
DEFAULT_MAX_LOSS_BITS = 0.5


@dataclass
class SharedRanges:
    """What sharing did: groups of tensor names with one range, and the members left out."""

    groups: list[list[str]] = field(default_factory=list)
    worst_loss_bits: float = 0.0
    refused: list[tuple[str, float]] = field(default_factory=list)  # (tensor, loss in bits if joined)

    def to_dict(self) -> dict:
        return {"groups": len(self.groups), "tensors": sum(len(g) for g in self.groups),
                "worst_loss_bits": round(self.worst_loss_bits, 4),
                "refused": [{"tensor": t, "loss_bits": round(b, 4)} for t, b in self.refused]}


def _edges(model_bytes: bytes) -> list[tuple[str, str]]:
    from edgekit.graph.tflite_reader import _parse

    g = _parse(bytes(model_bytes), "<fp32 model>", "fp32")
    out = []
    for op in g.ops:
        opc = op.attrs.get("opcode", op.kind)
        acts = [t for t in op.inputs if not g.tensors[t].is_const]
        if opc == "CONCATENATION":
            out += [(g.tensors[op.outputs[0]].name, g.tensors[t].name, "concat") for t in acts]
        elif opc in SCALE_PRESERVING and acts:
            out += [(g.tensors[acts[0]].name, g.tensors[t].name, "same") for t in op.outputs]
    return out


def _width(lo: float, hi: float) -> float:
    # ai-edge-quantizer's asymmetric int8 range always contains 0
    return max(hi, 0.0) - min(lo, 0.0)


def share_concat_ranges(calib: dict, model_bytes: bytes, *,
                        max_loss_bits: float = DEFAULT_MAX_LOSS_BITS) -> tuple[dict, SharedRanges]:
    """Return ``calib`` (ai-edge-quantizer's {tensor name: {"min", "max"}}) with one range per
    concat group of the fp32 model ``model_bytes``, and what was shared."""
    return share_ranges(calib, _edges(model_bytes), max_loss_bits=max_loss_bits)


def share_ranges(calib: dict, edges: list[tuple[str, str, str]], *,
                 max_loss_bits: float = DEFAULT_MAX_LOSS_BITS) -> tuple[dict, SharedRanges]:
    """Join the tensors of each edge (a, b, "concat" | "same"; in order) while no member loses more
    than ``max_loss_bits`` against the range the quantizer would give it anyway: its own, or for a
    concat input (a, b, "concat") the concat output's, which ai-edge-quantizer imposes on it.
    Every group then gets the union of its members' ranges."""
    parent: dict[str, str] = {}
    own: dict[str, tuple[float, float]] = {}  # the range each tensor gets without sharing
    grp: dict[str, tuple[float, float]] = {}  # each group's (root's) shared range
    members: dict[str, list[str]] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def loss_bits(lo: float, hi: float, name: str) -> float:
        return math.log2(_width(lo, hi) / max(_width(*own[name]), 1e-12))

    for name, qsv in calib.items():
        if qsv and "min" in qsv and "max" in qsv and np.size(qsv["min"]) == 1:
            parent[name] = name
            own[name] = grp[name] = (float(np.min(qsv["min"])), float(np.max(qsv["max"])))
            members[name] = [name]
    for a, b, kind in edges:
        if kind == "concat" and a in own and b in own:
            own[b] = (min(own[a][0], own[b][0]), max(own[a][1], own[b][1]))
    report = SharedRanges()
    for a, b, _ in edges:
        if a not in parent or b not in parent:
            continue
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        lo, hi = min(grp[ra][0], grp[rb][0]), max(grp[ra][1], grp[rb][1])
        loss = max(loss_bits(lo, hi, m) for m in members[ra] + members[rb])
        if loss > max_loss_bits:
            report.refused.append((b, loss))
            continue
        parent[rb] = ra
        grp[ra] = (lo, hi)
        members[ra] += members.pop(rb)
    out = dict(calib)
    for root, names in members.items():
        if len(names) < 2:
            continue
        lo, hi = grp[root]
        report.groups.append(sorted(names))
        for m in names:
            q = dict(calib[m])
            q["min"] = np.full_like(np.asarray(q["min"], dtype=np.float32), lo)
            q["max"] = np.full_like(np.asarray(q["max"], dtype=np.float32), hi)
            out[m] = q
            report.worst_loss_bits = max(report.worst_loss_bits, loss_bits(lo, hi, m))
    return out, report
