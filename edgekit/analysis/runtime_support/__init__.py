"""Which ops a runtime can run, known statically (no torch, no runtime, no child process).

``unrunnable(graph, runtime, kernels="reference")`` returns the ops ``runtime`` cannot run,
grouped by op type and reason ("DEQUANTIZE with float16 input (74 ops)"), each with the
PyTorch modules of the ops where the graph knows them and the source of the fact.
``support(...)`` returns the same and what the tables cannot establish (:class:`SupportReport`).

Runtimes and kernel libraries, one table module each:

- ``tflite-micro`` (:mod:`.tflm`): builtin ops TFLite-Micro registers and, per op, the
  tensor types, options and shapes its reference kernel accepts (``kernels="reference"``, the
  host interpreter); ``kernels="cmsis-nn"`` applies the Cortex-M replacements
  (:mod:`.tflm_cmsis`). The graph is a .tflite's, or the pre-export graph of a PyTorch model
  lowered as the converter does (``edgekit.analysis.lowering``: ops with ``attrs["opcode"]``).
- ``litert`` (:mod:`.litert`): builtin and custom ops LiteRT's default op resolver has.
- ``executorch`` (:mod:`.executorch`): kernel operators of a .pte outside its delegates,
  against the portable (default) or optimized kernel library.

What the tables cannot establish is never counted as runnable silently: it goes to
``SupportReport.unknown`` (same shape as an :class:`Unrunnable`) and, for whole graphs,
``SupportReport.notes``:
- an op of a pre-export graph that is not a TFLite op (the lowering does not know what the
  converter emits for that layer);
- a custom op TFLite-Micro registers but whose types the table does not describe (the
  signal library's ops);
- a PyTorch graph analysed for LiteRT or ExecuTorch: its runtime ops do not exist before
  export; ``unrunnable`` returns [] and ``notes`` says so (the built artifact is checked);
- ops in the subgraphs of a .tflite other than the main one (IF/WHILE bodies): the reader
  reads subgraph 0 only, and ``notes`` says so.

A pre-export graph lowered for TFLite-Micro with ``meta["dtype"] == "fp16"`` gets the
DEQUANTIZE ops the fp16 export will write (one per weight matrix, float16 input), which
TFLite-Micro refuses: check and build agree that fp16 does not run on a microcontroller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.analysis.runtime_support import executorch as _et
from edgekit.analysis.runtime_support import litert as _litert
from edgekit.analysis.runtime_support import tflm as _tflm
from edgekit.analysis.runtime_support.facts import problems
from edgekit.errors import UsageError
from edgekit.graph.ir import Graph, Op
from edgekit.targets import KERNEL_LIBRARIES as TFLM_KERNEL_LIBRARIES
from edgekit.targets import RUNTIMES

__all__ = ["Unrunnable", "SupportReport", "unrunnable", "support", "op_problems", "RUNTIMES", "KERNEL_LIBRARIES"]

# the kernel libraries each runtime's tables know (TFLite-Micro's are targets.KERNEL_LIBRARIES)
KERNEL_LIBRARIES = {"tflite-micro": TFLM_KERNEL_LIBRARIES, "litert": ("reference",),
                    "executorch": ("reference", "portable", "optimized")}


@dataclass
class Unrunnable:
    """Ops a runtime cannot run, grouped: "DEQUANTIZE with float16 input (74 ops)"."""

    runtime: str  # "tflite-micro" | "litert" | "executorch"
    opcode: str  # "DEQUANTIZE"
    why: str  # "with float16 input", "has no kernel in TFLite-Micro", ...
    count: int
    modules: list[str] = field(default_factory=list)  # op.source of the ops where set (PyTorch module paths)
    source: str = ""  # where the fact comes from: kernel file and function

    def text(self) -> str:
        where = f" at {', '.join(self.modules[:3])}{' ...' if len(self.modules) > 3 else ''}" if self.modules else ""
        return f"{self.opcode} {self.why} ({self.count} op{'s' if self.count != 1 else ''}){where}"


@dataclass
class SupportReport:
    runtime: str
    kernels: str
    unrunnable: list[Unrunnable] = field(default_factory=list)
    unknown: list[Unrunnable] = field(default_factory=list)  # ops whose support the tables cannot establish
    notes: list[str] = field(default_factory=list)

    @property
    def runnable(self) -> bool | None:
        """False if an op cannot run, None if some cannot be established, else True."""
        if self.unrunnable:
            return False
        return None if self.unknown or not self.checked else True

    @property
    def checked(self) -> bool:
        return not any(n.startswith("not checked") for n in self.notes)


def unrunnable(graph: Graph, runtime: str, *, kernels: str = "reference") -> list[Unrunnable]:
    """The ops of ``graph`` that ``runtime`` (with kernel library ``kernels``) cannot run."""
    return support(graph, runtime, kernels=kernels).unrunnable


def support(graph: Graph, runtime: str, *, kernels: str = "reference") -> SupportReport:
    """What ``unrunnable`` returns, plus what the tables cannot establish (``unknown``, ``notes``)."""
    runtime, kernels = _resolve(runtime, kernels)
    rep = SupportReport(runtime=runtime, kernels=kernels)
    if runtime == "tflite-micro":
        graph = _tflite_graph(graph, runtime)
        cache: dict = {}
        fp16 = graph.meta.get("lowered_from") == "torch" and graph.meta.get("dtype") == "fp16"
        if graph.meta.get("subgraphs", 1) > 1:
            rep.notes.append(f"only the main subgraph is checked ({graph.meta['subgraphs']} subgraphs)")
        _Grouper(rep).run(graph, lambda op: (_fp16_weights(op, graph) if fp16 else [])
                          + _tflm_problems(op, graph, kernels, cache))
    elif runtime == "litert":
        if graph.source_format == "torch" and not _has_opcodes(graph):
            rep.notes.append("not checked: a PyTorch graph has no LiteRT ops before export (the .tflite is checked)")
            return rep
        graph = _tflite_graph(graph, runtime)
        _Grouper(rep).run(graph, lambda op: _litert_problems(op, graph))
    else:
        if graph.source_format != "pte":
            rep.notes.append("not checked: ExecuTorch kernels are known for a .pte program, not before export")
            return rep
        lib = "portable" if kernels == "reference" else kernels
        _Grouper(rep).run(graph, lambda op: _et_problems(op, lib))
        backends = graph.meta.get("delegate_backends") or []
        if backends:
            rep.notes.append(f"delegates {', '.join(backends)}: the target's ExecuTorch runtime must link them")
    return rep


def op_problems(op: Op, graph: Graph, runtime: str, *, kernels: str = "reference") -> list[tuple[str, str, bool]]:
    """(why, source, silent) for one op of a .tflite graph on TFLite-Micro or LiteRT; ``silent``
    marks a kernel that does not refuse the op but computes wrong results. Whys starting with
    "unknown:" are facts the tables cannot establish."""
    runtime, kernels = _resolve(runtime, kernels)
    if runtime == "tflite-micro":
        return _tflm_problems(op, graph, kernels)
    if runtime == "litert":
        return _litert_problems(op, graph)
    return _et_problems(op, "portable" if kernels == "reference" else kernels)


# ---- per runtime ------------------------------------------------------------------------------

def _resolve(runtime: str, kernels: str) -> tuple[str, str]:
    rt = str(runtime).strip().lower()
    if rt not in RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    k = str(kernels).strip().lower()
    if k not in KERNEL_LIBRARIES[rt]:
        raise UsageError(f"unknown kernel library {kernels!r} for {rt}: expected one of "
                         f"{', '.join(KERNEL_LIBRARIES[rt])}")
    return rt, k


def _has_opcodes(g: Graph) -> bool:
    return all("opcode" in op.attrs for op in g.ops)


def _tflite_graph(g: Graph, runtime: str) -> Graph:
    if g.source_format == "pte":
        raise UsageError(f"{runtime} runs .tflite models; this graph is an ExecuTorch program")
    if g.source_format == "torch" and not _has_opcodes(g):
        from edgekit.analysis.lowering import lower_for_tflite

        return lower_for_tflite(g)
    return g


def _opcode(op: Op) -> str:
    return op.attrs.get("opcode") or op.kind.upper()


_UNKNOWN = "unknown:"  # prefix marking a "cannot establish" answer


def _tflm_problems(op: Op, g: Graph, kernels: str, cache: dict | None = None) -> list[tuple[str, str, bool]]:
    table = _tflm.KERNELS if kernels == "reference" else _tflm_table(kernels)
    code = _opcode(op)
    if code.startswith("CUSTOM:"):
        name = code.split(":", 1)[1]
        if code in _tflm.CUSTOM_KERNELS:
            return problems(_tflm.CUSTOM_KERNELS[code], op, g, cache)
        if name in _tflm.CUSTOM_REGISTERED:
            return [(_UNKNOWN + "is a custom op TFLite-Micro registers; its tensor types are not in edgekit's table",
                     "tensorflow/lite/micro/micro_mutable_op_resolver.h", False)]
        if name in _tflm.NPU_CUSTOM:
            return [(_tflm.NPU_CUSTOM[name], "tensorflow/lite/micro/kernels/ethos_u/ethosu.cc", False)]
        return [("is a custom op with no TFLite-Micro kernel (the firmware must register one with AddCustom)",
                 "tensorflow/lite/micro/micro_mutable_op_resolver.h", False)]
    k = table.get(code)
    if k is not None:
        return problems(k, op, g, cache)
    if code in _litert.TFLITE_BUILTINS:
        return [("has no kernel in TFLite-Micro", "tensorflow/lite/micro/micro_mutable_op_resolver.h (no Add method)",
                 False)]
    return [(_UNKNOWN + "is not a TFLite op: edgekit's lowering does not know what the converter emits for it",
             "edgekit.analysis.lowering", False)]


def _fp16_weights(op: Op, g: Graph) -> list[tuple[str, str, bool]]:
    """A pre-export graph meant for fp16: the export (``edgekit.export.tflite.quantize_fp16``,
    ai-edge-quantizer's weight-only FLOAT_CASTING) stores every float weight matrix as float16
    behind a DEQUANTIZE op (measured: one per conv / linear weight, biases stay float32), and
    TFLite-Micro's DEQUANTIZE takes no float16 input. The lowering writes those weights as
    float32, so the DEQUANTIZE ops are predicted here, one per weight, at the layer that owns it."""
    if any(g.tensors[t].is_const and g.tensors[t].dtype in ("float32", "float16") and len(g.tensors[t].shape) >= 2
           for t in op.inputs):
        return [("with float16 input", "kernels/dequantize_common.cc DequantizePrepare (the fp16 export writes "
                 "float16 weights behind DEQUANTIZE)", False, "DEQUANTIZE")]
    return []


def _tflm_table(kernels: str) -> dict:
    global _CMSIS
    if _CMSIS is None:
        from edgekit.analysis.runtime_support.tflm_cmsis import KERNELS_CMSIS

        _CMSIS = KERNELS_CMSIS
    return _CMSIS


_CMSIS = None  # the CMSIS-NN table, imported on first use


def _litert_problems(op: Op, g: Graph) -> list[tuple[str, str, bool]]:
    code = _opcode(op)
    why = _litert.op_problem(code)
    if why:
        return [(why, _litert.SOURCE, False)]
    if code in _tflm.FUSING_OPS:
        act = _tflm.ignored_activation(op, g)
        if act:
            return [(act, "LiteRT tflite/kernels/kernel_util.h CalculateActivationRange", True)]
    if not code.startswith("CUSTOM:") and code not in _litert.TFLITE_BUILTINS:
        return [(_UNKNOWN + "is not a TFLite op: edgekit's lowering does not know what the converter emits for it",
                 "edgekit.analysis.lowering", False)]
    return []


def _et_problems(op: Op, lib: str) -> list[tuple[str, str, bool]]:
    if op.kind in ("delegate", "view") or "operator" not in op.attrs:
        return []  # delegate calls run in their backend; elided views are no instruction
    p = _et.operator_problem(op.attrs["operator"], lib)
    return [(p[0], p[1], False)] if p else []


# ---- grouping -----------------------------------------------------------------------------------

class _Grouper:
    """Groups (opcode, why) over the graph, counting ops and collecting their modules in order."""

    def __init__(self, rep: SupportReport):
        self.rep = rep
        self.groups: dict[tuple[str, str], Unrunnable] = {}

    def run(self, g: Graph, evaluate) -> None:
        for op in g.ops:
            for p in evaluate(op):
                self._add(op, p[0], p[1], p[3] if len(p) > 3 else None)
        for (_code, why), u in self.groups.items():
            if why.startswith(_UNKNOWN):
                u.why = why[len(_UNKNOWN):]
                self.rep.unknown.append(u)
            else:
                self.rep.unrunnable.append(u)

    def _add(self, op: Op, why: str, source: str, opcode: str | None) -> None:
        code = opcode or (op.attrs.get("operator") if self.rep.runtime == "executorch" else _opcode(op))
        key = (code, why)
        u = self.groups.get(key)
        if u is None:
            u = self.groups[key] = Unrunnable(runtime=self.rep.runtime, opcode=code, why=why, count=0, source=source)
        u.count += 1
        if op.source and op.source not in u.modules:
            u.modules.append(op.source)
