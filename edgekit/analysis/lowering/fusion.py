"""What an op absorbs from the PyTorch ops after it, as the converter does: a BatchNorm folds into
the conv or linear before it, and a ReLU/ReLU6/ReLU1 becomes the op's fused activation
(``converter_facts.BN_FOLDS_INTO``, ``FUSED_ACTIVATIONS``, ``FUSES_ACT_INTO``)."""

from __future__ import annotations

from edgekit.analysis.converter_facts import BN_FOLDS_INTO, FUSED_ACTIVATIONS, FUSES_ACT_INTO
from edgekit.analysis.lowering.builder import Lowering
from edgekit.graph.ir import Op


def absorb(lw: Lowering, op: Op) -> tuple[str | None, list[int]]:
    """(fused activation or None, torch tensors that all become this op's output). The last of
    the list is the tensor the rest of the graph reads."""
    out = op.outputs[0]
    absorbed = [out]
    if op.kind in BN_FOLDS_INTO:
        user = lw.only_user(out)
        while user is not None and (user.kind == "batch_norm" or user.attrs.get("folded_bn")) and user.outputs:
            lw.skip.add(user.index)
            out = user.outputs[0]
            absorbed.append(out)
            user = lw.only_user(out)
    fused = None
    user = lw.only_user(out)
    if op.kind in FUSES_ACT_INTO and user is not None and user.kind in FUSED_ACTIVATIONS and user.outputs:
        lw.skip.add(user.index)
        fused = user.kind
        out = user.outputs[0]
        absorbed.append(out)
    return fused, absorbed


def set_all(lw: Lowering, absorbed: list[int], tid: int, *, nhwc: bool = False) -> None:
    """Every absorbed torch tensor lives in ``tid`` (in NHWC when ``nhwc``)."""
    for t in absorbed:
        if nhwc:
            lw.set_nhwc(t, tid)
        else:
            lw.set(t, tid)
