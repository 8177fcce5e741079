"""TensorFlow tensor names in a converted ``.tflite`` -> Keras layer names (no TensorFlow here).

TensorFlow's converter names a tensor after the ops that computed it: the TensorFlow name scope of
each op (``model/layer/op``), the ops fused into one TFLite op joined by ``;``
(tensorflow/compiler/mlir/lite/utils: fused locations)::

    mobilenetv2_0.35_96_1/block_1_depthwise_relu_1/Relu6;mobilenetv2_0.35_96_1/block_1_depthwise_BN_1/
        batchnorm/mul_1;mobilenetv2_0.35_96_1/block_1_depthwise_1/depthwise;;mobilenetv2_0.35_96_1/block_1_pad_1/Pad1
      -> block_1_depthwise_relu, block_1_depthwise_BN, block_1_depthwise, block_1_pad

Keras opens one name scope per model and per layer call; TensorFlow makes scope names unique
within the traced graph by appending ``_N`` (tensorflow/python/framework/ops.py ``unique_name``).
Measured with TensorFlow 2.21 / Keras 3.15: every scope of a converted Keras model carries one
such suffix — model ``dscnn`` -> ``dscnn_1``, layer ``conv2d`` -> ``conv2d_1``, layer ``conv2d_1``
-> ``conv2d_1_2``. Whether a name carries it is read from its first segment (the model's scope:
``dscnn_1`` for model ``dscnn``); a segment is then matched against the real layer names with one
``_N`` removed first (suffixed) or as written first (not suffixed). The last segment of each piece
is the TensorFlow op (``convolution``, ``Relu6``) and is never a layer.

A SavedModel has no Keras layers to match against: its names give the TensorFlow scope right under
the model's (``conv2d_2_1``), as written (:attr:`LayerTable.exact` is False).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SUFFIX = re.compile(r"_\d+$")
_OP_NUMBER = re.compile(r"_?\d+$")  # "convolution1", "MatMul_2": the op names TensorFlow made unique
_AFFINE_TF_OPS = {"convolution", "depthwise", "Conv2D", "DepthwiseConv2dNative", "MatMul", "BiasAdd"}

# Keras layer classes whose op a convolution / fully connected TFLite op is reported under (the
# BatchNormalization and activation fused into it share its name)
CONV_CLASSES = {
    "conv2d": ("Conv2D", "Conv1D", "Conv3D", "SeparableConv2D", "SeparableConv1D", "Convolution2D"),
    "depthwise_conv2d": ("DepthwiseConv2D", "DepthwiseConv1D", "SeparableConv2D", "SeparableConv1D", "Conv2D",
                         "Conv1D"),
    "linear": ("Dense", "EinsumDense"),
    "conv_transpose": ("Conv2DTranspose", "Conv1DTranspose", "Conv3DTranspose"),
}


@dataclass(frozen=True)
class KerasLayer:
    name: str
    cls: str  # the Keras class name: "Conv2D", "BatchNormalization", ...
    inbound: tuple[str, ...] = ()  # layers feeding it
    params: int = 0
    container: bool = False  # a nested model (its layers are listed too)

    @classmethod
    def from_dict(cls, d: dict) -> KerasLayer:
        return cls(name=str(d["name"]), cls=str(d["class"]), inbound=tuple(d.get("inbound") or ()),
                   params=int(d.get("params") or 0), container=bool(d.get("container")))

    def to_dict(self) -> dict:
        return {"name": self.name, "class": self.cls, "inbound": list(self.inbound), "params": self.params,
                "container": self.container}


@dataclass
class LayerTable:
    """The Keras layers of one model and the matching of TensorFlow names against them."""

    model_name: str
    layers: list[KerasLayer] = field(default_factory=list)

    def __post_init__(self):
        self.by_name = {layer.name: layer for layer in self.layers}

    @classmethod
    def from_description(cls, desc: dict) -> LayerTable:
        return cls(model_name=str(desc.get("name") or ""), layers=[KerasLayer.from_dict(d) for d in desc["layers"]])

    @property
    def exact(self) -> bool:
        """True when names are matched against real Keras layers (not a SavedModel's scopes)."""
        return bool(self.layers)

    def cls(self, name: str) -> str:
        layer = self.by_name.get(name)
        return layer.cls if layer is not None else "TensorFlow name scope"

    def consumers(self, name: str) -> list[str]:
        return [layer.name for layer in self.layers if name in layer.inbound]

    def _match(self, segment: str, suffixed: bool) -> KerasLayer | None:
        stripped = _SUFFIX.sub("", segment)
        for cand in ((stripped, segment) if suffixed else (segment, stripped)):
            layer = self.by_name.get(cand)
            if layer is not None:
                return layer
        return None

    def _suffixed(self, first: str) -> bool:
        if first == self.model_name:
            return False
        return _SUFFIX.sub("", first) == self.model_name or not self.model_name

    def layers_in(self, tensor_name: str) -> list[str]:
        """The Keras layers one tensor name names, in order, without duplicates."""
        out: list[str] = []
        pieces = [[s for s in piece.strip().split("/") if s] for piece in tensor_name.split(";")]
        if not self.exact:  # no layer classes to choose by: the scope of a convolution/matmul first
            pieces.sort(key=lambda segs: _OP_NUMBER.sub("", segs[-1]) not in _AFFINE_TF_OPS if segs else True)
        for segs in pieces:
            if len(segs) < 2:  # arith.constant, serving_default_x:0, StatefulPartitionedCall:0
                continue
            name = self._piece_layer(segs)
            if name is not None and name not in out:
                out.append(name)
        return out

    def _piece_layer(self, segs: list[str]) -> str | None:
        if not self.exact:
            return segs[1] if len(segs) >= 3 else None
        suffixed = self._suffixed(segs[0])
        own_scope = segs[0] == self.model_name or _SUFFIX.sub("", segs[0]) == self.model_name
        for seg in segs[1 if own_scope else 0:-1]:  # the model's own scope is not a layer, even if one shares its name
            layer = self._match(seg, suffixed)
            if layer is not None and not layer.container:
                return layer.name
        return None


def primary(names: list[str], kind: str, table: LayerTable) -> str | None:
    """The layer an op is reported under: the convolution/dense layer for such an op, else the first."""
    if not names:
        return None
    for cls in CONV_CLASSES.get(kind, ()):
        for n in names:
            if table.cls(n) == cls:
                return n
    return names[0]


def annotate(graph, table: LayerTable) -> None:
    """Set ``op.source`` (the primary Keras layer) and ``op.attrs["keras_layers"]`` (every layer the
    op's tensor names name) on a graph read from the converted .tflite. An op whose output is named
    after the signature (a graph output) is named by its weights, else by the model's one output layer."""
    g = graph
    for op in g.ops:
        names: list[str] = []
        for tid in op.outputs:
            names += [n for n in table.layers_in(g.tensors[tid].name) if n not in names]
        if not names:
            for tid in op.inputs:
                if g.tensors[tid].is_const:
                    names += [n for n in table.layers_in(g.tensors[tid].name) if n not in names]
        op.attrs["keras_layers"] = names
        op.source = primary(names, op.kind, table)
    _name_output_ops(g, table)


def _name_output_ops(g, table: LayerTable) -> None:
    terminal = [la.name for la in table.layers if not la.container and la.cls != "InputLayer"
                and not table.consumers(la.name)]
    named = {op.source for op in g.ops if op.source}
    if len(terminal) != 1 or terminal[0] in named:
        return
    for op in g.ops:
        if op.source is None and any(t in g.outputs for t in op.outputs):
            op.source = terminal[0]
            op.attrs["keras_layers"] = [terminal[0]]
            op.attrs["keras_layer_inferred"] = "the model's output layer (the tensor is named after the signature)"
