"""What the TensorFlow child process runs (``edgekit.isolate.run_isolated``); never imported
by edgekit's own process. Returns JSON types and NumPy arrays only.

- :func:`describe`: the model's input shape, parameter count and layer table;
- :func:`convert`: ``tf.lite.TFLiteConverter`` as the TFLite-Micro examples use it —
  ``from_keras_model`` (``from_concrete_functions`` when the input shape is fixed by
  ``--input-shape`` or has free dimensions, ``from_saved_model`` for a SavedModel); fp16 weights
  with ``optimizations=[DEFAULT]`` + ``supported_types=[float16]``; full-integer int8 with
  ``optimizations=[DEFAULT]``, a ``representative_dataset`` over the calibration samples,
  ``supported_ops=[TFLITE_BUILTINS_INT8]`` and int8 input/output
  (tensorflow/lite/python/lite.py; TFLite "Post-training integer quantization", integer only) —
  and the Keras model's own outputs on the verification samples, in inference mode.

Errors raised here reach the parent as one line (``ChildFailure``), so their messages say what to do.
"""

from __future__ import annotations

import os

import numpy as np


def tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before the import: no C++ log lines
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


class Source:
    """A loaded Keras model (``model``) or SavedModel signature (``signature``), with its input."""

    def __init__(self, path: str, kind: str, input_shape=None):
        tf = tensorflow()
        self.tf, self.path, self.kind = tf, path, kind
        self.model = self.signature = None
        if kind == "savedmodel":
            loaded = tf.saved_model.load(path)
            sigs = dict(getattr(loaded, "signatures", {}) or {})
            if not sigs:
                raise ValueError(f"the SavedModel in {path} has no signatures; export it with model.export(path) "
                                 "or tf.saved_model.save(obj, path, signatures=...)")
            self.signature = sigs.get("serving_default") or sigs[sorted(sigs)[0]]
            self._keep = loaded  # the signature's variables live as long as the loaded object
            specs = self.signature.structured_input_signature[1]
            if len(specs) != 1:
                raise ValueError(f"the SavedModel's signature takes {len(specs)} inputs ({', '.join(sorted(specs))});"
                                 " edgekit handles single-input models")
            self.input_name, spec = next(iter(specs.items()))
            declared, self.name = tuple(spec.shape), _stem(path)
        else:
            import keras

            self.model = keras.saving.load_model(path, compile=False)
            if len(self.model.inputs) != 1:
                raise ValueError(f"the Keras model takes {len(self.model.inputs)} inputs; edgekit handles "
                                 "single-input models")
            spec = self.model.inputs[0]
            declared, self.name = tuple(spec.shape), self.model.name
        self.dtype = np.dtype(getattr(spec.dtype, "name", None) or str(spec.dtype))
        self.declared = [None if d is None else int(d) for d in declared]
        self.input_shape = _resolve_shape(self.declared, input_shape)

    @property
    def fixed_by_user(self) -> bool:
        """The converter must be given the shape: free dimensions, or --input-shape set them."""
        return any(d is None for d in self.declared[1:])

    def raw(self, x):
        """One inference in TensorFlow eager mode (Keras inference mode), TensorFlow's output."""
        if self.model is not None:
            return self.model(x, training=False)
        return self.signature(**{self.input_name: x})

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.raw(self.tf.constant(x))
        if isinstance(y, dict) and self.model is None:
            y = y[sorted(y)[0]]
        if isinstance(y, dict):
            y = y[sorted(y)[0]]
        if isinstance(y, (list, tuple)):
            y = y[0]
        return np.asarray(y)

    def converter(self):
        tf = self.tf
        if self.model is None:
            if self.fixed_by_user:
                raise ValueError(f"the SavedModel's input has free dimensions {self.declared}; export it with a "
                                 "fixed input shape")
            return tf.lite.TFLiteConverter.from_saved_model(self.path)
        if not self.fixed_by_user:
            return tf.lite.TFLiteConverter.from_keras_model(self.model)
        model = self.model
        fn = tf.function(lambda x: model(x, training=False))
        concrete = fn.get_concrete_function(tf.TensorSpec(self.input_shape, tf.as_dtype(self.dtype)))
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)


def _stem(path: str) -> str:
    return os.path.basename(os.path.normpath(path)) or "saved_model"


def _resolve_shape(declared: list, given) -> list[int]:
    if len(declared) < 1:
        raise ValueError("the model's input is a scalar; edgekit needs a batched tensor input")
    if given:
        given = [int(d) for d in given]
        ok = len(given) == len(declared) and all(d is None or d == g for d, g in zip(declared[1:], given[1:]))
        if not ok or given[0] != 1:
            shown = ",".join("?" if d is None else str(d) for d in declared)
            raise ValueError(f"--input-shape {','.join(map(str, given))} does not fit the model's input "
                             f"({shown}, batch 1; Keras models are channels-last: N,H,W,C)")
        return given
    if any(d is None for d in declared[1:]):
        shown = ",".join("?" if d is None else str(d) for d in declared)
        raise ValueError(f"the model's input shape ({shown}) has free dimensions: pass --input-shape 1,H,W,C")
    return [1] + [int(d) for d in declared[1:]]


def _layers(model) -> list[dict]:
    """Every layer (nested models' layers too, after the model that holds them), with the layers
    feeding it (its inbound nodes' parent operations, keras/src/ops/node.py)."""
    import keras

    out: list[dict] = []

    def walk(m):
        for layer in m.layers:
            inbound = []
            for node in getattr(layer, "_inbound_nodes", []) or []:
                for parent in getattr(node, "parent_nodes", []) or []:
                    op = getattr(parent, "operation", None)
                    if op is not None and op.name not in inbound:
                        inbound.append(op.name)
            try:
                params = int(layer.count_params())
            except ValueError:  # a layer that was never built has no weights yet
                params = 0
            container = isinstance(layer, keras.Model)
            out.append({"name": layer.name, "class": type(layer).__name__, "inbound": inbound, "params": params,
                        "container": container})
            if container:
                walk(layer)

    walk(model)
    return out


def describe(path: str, kind: str, input_shape=None) -> dict:
    src = Source(path, kind, input_shape)
    return _description(src)


def _description(src: Source) -> dict:
    import tensorflow as tf

    versions = {"tensorflow": tf.__version__}
    if src.model is not None:
        import keras

        versions["keras"] = keras.__version__
    return {"name": src.name, "input_shape": src.input_shape, "input_dtype": src.dtype.name,
            "declared_shape": src.declared, "layers": _layers(src.model) if src.model is not None else [],
            "params": int(src.model.count_params()) if src.model is not None else None, "versions": versions}


def convert(path: str, kind: str, dtype: str, input_shape=None, calibration=None, samples=None,
            want_fp32: bool = False) -> dict:
    """The model converted for ``dtype`` (fp32 | fp16 | int8), the fp32 conversion too when
    ``want_fp32`` (the quantization debugger's reference), and the Keras outputs on ``samples``
    (N samples of the input shape, each with batch 1). ``calibration``: N samples, or an int N for
    N seeded standard-normal samples."""
    src = Source(path, kind, input_shape)
    out = _description(src)
    if isinstance(calibration, int):  # N seeded random samples: enough to fix an int8 graph's structure
        shape = (calibration, *src.input_shape)
        calibration = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    fp32 = _convert(src, "fp32") if (dtype == "fp32" or want_fp32) else None
    data = fp32 if dtype == "fp32" else _convert(src, dtype, calibration)
    out["tflite"] = np.frombuffer(data, dtype=np.uint8)
    out["fp32_tflite"] = np.frombuffer(fp32, dtype=np.uint8) if fp32 is not None and want_fp32 else None
    out["converter"] = ("from_saved_model" if src.model is None else
                        "from_concrete_functions" if src.fixed_by_user else "from_keras_model")
    out["outputs"] = [src(np.asarray(s, dtype=src.dtype)) for s in samples] if samples is not None else []
    return out


def outputs(path: str, kind: str, samples, input_shape=None) -> list:
    src = Source(path, kind, input_shape)
    return [src(np.asarray(s, dtype=src.dtype)) for s in samples]


def _convert(src: Source, dtype: str, calibration=None) -> bytes:
    tf = src.tf
    conv = src.converter()
    if dtype == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif dtype == "int8":
        if calibration is None or len(calibration) == 0:
            raise ValueError("int8 conversion needs calibration samples")
        cal = np.asarray(calibration, dtype=np.float32)

        def representative():
            for s in cal:
                yield [s]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    elif dtype != "fp32":
        raise ValueError(f"unknown dtype {dtype!r}")
    return bytes(conv.convert())
