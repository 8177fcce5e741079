"""TFLite-Micro + CMSIS-NN on an emulated Cortex-M4/M7 (QEMU mps2): instructions, arena, outputs.

Torch-free. ``toolchain`` finds the Arm compiler, QEMU and the TFLite-Micro sources
(``EDGEKIT_TFLM_SRC``); ``build`` compiles and caches the library and the harness firmware
(``harness/``); ``run`` runs QEMU and parses what the harness wrote; ``api`` is the public face.
"""

from edgekit.emulator.api import (
    EmulationResult,
    OpCount,
    default_inputs,
    emulate,
    emulated_allocations,
    emulated_min_arena,
    emulated_op_outputs,
)
from edgekit.emulator.toolchain import CORES, KERNELS, EmulatorUnavailable, availability

__all__ = ["CORES", "KERNELS", "EmulationResult", "EmulatorUnavailable", "OpCount", "availability",
           "default_inputs", "emulate", "emulated_allocations", "emulated_min_arena", "emulated_op_outputs"]
