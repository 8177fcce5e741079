"""Run the harness firmware in ``qemu-system-arm`` (a subprocess with a timeout) and parse what it wrote.

QEMU command: ``qemu-system-arm -M <mps2 board> -nographic -monitor none -serial none
-semihosting-config enable=on,target=native -icount shift=0 -kernel harness.elf``, in a fresh
temporary directory holding ``config.txt``, ``model.tflite`` and ``input.bin`` (the harness opens
them by semihosting, relative to QEMU's working directory) and receiving ``result.txt``,
``outputs.bin`` and ``dump.bin`` (see ``harness/main.cc``).

**Instructions.** ``-icount shift=0`` makes QEMU's virtual clock advance exactly 1 ns per executed
instruction; SysTick counts the mps2 25 MHz system clock (hw/arm/mps2.c ``SYSCLK_FRQ``), so one
tick is :data:`INSTRUCTIONS_PER_TICK` = 40 instructions. Every reading is quantised to 40
instructions (an operator's count is within ±40 of the truth). Runs are deterministic: the same
firmware and the same inputs give the same ticks.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.emulator.toolchain import CORES, Toolchain
from edgekit.errors import RuntimeFailure

INSTRUCTIONS_PER_TICK = 40  # 1 ns per instruction (-icount shift=0) / 25 MHz SysTick clock = 40
PSRAM_BYTES = 16 << 20

# TfLiteType (tensorflow/compiler/mlir/lite/core/c/tflite_types.h) -> numpy dtype name
TFLITE_TYPES = {1: "float32", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 8: "complex64",
                9: "int8", 10: "float16", 11: "float64", 12: "complex128", 13: "uint64", 16: "uint32",
                17: "uint16"}


@dataclass
class TensorRecord:
    """A tensor the harness wrote: where its bytes are in the .bin file, its type and dims."""

    type: int
    offset: int
    nbytes: int
    dims: tuple[int, ...]
    op: int = -1  # dumps: the operator that wrote it
    position: int = 0  # dumps: which of the operator's outputs
    tensor: int = -1  # dumps: the tensor index in subgraph 0


@dataclass
class HarnessOutput:
    """Everything result.txt said (ticks, not yet instructions), plus the raw .bin files."""

    alloc_ok: bool | None = None
    arena_size: int | None = None
    arena_used: int | None = None
    arena_available: int | None = None
    operators: int = 0
    warmup_ticks: list[int] = field(default_factory=list)
    run_ticks: list[int] = field(default_factory=list)
    op_ticks: dict[int, dict[int, int]] = field(default_factory=dict)  # run -> op -> ticks
    op_names: dict[int, str] = field(default_factory=dict)
    outputs: list[TensorRecord] = field(default_factory=list)
    dumps: list[TensorRecord] = field(default_factory=list)
    probes: list[tuple[int, bool]] = field(default_factory=list)
    min_arena: int | None = None
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # "sizes" mode: name -> (sizeof, alignof)
    error: str | None = None
    done: bool = False
    outputs_bin: bytes = b""
    dump_bin: bytes = b""
    stderr: str = ""
    returncode: int = 0


def parse_result(text: str) -> HarnessOutput:
    out = HarnessOutput()
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        k = f[0]
        if k == "alloc":
            out.alloc_ok = f[1] == "ok"
        elif k in ("arena_size", "arena_used", "arena_available", "operators"):
            setattr(out, k, int(f[1]))
        elif k == "warmup":
            out.warmup_ticks.append(int(f[2]))
        elif k == "run":
            out.run_ticks.append(int(f[2]))
        elif k == "opticks":
            out.op_ticks.setdefault(int(f[1]), {})[int(f[2])] = int(f[3])
        elif k == "op":
            out.op_names[int(f[1])] = f[2]
        elif k == "output":
            n = int(f[4])
            out.outputs.append(TensorRecord(type=int(f[2]), offset=sum(o.nbytes for o in out.outputs),
                                            nbytes=int(f[3]), dims=tuple(int(x) for x in f[5:5 + n])))
        elif k == "dump" and f[4] != "missing":
            n = int(f[7])
            out.dumps.append(TensorRecord(type=int(f[4]), offset=int(f[5]), nbytes=int(f[6]),
                                          dims=tuple(int(x) for x in f[8:8 + n]), op=int(f[1]),
                                          position=int(f[2]), tensor=int(f[3])))
        elif k == "dump":
            out.dumps.append(TensorRecord(type=0, offset=0, nbytes=0, dims=(), op=int(f[1]), position=int(f[2]),
                                          tensor=int(f[3])))
        elif k == "probe":
            out.probes.append((int(f[1]), f[2] == "ok"))
        elif k == "sizeof":
            out.sizes[f[1]] = (int(f[2]), int(f[3]))
        elif k == "planner_per_buffer":
            out.sizes[k] = (int(f[1]), 0)
        elif k == "min_arena":
            out.min_arena = None if f[1] == "none" else int(f[1])
        elif k == "error":
            out.error = line[len("error "):]
        elif k == "done":
            out.done = True
    return out


def qemu_command(tc: Toolchain, core: str, elf: Path) -> list[str]:
    return [tc.qemu, "-M", CORES[core].machine, "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]


def run_harness(tc: Toolchain, core: str, elf: Path, model: bytes, *, inputs: bytes = b"", arena: int = 0,
                warmup: int = 1, runs: int = 3, dump: bool = False, mode: str = "run",
                timeout_s: float = 600.0, artifact: str = "model") -> HarnessOutput:
    """One QEMU run of the harness; RuntimeFailure if QEMU times out or the harness wrote nothing."""
    with tempfile.TemporaryDirectory(prefix="edgekit-emu-") as tmp:
        d = Path(tmp)
        (d / "model.tflite").write_bytes(model)
        cfg = [f"model model.tflite {len(model)}", f"arena {int(arena)}", f"warmup {int(warmup)}",
               f"runs {int(runs)}", f"dump {int(bool(dump))}", f"mode {mode}"]
        if inputs:
            (d / "input.bin").write_bytes(inputs)
            cfg.append(f"input input.bin {len(inputs)}")
        (d / "config.txt").write_text("\n".join(cfg) + "\n")
        try:
            res = subprocess.run(qemu_command(tc, core, elf), cwd=d, capture_output=True, text=True,
                                 timeout=timeout_s, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(f"{artifact}: the emulated {core} did not finish in {timeout_s:g} s "
                                 f"(QEMU killed)") from None
        result = d / "result.txt"
        if not result.exists():
            raise RuntimeFailure(f"{artifact}: QEMU exited with {res.returncode} before the harness started: "
                                 f"{_last_line(res.stderr)}")
        out = parse_result(result.read_text())
        out.stderr, out.returncode = res.stderr, res.returncode
        for name, attr in (("outputs.bin", "outputs_bin"), ("dump.bin", "dump_bin")):
            if (d / name).exists():
                setattr(out, attr, (d / name).read_bytes())
    return out


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def harness_messages(out: HarnessOutput, limit: int = 3) -> str:
    """TFLite-Micro's own error lines (DebugLog -> semihosting stderr), for error messages."""
    lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()]
    return "; ".join(lines[-limit:]) if lines else ""
