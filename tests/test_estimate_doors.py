"""One network, one latency estimate, whichever door it comes in by (issue 12): the PyTorch module and
the .tflite edgekit builds from it get the same estimate (within 5 %) on the targets of the
published-latency table.

The PyTorch door estimates the graph the target's runtime runs (the lowering of
``edgekit.analysis.lowering``, ``profile.emulate.runtime_view``); the .tflite door reads the built
file. Before, the DS-CNN keyword spotter was 340 ms from its .tflite (its one-channel first conv is a
DEPTHWISE_CONV_2D with multiplier 64, charged the depthwise rate) and 214 ms from PyTorch.
"""

from __future__ import annotations

import pytest
import tflm_models

pytestmark = [pytest.mark.export, pytest.mark.slow]

ROWS = [  # (tflm_models spec, published model spec, dtype, target) — rows of targets/*.toml [[published]]
    ("tiny_ic", "resnet8:resolution=32,num_classes=10", "int8", "nucleo-l4r5zi"),
    ("tiny_vww", "mobilenet_v1:width=0.25,resolution=96,num_classes=2", "int8", "nucleo-l4r5zi"),
    ("tiny_kws", "ds_cnn:input=49x10,num_classes=12", "int8", "nucleo-l4r5zi"),
    ("tiny_ad", "fc_autoencoder:input=640", "int8", "nucleo-l4r5zi"),
    ("f746_mbv2", "mobilenet_v2:width=0.3,resolution=80,num_classes=1000", "int8", "nucleo-f746zg"),
    ("tiny_vww", "mobilenet_v1:width=0.25,resolution=96,num_classes=2", "fp32", "raspberry-pi-4b"),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tflm_models.cache_dir_from_env() or tmp_path_factory.mktemp("doors")


@pytest.mark.parametrize("name,spec,dtype,target", ROWS, ids=[f"{r[0]}-{r[2]}-{r[3]}" for r in ROWS])
def test_pytorch_and_tflite_doors_give_one_estimate(cache, name, spec, dtype, target):
    from edgekit.graph.capture import capture
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.profile.emulate import estimate_graph, runtime_view
    from edgekit.profile.published import build as build_published
    from edgekit.targets import load_target

    tgt = load_target(target)
    path = tflm_models.build(name, dtype, cache)
    from_file = estimate_graph(read_tflite(path), tgt, dtype=dtype).total_ms
    module, shape = build_published(spec)
    from_torch = estimate_graph(runtime_view(capture(module, shape, dtype=dtype, name=spec), tgt), tgt,
                                dtype=dtype).total_ms
    print(f"{spec} {dtype} on {target}: PyTorch {from_torch:.3f} ms, .tflite {from_file:.3f} ms")
    assert abs(from_torch - from_file) <= 0.05 * from_file
