"""Build (once, cached) TFLite-Micro for a Cortex-M core and the harness firmware that runs a model.

**Library** (``libtflm.a``): the sources listed in ``tflm_sources.txt`` (TFLM's own
``list_library_sources`` for ``cortex_m_generic`` with ``OPTIMIZED_KERNEL_DIR=cmsis_nn``, without
``signal/``), compiled with the flags of TFLM's Makefile for that configuration:

* every file: ``-std=c++17`` (C: ``-std=c17``), ``-fno-rtti -fno-exceptions
  -fno-threadsafe-statics`` (C++), ``-fno-unwind-tables -fno-asynchronous-unwind-tables
  -ffunction-sections -fdata-sections -DTF_LITE_STATIC_MEMORY -DTF_LITE_DISABLE_X86_NEON``,
  ``-DTF_LITE_MCU_DEBUG_LOG -mthumb -mlittle-endian -fomit-frame-pointer -funsigned-char`` and the
  core's ``-mcpu/-mfpu/-mfloat-abi`` (tools/make/Makefile, targets/cortex_m_generic_makefile.inc);
  ``-DNDEBUG`` as ``BUILD_TYPE=release_with_logs`` (the build TFLM recommends for profiling: the
  default build's DCHECKs cost 5-10 % of the latency);
* optimisation as the Makefile: ``-Os`` for the framework (CORE_OPTIMIZATION_LEVEL), ``-O2`` for
  ``micro/kernels/`` (KERNEL_OPTIMIZATION_LEVEL) and for CMSIS-NN (THIRD_PARTY_KERNEL_...);
* ``kernels="cmsis-nn"``: ``kernels/cmsis_nn/X.cc`` replaces ``kernels/X.cc`` and CMSIS-NN's
  ``Source/**/*.c`` are added (without ``*_f16.c``, ``*_f32.c``, ``arm_nntables_flt.c``), with
  ``-DCMSIS_NN -DARM_NN_ENABLE_F16=0 -DARM_NN_ENABLE_F32=0`` (ext_libs/cmsis_nn.inc);
  ``kernels="reference"``: ``kernels/X.cc`` (needs a full tflite-micro clone).

**Cache**: ``EDGEKIT_EMULATOR_CACHE`` or ``~/.cache/edgekit/emulator``. The key hashes the
contents of every compiled source and of the headers under the include directories, the flags,
the compiler and QEMU versions, the core and the kernels: another pin, another flag or another
compiler is another directory. A build happens in a temporary directory renamed into place, under
an ``fcntl`` lock per key, so two processes never build the same key twice; objects compile in
parallel (one job per CPU).

**Firmware** (``harness.elf``): ``harness/*.c*`` compiled for the core and linked with the library,
newlib + semihosting (``--specs=rdimon.specs``) and ``harness/mps2.ld``; cached under the library's
key plus the harness sources' hash.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.emulator.toolchain import (
    CORES,
    DOWNLOADS,
    EmulatorUnavailable,
    SourceTree,
    Toolchain,
    check_core_kernels,
    find_sources,
    find_toolchain,
)
from edgekit.errors import EdgekitError

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "harness"
MANIFEST = HERE / "tflm_sources.txt"
BUILD_VERSION = 1  # bump when the build recipe changes

COMMON = ("-mthumb", "-mlittle-endian", "-fomit-frame-pointer", "-funsigned-char", "-fno-unwind-tables",
          "-fno-asynchronous-unwind-tables", "-ffunction-sections", "-fdata-sections", "-fmessage-length=0",
          "-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-DTF_LITE_MCU_DEBUG_LOG", "-DNDEBUG",
          "-w")
CXX_ONLY = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
C_ONLY = ("-std=c17",)
CMSIS_NN_DEFS = ("-DCMSIS_NN", "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0")
OPT_CORE, OPT_KERNEL, OPT_THIRD_PARTY = "-Os", "-O2", "-O2"
INCLUDE_DIRS = (".", f"{DOWNLOADS}/cmsis", f"{DOWNLOADS}/cmsis_nn", f"{DOWNLOADS}/cmsis_nn/Include",
                f"{DOWNLOADS}/cmsis/CMSIS/Core/Include", f"{DOWNLOADS}/flatbuffers/include",
                f"{DOWNLOADS}/gemmlowp", f"{DOWNLOADS}/ruy")
HEADER_ROOTS = ("tensorflow", str(DOWNLOADS))


class BuildError(EdgekitError):
    """The cross-compilation failed (the message names the file and the log)."""


@dataclass(frozen=True)
class Unit:
    """One translation unit: its path under tflite-micro/ and its optimisation level."""

    rel: str
    opt: str


def cache_root() -> Path:
    env = os.environ.get("EDGEKIT_EMULATOR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgekit" / "emulator"


def manifest() -> list[str]:
    return [ln.strip() for ln in MANIFEST.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def units(tree: SourceTree, kernels: str) -> list[Unit]:
    """The files to compile for ``kernels``, or EmulatorUnavailable naming a missing one."""
    out = []
    for rel in manifest():
        if rel.startswith("tensorflow/lite/micro/kernels/"):
            if kernels == "reference" and "/kernels/cmsis_nn/" in rel:
                rel = rel.replace("/kernels/cmsis_nn/", "/kernels/")
            out.append(Unit(rel, OPT_KERNEL))
        else:
            out.append(Unit(rel, OPT_CORE))
    missing = [u.rel for u in out if not (tree.tflm / u.rel).is_file()]
    if missing:
        extra = (" (the reference kernels need a full tflite-micro clone: the pinned CMSIS-NN file set "
                 "replaces them with kernels/cmsis_nn/)") if kernels == "reference" else ""
        raise EmulatorUnavailable(f"{tree.tflm} lacks {missing[0]} and {len(missing) - 1} other source(s) of the "
                                  f"{kernels} build{extra}: point EDGEKIT_TFLM_SRC at a tree that has them")
    if kernels == "cmsis-nn":
        src = tree.downloads / "cmsis_nn" / "Source"
        for p in sorted(src.rglob("*.c")):
            if p.name.endswith(("_f16.c", "_f32.c")) or p.name == "arm_nntables_flt.c":
                continue
            out.append(Unit(str(p.relative_to(tree.tflm)), OPT_THIRD_PARTY))
    return out


def compile_flags(core: str, kernels: str, unit: Unit, tree: SourceTree) -> list[str]:
    c = CORES[core]
    lang = C_ONLY if unit.rel.endswith(".c") else CXX_ONLY
    defs = CMSIS_NN_DEFS if kernels == "cmsis-nn" else ()
    incs = [f"-I{tree.tflm / d}" for d in INCLUDE_DIRS]
    return [*c.cpu_flags, *COMMON, *lang, *defs, unit.opt, *incs]


def _hash_file(h, path: Path, rel: str) -> None:
    h.update(rel.encode() + b"\0")
    h.update(path.read_bytes())
    h.update(b"\0")


@functools.lru_cache(maxsize=16)
def library_key(tree: SourceTree, core: str, kernels: str, toolchain_version: str) -> str:
    """Hash of everything that decides the library's bytes (see the module docstring)."""
    h = hashlib.sha256(f"edgekit-emulator-lib {BUILD_VERSION}\n{toolchain_version}\n{core}\n{kernels}\n".encode())
    for u in units(tree, kernels):
        h.update(" ".join(compile_flags(core, kernels, u, tree)).replace(str(tree.tflm), "<src>").encode())
        _hash_file(h, tree.tflm / u.rel, u.rel)
    for root in HEADER_ROOTS:
        for p in sorted((tree.tflm / root).rglob("*.h")):
            _hash_file(h, p, str(p.relative_to(tree.tflm)))
    return h.hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_compiler(cmd: list[str], log: Path) -> str | None:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if res.returncode != 0:
        with open(log, "a") as fh:
            fh.write(" ".join(cmd) + "\n" + res.stdout + res.stderr + "\n")
        first = next((ln for ln in res.stderr.splitlines() if "error" in ln), res.stderr.strip()[:300])
        return first
    return None


def _compile_all(jobs: list[tuple[list[str], Path]], log: Path, workers: int | None) -> None:
    workers = workers or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_run_compiler, cmd, log): cmd for cmd, _ in jobs}
        for fut in concurrent.futures.as_completed(futures):
            err = fut.result()
            if err is not None:
                for f in futures:
                    f.cancel()
                raise BuildError(f"cross-compiling TFLite-Micro failed: {err} (full log: {log})")


def _build_library(tc: Toolchain, tree: SourceTree, core: str, kernels: str, out: Path, workers) -> None:
    objdir = out / "obj"
    objdir.mkdir(parents=True)
    jobs = []
    for u in units(tree, kernels):
        obj = objdir / (u.rel.replace("/", "__") + ".o")
        exe = tc.gcc if u.rel.endswith(".c") else tc.gxx
        jobs.append(([exe, *compile_flags(core, kernels, u, tree), "-c", str(tree.tflm / u.rel), "-o", str(obj)], obj))
    _compile_all(jobs, _log(out), workers)
    objs = sorted(str(o) for _, o in jobs)
    res = subprocess.run([tc.ar, "rcs", str(out / "libtflm.a"), *objs], capture_output=True, text=True,
                         timeout=300, check=False)
    if res.returncode != 0:
        raise BuildError(f"ar failed: {res.stderr.strip()[:300]}")
    shutil.rmtree(objdir)


def _log(tmp: Path) -> Path:
    """The compiler log of a build in ``tmp`` (``<final>.tmp-XXXX``): next to it, ``<final>.log``, so
    that it survives the removal of a failed build's directory."""
    return tmp.parent / (tmp.name.rsplit(".tmp-", 1)[0] + ".log")


def _cached(final: Path, lock: Path, make) -> Path:
    """``final`` if built, else build it with ``make(tmpdir)`` under ``lock`` and rename it into place."""
    if final.is_dir():
        return final
    with _locked(lock):
        if final.is_dir():  # built by another process while we waited
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
        try:
            make(tmp)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


def library(core: str = "cortex-m4", kernels: str = "cmsis-nn", *, workers: int | None = None) -> Path:
    """Path of ``libtflm.a`` for ``core``/``kernels``, building it on first use (minutes, once)."""
    check_core_kernels(core, kernels)
    tc, tree = find_toolchain(), find_sources()
    key = library_key(tree, core, kernels, tc.version)
    d = _cached(cache_root() / "lib" / f"{core}-{kernels}-{key}", cache_root() / "locks" / f"lib-{key}.lock",
                lambda tmp: _build_library(tc, tree, core, kernels, tmp, workers))
    return d / "libtflm.a"


def _harness_hash() -> str:
    h = hashlib.sha256(f"edgekit-harness {BUILD_VERSION}".encode())
    for p in sorted(HARNESS.iterdir()):
        if p.is_file():
            _hash_file(h, p, p.name)
    return h.hexdigest()[:12]


def _build_firmware(tc: Toolchain, tree: SourceTree, core: str, kernels: str, lib: Path, out: Path) -> None:
    c = CORES[core]
    objs = []
    for src in sorted(HARNESS.glob("*.c*")):
        unit = Unit(src.name, "-O2")
        obj = out / (src.name + ".o")
        exe = tc.gcc if src.suffix == ".c" else tc.gxx
        cmd = [exe, *compile_flags(core, kernels, unit, tree), f"-I{HARNESS}",
               f"-DEDGEKIT_PSRAM_BASE=0x{c.psram_base:08x}u", "-c", str(src), "-o", str(obj)]
        err = _run_compiler(cmd, _log(out))
        if err is not None:
            raise BuildError(f"compiling the emulator harness failed: {err} (full log: {_log(out)})")
        objs.append(str(obj))
    # gcc, not g++, drives the link: g++ would add -lstdc++, which runtime.cc replaces
    cmd = [tc.gcc, *c.cpu_flags, "-mthumb", "-nostartfiles", "--specs=rdimon.specs", f"-T{HARNESS / 'mps2.ld'}",
           "-Wl,--gc-sections", *objs, str(lib), "-lm", "-o", str(out / "harness.elf")]
    err = _run_compiler(cmd, _log(out))
    if err is not None:
        raise BuildError(f"linking the emulator harness failed: {err} (full log: {_log(out)})")


def firmware(core: str = "cortex-m4", kernels: str = "cmsis-nn", *, workers: int | None = None) -> Path:
    """Path of the harness ELF for ``core``/``kernels`` (builds the library first if needed)."""
    lib = library(core, kernels, workers=workers)
    tc, tree = find_toolchain(), find_sources()
    key = lib.parent.name.rsplit("-", 1)[-1] + "-" + _harness_hash()
    d = _cached(cache_root() / "fw" / f"{core}-{kernels}-{key}", cache_root() / "locks" / f"fw-{key}.lock",
                lambda tmp: _build_firmware(tc, tree, core, kernels, lib, tmp))
    return d / "harness.elf"
