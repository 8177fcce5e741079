"""The parent side of Keras input: ask the TensorFlow child (:mod:`edgekit.keras.child`) and turn
its answer into edgekit's types. TensorFlow is never imported here.

:func:`describe_keras` -> :class:`KerasModel` (input shape, parameters, layer table);
:func:`convert_keras` -> :class:`KerasConversion`: the ``.tflite`` TensorFlow's own converter wrote
(not saved anywhere), read with edgekit's reader into the Graph IR with the Keras layer names as
``op.source`` (:mod:`edgekit.graph.keras_names`), and the Keras model's outputs on the given samples.

Analysing the converter's output instead of lowering the Keras graph by hand makes the pre-export
numbers those of the graph TFLite-Micro and LiteRT will run (ops, fused activations, folded
BatchNorms, PADs, quantization parameters): edgekit's arena model then sees what it sees on a built
``.tflite``. The cost is one conversion per analysis (seconds to tens of seconds, in the child).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.errors import UsageError
from edgekit.graph.ir import Graph
from edgekit.graph.keras_names import LayerTable, annotate
from edgekit.graph.tflite_reader import parse_tflite
from edgekit.keras.spec import check_keras_path, require_tensorflow

CHILD = "edgekit.keras.child"
TIMEOUT_S = 1800.0  # a conversion of a large model on 2 busy cores takes minutes
RUNTIME = "TensorFlow"


@dataclass
class KerasModel:
    """What the child found in a Keras file or SavedModel folder."""

    path: Path
    kind: str  # "keras" | "h5" | "savedmodel"
    name: str
    input_shape: tuple[int, ...]  # batch 1, channels last as the model takes it
    input_dtype: str
    params: int | None  # Keras's count_params() (None for a SavedModel: no Keras layers)
    table: LayerTable
    versions: dict = field(default_factory=dict)


@dataclass
class KerasConversion:
    model: KerasModel
    dtype: str  # fp32 | fp16 | int8
    tflite: bytes
    graph: Graph  # the .tflite read by edgekit, op.source = Keras layer
    fp32_tflite: bytes | None = None
    outputs: list = field(default_factory=list)  # the Keras model's outputs on the samples
    converter: str = ""  # from_keras_model | from_concrete_functions | from_saved_model


def _call(func: str, path, kind: str, timeout_s: float = TIMEOUT_S, **kwargs):
    from edgekit.isolate import run_isolated

    require_tensorflow()
    check_keras_path(path, kind)
    res = run_isolated(CHILD, func, {"path": str(path), "kind": kind, **kwargs}, timeout_s=timeout_s,
                       runtime=RUNTIME, artifact=path,
                       hint="check that the model loads with keras.saving.load_model (or tf.saved_model.load)")
    return res.value


def _model(path, kind: str, d: dict) -> KerasModel:
    return KerasModel(path=Path(path), kind=kind, name=str(d["name"]),
                      input_shape=tuple(int(x) for x in d["input_shape"]), input_dtype=str(d["input_dtype"]),
                      params=d.get("params"),
                      table=LayerTable.from_description(d), versions=dict(d.get("versions") or {}))


def describe_keras(path, kind: str, *, input_shape=None) -> KerasModel:
    """Load the model in the child: input shape (``input_shape`` overrides free dimensions and must
    fit the fixed ones), parameters, layers."""
    return _model(path, kind, _call("describe", path, kind, input_shape=_shape(input_shape)))


def convert_keras(path, kind: str, dtype: str, *, input_shape=None, calibration=None, samples=None,
                  want_fp32: bool = False) -> KerasConversion:
    """Convert with ``tf.lite.TFLiteConverter`` for ``dtype`` in the child (int8 needs ``calibration``:
    N samples of the input shape, or an int N for N seeded random ones) and read the result;
    ``samples`` get the Keras outputs."""
    if dtype == "int8" and calibration is None:
        raise UsageError("int8 conversion needs calibration data")
    cal = calibration if calibration is None or isinstance(calibration, int) else np.asarray(calibration, np.float32)
    d = _call("convert", path, kind, dtype=dtype, input_shape=_shape(input_shape), calibration=cal,
              samples=None if samples is None else np.asarray(samples), want_fp32=want_fp32)
    model = _model(path, kind, d)
    data = bytes(np.asarray(d["tflite"], np.uint8).tobytes())
    fp32 = d.get("fp32_tflite")
    graph = keras_graph(data, model)
    graph.meta["keras_converter"] = str(d.get("converter") or "")
    return KerasConversion(model=model, dtype=dtype, tflite=data, graph=graph,
                           fp32_tflite=None if fp32 is None else bytes(np.asarray(fp32, np.uint8).tobytes()),
                           outputs=list(d.get("outputs") or []), converter=graph.meta["keras_converter"])


def keras_outputs(path, kind: str, samples, *, input_shape=None) -> list:
    """The Keras model's outputs (inference mode) on each sample, computed in the child."""
    return list(_call("outputs", path, kind, samples=np.asarray(samples), input_shape=_shape(input_shape)))


def keras_graph(tflite: bytes, model: KerasModel) -> Graph:
    g = parse_tflite(tflite, name=model.name, where=f"the .tflite converted from {model.path}")
    annotate(g, model.table)
    g.meta.update(source="keras", source_params=model.params, keras_model=str(model.path),
                  keras_layers_exact=model.table.exact)
    return g


def _shape(shape):
    return None if shape is None else [int(d) for d in shape]
