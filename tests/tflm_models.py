"""Factory of small CNNs converted to .tflite (int8 and fp32) for the TFLite-Micro arena tests.

Every network is untrained (``weights=None``, seeded), its BatchNorm statistics are
re-estimated on random data (else int8 activations collapse and TFLite-Micro refuses the
model), it is converted with litert-torch and quantized with ai-edge-quantizer's static
int8 recipe (int8 input and output, inline buffers).

Conversion costs ~5-12 s per torchvision model, so files are cached in a directory:
``build(name, dtype, cache_dir)`` returns the cached path when it exists. Set
``EDGEKIT_TFLM_CACHE`` to keep the cache across test sessions.

Findings (measured with tflite-micro 0.dev20261023):
- ``shufflenet_v2_x0_5``: its channel shuffle becomes rank-5 RESHAPE/TRANSPOSE (50 TRANSPOSE,
  32 RESHAPE, 26 SLICE and 13 QUANTIZE ops in int8); TFLite-Micro accepts and plans it, so
  it is in the accuracy set.
- GELU and torch.topk (STABLEHLO_SORT) have no TFLite-Micro kernel: such models fail to
  allocate at any arena size (``tflm_ops`` reports them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

FACTORY_VERSION = 2  # bump to invalidate cached files when a builder changes


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable  # () -> nn.Module (untrained, seeded)
    input_shape: tuple[int, ...]  # NCHW with batch 1
    fp32: bool = False  # also build the fp32 file for the accuracy set
    slow: bool = False  # conversion/bisection is slow: only in the slow test set


def _tv(fn_name: str, **kw):
    def build():
        import torchvision

        return getattr(torchvision.models, fn_name)(weights=None, **kw)
    return build


# ---- small hand-made nets --------------------------------------------------------------------

def _conv_stack():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU6(),
        nn.Conv2d(32, 32, 1), nn.BatchNorm2d(32), nn.ReLU(),
    )


def _residual():
    import torch
    from torch import nn

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.a = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                   nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16))
            self.b = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                   nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32))
            self.b_skip = nn.Sequential(nn.Conv2d(16, 32, 1, stride=2), nn.BatchNorm2d(32))
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            x = self.stem(x)
            x = torch.relu(x + self.a(x))
            x = torch.relu(self.b_skip(x) + self.b(x))
            return self.head(x.mean((2, 3)))

    return Res()


def _fire():
    import torch
    from torch import nn

    class Fire(nn.Module):
        def __init__(self, cin, sq, ex):
            super().__init__()
            self.squeeze = nn.Sequential(nn.Conv2d(cin, sq, 1), nn.ReLU())
            self.e1 = nn.Sequential(nn.Conv2d(sq, ex, 1), nn.ReLU())
            self.e3 = nn.Sequential(nn.Conv2d(sq, ex, 3, padding=1), nn.ReLU())

        def forward(self, x):
            s = self.squeeze(x)
            return torch.cat([self.e1(s), self.e3(s)], 1)

    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2),
                         Fire(16, 8, 16), Fire(32, 8, 16), nn.MaxPool2d(2), Fire(32, 16, 32),
                         nn.Conv2d(64, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _fc_autoencoder():
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(1 * 16 * 16, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU(),
                         nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 256), nn.Sigmoid())


def _dw_avgpool():
    from torch import nn

    def dw(c, s):
        return [nn.Conv2d(c, c, 3, stride=s, padding=1, groups=c), nn.BatchNorm2d(c), nn.ReLU6()]

    def pw(ci, co):
        return [nn.Conv2d(ci, co, 1), nn.BatchNorm2d(co), nn.ReLU6()]

    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU6(),
                         *dw(16, 1), *pw(16, 24), *dw(24, 2), *pw(24, 48), *dw(48, 2), *pw(48, 64),
                         nn.AvgPool2d(4), nn.Flatten(), nn.Linear(64 * 2 * 2, 10), nn.Softmax(-1))


def _ds_cnn():
    """A DS-CNN keyword spotter (Zhang et al. 2017, "Hello Edge", DS-CNN-S): 49x10 MFCC in,
    a 10x4 stride-2 conv, four depthwise-separable blocks of 64 channels, average pool, 12 classes."""
    from torch import nn

    def dws(c):
        return [nn.Conv2d(c, c, 3, padding=1, groups=c), nn.BatchNorm2d(c), nn.ReLU(),
                nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU()]

    return nn.Sequential(nn.Conv2d(1, 64, (10, 4), stride=2, padding=(5, 1)), nn.BatchNorm2d(64), nn.ReLU(),
                         *dws(64), *dws(64), *dws(64), *dws(64),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 12))


def _registered(name: str, **kw):
    """A network of edgekit's own registry (``edgekit.models.create_model``)."""
    def build():
        from edgekit.models import create_model

        return create_model(name, **kw)
    return build


SPECS: dict[str, ModelSpec] = {s.name: s for s in [
    ModelSpec("conv_stack", _conv_stack, (1, 3, 32, 32), fp32=True),
    ModelSpec("residual", _residual, (1, 3, 32, 32), fp32=True),
    ModelSpec("fire", _fire, (1, 3, 64, 64), fp32=True),
    ModelSpec("fc_autoencoder", _fc_autoencoder, (1, 1, 16, 16), fp32=True),
    ModelSpec("dw_avgpool", _dw_avgpool, (1, 3, 64, 64), fp32=True),
    ModelSpec("mobilenet_v2_035", _tv("mobilenet_v2", width_mult=0.35), (1, 3, 96, 96), fp32=True),
    ModelSpec("mobilenet_v3_small", _tv("mobilenet_v3_small", num_classes=10), (1, 3, 96, 96)),
    ModelSpec("mnasnet0_5", _tv("mnasnet0_5", num_classes=10), (1, 3, 96, 96)),
    ModelSpec("squeezenet1_1", _tv("squeezenet1_1", num_classes=10), (1, 3, 96, 96)),
    ModelSpec("shufflenet_v2_x0_5", _tv("shufflenet_v2_x0_5", num_classes=10), (1, 3, 96, 96), slow=True),
    ModelSpec("resnet18", _tv("resnet18", num_classes=10), (1, 3, 64, 64), slow=True),
    ModelSpec("ds_cnn", _ds_cnn, (1, 1, 49, 10)),
    # edgekit's registered networks at microcontroller resolution (the offline-plan benchmark)
    ModelSpec("ek_mobilenet_v2_035", _registered("mobilenet_v2", width=0.35, num_classes=10), (1, 3, 96, 96)),
    ModelSpec("ek_mobilenet_v2", _registered("mobilenet_v2", num_classes=10), (1, 3, 96, 96), slow=True),
    ModelSpec("ek_mobilenet_v3_small", _registered("mobilenet_v3_small", num_classes=10), (1, 3, 96, 96),
              slow=True),
    ModelSpec("ek_mobilenet_v3_large", _registered("mobilenet_v3_large", num_classes=10), (1, 3, 96, 96),
              slow=True),
    ModelSpec("ek_shufflenet_v2_05", _registered("shufflenet_v2", width=0.5, num_classes=10), (1, 3, 96, 96),
              slow=True),
    ModelSpec("ek_squeezenet1_0", _registered("squeezenet1_0", num_classes=10), (1, 3, 96, 96), slow=True),
    ModelSpec("ek_squeezenet1_1", _registered("squeezenet1_1", num_classes=10), (1, 3, 96, 96), slow=True),
    ModelSpec("ek_mcu_mobilenet_v1", _registered("mcu_mobilenet_v1", num_classes=10), (1, 3, 96, 96)),
    ModelSpec("ek_mcunet_tiny", _registered("mcunet_tiny", num_classes=10), (1, 3, 96, 96)),
    # patch-based inference (tests/test_patches.py, benchmarks/patches.py): higher resolutions
    ModelSpec("ek_mobilenet_v2_035_144", _registered("mobilenet_v2", width=0.35, resolution=144, num_classes=10),
              (1, 3, 144, 144), slow=True),
    ModelSpec("ek_mobilenet_v2_035_160", _registered("mobilenet_v2", width=0.35, resolution=160, num_classes=10),
              (1, 3, 160, 160), slow=True),
    ModelSpec("ek_mobilenet_v2_144", _registered("mobilenet_v2", resolution=144, num_classes=10),
              (1, 3, 144, 144), slow=True),
    ModelSpec("ek_mcunet_tiny_160", _registered("mcunet_tiny", resolution=160, num_classes=10), (1, 3, 160, 160),
              slow=True),
    ModelSpec("ek_mcu_mobilenet_v1_160", _registered("mcu_mobilenet_v1", resolution=160, num_classes=10),
              (1, 3, 160, 160), slow=True),
    ModelSpec("ek_shufflenet_v2_05_144", _registered("shufflenet_v2", width=0.5, resolution=144, num_classes=10),
              (1, 3, 144, 144), slow=True),
]}


# ---- every registered network at MCU resolution, and the MLPerf Tiny re-implementations ---------

def _published(spec: str):
    def build():
        from edgekit.profile.published import build as build_published

        return build_published(spec)[0]
    return build


# every network of the edgekit registry (``edgekit models``) at 96x96: the ek_* specs above
# (tests/test_emulator.py, benchmarks/emulator.py)
REGISTERED = [n for n, s in SPECS.items() if n.startswith("ek_") and s.input_shape[-2:] == (96, 96)]

# the MLPerf Tiny rows of targets/nucleo-l4r5zi.toml (edgekit.profile.published builds them)
MLPERF_TINY = {
    "tiny_ic": ModelSpec("tiny_ic", _published("resnet8:resolution=32,num_classes=10"), (1, 3, 32, 32)),
    "tiny_vww": ModelSpec("tiny_vww", _published("mobilenet_v1:width=0.25,resolution=96,num_classes=2"),
                          (1, 3, 96, 96)),
    "tiny_kws": ModelSpec("tiny_kws", _published("ds_cnn:input=49x10,num_classes=12"), (1, 1, 49, 10)),
    "tiny_ad": ModelSpec("tiny_ad", _published("fc_autoencoder:input=640"), (1, 640)),
    # the calibration row of targets/nucleo-f746zg.toml (TFLite-Micro 2.5 + CMSIS-NN, Cortex-M7)
    "f746_mbv2": ModelSpec("f746_mbv2", _published("mobilenet_v2:width=0.3,resolution=80,num_classes=1000"),
                           (1, 3, 80, 80)),
}


# ---- one-operator models: each kernel's persistent data and scratch, one at a time -------------

def _op_model(fn):
    def build():
        from torch import nn

        class OneOp(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(8, 8, 1)  # a second operand for binary ops

            def forward(self, x):
                return fn(self, x)
        return OneOp()
    return build


def _op_specs():
    import torch
    import torch.nn.functional as F

    ops = {
        "pad": lambda s, x: F.pad(x, (1, 1, 1, 1)),
        "mean": lambda s, x: x.mean((2, 3)),
        "sum": lambda s, x: x.sum((2, 3), keepdim=True),
        "add": lambda s, x: x + s.conv(x),
        "sub": lambda s, x: x - s.conv(x),
        "mul_broadcast": lambda s, x: x * x.mean((2, 3), keepdim=True),
        "hard_swish": lambda s, x: F.hardswish(x),
        "sigmoid": lambda s, x: torch.sigmoid(x),
        "tanh": lambda s, x: torch.tanh(x),
        "relu": lambda s, x: torch.relu(x),
        "relu6": lambda s, x: F.relu6(x),
        "leaky_relu": lambda s, x: F.leaky_relu(x, 0.1),
        "avg_pool": lambda s, x: F.avg_pool2d(x, 2),
        "max_pool": lambda s, x: F.max_pool2d(x, 2),
        "softmax": lambda s, x: torch.softmax(x.flatten(1), -1),
        "concat": lambda s, x: torch.cat([x, s.conv(x), x * 2], 1),
        "slice": lambda s, x: x[:, :4],
        "strided_slice": lambda s, x: x[:, :, ::2],
        "transpose": lambda s, x: x.permute(0, 2, 3, 1),
        "resize": lambda s, x: F.interpolate(x, scale_factor=2, mode="nearest"),
        "clamp": lambda s, x: torch.clamp(x, -0.5, 0.5),
    }
    return {name: ModelSpec(f"op_{name}", _op_model(fn), (1, 8, 8, 8), fp32=True) for name, fn in ops.items()}


# the ones the tests run (the others in _op_specs were measured once, see tflm_arena.OP_DATA)
OP_NAMES = ["pad", "mean", "add", "mul_broadcast", "hard_swish", "sigmoid", "relu6", "leaky_relu",
            "avg_pool", "max_pool", "softmax", "concat", "slice", "strided_slice", "resize"]


def build_op(name: str, dtype: str, cache_dir) -> Path:
    """A one-operator model (plus layout ops the converter adds), cached like ``build``."""
    return build(f"op_{name}", dtype, cache_dir)


def cache_dir_from_env() -> Path | None:
    d = os.environ.get("EDGEKIT_TFLM_CACHE")
    return Path(d) if d else None


def build(name: str, dtype: str, cache_dir) -> Path:
    """Path of ``name`` converted to ``dtype`` ("int8" or "fp32"), building it if not cached.

    The fp32 conversion (the slow part) is cached too and reused for the int8 file.
    """
    if dtype not in ("int8", "fp32"):
        raise ValueError(f"unknown dtype {dtype!r}")
    spec = {**SPECS, **MLPERF_TINY}.get(name) or _op_specs()[name.removeprefix("op_")]
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}.{dtype}.v{FACTORY_VERSION}.tflite"
    if path.exists():
        return path
    fp32_path = cache_dir / f"{name}.fp32.v{FACTORY_VERSION}.tflite"
    if fp32_path.exists():
        fp32 = fp32_path.read_bytes()
    else:
        import torch

        from edgekit.export.tflite import convert_fp32
        from edgekit.passes.bn_stats import reestimate_bn_stats

        torch.manual_seed(0)
        model = spec.build().eval()
        gen = torch.Generator().manual_seed(1)
        batches = [torch.rand((8, *spec.input_shape[1:]), generator=gen) for _ in range(4)]
        model = reestimate_bn_stats(model, batches)
        fp32 = convert_fp32(model, torch.rand(spec.input_shape, generator=gen))
        _write(fp32_path, fp32)
    if dtype == "fp32":
        return fp32_path
    import numpy as np

    from edgekit.export.tflite import quantize_int8

    rng = np.random.default_rng(2)
    calib = rng.random((8, *spec.input_shape), dtype=np.float32)
    _write(path, quantize_int8(fp32, calib))
    return path


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(f".part{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


if __name__ == "__main__":  # build the whole cache: python tests/tflm_models.py DIR
    import sys
    import time

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/edgekit-tflm-cache")
    for spec in SPECS.values():
        for dt in ["int8"] + (["fp32"] if spec.fp32 else []):
            t0 = time.perf_counter()
            try:
                p = build(spec.name, dt, out)
                print(f"{spec.name:22s} {dt:5s} {p.stat().st_size:>10,d} B  {time.perf_counter() - t0:5.1f} s",
                      flush=True)
            except Exception as exc:  # report and go on
                print(f"{spec.name:22s} {dt:5s} FAILED {type(exc).__name__}: {exc}"[:300], flush=True)


# ---- tiny functions for the child-process tests (run_isolated imports them by name) ------------

def child_echo(**kwargs):
    """Return the arguments unchanged (numpy arrays included)."""
    return kwargs


def child_sleep(seconds: float):
    import time

    time.sleep(seconds)
    return seconds


def child_raise(message: str):
    raise ValueError(message)


def child_segfault():
    import ctypes

    return ctypes.string_at(0)  # reads address 0: SIGSEGV
