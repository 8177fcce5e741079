"""Run a .tflite on an emulated Cortex-M: instructions per invoke and per operator, arena, outputs.

``emulate(path)``: TFLite-Micro (CMSIS-NN kernels by default) in QEMU, ``warmup`` untimed and
``runs`` timed invokes of the same input; instruction counts per invoke and per operator (SysTick
under ``-icount shift=0``, see ``run.py``), the arena used and the outputs.
``emulated_min_arena(path)``: the smallest ``arena_size`` the board's build allocates (bisected
inside one emulator run). ``emulated_allocations(path)``: RecordingMicroAllocator's report of the
board's build (32-bit structs, the board's kernels), in the host report's form.
``emulated_op_outputs(path)``: every operator's output tensors right after
it ran, for comparing a memory-planned model with the unplanned one on the kernels a board runs.

Inputs: a list of arrays in the model's input order (or one array), each with the input tensor's
dtype and size; by default one seeded random input as the host profiler makes them (floats
uniform in [0, 1), quantized with the input's own scale and zero point for int8/int16 inputs).
Everything runs in a ``qemu-system-arm`` subprocess with a timeout; the build (first call per core
and kernels: minutes) in compiler subprocesses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from edgekit.emulator import build
from edgekit.emulator.run import (
    INSTRUCTIONS_PER_TICK,
    PSRAM_BYTES,
    TFLITE_TYPES,
    HarnessOutput,
    run_harness,
)
from edgekit.emulator.toolchain import check_core_kernels, find_toolchain
from edgekit.errors import ArtifactError, RuntimeFailure, UsageError


@dataclass
class OpCount:
    index: int  # operator index in subgraph 0
    name: str  # TFLite-Micro's op name ("CONV_2D")
    instructions: int  # mean over the timed runs, ±40 (SysTick quantisation)
    share: float  # of the invoke's instructions


@dataclass
class EmulationResult:
    path: str
    core: str
    kernels: str
    machine: str  # the QEMU board
    arena_size: int  # the arena the interpreter was given
    arena_used_bytes: int  # MicroInterpreter::arena_used_bytes() after AllocateTensors
    instructions: int  # per invoke, mean over the timed runs
    instructions_per_run: list[int] = field(default_factory=list)
    warmup_instructions: list[int] = field(default_factory=list)
    ops: list[OpCount] = field(default_factory=list)  # in execution order
    op_instructions_per_run: list[list[int]] = field(default_factory=list)
    outputs: list = field(default_factory=list)  # numpy arrays, in output order
    wall_s: float = 0.0  # host seconds for the whole QEMU run
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "outputs"}
        d["ops"] = [o.__dict__ for o in self.ops]
        d["outputs"] = [{"shape": list(a.shape), "dtype": str(a.dtype)} for a in self.outputs]
        return d


def _model_bytes(path) -> tuple[bytes, str]:
    from edgekit.graph.tflite_reader import read_tflite_bytes

    data = read_tflite_bytes(path)  # UsageError/ArtifactError for a missing or non-.tflite file
    if len(data) > PSRAM_BYTES // 2:
        raise UsageError(f"{path}: {len(data):,d} B is too large for the emulated board (at most "
                         f"{PSRAM_BYTES // 2:,d} B of model, the rest of its 16 MB PSRAM is the arena)")
    return data, str(path)


def _input_specs(path) -> list[tuple[tuple[int, ...], str, float | None, int | None]]:
    """(shape, numpy dtype, scale, zero point) of every graph input."""
    from edgekit.graph.tflite_reader import read_tflite

    g = read_tflite(path)
    specs = []
    for tid in g.inputs:
        t = g.tensors[tid]
        q = t.quant
        specs.append((tuple(t.shape), t.dtype, q.scale if q else None, q.zero_point if q else None))
    return specs


def default_inputs(path, seed: int = 0) -> list:
    """One random input per graph input, as the host profiler's protocol makes them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for shape, dtype, scale, zp in _input_specs(path):
        x = rng.random(shape, dtype=np.float32)
        if dtype in ("int8", "int16", "uint8") and scale:
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale) + (zp or 0), info.min, info.max)
        elif dtype in ("int8", "int16", "uint8", "int32"):
            info = np.iinfo(dtype)
            x = rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape)
        out.append(np.asarray(x).astype(dtype))
    return out


def _input_bytes(path, inputs) -> bytes:
    import numpy as np

    specs = _input_specs(path)
    if inputs is None:
        inputs = default_inputs(path)
    elif not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    if len(inputs) != len(specs):
        raise UsageError(f"{path} has {len(specs)} input(s), got {len(inputs)} array(s)")
    chunks = []
    for i, (x, (shape, dtype, _, _)) in enumerate(zip(inputs, specs)):
        a = np.asarray(x)
        if a.dtype != np.dtype(dtype) or a.size != int(np.prod(shape)):
            raise UsageError(f"input {i} of {path} is {dtype} {list(shape)}; got {a.dtype} {list(a.shape)}")
        chunks.append(np.ascontiguousarray(a).tobytes())
    return b"".join(chunks)


def _array(raw: bytes, rec) -> object:
    import numpy as np

    name = TFLITE_TYPES.get(rec.type)
    data = raw[rec.offset:rec.offset + rec.nbytes]
    if name is None:  # int4 and other packed or opaque types: raw bytes
        return np.frombuffer(data, dtype=np.uint8).copy()
    a = np.frombuffer(data, dtype=name).copy()
    return a.reshape(rec.dims) if int(np.prod(rec.dims or (1,))) == a.size else a


def _check(out: HarnessOutput, path: str, core: str, kernels: str) -> None:
    from edgekit.emulator.run import harness_messages

    msg = harness_messages(out)
    if out.alloc_ok is False:
        raise RuntimeFailure(f"{path}: TFLite-Micro ({kernels}, {core}) could not allocate the model in "
                             f"{out.arena_size:,d} B" + (f": {msg}" if msg else ""))
    if out.error:
        raise RuntimeFailure(f"{path}: the emulated {core} reported: {out.error}" + (f" ({msg})" if msg else ""))
    if not out.done:
        raise RuntimeFailure(f"{path}: the emulated {core} stopped early (QEMU exit {out.returncode})"
                             + (f": {msg}" if msg else ""))


def _check_counts(warmup: int, runs: int) -> None:
    if warmup < 0 or runs < 0 or warmup + runs > 1000:
        raise UsageError(f"warmup and runs must be >= 0 (and together at most 1000): got {warmup}, {runs}")


def emulate(tflite_path, *, core: str = "cortex-m4", kernels: str = "cmsis-nn", arena_size: int | None = None,
            inputs=None, warmup: int = 1, runs: int = 3, timeout_s: float = 600.0) -> EmulationResult:
    """Run ``tflite_path`` on the emulated ``core`` with TFLite-Micro and ``kernels`` (see the module doc)."""
    c = check_core_kernels(core, kernels)
    _check_counts(warmup, max(runs, 1))
    model, name = _model_bytes(tflite_path)
    data = _input_bytes(tflite_path, inputs)
    elf = build.firmware(core, kernels)
    t0 = time.perf_counter()
    out = run_harness(find_toolchain(), core, elf, model, inputs=data, arena=arena_size or 0, warmup=warmup,
                      runs=max(runs, 1), timeout_s=timeout_s, artifact=name)
    wall = time.perf_counter() - t0
    _check(out, name, core, kernels)
    return _result(out, name, core, kernels, c.machine, wall)


def _result(out: HarnessOutput, name: str, core: str, kernels: str, machine: str, wall: float) -> EmulationResult:
    per_run = [t * INSTRUCTIONS_PER_TICK for t in out.run_ticks]
    mean = round(sum(per_run) / len(per_run)) if per_run else 0
    op_runs = [[out.op_ticks.get(r, {}).get(i, 0) * INSTRUCTIONS_PER_TICK for i in range(len(out.op_names))]
               for r in sorted(out.op_ticks)]
    ops = []
    for i in range(len(out.op_names)):
        n = round(sum(r[i] for r in op_runs) / len(op_runs)) if op_runs else 0
        ops.append(OpCount(index=i, name=out.op_names[i], instructions=n, share=n / mean if mean else 0.0))
    notes = []
    if len(out.op_names) != out.operators:
        notes.append(f"{out.operators} operators in subgraph 0, {len(out.op_names)} profiled")
    return EmulationResult(path=name, core=core, kernels=kernels, machine=machine, arena_size=out.arena_size or 0,
                           arena_used_bytes=out.arena_used or 0, instructions=mean, instructions_per_run=per_run,
                           warmup_instructions=[t * INSTRUCTIONS_PER_TICK for t in out.warmup_ticks], ops=ops,
                           op_instructions_per_run=op_runs,
                           outputs=[_array(out.outputs_bin, r) for r in out.outputs], wall_s=wall, notes=notes)


def emulated_min_arena(tflite_path, core: str = "cortex-m4", kernels: str = "cmsis-nn", *,
                       timeout_s: float = 600.0) -> int:
    """The smallest ``arena_size`` (multiple of 16) with which the emulated board's TFLite-Micro
    allocates the model: the arena used with all memory is probed (N works, N-16 fails), else a
    bisection, all inside one QEMU run (``harness/main.cc`` MinArena)."""
    check_core_kernels(core, kernels)
    model, name = _model_bytes(tflite_path)
    elf = build.firmware(core, kernels)
    out = run_harness(find_toolchain(), core, elf, model, mode="min_arena", timeout_s=timeout_s, artifact=name)
    if out.min_arena is None:
        if out.probes and not out.probes[0][1]:
            raise ArtifactError(f"{name}: TFLite-Micro ({kernels}, {core}) cannot allocate the model even in "
                                f"{out.probes[0][0]:,d} B: it uses an operator or type this build refuses")
        _check(out, name, core, kernels)
        raise RuntimeFailure(f"{name}: the emulated {core} stopped during the arena search "
                             f"(last probe {out.probes[-1] if out.probes else None})")
    return out.min_arena


def emulated_allocations(tflite_path, core: str = "cortex-m4", kernels: str = "cmsis-nn", *,
                         arena_size: int | None = None, timeout_s: float = 600.0):
    """RecordingMicroAllocator's report (total, head, tail and tail categories) from the emulated
    board, parsed like the host's (``edgekit.runtime.tflm.TflmAllocations``)."""
    from edgekit.runtime.tflm import parse_allocations

    check_core_kernels(core, kernels)
    model, name = _model_bytes(tflite_path)
    elf = build.firmware(core, kernels)
    out = run_harness(find_toolchain(), core, elf, model, arena=arena_size or 0, mode="record",
                      timeout_s=timeout_s, artifact=name)
    if out.alloc_ok is not True:
        _check(out, name, core, kernels)
    return parse_allocations(out.stderr, arena_size=arena_size or out.arena_available or 0)


def emulated_struct_sizes(core: str = "cortex-m4", kernels: str = "cmsis-nn", *,
                          timeout_s: float = 120.0) -> dict[str, tuple[int, int]]:
    """{C++ type: (sizeof, alignof)} of the structs TFLite-Micro puts in the arena, as the board's
    build compiles them (``harness/main.cc`` Sizes), plus ``planner_per_buffer``."""
    check_core_kernels(core, kernels)
    elf = build.firmware(core, kernels)
    out = run_harness(find_toolchain(), core, elf, b"", mode="sizes", timeout_s=timeout_s, artifact="sizes")
    if not out.done:
        _check(out, "sizes", core, kernels)
    return out.sizes


def emulated_op_outputs(tflite_path, inputs=None, arena_size: int | None = None, core: str = "cortex-m4",
                        kernels: str = "cmsis-nn", *, timeout_s: float = 600.0) -> list[list]:
    """Every operator's output tensors (numpy arrays), in execution order, copied right after the
    operator ran, from one invoke on the emulated board with the model's own memory plan (offline
    plans included) in an arena of ``arena_size`` bytes (None: all of the board's free memory).

    ``result[i][k]`` is output ``k`` of operator ``i`` of subgraph 0. A tensor an op wrote over
    its input is the value it had right after that op, before any later op reused its memory."""
    check_core_kernels(core, kernels)
    model, name = _model_bytes(tflite_path)
    data = _input_bytes(tflite_path, inputs)
    elf = build.firmware(core, kernels)
    out = run_harness(find_toolchain(), core, elf, model, inputs=data, arena=arena_size or 0, warmup=0, runs=0,
                      dump=True, timeout_s=timeout_s, artifact=name)
    _check(out, name, core, kernels)
    per_op: list[list] = [[] for _ in range(out.operators)]
    for rec in out.dumps:
        if 0 <= rec.op < len(per_op):
            per_op[rec.op].append(_array(out.dump_bin, rec) if rec.nbytes or rec.type else None)
    return per_op
