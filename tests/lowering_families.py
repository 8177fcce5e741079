"""User-model families for the pre-export TFLite-Micro arena prediction, and their conversion.

Models of the kinds users bring outside the CNN families edgekit was tuned on: attention,
LayerNorm, SiLU + squeeze-excite, upsampling, transposed convs, PixelShuffle, 1-D convs,
grouped convs, depth multipliers != 1, TFLite-SAME padding spelled as ``F.pad`` + conv and the
MLPerf Tiny DS-CNN keyword spotter. Each is untrained (seeded), its BatchNorm statistics are
re-estimated on random data, BN is folded with ``edgekit.passes.fold_bn`` (as ``edgekit build``
does), and the folded module is converted with edgekit's own export (``convert_fp32`` +
``quantize_int8``). The files are cached by ``tests/artifacts.py`` (``EDGEKIT_TFLM_CACHE``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable  # () -> nn.Module (untrained)
    input_shape: tuple[int, ...]
    trained: bool = True  # give constant-initialised parameters random values, as training does


def _attention():
    """Conv stem, 2-head nn.MultiheadAttention over 256 tokens, LayerNorm, linear head (issue 12)."""
    from torch import nn

    class TinyViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU())
            self.norm1 = nn.LayerNorm(32)
            self.attn = nn.MultiheadAttention(32, 2, batch_first=True)
            self.norm2 = nn.LayerNorm(32)
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            t = self.stem(x).flatten(2).transpose(1, 2)  # (1, 256, 32)
            h = self.norm1(t)
            a, _ = self.attn(h, h, h, need_weights=False)
            t = t + a
            return self.head(self.norm2(t).mean(1))

    return TinyViT()


def _layernorm():
    """ConvNeXt-style block: depthwise 7x7, channels-last LayerNorm, MLP, residual."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
            self.norm = nn.LayerNorm(c)
            self.fc1 = nn.Linear(c, 2 * c)
            self.fc2 = nn.Linear(2 * c, c)

        def forward(self, x):
            y = self.dw(x).permute(0, 2, 3, 1)
            y = self.fc2(self.fc1(self.norm(y)).relu())
            return x + y.permute(0, 3, 1, 2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 24, 4, stride=4)
            self.block = Block(24)
            self.head = nn.Linear(24, 10)

        def forward(self, x):
            return self.head(self.block(self.stem(x)).mean((2, 3)))

    return Net()


def _silu_se():
    """EfficientNet-style MBConv: expand + SiLU, depthwise + SiLU, squeeze-excite, project, residual."""
    import torch
    from torch import nn

    class SE(nn.Module):
        def __init__(self, c, r):
            super().__init__()
            self.reduce = nn.Conv2d(c, r, 1)
            self.expand = nn.Conv2d(r, c, 1)

        def forward(self, x):
            s = x.mean((2, 3), keepdim=True)
            return x * torch.sigmoid(self.expand(nn.functional.silu(self.reduce(s))))

    class MBConv(nn.Module):
        def __init__(self, c, e):
            super().__init__()
            self.expand = nn.Sequential(nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e), nn.SiLU())
            self.dw = nn.Sequential(nn.Conv2d(e, e, 3, padding=1, groups=e, bias=False), nn.BatchNorm2d(e), nn.SiLU())
            self.se = SE(e, 8)
            self.project = nn.Sequential(nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c))

        def forward(self, x):
            return x + self.project(self.se(self.dw(self.expand(x))))

    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.SiLU(),
                         MBConv(16, 64), nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32), nn.SiLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def _upsample(mode: str):
    def build():
        import torch
        from torch import nn
        from torch.nn import functional as F

        class UNetLite(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
                self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
                self.dec = nn.Sequential(nn.Conv2d(48, 16, 3, padding=1), nn.ReLU())
                self.out = nn.Conv2d(16, 2, 1)

            def forward(self, x):
                s = self.enc(x)
                u = F.interpolate(self.down(s), scale_factor=2, mode=mode,
                                  **({} if mode == "nearest" else {"align_corners": False}))
                return self.out(self.dec(torch.cat([s, u], 1)))

        return UNetLite()
    return build


def _conv_transpose():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.ConvTranspose2d(32, 16, 2, stride=2), nn.ReLU(),
                         nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 2, 1))


def _pixel_shuffle():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 12, 3, padding=1), nn.PixelShuffle(2))


def _conv1d():
    from torch import nn

    return nn.Sequential(nn.Conv1d(8, 32, 5, padding=2), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Conv1d(32, 32, 3, stride=2, padding=1), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.MaxPool1d(2), nn.Conv1d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(64, 10))


def _grouped():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1, groups=4), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.Conv2d(32, 32, 1, groups=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def _dw_multiplier():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1, groups=16), nn.BatchNorm2d(32), nn.ReLU6(),
                         nn.Conv2d(32, 96, 3, stride=2, padding=1, groups=32), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 10))


def _same_pad():
    """TFLite SAME padding written in PyTorch: F.pad(0, 1, 0, 1) and a stride-2 conv with padding=0."""
    from torch import nn
    from torch.nn import functional as F

    class SamePad(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=0)

        def forward(self, x):
            return self.conv(F.pad(x, (0, 1, 0, 1)))

    return nn.Sequential(SamePad(3, 16, 2), nn.BatchNorm2d(16), nn.ReLU(), SamePad(16, 32, 2), nn.ReLU(),
                         nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(32, 10))


def _ds_cnn():
    from edgekit.profile.published import ds_cnn

    return ds_cnn()


FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("attention", _attention, (1, 3, 32, 32)),
    # as a user checks a fresh model: LayerNorm weight 1 and bias 0, zero attention biases
    Family("attention_untrained", _attention, (1, 3, 32, 32), trained=False),
    Family("layernorm", _layernorm, (1, 3, 32, 32)),
    Family("silu_se", _silu_se, (1, 3, 32, 32)),
    Family("upsample_nearest", _upsample("nearest"), (1, 3, 32, 32)),
    Family("upsample_bilinear", _upsample("bilinear"), (1, 3, 32, 32)),
    Family("conv_transpose", _conv_transpose, (1, 3, 32, 32)),
    Family("pixel_shuffle", _pixel_shuffle, (1, 3, 32, 32)),
    Family("conv1d", _conv1d, (1, 8, 128)),
    Family("grouped_conv", _grouped, (1, 3, 32, 32)),
    Family("dw_multiplier", _dw_multiplier, (1, 3, 32, 32)),
    Family("same_pad", _same_pad, (1, 3, 32, 32)),
    Family("ds_cnn", _ds_cnn, (1, 1, 49, 10)),
]}


def folded(name: str):
    """(BN-folded module in eval mode, example input, calibration array) of a family, seeded."""
    import torch

    from edgekit.passes.bn_stats import reestimate_bn_stats
    from edgekit.passes.eval_mode import to_eval
    from edgekit.passes.fold_bn import fold_bn

    fam = FAMILIES[name]
    torch.manual_seed(0)
    model = fam.build().eval()
    gen = torch.Generator().manual_seed(1)
    model = reestimate_bn_stats(model, [torch.rand((8, *fam.input_shape[1:]), generator=gen) for _ in range(4)])
    x = torch.rand(fam.input_shape, generator=gen)
    if fam.trained:
        _trained_like(model)
    module = to_eval(fold_bn(model, (x,)).model)
    calib = torch.rand((8, *fam.input_shape), generator=gen).numpy()
    return module, x, calib


def _trained_like(model) -> None:
    """Give parameters that PyTorch initialises to a constant (LayerNorm's weight 1 and bias 0,
    MultiheadAttention's zero biases) seeded random values, as a trained model has: the converter
    folds a multiplication by 1 and drops a zero bias, which a trained model never allows."""
    import torch

    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for _name, p in model.named_parameters():
            flat = p.flatten()
            if flat.numel() > 1 and bool((flat == flat[0]).all()):
                lo, hi = (0.5, 1.5) if float(flat[0]) == 1.0 else (-0.1, 0.1)
                p.copy_(torch.empty(p.shape).uniform_(lo, hi, generator=gen))


def build(name: str, cache_dir, dtype: str = "int8", **options) -> Path:
    """The .tflite of a family (edgekit's export), int8 or fp32, cached in ``cache_dir``; the fp32
    conversion (the slow part) is cached too and reused for the int8 file."""
    import artifacts

    return artifacts.artifact(net(name), dtype, cache_dir=cache_dir, **options)


def net(name: str):
    """A family as an ``artifacts.Net`` (``folded`` makes the module, example and calibration)."""
    import artifacts

    return artifacts.Net(f"family_{name}", make=partial(folded, name))


# ---- probes: one converter behaviour each (what it fuses, folds, inserts) ------------------------

def _probe(fn, cin: int = 8):
    def build():
        from torch import nn

        class Probe(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(cin, 8, 3, padding=1)
                self.conv2 = nn.Conv2d(8, 8, 1)
                self.bn = nn.BatchNorm2d(8)
                self.up = nn.ConvTranspose2d(8, 8, 2, stride=2)
                self.fc = nn.Linear(8, 8)

            def forward(self, x):
                return fn(self, x)
        return Probe()
    return build


def _probe_fns():
    import torch
    from torch.nn import functional as F

    return {
        "relu_after_max_pool": lambda s, x: F.relu(F.max_pool2d(s.conv(x), 2)),
        "relu_after_avg_pool": lambda s, x: F.relu(F.avg_pool2d(s.conv(x), 2)),
        "relu_after_concat": lambda s, x: F.relu(torch.cat([s.conv(x), s.conv2(s.conv(x))], 1)),
        "relu_after_mul": lambda s, x: F.relu(s.conv(x) * s.conv2(x)),
        "relu_after_div": lambda s, x: F.relu(s.conv(x) / (s.conv2(x).abs() + 1)),
        "relu_after_sub": lambda s, x: F.relu(s.conv(x) - s.conv2(x)),
        "relu_after_mean": lambda s, x: F.relu(s.conv(x).mean((2, 3), keepdim=True)) * x,
        "relu1_after_conv": lambda s, x: F.hardtanh(s.conv(x), -1.0, 1.0),
        "clamp06_after_conv": lambda s, x: torch.clamp(s.conv(x), 0.0, 6.0),
        "clamp_after_conv": lambda s, x: torch.clamp(s.conv(x), -0.5, 0.5),
        "bn_after_add": lambda s, x: s.conv2(s.bn(s.conv(x) + x)),
        "bn_after_conv_transpose": lambda s, x: s.conv2(s.bn(s.up(x))),
        # neither folds backward (an add) nor forward (a ReLU before the next conv): stays a BatchNorm
        "bn_standalone": lambda s, x: s.conv2(F.relu(s.bn(s.conv(x) + x))),
        "leaky_relu": lambda s, x: s.conv2(F.leaky_relu(s.conv(x), 0.1)),
        "hardswish": lambda s, x: s.conv2(F.hardswish(s.conv(x))),
        "tanh": lambda s, x: s.conv2(torch.tanh(s.conv(x))),
        "softmax_channels": lambda s, x: s.conv2(torch.softmax(s.conv(x), 1)),
        "sum_keepdim": lambda s, x: s.conv(x) * s.conv2(x).sum((2, 3), keepdim=True),
        "mean_no_keepdim": lambda s, x: s.fc(s.conv(x).mean((2, 3))),
        "flatten_fc": lambda s, x: torch.nn.functional.linear(s.conv(x).flatten(1), torch.ones(10, 512) * 0.01),
        # (x[:, :4].repeat(1, 2, 1, 1) on an NHWC tensor crashes litert-torch: its layout pass keeps
        # repeat's NCHW repeats on NHWC data)
        "channel_slice": lambda s, x: s.conv2(torch.cat([s.conv(x)[:, :4], x[:, 4:]], 1)),
        "strided_slice": lambda s, x: s.conv2(s.conv(x)[:, :, ::2, ::2]),
        "split_concat": lambda s, x: torch.cat(list(reversed(torch.split(s.conv(x), 4, 1))), 1),
        "maxpool_pad": lambda s, x: F.max_pool2d(s.conv(x), 3, 2, 1),
        "avgpool_pad": lambda s, x: F.avg_pool2d(s.conv(x), 3, 2, 1),
        "fc_zero_bias": lambda s, x: F.linear(s.conv(x).mean((2, 3)), s.fc.weight, torch.zeros(8)),
    }


PROBES: dict[str, Family] = {f"probe_{n}": Family(f"probe_{n}", _probe(fn), (1, 8, 8, 8))
                             for n, fn in _probe_fns().items()}
FAMILIES.update(PROBES)
