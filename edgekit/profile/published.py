"""Check the emulated latency against the targets' ``[[published]]`` measurements.

Each published row names a model spec. It is built with edgekit's registry
(``mobilenet_v2:...``, ``mobilenet_v3_*``, ``squeezenet*``), torchvision (``torchvision:NAME``,
``weights=None``) or, for the architectures neither has, the small re-implementations below
of the published networks (MobileNet v1, and the MLPerf Tiny ResNet-8, DS-CNN and FC
autoencoder), captured at the row's input shape and dtype, and estimated on the row's target
with the row's thread count. ``calibration`` rows may be used to fit; ``validation`` rows are
held out; ``context`` rows are another engine and are not compared.

Rows whose architecture is not available offline (MCUNet's searched networks, NASNet-Mobile,
Inception v4, Inception-ResNet v2) are listed as skipped with the reason.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

_SKIP = {
    "mcunet": "MCUNet's searched architectures are downloaded configs, not available offline",
    "nasnet_mobile": "no NASNet-Mobile builder (not in torchvision)",
    "inception_v4": "no Inception v4 builder (not in torchvision)",
    "inception_resnet_v2": "no Inception-ResNet v2 builder (not in torchvision)",
}


class Unavailable(Exception):
    pass


# ---- re-implementations of published architectures (torch imported lazily) ----------------

def _global_pool(size: tuple[int, int] | None):
    """The MLPerf Tiny reference models end with ``AveragePooling2D(pool_size=<final map>)``, which
    the converters keep as AVERAGE_POOL_2D (CMSIS-NN's fast kernel); an adaptive pool becomes MEAN,
    whose TFLite-Micro int8 kernel costs ~130 instructions per element on a Cortex-M4 (measured in
    the emulator: 11 % of DS-CNN). ``size`` None: adaptive (any input size)."""
    from torch import nn

    return nn.AdaptiveAvgPool2d(1) if size is None else nn.AvgPool2d(size)


def _halvings(n: int, times: int) -> int:
    for _ in range(times):  # a 3x3 (or 1x1) stride-2 convolution with padding k // 2: ceil(n / 2)
        n = (n + 1) // 2
    return n


def mobilenet_v1(*, width: float = 1.0, num_classes: int = 1000, resolution: int | None = None):
    """MobileNet v1 (Howard et al. 2017, Table 1), channels max(int(c * width), 8) as TF-slim;
    with ``resolution``, a fixed average pool over the final map (as the MLPerf Tiny VWW model)."""
    from torch import nn

    def c(n):
        return max(int(n * width), 8)

    def cbr(i, o, k, s, g=1):
        return [nn.Conv2d(i, o, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(o), nn.ReLU6()]

    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    layers = cbr(3, c(32), 3, 2)
    cin = c(32)
    for out, s in cfg:
        layers += cbr(cin, cin, 3, s, g=cin) + cbr(cin, c(out), 1, 1)
        cin = c(out)
    final = _halvings(resolution, 5) if resolution else None
    return nn.Sequential(*layers, _global_pool(final and (final, final)), nn.Flatten(), nn.Linear(cin, num_classes))


def resnet8(*, num_classes: int = 10, resolution: int = 32):
    """MLPerf Tiny image classification ResNet-8 (16/32/64 filters, 3 stacks)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
            self.b2 = nn.BatchNorm2d(cout)
            self.short = nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            return torch.relu(self.b2(self.c2(y)) + self.short(x))

    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU(), Block(16, 16, 1),
                         Block(16, 32, 2), Block(32, 64, 2), _global_pool((_halvings(resolution, 2),) * 2),
                         nn.Flatten(),
                         nn.Linear(64, num_classes))


def ds_cnn(*, num_classes: int = 12, input: tuple[int, int] = (49, 10)):
    """MLPerf Tiny keyword spotting DS-CNN (64 filters, 10x4 first conv stride 2, 4 DS blocks)."""
    from torch import nn

    final = ((input[0] + 10 - 10) // 2 + 1, (input[1] + 2 - 4) // 2 + 1)  # the 10x4 stride-2 conv, padding (5, 1)

    layers = [nn.Conv2d(1, 64, (10, 4), 2, (5, 1)), nn.BatchNorm2d(64), nn.ReLU()]
    for _ in range(4):
        layers += [nn.Conv2d(64, 64, 3, 1, 1, groups=64), nn.BatchNorm2d(64), nn.ReLU(),
                   nn.Conv2d(64, 64, 1), nn.BatchNorm2d(64), nn.ReLU()]
    return nn.Sequential(*layers, _global_pool(final), nn.Flatten(), nn.Linear(64, num_classes))


def fc_autoencoder(*, input: int = 640):
    """MLPerf Tiny anomaly detection autoencoder: 640-128x4-8-128x4-640, BN + ReLU."""
    from torch import nn

    dims = [input, 128, 128, 128, 128, 8, 128, 128, 128, 128]
    layers = []
    for i, o in zip(dims, dims[1:]):
        layers += [nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(128, input))


def build(spec: str, input_shape=None):
    """(module in eval mode, input shape) for a published row's model spec."""
    from edgekit.loader import parse_options

    name, _, opts = spec.partition(":")
    if name in _SKIP:
        raise Unavailable(_SKIP[name])
    if name == "torchvision" or name in ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
                                         "squeezenet1_0", "squeezenet1_1", "shufflenet_v2"):
        from edgekit.loader import load_model

        lm = load_model(spec, input_shape=tuple(input_shape) if input_shape else None)
        return lm.module.eval(), tuple(lm.input_shape)
    kw = parse_options(opts, spec)
    if name == "squeezenet":  # the TFLite hosted SqueezeNet: taken as SqueezeNet 1.0 (uncertain)
        from edgekit.loader import load_model

        lm = load_model("squeezenet1_0:" + opts if opts else "squeezenet1_0",
                        input_shape=tuple(input_shape) if input_shape else None)
        return lm.module.eval(), tuple(lm.input_shape)
    if name == "mobilenet_v1":
        res = int(kw.pop("resolution", 224))
        side = int(input_shape[-1]) if input_shape else res
        m = mobilenet_v1(width=float(kw.get("width", 1.0)), num_classes=int(kw.get("num_classes", 1000)),
                         resolution=side)
        return m.eval(), tuple(input_shape) if input_shape else (1, 3, res, res)
    if name == "resnet8":
        res = int(kw.get("resolution", 32))
        side = int(input_shape[-1]) if input_shape else res
        return resnet8(num_classes=int(kw.get("num_classes", 10)), resolution=side).eval(), \
            tuple(input_shape or (1, 3, res, res))
    if name == "ds_cnn":
        h, w = (int(v) for v in str(kw.get("input", "49x10")).split("x"))
        if input_shape:
            h, w = int(input_shape[-2]), int(input_shape[-1])
        return (ds_cnn(num_classes=int(kw.get("num_classes", 12)), input=(h, w)).eval(),
                tuple(input_shape or (1, 1, h, w)))
    if name == "fc_autoencoder":
        n = int(kw.get("input", 640))
        return fc_autoencoder(input=n).eval(), tuple(input_shape or (1, n))
    raise Unavailable(f"no builder for {name!r}")


# ---- the comparison ---------------------------------------------------------------------------

@dataclass
class Row:
    target: str
    model: str
    dtype: str
    threads: int | None
    split: str
    published_ms: float
    estimate_ms: float | None = None
    error_pct: float | None = None  # (estimate - published) / published
    macs: int | None = None
    published_macs: int | None = None
    uncertain: bool = False
    runtime: str | None = None
    skipped: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _graph(spec: str, input_shape, dtype: str, cache: dict):
    key = (spec, tuple(input_shape) if input_shape else None, dtype)
    if key not in cache:
        from edgekit.graph.capture import capture

        try:
            module, shape = build(spec, input_shape)
            cache[key] = capture(module, shape, dtype=dtype, name=spec)
        except Unavailable as exc:
            cache[key] = exc
    return cache[key]


def compare(*, targets=None, splits=("calibration", "validation"), efficiency=None, cache=None) -> list[Row]:
    """Estimate every published row of the given splits (all targets by default)."""
    from edgekit.profile.emulate import estimate_graph
    from edgekit.targets import list_targets, load_target

    tgts = [load_target(t) for t in targets] if targets else list_targets()
    cache = {} if cache is None else cache
    rows = []
    for tgt in tgts:
        for p in tgt.published:
            if p.split not in splits:
                continue
            row = Row(target=tgt.id, model=p.model, dtype=p.dtype, threads=p.threads, split=p.split,
                      published_ms=p.latency_ms, published_macs=p.macs, uncertain=p.uncertain, runtime=p.runtime)
            g = _graph(p.model, p.input_shape, p.dtype, cache)
            if not isinstance(g, Exception):
                from edgekit.profile.emulate import runtime_view

                g = runtime_view(g, tgt)
            if isinstance(g, Exception):
                row.skipped = str(g)
            else:
                est = estimate_graph(g, tgt, dtype=p.dtype, threads=p.threads, model=p.model, efficiency=efficiency)
                row.estimate_ms = est.total_ms
                row.macs = g.macs
                row.error_pct = 100.0 * (est.total_ms - p.latency_ms) / p.latency_ms
            rows.append(row)
    return rows


def error_summary(rows: list[Row], split: str = "validation") -> dict:
    errs = [abs(r.error_pct) for r in rows if r.split == split and r.error_pct is not None]
    if not errs:
        return {"n": 0, "median_abs_pct": None, "max_abs_pct": None}
    return {"n": len(errs), "median_abs_pct": statistics.median(errs), "max_abs_pct": max(errs)}


def markdown_table(rows: list[Row]) -> str:
    out = ["| target | model | dtype | threads | split | published ms | estimate ms | error % |",
           "|---|---|---|---:|---|---:|---:|---:|"]
    for r in rows:
        est = "skipped: " + r.skipped if r.skipped else f"{r.estimate_ms:.2f}"
        err = "" if r.error_pct is None else f"{r.error_pct:+.0f}"
        split = r.split + (" (uncertain)" if r.uncertain else "")
        out.append(f"| {r.target} | `{r.model}` | {r.dtype} | {r.threads or ''} | {split} | {r.published_ms:g} | "
                   f"{est} | {err} |")
    return "\n".join(out)
