"""What a command is about: which runtime, which dtype, which budget — decided in one place.

``check``, ``report``, ``build``, ``profile``, ``recipe`` and ``edgekit.testing.assert_fits`` all
call :func:`resolve`, so the same flags mean the same thing everywhere. The rules, in order:

runtime
    ``--runtime``; else a runtime or format named by ``--target`` (``tflite``, ``litert``,
    ``tflite-micro``, ``executorch``, ``pte`` — what ``edgekit build --target`` has always taken);
    else the device's default runtime (``--target nrf52840-dk``); else **TFLite-Micro when the
    SRAM budget is a microcontroller's** (``--sram`` ≤ 2 MiB); else ExecuTorch for a ``.pte``;
    else LiteRT.
dtype
    ``--dtype``; else the device's dtype when the device's default runtime is used; else int8 on
    TFLite-Micro (its kernels are int8) and fp32 elsewhere. A built artifact has its own dtype.
budget
    ``--sram``/``--flash``; else the device's (microcontrollers only: a phone's RAM is not an
    arena budget).
memory plan (TFLite-Micro only)
    ``--memory-plan``: ``auto`` (the default: edgekit's offline plan where it lowers the arena),
    ``offline`` (always edgekit's plan) or ``tflm`` (TFLite-Micro's own planner). The plan is made
    safe for the kernel library the board runs (the device's ``runtime.kernels``; CMSIS-NN when no
    device is named, the library of every Cortex-M board) and for the reference kernels the host
    interpreter verifies it with.

Nothing here imports torch; the device catalogue is read only when a device is named.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.errors import UsageError
from edgekit.targets import KERNEL_LIBRARIES, RUNTIMES, RUNTIMES_BY_KIND, Target, load_target

__all__ = ["Plan", "resolve", "device", "RUNTIMES", "MCU_SRAM_LIMIT_BYTES", "runtime_label", "check_runtime"]
from edgekit.types import Size, TargetLike
from edgekit.units import parse_dtype, parse_size

MCU_SRAM_LIMIT_BYTES = 2 * 1024 * 1024  # an --sram budget up to this means a microcontroller

FORMAT_OF = {"tflite-micro": "tflite", "litert": "tflite", "executorch": "pte"}
# --target values that name a format or runtime rather than a device
RUNTIME_ALIASES = {"tflite": None, "litert": "litert", "tflite-micro": "tflite-micro", "executorch": "executorch",
                   "pte": "executorch"}
DEFAULT_DTYPE = {"tflite-micro": "int8", "litert": "fp32", "executorch": "fp32"}
BACKENDS = ("xnnpack", "portable")
MEMORY_PLANS = ("auto", "offline", "tflm")
RUNTIME_LABELS = {"tflite-micro": "TFLite-Micro", "litert": "LiteRT", "executorch": "ExecuTorch"}


@dataclass(frozen=True)
class Plan:
    """The resolved answer: run ``dtype`` on ``runtime`` within ``sram_bytes``/``flash_bytes``."""

    runtime: str
    dtype: str
    sram_bytes: int | None = None
    flash_bytes: int | None = None
    target: Target | None = None  # the device, when one was named
    backend: str | None = None  # ExecuTorch delegate (xnnpack | portable), .pte only
    memory_plan: str | None = None  # TFLite-Micro: auto | offline | tflm
    kernels: str | None = None  # TFLite-Micro kernel library of the board: reference | cmsis-nn

    @property
    def format(self) -> str:
        return FORMAT_OF[self.runtime]

    @property
    def target_name(self) -> str:
        """The device id, else the artifact format (what build reports as "target")."""
        return self.target.id if self.target is not None else self.format

    @property
    def lint_target(self):
        """What lint and the quantization debugger check against: the device, else the runtime."""
        return self.target if self.target is not None else self.runtime

    @property
    def is_mcu(self) -> bool:
        return self.runtime == "tflite-micro"


def runtime_label(runtime: str) -> str:
    return RUNTIME_LABELS.get(runtime, runtime)


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    return runtime


def device(target: TargetLike | None) -> Target | None:
    """A device from a Target, an id or a .toml path (None stays None)."""
    if target is None or isinstance(target, Target):
        return target
    return load_target(target)


def resolve(*, target: TargetLike | None = None, runtime: str | None = None, dtype: str | None = None,
            sram: Size | None = None, flash: Size | None = None,
            backend: str | None = None, artifact_format: str | None = None, memory_plan: str | None = None,
            kernels: str | None = None) -> Plan:
    """Resolve the flags of any command into a :class:`Plan` (see the module doc for the rules).

    ``target``: a device (Target, id or .toml path) or one of ``RUNTIME_ALIASES``.
    ``artifact_format``: "tflite" or "pte" when the model is a built artifact (it constrains the
    runtime). Raises UsageError for combinations that cannot run.
    """
    sram_b = _size(sram)
    flash_b = _size(flash)
    dt = parse_dtype(dtype) if dtype else None
    alias = target.strip().lower() if isinstance(target, str) and target.strip().lower() in RUNTIME_ALIASES else None
    tgt = None if alias is not None else device(target)
    rt = check_runtime(runtime) if runtime else RUNTIME_ALIASES.get(alias) if alias else None
    if rt is None and tgt is not None:
        rt = tgt.runtime.default
    if rt is None and artifact_format == "pte":
        rt = "executorch"
    if rt is None and sram_b is not None and sram_b <= MCU_SRAM_LIMIT_BYTES:
        rt = "tflite-micro"
    rt = rt or "litert"
    _check_runs_on(rt, tgt, artifact_format)
    if dt is None:
        dt = tgt.runtime.dtype if tgt is not None and rt == tgt.runtime.default else DEFAULT_DTYPE[rt]
    if rt == "tflite-micro" and dt == "fp16" and artifact_format is None:  # a built fp16 file: runnability says it
        raise UsageError("TFLite-Micro has no fp16 kernels: use --dtype int8 (or fp32) for a microcontroller")
    if backend is not None and rt != "executorch":
        raise UsageError(f"--backend applies to ExecuTorch (.pte) builds; this one runs {rt}")
    if backend is not None and backend not in BACKENDS:
        raise UsageError(f"unknown ExecuTorch backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if tgt is not None and tgt.is_mcu:
        sram_b = tgt.sram_bytes if sram_b is None else sram_b
        flash_b = tgt.flash_bytes if flash_b is None else flash_b
    memory_plan, kernels = _memory_plan(rt, tgt, memory_plan, kernels)
    return Plan(runtime=rt, dtype=dt, sram_bytes=sram_b, flash_bytes=flash_b, target=tgt,
                backend=(backend or "xnnpack") if rt == "executorch" else None, memory_plan=memory_plan,
                kernels=kernels)


def _memory_plan(runtime: str, tgt: Target | None, memory_plan: str | None,
                 kernels: str | None) -> tuple[str | None, str | None]:
    if memory_plan is not None and memory_plan not in MEMORY_PLANS:
        raise UsageError(f"unknown memory plan {memory_plan!r}: choose one of {', '.join(MEMORY_PLANS)}")
    if kernels is not None and kernels not in KERNEL_LIBRARIES:
        raise UsageError(f"unknown kernel library {kernels!r}: choose one of {', '.join(KERNEL_LIBRARIES)}")
    if runtime != "tflite-micro":
        if memory_plan not in (None, "auto"):
            raise UsageError(f"--memory-plan applies to TFLite-Micro; {runtime} plans its own memory")
        return None, None
    return memory_plan or "auto", kernels or (tgt.kernels if tgt is not None else "cmsis-nn")


def budget_defaults(sram, dtype=None, runtime=None) -> tuple[str | None, str | None]:
    """(dtype, runtime) that an --sram budget alone implies (int8 on TFLite-Micro for a
    microcontroller-sized budget); kept for callers that only need these two."""
    if sram is None or dtype is not None or runtime is not None:
        return dtype, runtime
    p = resolve(sram=sram)
    return (p.dtype, p.runtime) if p.is_mcu else (dtype, runtime)


def _size(value) -> int | None:
    if value is None:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else parse_size(value)


def _check_runs_on(runtime: str, tgt: Target | None, artifact_format: str | None) -> None:
    if tgt is not None and runtime not in RUNTIMES_BY_KIND[tgt.kind]:
        raise UsageError(f"{tgt.id} is a {tgt.kind} device: it runs {' or '.join(RUNTIMES_BY_KIND[tgt.kind])}, "
                         f"not {runtime}")
    if artifact_format is not None and FORMAT_OF[runtime] != artifact_format:
        raise UsageError(f"a .{artifact_format} artifact does not run on {runtime}"
                         + (" (a .pte runs on ExecuTorch)" if artifact_format == "pte" else
                            " (a .tflite runs on LiteRT or TFLite-Micro)"))
