"""Every registered network built as edgekit builds it (.tflite and .pte, fp32 and int8), cached
on disk, for tests/test_clean_artifacts.py and benchmarks/clean_artifacts.py.

Three variants of each network:

- ``"after"``: what ``edgekit build`` makes now: BN folded, channel shuffles moved into the
  weights (``passes.shuffle_free``, spelled for the format), TFLite SAME padding on the
  microcontroller networks, PADs folded into SAME convs, concat scales shared in int8;
- ``"unpermuted"``: the same model and int8 path without ``shuffle_free``: the reference the
  shuffle-free artifacts must reproduce;
- ``"before"``: edgekit before issue 16 (PyTorch padding on the MCU networks, shuffles computed,
  no PAD folding, no shared concat scales), for the benchmark's before/after table.

Every network is untrained and seeded; its BatchNorm statistics are re-estimated on its own
calibration set (``models.calibration_data``, 32 synthetic images) as ``edgekit build`` does for
the default model, so int8 scales are meaningful. Conversions take 5-60 s each, so files are
cached in ``cache_dir`` (set ``EDGEKIT_TFLM_CACHE`` to keep them across sessions; the key has
``FACTORY_VERSION``: bump it when a builder changes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FACTORY_VERSION = 1
MCU_RESOLUTION = 96
PTE_CALIBRATION = 8
VARIANTS = ("before", "unpermuted", "after")
_MCU_BUILDERS = {"mcu_mobilenet_v1": "mcu_mobilenet_v1", "mcunet_tiny": "mcunet_tiny"}


@dataclass(frozen=True)
class Net:
    name: str
    width: float | None = None
    resolution: int = MCU_RESOLUTION

    @property
    def spec(self) -> str:
        args = ([f"width={self.width:g}"] if self.width is not None else []) + [f"resolution={self.resolution}"]
        return f"{self.name}:{','.join(args)}"

    @property
    def key(self) -> str:
        return self.spec.replace(":", "_").replace(",", "_").replace("=", "")


def registered(resolution: int = MCU_RESOLUTION) -> list[Net]:
    """Every network `edgekit models` lists, at a small microcontroller resolution."""
    from edgekit.models import list_models

    return [Net(info.name, None, resolution) for info in list_models()]


def cache_dir_from_env(default: str = "/tmp/edgekit-clean-cache") -> Path:
    d = os.environ.get("EDGEKIT_TFLM_CACHE")
    return Path(d) / "clean" if d else Path(default)


def calibration(net: Net):
    """The calibration batch (N, 1, 3, R, R) as float32 NumPy: one sample per row, batch 1."""
    from edgekit.models.calibration import calibration_data

    return calibration_data(net.name, resolution=net.resolution)[:, None].numpy()


def prepared(net: Net, variant: str, fmt: str):
    """(module, example input): seeded, BN re-estimated, folded, and for "after" shuffle-free."""
    import torch

    from edgekit.models import create_model
    from edgekit.models.calibration import calibration_data
    from edgekit.passes.bn_stats import reestimate_bn_stats
    from edgekit.passes.fold_bn import fold_bn

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    torch.manual_seed(0)
    kwargs = {"resolution": net.resolution} | ({"width": net.width} if net.width is not None else {})
    if variant == "before" and net.name in _MCU_BUILDERS:
        from edgekit.models import mcu

        builder = getattr(mcu, _MCU_BUILDERS[net.name])
        model = builder(pad_mode="torch", **({"width": net.width} if net.width is not None else {})).eval()
    else:
        model = create_model(net.name, **kwargs)
    cal = calibration_data(net.name, resolution=net.resolution)
    model = reestimate_bn_stats(model, [cal[i:i + 8] for i in range(0, len(cal), 8)], inplace=True).eval()
    x = cal[:1]
    module = fold_bn(model, (x,)).model
    if variant == "after":
        from edgekit.passes.shuffle_free import layout_for, shuffle_free

        # the .tflite as edgekit builds it for TFLite-Micro (for LiteRT the build keeps the shuffles)
        module = shuffle_free(module, (x,), layout=layout_for(fmt, "tflite-micro")).model
    return module, x


def path_for(net: Net, fmt: str, dtype: str, variant: str, cache_dir) -> Path:
    return Path(cache_dir) / f"{net.key}.{variant}.{dtype}.v{FACTORY_VERSION}.{fmt}"


def build(net: Net, fmt: str, dtype: str, variant: str, cache_dir) -> Path:
    """Path of the artifact, building it (and, for .tflite, its fp32 parent) when not cached."""
    if fmt not in ("tflite", "pte") or dtype not in ("fp32", "int8"):
        raise ValueError(f"unknown format/dtype {fmt}/{dtype}")
    path = path_for(net, fmt, dtype, variant, cache_dir)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tflite":
        fp32_path = path_for(net, fmt, "fp32", variant, cache_dir)
        if not fp32_path.exists():
            from edgekit.export.tflite import convert_fp32

            module, x = prepared(net, variant, fmt)
            _write(fp32_path, convert_fp32(module, x, fold_pads=variant != "before"))
        if dtype == "int8":
            from edgekit.export.tflite import quantize_int8

            _write(path, quantize_int8(fp32_path.read_bytes(), calibration(net),
                                       share_concat_scales=variant != "before"))
        return path
    from edgekit.export.executorch import export_pte

    module, x = prepared(net, variant, fmt)
    # PT2E calibration runs the observed model in Python: 8 samples keep a build under a few minutes
    res = export_pte(module, x, dtype=dtype,
                     calibration=calibration(net)[:PTE_CALIBRATION] if dtype == "int8" else None,
                     compare_default=False)
    _write(path, res["bytes"])
    return path


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(f".part{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


if __name__ == "__main__":  # build the whole cache: python tests/clean_builds.py [DIR]
    import sys
    import time

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else cache_dir_from_env()
    # "before" is compared in .tflite only (benchmarks/clean_artifacts.py); "unpermuted" only for the shuffle nets
    nets = registered() + [Net("shufflenet_v2", 0.5)]
    jobs = [(net, v, fmt, dt) for v in ("after", "unpermuted", "before") for net in nets
            for fmt in ("tflite", "pte") for dt in ("fp32", "int8")
            if (v != "unpermuted" or net.name == "shufflenet_v2") and (v != "before" or fmt == "tflite")]
    for net, variant, fmt, dtype in jobs:
        t0 = time.perf_counter()
        try:
            p = build(net, fmt, dtype, variant, out)
            print(f"{net.spec:40s} {variant:10s} {fmt:6s} {dtype:4s} {p.stat().st_size:>10,d} B "
                  f"{time.perf_counter() - t0:6.1f} s", flush=True)
        except Exception as exc:  # report and go on
            print(f"{net.spec:40s} {variant:10s} {fmt:6s} {dtype:4s} FAILED {type(exc).__name__}: "
                  f"{exc}"[:300], flush=True)
