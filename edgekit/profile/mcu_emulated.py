"""MCU latency from the emulator: the real TFLite-Micro + CMSIS-NN kernels counted in QEMU.

``edgekit profile model.tflite --target <cortex-m board>`` runs the model with ``edgekit.emulator``
(the board's core: ``[cpu] core`` of the target file) and turns the executed instructions into
time::

    ms = instructions x cycles_per_instruction(board) / clock

QEMU counts instructions, not cycles (no flash wait states, caches, pipeline or dual issue), so
``cycles_per_instruction`` is fitted per board on published measurements (:data:`CPI`, fitted by
``benchmarks/emulator.py --fit``; docs/latency.md has the calibration and the held-out rows). A
board without its own fit borrows the fit of a board with the same core (:data:`CORE_DEFAULT`),
and says so. The result is an emulation plus a fitted factor: ``estimate=True`` wherever shown.

Without the toolchain or the sources, :func:`add_emulation` adds one note saying how to enable
the emulator and the caller falls back to the cost model (``edgekit/profile/emulate.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class CpiFit:
    cycles_per_instruction: float
    source: str  # what it was fitted on


# Fitted with benchmarks/emulator.py --fit (TFLite-Micro 90b983c2 + CMSIS-NN 4ab83cc3, arm-none-eabi-gcc 12.2,
# QEMU 7.2); numbers and residuals in docs/latency.md ("Emulated latency").
CPI: dict[str, CpiFit] = {
    # calibration rows [TINY-0.5] (TFLM v2.3.1, 120 MHz): IC ResNet-8 704.26 ms / 29,884,960 instructions,
    # VWW MobileNetV1-0.25 600.54 ms / 24,356,560 instructions -> 2.828 and 2.959, geometric mean 2.893.
    # Held out: KWS DS-CNN 204.9 ms vs 181.92 (+12.6 %), AD FC autoencoder 14.39 ms vs 10.05 (+43.2 %).
    "nucleo-l4r5zi": CpiFit(2.893, "MLPerf Tiny v0.5 IC and VWW (TFLite-Micro 2.3.1, 2020)"),
    # the one calibration row of targets/nucleo-f746zg.toml: TFLite-Micro 2.5 + CMSIS-NN, MobileNetV2-0.3 80x80,
    # 129 ms at 216 MHz / 35,941,760 instructions (Cortex-M7 build) = 0.775 (below 1: the M7 dual-issues).
    # No held-out row on this board.
    "nucleo-f746zg": CpiFit(0.775, "Plumerai 2021, MobileNetV2-0.3 80x80 (TFLite-Micro 2.5 + CMSIS-NN); "
                                   "one row, not validated"),
}
CORE_DEFAULT = {"cortex-m4": "nucleo-l4r5zi", "cortex-m7": "nucleo-f746zg"}
EMULATED_RUNS, EMULATED_WARMUP = 2, 1  # instruction counts are deterministic: more runs add nothing


def cycles_per_instruction(target) -> tuple[float | None, str]:
    """(factor, provenance) for a board; (None, reason) when no board of its core has a fit."""
    if target.id in CPI:
        fit = CPI[target.id]
        return fit.cycles_per_instruction, f"fitted on {target.id}: {fit.source}"
    donor = CORE_DEFAULT.get(target.cpu.core)
    if donor in CPI:
        fit = CPI[donor]
        return fit.cycles_per_instruction, (f"no published TFLite-Micro measurement of {target.id}: factor "
                                            f"borrowed from {donor} (same core, {fit.source})")
    return None, f"no fitted cycles-per-instruction factor for {target.cpu.core}"


def fit_cpi(rows) -> float:
    """Geometric mean of published cycles / emulated instructions over ``rows`` of
    (instructions, published_ms, clock_hz): the factor minimising the squared log errors."""
    import math

    logs = [math.log(ms * 1e-3 * hz / n) for n, ms, hz in rows]
    if not logs:
        raise ValueError("no rows to fit")
    return math.exp(sum(logs) / len(logs))


def emulated_measurement(path, target, *, kernels: str = "cmsis-nn", runs: int = EMULATED_RUNS,
                         warmup: int = EMULATED_WARMUP, top: int = 10):
    """Run ``path`` on the target's emulated core; a profile Measurement (estimate=True)."""
    from edgekit.emulator import emulate
    from edgekit.emulator.toolchain import TFLM_PIN
    from edgekit.profile.api import Measurement

    res = emulate(path, core=target.cpu.core, kernels=kernels, warmup=warmup, runs=runs)
    cpi, how = cycles_per_instruction(target)
    clock = target.clock_hz

    def ms(n: int) -> float | None:
        return n * cpi / clock * 1e3 if cpi is not None else None

    total = ms(res.instructions)
    stats = {"runs": 0, "mean_ms": total, "std_ms": None, "min_ms": None, "median_ms": total, "p90_ms": None,
             "p99_ms": None, "max_ms": None, "throughput_per_s": 1000.0 / total if total else None,
             "instructions": res.instructions, "cycles_per_instruction": cpi,
             "instructions_per_run": res.instructions_per_run}
    macs = _op_macs(path)
    layers = [{"name": f"#{o.index}", "op": o.name, "kind": "emulated", "macs": macs.get(o.index, 0), "bytes": 0,
               "ms": ms(o.instructions) or 0.0, "bound": f"{o.share:.1%}", "instructions": o.instructions}
              for o in res.ops]
    ops = sorted(({"name": f"{o.name} #{o.index}", "ms": ms(o.instructions) or 0.0, "share": o.share,
                   "instructions": o.instructions} for o in res.ops), key=lambda r: -r["instructions"])[:top]
    kern = "CMSIS-NN" if kernels == "cmsis-nn" else "reference kernels"
    notes = [(f"emulated, not measured: TFLite-Micro + {kern} on a {target.cpu.core} in QEMU ({res.machine}), "
              f"{res.instructions:,d} instructions per invoke (the same on each of {warmup} warm-up + {runs} timed "
              f"invokes); time = instructions x {cpi if cpi is None else round(cpi, 3)} cycles/instruction / "
              f"{target.cpu.freq_mhz:g} MHz ({how})"),
             f"arena used on the board: {res.arena_used_bytes:,d} B (TFLite-Micro arena_used_bytes, 32-bit build)"]
    if total is None:
        notes.append("no time: " + how)
    from edgekit.emulator.toolchain import find_toolchain

    return Measurement(runtime=f"TFLite-Micro + {kern} (emulated {target.cpu.core})", where=f"emulated:{target.id}",
                       threads=1, stats=stats, estimate=True, ops=ops, notes=notes + res.notes,
                       delegate=None, versions={"tflite-micro": TFLM_PIN[:12], "toolchain": find_toolchain().version},
                       layers=layers, artifact=str(path))


def _op_macs(path) -> dict[int, int]:
    from edgekit.graph.tflite_reader import read_tflite

    try:
        return {op.index: op.macs for op in read_tflite(path).ops}
    except EdgekitError:
        return {}


def add_emulation(result, source: dict, target, *, runs: int, warmup: int) -> bool:
    """The profile hook: append the emulated measurement of a .tflite on an MCU target and return
    True; else add one note (how to enable the emulator, or why it does not apply) and return False."""
    from edgekit.emulator.toolchain import CORES, availability

    if target.cpu.core not in CORES:
        result.notes.append(f"{target.id}: no emulator for {target.cpu.core} (emulated cores: {', '.join(CORES)})")
        return False
    if source.get("kind") != "artifact" or source["path"].suffix != ".tflite":
        result.notes.append(f"{target.id}: the emulator runs a .tflite (edgekit build ... writes one); "
                            "this is the cost-model estimate")
        return False
    missing = availability()
    if missing is not None:
        result.notes.append(f"{target.id}: cost-model estimate; to run the real TFLite-Micro kernels in an "
                            f"emulator instead: {missing}")
        return False
    m = emulated_measurement(source["path"], target, runs=min(runs, EMULATED_RUNS),
                             warmup=min(warmup, EMULATED_WARMUP))
    m.notes.append(_cost_model_note(source["path"], target))
    result.measurements.append(m)
    return True


def _cost_model_note(path, target) -> str:
    from edgekit.profile.emulate import estimate

    try:
        est = estimate(path, target=target)
    except EdgekitError as exc:
        return f"fast cost model: no estimate ({exc})"
    return f"fast cost model (edgekit/profile/emulate.py, --emulate): {est.total_ms:.2f} ms"
