"""One disk-cached factory for the converted models the tests need: any network, any dtype, .tflite or .pte.

    path = artifact(TINY_CNN, "int8")                      # .tflite, int8 (ai-edge-quantizer)
    path = artifact("conv_stack", "fp32")                  # a network of tests/tflm_models.py
    path = artifact(TINY_CNN, fmt="pte", backend="portable", compare_default=False)
    info = pte_info(path)                                  # export_pte's result without the bytes

Under pytest use the session fixture ``artifact`` (tests/conftest.py): same call, the cache folder
filled in, a skip when a converter is not installed. Tests that use it carry ``@pytest.mark.export``:
a cold cache (CI) converts.

A network is a ``Net``: ``build()`` (called after ``torch.manual_seed(seed)``) returns the module,
``input_shape`` its batch-1 input, ``calibration()`` the int8 calibration samples (N, *input_shape),
``prepare(module)`` an optional step before export (BatchNorm statistics re-estimated, BN folded);
``make()`` replaces all of these when a builder produces (module, example input, calibration)
itself. A name (``str``) looks the network up in ``NETS`` (below), ``tflm_models`` (``SPECS`` and the
``op_*`` one-operator models) and ``lowering_families`` (``FAMILIES``).

Conversion: fp32 with ``edgekit.export.tflite.convert_fp32``; int8 and fp16 quantize that fp32 file
(cached too, so int8 after fp32 costs only the quantizer); .pte with ``edgekit.export.executorch.
export_pte(**options)``, whose result (planned bytes, operators, ...) is kept beside the file as JSON.

The cache key is a SHA-256 of everything that makes the file: the network's name, input shape, seed
and ``params``; the format and export options; the source of this module and of every file that
defines the network's callables (their closures included); the source of every edgekit module the
exporter and those files import, followed transitively (function-level imports and
``"edgekit.x.y:name"`` builder strings included); and the installed versions of torch, torchvision,
numpy, litert-torch, ai-edge-quantizer, ai-edge-litert, executorch and torchao. Change any of them
and the next call converts again; nothing is bumped by hand. Files are named
``<net>.<dtype>[.<options>].<key>.<ext>`` in ``EDGEKIT_TFLM_CACHE`` (or a temporary folder of the
process when unset); old keys are left behind, delete the folder to reclaim them.
"""

from __future__ import annotations

import ast
import atexit
import functools
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_ENV = "EDGEKIT_TFLM_CACHE"
DTYPES = ("fp32", "int8", "fp16")
FORMATS = ("tflite", "pte")
_PACKAGES = ("torch", "torchvision", "numpy", "litert-torch", "ai-edge-quantizer", "ai-edge-litert", "executorch",
             "torchao")
_EXPORTERS = {"tflite": "edgekit.export.tflite", "pte": "edgekit.export.executorch"}
# what a conversion imports, by format and dtype (a miss without them is a skip under pytest)
CONVERTERS = {("tflite", "fp32"): ("torch", "litert_torch"), ("tflite", "int8"): ("torch", "litert_torch",
              "ai_edge_quantizer"), ("tflite", "fp16"): ("torch", "litert_torch", "ai_edge_quantizer"),
              ("pte", "fp32"): ("torch", "executorch"), ("pte", "int8"): ("torch", "executorch", "torchao")}


@dataclass(frozen=True)
class Net:
    name: str  # file-name stem; two different networks may share one (the key tells them apart)
    build: Callable[[], Any] | None = None  # () -> nn.Module, after torch.manual_seed(seed)
    input_shape: tuple[int, ...] = ()
    calibration: Callable[[], Any] | None = None  # () -> float32 array (N, *input_shape), for int8
    prepare: Callable[[Any], Any] | None = None  # (module) -> module, before export
    make: Callable[[], tuple] | None = None  # () -> (module, example input, calibration or None)
    seed: int = 0
    params: tuple = ()  # anything else the callables' source does not show

    def callables(self) -> list:
        return [f for f in (self.build, self.calibration, self.prepare, self.make) if f is not None]

    def materialize(self) -> tuple:
        """(module in eval mode, example input, calibration or None)."""
        if self.make is not None:
            return self.make()
        import torch

        torch.manual_seed(self.seed)
        module = self.build().eval()
        if self.prepare is not None:
            module = self.prepare(module).eval()
        example = torch.randn(self.input_shape, generator=torch.Generator().manual_seed(self.seed))
        return module, example, self.calibration() if self.calibration is not None else None


# ---- networks any test may share (where the exact model does not matter) ---------------------------

def _tiny_cnn():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


def _tiny_gelu():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def normal_calibration(n: int = 8, shape=(1, 3, 16, 16), seed: int = 0):
    import numpy as np

    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


# conv-BN-ReLU, a stride-2 conv, global average pool, linear: 16x16x3 in, 4 logits out. Its
# .tflite has CONV_2D x2, MEAN, FULLY_CONNECTED and the converter's layout TRANSPOSE.
TINY_CNN = Net("tiny_cnn", _tiny_cnn, (1, 3, 16, 16), calibration=normal_calibration)
# GELU has no TFLite-Micro kernel: the model every "cannot run on TFLite-Micro" test needs.
TINY_GELU = Net("tiny_gelu", _tiny_gelu, (1, 3, 16, 16), calibration=normal_calibration)
NETS = {n.name: n for n in (TINY_CNN, TINY_GELU)}


def lookup(name: str) -> Net:
    if name in NETS:
        return NETS[name]
    import lowering_families
    import tflm_models

    if name in tflm_models.SPECS or name.startswith("op_"):
        return tflm_models.net(name)
    if name in lowering_families.FAMILIES:
        return lowering_families.net(name)
    raise KeyError(f"unknown test network {name!r}")


# ---- the factory -----------------------------------------------------------------------------------

def artifact(net: Net | str, dtype: str = "fp32", fmt: str = "tflite", *, cache_dir=None, **options) -> Path:
    """Path of ``net`` converted to ``dtype`` in ``fmt``, converting only when the key is not cached.

    ``options`` go to ``export_pte`` (``backend``, ``planner``, ``inplace``, ``compare_default``);
    an int8 .tflite takes ``share_concat_scales`` (``export.tflite.quantize_int8``).
    """
    net = lookup(net) if isinstance(net, str) else net
    path = cached_path(net, dtype, fmt, cache_dir=cache_dir, **options)
    if path.exists():
        return path
    if fmt == "pte":
        from edgekit.export.executorch import export_pte

        module, example, calibration = net.materialize()
        res = export_pte(module, example, dtype=dtype, calibration=calibration, **options)
        _write(_info_path(path), json.dumps({k: v for k, v in res.items() if k != "bytes"}).encode())
        _write(path, res["bytes"])
        return path
    made = functools.lru_cache(maxsize=1)(net.materialize)  # build the module once, if at all
    fp32_path = cached_path(net, "fp32", fmt, cache_dir=cache_dir)
    if not fp32_path.exists():
        from edgekit.export.tflite import convert_fp32

        module, example, _ = made()
        _write(fp32_path, convert_fp32(module, example))
    if dtype == "int8":
        from edgekit.export.tflite import quantize_int8

        calibration = net.calibration() if net.make is None else made()[2]
        if calibration is None:
            raise ValueError(f"network {net.name!r} has no calibration data for int8")
        _write(path, quantize_int8(fp32_path.read_bytes(), calibration, **options))
    elif dtype == "fp16":
        from edgekit.export.tflite import quantize_fp16

        _write(path, quantize_fp16(fp32_path.read_bytes()))
    return path


def cached_path(net: Net | str, dtype: str = "fp32", fmt: str = "tflite", *, cache_dir=None, **options) -> Path:
    """Where ``artifact`` keeps (or will keep) this file; it exists when the cache holds it."""
    net = lookup(net) if isinstance(net, str) else net
    if dtype not in DTYPES or fmt not in FORMATS:
        raise ValueError(f"unknown dtype/format {dtype!r}/{fmt!r}: choose {DTYPES} / {FORMATS}")
    if fmt == "tflite" and options and (dtype != "int8" or set(options) - {"share_concat_scales"}):
        raise ValueError(f"a {dtype} .tflite conversion takes no options {sorted(options)} (int8: share_concat_scales)")
    opts = "".join(f".{k}-{v}" for k, v in sorted(options.items()))
    return Path(cache_dir or default_cache_dir()) / f"{net.name}.{dtype}{opts}.{cache_key(net, fmt, options)}.{fmt}"


def pte_info(path) -> dict:
    """What ``export_pte`` returned for a cached .pte, without ``bytes``."""
    return json.loads(_info_path(Path(path)).read_text())


def missing_converters(dtype: str, fmt: str) -> list[str]:
    return [m for m in CONVERTERS.get((fmt, dtype), ()) if importlib.util.find_spec(m) is None]


@functools.cache
def default_cache_dir() -> Path:
    """``EDGEKIT_TFLM_CACHE``, or a temporary folder removed when the process ends."""
    if os.environ.get(CACHE_ENV):
        d = Path(os.environ[CACHE_ENV])
        d.mkdir(parents=True, exist_ok=True)
        return d
    d = tempfile.mkdtemp(prefix="edgekit-test-artifacts-")
    atexit.register(shutil.rmtree, d, True)
    return Path(d)


def _info_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".part{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


# ---- the cache key ---------------------------------------------------------------------------------

def cache_key(net: Net, fmt: str, options: dict | None = None) -> str:
    files = {Path(__file__).resolve()} | {f for c in net.callables() for f in _source_files(c)}
    h = hashlib.sha256()
    h.update(repr((net.name, tuple(net.input_shape), net.seed, net.params, fmt,
                   sorted((options or {}).items()))).encode())
    for f in sorted(files):
        h.update(_file_digest(f))
    for module, f in sorted(_edgekit_closure(frozenset(files), _EXPORTERS[fmt]).items()):
        h.update(module.encode() + _file_digest(f))
    h.update(_versions().encode())
    return h.hexdigest()[:12]


def _source_files(obj, seen=None) -> set[Path]:
    """Files defining ``obj`` and the functions and classes its closure holds."""
    seen = set() if seen is None else seen
    while isinstance(obj, functools.partial):
        obj = obj.func
    obj = getattr(obj, "__func__", obj)
    if id(obj) in seen:
        return set()
    seen.add(id(obj))
    code = getattr(obj, "__code__", None)
    files = {Path(code.co_filename).resolve()} if code is not None else {Path(inspect.getsourcefile(obj)).resolve()}
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if inspect.isfunction(value) or inspect.isclass(value) or isinstance(value, functools.partial):
            files |= _source_files(value, seen)
    return files


@functools.cache
def _file_digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


@functools.cache
def _versions() -> str:
    out = []
    for dist in _PACKAGES:
        try:
            out.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{dist} absent")
    return ";".join(out)


_BUILDER_STRING = re.compile(r"^(edgekit(?:\.\w+)+)(?::\w+)?$")


@functools.cache
def _edgekit_imports(path: Path) -> frozenset[str]:
    """edgekit modules a file imports anywhere (function bodies too) or names as "edgekit.x:attr"."""
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _BUILDER_STRING.match(node.value):
            names.add(_BUILDER_STRING.match(node.value).group(1))
    return frozenset(n for n in names if n.split(".")[0] == "edgekit")


@functools.cache
def _edgekit_root() -> Path:
    return Path(importlib.util.find_spec("edgekit").origin).resolve().parent.parent


def _module_file(module: str) -> Path | None:
    base = _edgekit_root() / module.replace(".", "/")
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None  # a name imported from a module, not a module


@functools.cache
def _edgekit_closure(files: frozenset[Path], exporter: str) -> dict[str, Path]:
    """Every edgekit module (name -> file) the exporter and ``files`` import, transitively."""
    todo = [exporter] + [m for f in files for m in _edgekit_imports(f)]
    found: dict[str, Path] = {}
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):  # the module and the packages above it
            module = ".".join(parts[:i])
            if module in found:
                continue
            f = _module_file(module)
            if f is not None:
                found[module] = f
                todo.extend(_edgekit_imports(f))
    return found
