"""Keras and TensorFlow models in: ``.keras`` files, legacy ``.h5`` files and SavedModel folders.

TensorFlow is never imported in edgekit's own process: importing it before torch crashes here
(DESIGN.md, measured) and costs seconds. Everything that needs TensorFlow runs in a child
process (``edgekit.isolate.run_isolated``) through :mod:`edgekit.keras.child`; the parent
gets back plain data — the ``.tflite`` TensorFlow's own converter wrote, the Keras layer table,
the Keras model's outputs — and analyses the ``.tflite`` with edgekit's reader.

- :mod:`.spec`: recognise a Keras/TensorFlow MODEL and check the file before any child runs
  (no TensorFlow);
- :mod:`.child`: the functions the child runs (load, convert with ``tf.lite.TFLiteConverter``,
  run the Keras model, time it in eager mode);
- :mod:`.capture`: the parent side: :func:`~edgekit.keras.capture.convert_keras` returns a
  :class:`~edgekit.keras.capture.KerasConversion` (the .tflite bytes, the Graph IR with Keras
  layer names as ``op.source``, the layer table, the Keras outputs);
- :mod:`.names`: TensorFlow tensor names -> Keras layer names;
- :mod:`.fold`: what the converter did with each BatchNormalization layer.
"""

from edgekit.keras.spec import KERAS_SUFFIXES, check_keras_path, keras_kind, require_tensorflow

__all__ = ["KERAS_SUFFIXES", "check_keras_path", "keras_kind", "require_tensorflow"]
