"""Parameters, MACs and model size per dtype (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.graph.ir import Graph

WEIGHT_KINDS = {"conv1d", "conv2d", "conv3d", "depthwise_conv2d", "conv_transpose", "linear"}


@dataclass
class Counts:
    params: int
    macs: int
    model_bytes: dict[str, int]  # dtype -> bytes of constants as stored for that dtype

    @property
    def flops(self) -> int:
        return 2 * self.macs


def model_bytes_for(g: Graph, dtype: str, *, folded_bn: bool = True) -> int:
    """Bytes of the stored parameters if the model is kept in ``dtype``.

    int8 is full-integer quantization as TFLite stores it: int8 weights, one float32 scale
    and one int64 zero point per output channel of every conv/linear weight (per-channel),
    int32 biases (one per output channel, present after BN folding even where the conv had
    none), and int8 for other constants with per-tensor parameters. BN parameters vanish when
    folded. fp16/fp32: 2/4 bytes per parameter.
    """
    param_ids = set(g.meta.get("param_tensors", [])) or {t.id for t in g.tensors if t.is_const}
    if g.source_format != "torch":
        return g.const_bytes()
    total = 0
    for op in g.ops:
        consts = [tid for tid in op.inputs if g.tensors[tid].is_const and tid in param_ids]
        if (op.kind == "batch_norm" and folded_bn) or op.attrs.get("folded_bn"):
            continue  # folded into the conv before it: nothing stored
        for tid in consts:
            t = g.tensors[tid]
            if dtype == "int8":
                if op.kind in WEIGHT_KINDS and len(t.shape) >= 2:
                    channels = t.shape[1] if op.kind == "conv_transpose" else t.shape[0]
                    total += t.numel + 12 * channels
                elif op.kind in WEIGHT_KINDS:
                    total += 4 * t.numel  # int32 bias
                else:
                    total += t.numel + 12
            else:
                total += t.numel * (2 if dtype == "fp16" else 4)
        if op.kind in WEIGHT_KINDS and dtype == "int8" and not any(len(g.tensors[t].shape) == 1 for t in consts):
            total += 4 * int(op.attrs.get("out_channels", 0))  # the bias the folded BN leaves
    return total


def count(g: Graph) -> Counts:
    sizes = {dt: model_bytes_for(g, dt) for dt in ("fp32", "fp16", "int8")} if g.source_format == "torch" \
        else {g.meta.get("dtype", "stored"): g.const_bytes()}
    return Counts(params=g.params, macs=g.macs, model_bytes=sizes)
