"""Where the emulator's tools and sources are, and what to do when they are not there.

* **Toolchain** (Debian/Ubuntu packages): ``arm-none-eabi-gcc``/``g++``/``ar`` from
  ``gcc-arm-none-eabi``, newlib from ``libnewlib-arm-none-eabi``, the C++ headers from
  ``libstdc++-arm-none-eabi-dev`` (TFLite-Micro builds with ``-fno-exceptions -fno-rtti``: the
  harness supplies the few C++ runtime functions it needs, so the 1.5 GB prebuilt libstdc++ is
  not needed), and ``qemu-system-arm`` (QEMU >= 7: ``mps2-an386`` = Cortex-M4, ``mps2-an500`` =
  Cortex-M7). ``EDGEKIT_ARM_GCC`` may name the ``arm-none-eabi-gcc`` to use (the others are
  taken from the same directory) and ``EDGEKIT_QEMU`` the ``qemu-system-arm``.
* **Sources**: ``EDGEKIT_TFLM_SRC`` names a directory holding ``tflite-micro/`` (with its
  ``tensorflow/lite/micro/tools/make/downloads/{cmsis_nn,cmsis,flatbuffers,gemmlowp,ruy}``).
  Unset: ``<repo>/../shared/third_party`` when it exists (CI runs from a clean clone next to
  ``shared/``). The pinned commits are listed in ``tflm_sources.txt`` and in the README of that
  directory.

A missing piece raises :class:`EmulatorUnavailable`, whose message is one line naming what to
install or set; :func:`availability` returns that line instead of raising.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError

APT = ("gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm")
TFLM_PIN = "90b983c2b3f1480642e040bbd2ddb37b998f3424"
DOWNLOADS = Path("tensorflow/lite/micro/tools/make/downloads")


class EmulatorUnavailable(EdgekitError):
    """The Arm toolchain, QEMU or the TFLite-Micro sources are missing (the message says how to fix it)."""


@dataclass(frozen=True)
class Core:
    """A Cortex-M core: how to compile for it and which QEMU board runs it."""

    name: str  # "cortex-m4"
    cpu_flags: tuple[str, ...]  # compiler flags selecting the core and its FPU
    machine: str  # QEMU -M
    psram_base: int  # 16 MB of RAM for the model and the arena (hw/arm/mps2.c)


# Flags as TFLM's targets/cortex_m_generic_makefile.inc for TARGET_ARCH=cortex-m4+fp / cortex-m7+fp
# (hard float, -mfpu=fpv4-sp-d16 for both). Boards: QEMU hw/arm/mps2.c (AN386: Cortex-M4, PSRAM at
# 0x21000000; AN500: Cortex-M7, PSRAM at 0x60000000).
CORES = {
    "cortex-m4": Core("cortex-m4", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-DCPU_M4=1"),
                      "mps2-an386", 0x21000000),
    "cortex-m7": Core("cortex-m7", ("-mcpu=cortex-m7", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-DCPU_M7=1"),
                      "mps2-an500", 0x60000000),
}
KERNELS = ("cmsis-nn", "reference")


@dataclass(frozen=True)
class Toolchain:
    gcc: str
    gxx: str
    ar: str
    qemu: str

    @functools.cached_property
    def version(self) -> str:
        """First lines of ``gcc --version`` and ``qemu --version`` (part of the build cache key)."""
        out = []
        for exe in (self.gxx, self.qemu):
            res = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False)
            out.append(res.stdout.splitlines()[0] if res.stdout else exe)
        return " | ".join(out)


@dataclass(frozen=True)
class SourceTree:
    root: Path  # the directory holding tflite-micro/
    tflm: Path  # root / "tflite-micro"

    @property
    def downloads(self) -> Path:
        return self.tflm / DOWNLOADS

    def has_reference_kernels(self) -> bool:
        """A full tflite-micro clone has kernels/conv.cc next to kernels/cmsis_nn/conv.cc; the
        pinned CMSIS-NN file set (shared/third_party) has only the latter."""
        return (self.tflm / "tensorflow/lite/micro/kernels/conv.cc").is_file()


def _which(name: str, env: str | None = None) -> str | None:
    if env and os.environ.get(env):
        p = os.environ[env]
        return p if shutil.which(p) else None
    return shutil.which(name)


def find_toolchain() -> Toolchain:
    """The cross compiler and QEMU, or EmulatorUnavailable naming the packages to install
    (looked up once per process and environment)."""
    return _find_toolchain(os.environ.get("EDGEKIT_ARM_GCC"), os.environ.get("EDGEKIT_QEMU"),
                           os.environ.get("PATH"))


@functools.lru_cache(maxsize=8)
def _find_toolchain(gcc_env, qemu_env, path) -> Toolchain:
    gcc = _which("arm-none-eabi-gcc", "EDGEKIT_ARM_GCC")
    if gcc is None:
        where = f" (EDGEKIT_ARM_GCC={os.environ['EDGEKIT_ARM_GCC']!r} is not an executable)" \
            if os.environ.get("EDGEKIT_ARM_GCC") else ""
        raise EmulatorUnavailable(f"the Arm GNU toolchain (arm-none-eabi-gcc) is not installed{where}: "
                                  f"apt-get install {APT}")
    prefix = gcc[: -len("gcc")] if gcc.endswith("gcc") else "arm-none-eabi-"
    gxx, ar = shutil.which(prefix + "g++"), shutil.which(prefix + "ar")
    if gxx is None or ar is None:
        raise EmulatorUnavailable(f"{prefix}g++ / {prefix}ar missing next to {gcc}: apt-get install {APT}")
    if not _has_cxx_headers(gxx):
        raise EmulatorUnavailable("the C++ headers for arm-none-eabi are missing: "
                                  "apt-get install libstdc++-arm-none-eabi-dev")
    if not _has_newlib(gcc):
        raise EmulatorUnavailable("newlib for arm-none-eabi is missing: apt-get install libnewlib-arm-none-eabi")
    qemu = _which("qemu-system-arm", "EDGEKIT_QEMU")
    if qemu is None:
        raise EmulatorUnavailable("qemu-system-arm is not installed: apt-get install qemu-system-arm")
    return Toolchain(gcc=gcc, gxx=gxx, ar=ar, qemu=qemu)


@functools.lru_cache(maxsize=4)
def _has_cxx_headers(gxx: str) -> bool:
    probe = subprocess.run([gxx, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
                            "-x", "c++", "-E", "-"], input="#include <cstdint>\n", capture_output=True,
                           text=True, timeout=60, check=False)
    return probe.returncode == 0


@functools.lru_cache(maxsize=4)
def _has_newlib(gcc: str) -> bool:
    res = subprocess.run([gcc, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
                          "-print-file-name=librdimon.a"], capture_output=True, text=True, timeout=30, check=False)
    return res.returncode == 0 and os.path.isabs(res.stdout.strip())


def default_source_root() -> Path:
    """``<repo>/../shared/third_party`` (the checkout that holds this edgekit package)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "third_party"


def find_sources() -> SourceTree:
    """The TFLite-Micro + CMSIS-NN tree, or EmulatorUnavailable naming EDGEKIT_TFLM_SRC."""
    env = os.environ.get("EDGEKIT_TFLM_SRC")
    root = Path(env).expanduser() if env else default_source_root()
    how = (f"set EDGEKIT_TFLM_SRC to a directory holding tflite-micro/ (git clone "
           f"github.com/tensorflow/tflite-micro at {TFLM_PIN[:12]} and run its Makefile's downloads for "
           f"OPTIMIZED_KERNEL_DIR=cmsis_nn)")
    if not root.is_dir():
        what = f"EDGEKIT_TFLM_SRC={env!r} is not a directory" if env else \
            f"no TFLite-Micro sources (EDGEKIT_TFLM_SRC unset and {root} absent)"
        raise EmulatorUnavailable(f"{what}: {how}")
    tflm = root / "tflite-micro" if (root / "tflite-micro").is_dir() else root
    tree = SourceTree(root=root, tflm=tflm)
    needed = [tflm / "tensorflow/lite/micro/micro_interpreter.cc",
              tree.downloads / "cmsis_nn/Include/arm_nnfunctions.h",
              tree.downloads / "flatbuffers/include/flatbuffers/flatbuffers.h",
              tree.downloads / "gemmlowp/fixedpoint/fixedpoint.h"]
    missing = [str(p.relative_to(root)) for p in needed if not p.is_file()]
    if missing:
        raise EmulatorUnavailable(f"{root} is not a TFLite-Micro + CMSIS-NN source tree ({missing[0]} missing): "
                                  f"{how}")
    return tree


def check_core_kernels(core: str, kernels: str) -> Core:
    from edgekit.errors import UsageError

    if core not in CORES:
        raise UsageError(f"unknown core {core!r} for the emulator: choose {', '.join(CORES)}")
    if kernels not in KERNELS:
        raise UsageError(f"unknown kernels {kernels!r}: choose {', '.join(KERNELS)}")
    return CORES[core]


def availability() -> str | None:
    """None when the emulator can run here, else the one line saying what is missing."""
    try:
        find_toolchain()
        find_sources()
    except EmulatorUnavailable as exc:
        return str(exc)
    return None
