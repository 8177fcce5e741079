"""Analysis against independent oracles: FlopCounterMode for MACs, the module's own
parameters, hand-computed liveness on small graphs, and the real .tflite graph."""

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import edgekit
from edgekit.analysis.memory import liveness
from edgekit.errors import EdgekitError, UsageError
from edgekit.graph.capture import capture
from edgekit.models import create_model


def flop_counter_macs(model, shape):
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            model(torch.randn(*shape))
    return fc.get_total_flops() // 2


REFERENCE = [
    ("mobilenet_v2", {"width": 0.35, "resolution": 96}),
    ("mobilenet_v3_small", {"resolution": 96}),
    ("mobilenet_v3_large", {"resolution": 96}),
    ("shufflenet_v2", {"width": 0.5, "resolution": 96}),
    ("squeezenet1_1", {"resolution": 96}),
    ("mcu_mobilenet_v1", {}),
    ("mcunet_tiny", {}),
]
TORCHVISION = [
    ("mobilenet_v2", {"width_mult": 0.35}), ("mobilenet_v3_small", {}), ("shufflenet_v2_x0_5", {}),
    ("squeezenet1_1", {}), ("mnasnet0_5", {}), ("resnet18", {}),
]


@pytest.mark.parametrize("name,kwargs", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_reference_networks_macs_and_params(name, kwargs):
    m = create_model(name, **kwargs)
    shape = m.default_input_shape
    r = edgekit.analyze(m, input_shape=shape)
    assert r.macs == flop_counter_macs(m, shape)
    assert r.flops == 2 * r.macs
    assert r.params == sum(p.numel() for p in m.parameters())
    assert r.peak_activation_bytes > 0 and r.layers


@pytest.mark.parametrize("name,kwargs", TORCHVISION, ids=[t[0] for t in TORCHVISION])
def test_torchvision_at_mcu_resolution(name, kwargs):
    m = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    shape = (1, 3, 96, 96)
    r = edgekit.analyze(m, input_shape=shape, dtype="int8")
    assert r.macs == flop_counter_macs(m, shape)
    assert r.params == sum(p.numel() for p in m.parameters())
    # int8 activations are a quarter of fp32 ones, tensor by tensor
    r32 = edgekit.analyze(m, input_shape=shape, dtype="fp32")
    assert r32.peak_activation_bytes == 4 * r.peak_activation_bytes
    assert r.model_bytes_by_dtype["fp32"] > r.model_bytes_by_dtype["fp16"] > r.model_bytes_by_dtype["int8"]


def test_liveness_of_a_residual_block_by_hand():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(4, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return x + self.b(torch.relu(self.a(x)))

    g = capture(Res().eval(), (1, 4, 8, 8), dtype="fp32")
    t = 4 * 8 * 8 * 4  # bytes of one activation
    lv = liveness(g)
    # while b runs: x (held for the add), relu output, b output
    assert lv.peak_live_bytes == 3 * t
    # in place, relu may overwrite conv a's output: the peak is unchanged, nothing more
    assert liveness(g, inplace=True).peak_live_bytes == 3 * t


def test_concat_holds_both_branches():
    class Fire(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = nn.Conv2d(8, 2, 1)
            self.e1 = nn.Conv2d(2, 4, 1)
            self.e3 = nn.Conv2d(2, 4, 3, padding=1)

        def forward(self, x):
            s = self.s(x)
            return torch.cat([self.e1(s), self.e3(s)], 1)

    g = capture(Fire().eval(), (1, 8, 4, 4), dtype="int8")
    hw = 16
    lv = liveness(g)
    # e3 runs with s (needed by it), e1's output (held for the concat) and its own output
    assert lv.peak_live_bytes == max(8 * hw + 2 * hw, 2 * hw + 4 * hw + 4 * hw, 4 * hw + 4 * hw + 8 * hw)


def test_check_verdict_and_suggestions():
    r = edgekit.analyze("mobilenet_v2:width=0.35,resolution=96", dtype="int8", runtime="tflite-micro")
    v = r.check(sram="128kB", flash="1MB")
    assert not v.fits and v.over_sram_bytes == r.arena_bytes - 131072
    assert v.suggestions, "over budget: re-analysed variants should be suggested"
    for s in v.suggestions:
        assert s.arena_bytes > 0
    fitting = [s for s in v.suggestions if s.fits]
    assert all(s.arena_bytes <= 131072 for s in fitting)
    assert r.check(sram="4MB", flash="4MB").fits


def test_training_mode_and_bad_shape_are_clear_errors():
    m = create_model("mcu_mobilenet_v1").train()
    with pytest.raises(UsageError, match="training mode"):
        edgekit.analyze(m, input_shape=(1, 3, 96, 96))
    with pytest.raises(EdgekitError, match="input shape"):
        edgekit.analyze(create_model("mcu_mobilenet_v1"), input_shape=(1, 5, 96, 96))


def test_target_picks_dtype_and_runtime():
    r = edgekit.analyze("mcu_mobilenet_v1", target="nucleo-h743zi")
    assert r.dtype == "int8" and r.runtime == "tflite-micro"
    v = r.check("nucleo-h743zi")
    assert v.fits and v.target == "nucleo-h743zi"
