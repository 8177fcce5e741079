"""Lint rules for what runs inside a .pte's XNNPACK delegate (``edgekit.graph.xnnpack_blob``).

ExecuTorch's XNNPACK delegate computes in NHWC; every NCHW-specific reshape or permute of the
PyTorch graph becomes an ``XNNStaticTranspose`` on each side of it, inside the delegate, where
the kernel-call view of the program (``pte_reader``) cannot see it. These rules report:

- ``transpose``: transposes that move data away from the delegate's inputs and outputs (a
  warning: each is a full copy of a feature map; the NCHW<->NHWC conversions of the delegate's
  own inputs and outputs, and permutations of size-1 dims, are ``info``);
- ``rank-gt-4``: values of rank > 4 inside the delegate (a warning: many NPUs, GPU delegates and
  CMSIS-NN kernels stop at 4 dims);
- ``float-island``: ``XNNConvert`` nodes (int8 <-> float) away from the delegate's inputs and
  outputs: an op the partitioner takes in fp32 only inside an int8 graph (measured: ExecuTorch
  1.5's ``ConstantPadConfig`` lists FP32 only, so every explicit pad of an int8 model is one);
- ``requantize``: int8 -> int8 ``XNNConvert`` nodes inside the delegate.
"""

from __future__ import annotations

import math
from collections import Counter

from edgekit.lint.findings import Cost, Finding


def delegate_findings(path) -> list[Finding]:
    from edgekit.graph.xnnpack_blob import moves_data, xnnpack_graphs

    graphs = xnnpack_graphs(path)
    out: list[Finding] = []
    interior = [t for g in graphs for t in g.interior_transposes]
    edge = [t for g in graphs for t in g.transposes if t not in g.interior_transposes]
    if interior:
        elems = sum(math.prod(t["dims"]) for t in interior if t["dims"])
        out.append(Finding(
            code="transpose", severity="warning",
            message=f"{len(interior)} transpose(s) inside the XNNPACK delegate(s) copy {elems:,} elements "
                    f"(perms {sorted({tuple(t['perm']) for t in interior})}); the delegate computes in NHWC, so an "
                    f"NCHW reshape or permute of the channel axis costs a transpose on each side",
            fix="keep reshapes off the channel axis of 4-D tensors (a channel shuffle: edgekit.passes.shuffle_free, "
                "which edgekit build runs)",
            cost=Cost(extra_ops=len(interior)), details={"transposes": interior}))
    moving_edge = [t for t in edge if moves_data(t["perm"], t["dims"])]
    if moving_edge:
        out.append(Finding(
            code="transpose", severity="info",
            message=f"{len(moving_edge)} transpose(s) at the XNNPACK delegate's inputs/outputs (NCHW <-> NHWC)",
            fix="nothing to do: ExecuTorch's tensors are NCHW at the delegate boundary",
            details={"transposes": moving_edge}))
    islands = [c for g in graphs for c in g.interior_converts if c["float"]]
    if islands:
        around = Counter(g.nodes[c["node"] + 1] for g in graphs for c in g.interior_converts
                         if c["float"] and c["node"] + 1 < len(g.nodes) and g.nodes[c["node"] + 1] != "Convert")
        out.append(Finding(
            code="float-island", severity="warning",
            message=f"{len(islands)} int8<->float conversion(s) inside the XNNPACK delegate(s): ops computed in float "
                    f"inside an int8 graph ({', '.join(f'{k} x{v}' for k, v in around.most_common(4))})",
            fix="replace the op XNNPACK takes in fp32 only (an explicit pad: let the conv pad, or use PyTorch's "
                "symmetric padding for ExecuTorch targets)",
            cost=Cost(extra_ops=len(islands)), details={"converts": islands}))
    requant = [c for g in graphs for c in g.interior_converts if not c["float"]]
    if requant:
        out.append(Finding(
            code="requantize", severity="warning",
            message=f"{len(requant)} int8 -> int8 conversion(s) inside the XNNPACK delegate(s) rescale a tensor for "
                    f"its consumer (each reads and writes the whole tensor once)",
            fix="give the tensor one scale for all its consumers (shared quantization specs in the PT2E quantizer)",
            cost=Cost(extra_ops=len(requant)), details={"converts": requant}))
    deep = sorted({d for g in graphs for d in g.value_dims if len(d) > 4})
    if deep:
        out.append(Finding(
            code="rank-gt-4", severity="warning",
            message=f"{len(deep)} tensor shape(s) of rank > 4 inside the XNNPACK delegate: {deep[:3]}",
            fix="write the view with 4-D tensors (merge the spatial dims first)", details={"shapes": deep}))
    return out


def delegate_summary(path) -> dict:
    from edgekit.graph.xnnpack_blob import xnnpack_graphs

    graphs = xnnpack_graphs(path)
    return {"xnnpack_delegates": len(graphs), "xnnpack_nodes": sum(len(g.nodes) for g in graphs),
            "xnnpack_transposes": sum(len(g.transposes) for g in graphs),
            "xnnpack_interior_transposes": sum(len(g.interior_transposes) for g in graphs),
            "xnnpack_interior_converts": sum(len(g.interior_converts) for g in graphs),
            "xnnpack_max_rank": max((g.max_rank for g in graphs), default=0)}
