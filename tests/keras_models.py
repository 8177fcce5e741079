"""Make the Keras models tests/test_keras.py builds, and the facts to check edgekit against, in a
TensorFlow process of their own (``python tests/keras_models.py OUTDIR``; never imported by pytest:
TensorFlow imported after torch in one process is not what edgekit does, and before it crashes).

Every model has ``weights=None`` (nothing is downloaded) and BatchNorm moving statistics taken from
data (one training-mode pass with momentum 0), so activations have the ranges of a trained network:
an untrained ``keras.applications`` MobileNetV2 with BatchNorm's initial statistics (mean 0, variance
1) shrinks its logits to ~1e-6, and TFLite-Micro's int8 SOFTMAX aborts on the input scale that
gives (softmax_common.cc ``PreprocessSoftmaxScaling`` -> ``QuantizeMultiplierGreaterThanOne`` checks
a multiplier > 1: measured, scale 7.8e-9).

The facts (``facts.json``), computed here from Keras alone: parameters (``count_params``), the
convolution/dense layers and their MACs from the layers' input/output shapes, each BatchNormalization
and the layer feeding it, and the Keras outputs on ``samples.npy``.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

RES = 96


def _keras():
    import keras

    keras.utils.set_random_seed(0)
    return keras


def dscnn(keras, name="dscnn"):
    """A small DS-CNN keyword spotter (MLPerf Tiny KWS shape: 49x10 MFCC, 12 classes)."""
    L = keras.layers
    x = keras.Input((49, 10, 1))
    y = L.Conv2D(32, (10, 4), strides=(2, 2), padding="same", use_bias=False, name="conv_in")(x)
    y = L.ReLU(name="relu_in")(L.BatchNormalization(name="bn_in")(y))
    for i in range(2):
        y = L.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw{i}")(y)
        y = L.ReLU(name=f"relu_dw{i}")(L.BatchNormalization(name=f"bn_dw{i}")(y))
        y = L.Conv2D(32, 1, use_bias=False, name=f"pw{i}")(y)
        y = L.ReLU(name=f"relu_pw{i}")(L.BatchNormalization(name=f"bn_pw{i}")(y))
    y = L.GlobalAveragePooling2D(name="pool")(y)
    y = L.Dense(12, name="logits")(y)
    return keras.Model(x, L.Softmax(name="probs")(y), name=name)


def gelu_net(keras):
    """A net with GELU, which TFLite-Micro has no kernel for."""
    L = keras.layers
    x = keras.Input((16, 16, 3))
    y = L.Conv2D(8, 3, padding="same", name="conv")(x)
    y = L.Activation("gelu", name="gelu")(y)
    y = L.GlobalAveragePooling2D(name="pool")(y)
    return keras.Model(x, L.Dense(4, name="head")(y), name="gelu_net")


def bn_after_add(keras):
    """One BatchNorm the converter folds (after a conv) and one it cannot (after an Add). The model has
    the name of one of its layers: its own name scope must not be taken for that layer."""
    L = keras.layers
    x = keras.Input((16, 16, 3))
    a = L.Conv2D(8, 3, padding="same", name="c1")(x)
    b = L.Conv2D(8, 3, padding="same", name="c2")(x)
    s = L.BatchNormalization(name="bn_after_add")(L.Add(name="add")([a, b]))
    c = L.BatchNormalization(name="bn_c3")(L.Conv2D(8, 3, padding="same", name="c3")(s))
    y = L.GlobalAveragePooling2D(name="pool")(L.ReLU(name="relu")(c))
    return keras.Model(x, L.Dense(4, name="head")(y), name="bn_after_add")


def calibrate_bn(keras, model, x) -> None:
    """Moving statistics = the batch statistics of ``x`` (momentum 0, one training-mode pass)."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(x, training=True)


def _macs(keras, layer) -> int:
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
        return 0
    out, inp = tuple(layer.output.shape)[1:], tuple(layer.input.shape)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(np.prod(out)) * int(np.prod(layer.kernel_size))
    if isinstance(layer, keras.layers.Conv2D):
        return int(np.prod(out)) * int(np.prod(layer.kernel_size)) * int(inp[-1]) // int(layer.groups)
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(out)) * int(inp[-1])
    return 0


def facts(keras, model, samples) -> dict:
    affine = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    layers = {layer.name: layer for layer in model.layers}
    bns = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            parent = layer._inbound_nodes[0].parent_nodes[0].operation
            bns[layer.name] = {"producer": parent.name, "producer_class": type(parent).__name__}
    return {"params": int(model.count_params()), "input_shape": [1, *model.inputs[0].shape[1:]],
            "affine_layers": [n for n, layer in layers.items() if isinstance(layer, affine)],
            "macs": sum(_macs(keras, layer) for layer in model.layers), "batchnorms": bns,
            "outputs": [np.asarray(model(s, training=False)).tolist() for s in samples]}


def main(out: str) -> None:
    keras = _keras()
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    A = keras.applications
    models = {
        "mobilenet": (A.MobileNet(input_shape=(RES, RES, 3), alpha=0.25, weights=None, classes=10), (RES, RES, 3)),
        "mobilenet_v2": (A.MobileNetV2(input_shape=(RES, RES, 3), alpha=0.35, weights=None, classes=10),
                         (RES, RES, 3)),
        "dscnn": (dscnn(keras), (49, 10, 1)),
        "gelu_net": (gelu_net(keras), (16, 16, 3)),
        "bn_after_add": (bn_after_add(keras), (16, 16, 3)),
    }
    all_facts = {}
    for name, (model, shape) in models.items():
        data = rng.uniform(-1, 1, (32, *shape)).astype(np.float32)  # MobileNet's input range
        calibrate_bn(keras, model, data)
        np.save(f"{out}/{name}_calibration.npy", data)
        samples = data[:4, None]  # (4, 1, H, W, C): what edgekit verifies with
        all_facts[name] = facts(keras, model, samples)
        model.save(f"{out}/{name}.keras")
        if name == "dscnn":
            model.save(f"{out}/{name}.h5")
            model.export(f"{out}/{name}_savedmodel", verbose=False)
    with open(f"{out}/facts.json", "w") as f:
        json.dump(all_facts, f)


if __name__ == "__main__":
    main(sys.argv[1])
