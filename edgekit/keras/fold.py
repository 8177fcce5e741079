"""What TensorFlow's converter did with each normalization layer of a Keras model, per Keras layer
name — the report ``edgekit fold`` prints for PyTorch (same fields, same fate words).

edgekit does not fold a Keras model itself: ``tf.lite.TFLiteConverter`` does (its MLIR passes fuse
a BatchNormalization's ``x * scale + shift`` into the preceding convolution/dense weights and bias
when nothing else reads that layer's output; tensorflow/compiler/mlir/lite/transforms, the
``FuseBinaryOpToFollowingAffineOp``/``FuseMulOrDivWithConv2dOrDepthwiseConv2d`` patterns). edgekit
reads the result from the converted ``.tflite`` and the Keras layer table:

1. **kept as** ``MUL``/``ADD`` — some non-convolution op of the ``.tflite`` is named after the layer:
   the converter left its affine map to compute at inference (its input is not a convolution's
   output it could absorb);
2. **folded into X** — no op computes it and it follows a convolution/dense layer X (X's op is in
   the ``.tflite``, with X's name): the scale and shift went into X's weights and bias;
3. **not foldable** — LayerNormalization, GroupNormalization, UnitNormalization, RMSNormalization
   normalize with statistics of each input;
4. **not found** — neither: edgekit says it cannot tell (never a guess).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgekit.graph.ir import Graph
from edgekit.graph.keras_names import CONV_CLASSES, LayerTable

FOLDED = "folded into"
KEPT = "kept as"
NOT_FOLDABLE = "not foldable"
NOT_FOUND = "not found"

BN_CLASSES = ("BatchNormalization", "SyncBatchNormalization")
PER_INPUT_NORMS = ("LayerNormalization", "GroupNormalization", "UnitNormalization", "RMSNormalization")
_AFFINE_CLASSES = {c for classes in CONV_CLASSES.values() for c in classes}
_CONV_KINDS = set(CONV_CLASSES)


@dataclass(frozen=True)
class KerasBNFate:
    """One normalization layer: the fields of ``edgekit.passes.fold_bn.BNFate`` (which imports torch)."""

    name: str  # the Keras layer name
    kind: str  # its class
    fate: str  # FOLDED | KEPT | NOT_FOLDABLE | NOT_FOUND
    into: str | None  # the Keras layer it was folded into
    reason: str


@dataclass
class KerasFoldResult:
    report: list[KerasBNFate]
    folded: int
    kept: int
    method: str = "tf.lite.TFLiteConverter"
    max_rel_error: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"method": self.method, "folded": self.folded, "kept": self.kept, "max_rel_error": self.max_rel_error,
                "notes": list(self.notes), "report": [asdict(f) for f in self.report]}


def keras_bn_fates(graph: Graph, table: LayerTable) -> KerasFoldResult:
    """The fate of every normalization layer of ``table`` in ``graph`` (the converted .tflite with
    ``op.attrs["keras_layers"]`` set by ``edgekit.graph.keras_names.annotate``)."""
    notes = [] if table.exact else ["a SavedModel has no Keras layers: nothing to report"]
    report = []
    for layer in table.layers:
        if layer.cls in PER_INPUT_NORMS:
            report.append(KerasBNFate(layer.name, layer.cls, NOT_FOLDABLE, None,
                                      "normalizes with statistics computed from each input at inference, so it is "
                                      "not a fixed affine map"))
        elif layer.cls in BN_CLASSES:
            report.append(_fate(layer, graph, table))
    folded = sum(f.fate == FOLDED for f in report)
    return KerasFoldResult(report=report, folded=folded, kept=sum(f.fate in (KEPT, NOT_FOLDABLE) for f in report),
                           notes=notes)


def _fate(layer, g: Graph, table: LayerTable) -> KerasBNFate:
    naming = [op for op in g.ops if layer.name in op.attrs.get("keras_layers", ())]
    computing = [op for op in naming if op.kind not in _CONV_KINDS]
    producer = table.by_name.get(layer.inbound[0]) if layer.inbound else None
    what = f"{producer.cls} '{producer.name}'" if producer is not None else "the model input"
    if computing:
        codes = sorted({op.attrs.get("opcode", op.kind.upper()) for op in computing})
        return KerasBNFate(layer.name, layer.cls, KEPT, None,
                           f"computed at inference by {len(computing)} {'/'.join(codes)} op(s) of the .tflite: its "
                           f"input comes from {what}, which the converter did not fold it into")
    if producer is not None and producer.cls in _AFFINE_CLASSES:
        ops = [op for op in g.ops if op.source == producer.name]
        if ops:
            return KerasBNFate(layer.name, layer.cls, FOLDED, producer.name,
                               f"follows {what}: the converter folded its scale and shift into that layer's weights "
                               f"and bias (no op of the .tflite computes it; {ops[0].attrs.get('opcode', ops[0].kind)}"
                               f" '{ops[0].name}' is {producer.name})")
    if naming:
        into = naming[0].source
        return KerasBNFate(layer.name, layer.cls, FOLDED, into,
                           f"no op of the .tflite computes it; its name is on {naming[0].attrs.get('opcode')} "
                           f"'{naming[0].name}' ({into}), whose weights hold it")
    return KerasBNFate(layer.name, layer.cls, NOT_FOUND, None,
                       f"no op of the .tflite carries its name and it follows {what}: edgekit cannot tell what the "
                       "converter did with it")


def fold_keras(path, kind: str, *, input_shape=None) -> KerasFoldResult:
    """``edgekit fold model.keras``: convert to fp32 in the TensorFlow child and report the fates."""
    from edgekit.keras.capture import convert_keras

    conv = convert_keras(path, kind, "fp32", input_shape=input_shape)
    res = keras_bn_fates(conv.graph, conv.model.table)
    res.method = f"tf.lite.TFLiteConverter.{conv.converter}"
    return res
