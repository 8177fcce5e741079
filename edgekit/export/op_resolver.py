"""Selective builds: the TFLite-Micro op resolver a .tflite needs, the operators a .pte needs.

TFLite-Micro: ``op_resolver_header(path)`` writes ``op_resolver.h`` registering exactly the
builtin operators the model uses with ``tflite::MicroMutableOpResolver<N>`` (N = their number)
and the right ``Add*`` method for each builtin opcode. The method names are those of
``tensorflow/lite/micro/micro_mutable_op_resolver.h`` (TFLite-Micro, 2025); a builtin opcode
without a method there has no TFLite-Micro kernel, and the header then carries an ``#error``
naming it instead of compiling into a firmware that fails at ``AllocateTensors``.
``edgekit.runtime.tflm_resolver.check_resolver(path)`` compares the list with what the
TFLite-Micro interpreter itself reports for the model.

ExecuTorch: ``pte_operators(path_or_bytes)`` reads the program's operator table with
edgekit's torch-free .pte reader and returns the kernel operators (``aten::convolution.out``)
a selective build must register, and the delegates (``XnnpackBackend``) it must link; the
``ROOT_OPS`` string is ready for CMake's ``gen_selected_ops(... ROOT_OPS ...)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# builtin opcode -> MicroMutableOpResolver method (tensorflow/lite/micro/micro_mutable_op_resolver.h)
TFLM_ADD_METHODS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul", "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs", "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast", "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "ELU": "AddElu", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot", "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic", "LOG_SOFTMAX": "AddLogSoftmax", "MAXIMUM": "AddMaximum",
    "MAX_POOL_2D": "AddMaxPool2D", "MIRROR_PAD": "AddMirrorPad", "MEAN": "AddMean", "MINIMUM": "AddMinimum",
    "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad",
    "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize", "READ_VARIABLE": "AddReadVariable",
    "REDUCE_ALL": "AddReduceAll", "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2", "ROUND": "AddRound",
    "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQUEEZE": "AddSqueeze", "SQRT": "AddSqrt", "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub",
    "SUM": "AddSum", "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE_CONV": "AddTransposeConv",
    "TRANSPOSE": "AddTranspose", "UNPACK": "AddUnpack",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}
# custom ops TFLite-Micro registers with a method of its own (AddCustom under the hood)
TFLM_CUSTOM_METHODS: dict[str, str] = {
    "TFLite_Detection_PostProcess": "AddDetectionPostprocess", "CIRCULAR_BUFFER": "AddCircularBuffer",
    "ethos-u": "AddEthosU",
}
HEADER_NAME = "op_resolver.h"


@dataclass
class Resolver:
    """The registrations a model needs, in first-use order."""

    ops: list[str]  # opcode names ("CONV_2D", "CUSTOM:name")
    methods: list[str]  # the Add* call for each op that TFLite-Micro has a method for
    missing: list[str] = field(default_factory=list)  # builtin opcodes TFLite-Micro has no method for
    custom: list[str] = field(default_factory=list)  # custom op names without a known method

    @property
    def count(self) -> int:
        """N in MicroMutableOpResolver<N>: every registration, custom ones included."""
        return len(self.methods) + len(self.custom)


def model_ops(path_or_graph) -> list[str]:
    """Opcode names the model uses, in order of first use."""
    from edgekit.graph.tflite_reader import read_tflite

    g = path_or_graph if hasattr(path_or_graph, "ops") else read_tflite(path_or_graph)
    seen: list[str] = []
    for op in g.ops:
        name = op.attrs.get("opcode", op.kind.upper())
        if name not in seen:
            seen.append(name)
    return seen


def resolver_for(path_or_graph) -> Resolver:
    ops = model_ops(path_or_graph)
    methods, missing, custom = [], [], []
    for name in ops:
        if name.startswith("CUSTOM:"):
            cname = name.split(":", 1)[1]
            if cname in TFLM_CUSTOM_METHODS:
                methods.append(TFLM_CUSTOM_METHODS[cname])
            else:
                custom.append(cname)
        elif name in TFLM_ADD_METHODS:
            methods.append(TFLM_ADD_METHODS[name])
        else:
            missing.append(name)
    return Resolver(ops=ops, methods=methods, missing=missing, custom=custom)


def _c_ident(text: str) -> str:
    s = re.sub(r"\W", "_", text)
    return s if not s[:1].isdigit() else "_" + s


def op_resolver_header(path_or_graph, *, model_name: str = "model", guard: str | None = None) -> str:
    """C++ header registering exactly the model's operators with TFLite-Micro.

    Defines ``EdgekitOpResolver`` (``tflite::MicroMutableOpResolver<N>``) and
    ``edgekit_register_ops(resolver)``, which calls one ``Add*`` per operator and returns the
    first failure. Usage::

        #include "op_resolver.h"
        static EdgekitOpResolver resolver;
        if (edgekit_register_ops(resolver) != kTfLiteOk) { /* ... */ }
        tflite::MicroInterpreter interpreter(model, resolver, arena, kArenaSize);
    """
    r = resolver_for(path_or_graph)
    guard = guard or f"EDGEKIT_{_c_ident(model_name).upper()}_OP_RESOLVER_H_"
    lines = [
        f"// Generated by edgekit for {model_name}: the TFLite-Micro operators this model uses, nothing more.",
        f"// {len(r.ops)} operator type(s): {', '.join(r.ops)}",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"',
        "",
    ]
    for name in r.missing:
        lines.append(f'#error "edgekit: TFLite-Micro has no kernel for builtin operator {name} used by '
                     f'{model_name} (see edgekit lint)"')
    lines += [
        f"using EdgekitOpResolver = tflite::MicroMutableOpResolver<{max(r.count, 1)}>;",
        "",
        "// Registers every operator the model needs; returns the first failure.",
        "static inline TfLiteStatus edgekit_register_ops(EdgekitOpResolver& resolver) {",
    ]
    for method in r.methods:
        lines.append(f"  if (resolver.{method}() != kTfLiteOk) return kTfLiteError;")
    for cname in r.custom:
        lines.append(f'  // custom operator "{cname}": register your kernel with resolver.AddCustom("{cname}", ...)')
    lines += ["  return kTfLiteOk;", "}", "", f"#endif  // {guard}", ""]
    return "\n".join(lines)


def write_op_resolver(path, out_dir, *, model_name: str | None = None) -> Path:
    """Write ``op_resolver.h`` for the .tflite ``path`` into ``out_dir``; returns its path."""
    out = Path(out_dir) / HEADER_NAME
    out.write_text(op_resolver_header(path, model_name=model_name or Path(path).stem))
    return out


def stub_resolver_header(methods=None) -> str:
    """A stand-in for TFLite-Micro's headers declaring ``MicroMutableOpResolver`` with the Add*
    methods (for a ``g++ -fsyntax-only`` check of a generated header without TFLite-Micro)."""
    methods = sorted(set(methods or list(TFLM_ADD_METHODS.values()) + list(TFLM_CUSTOM_METHODS.values())))
    body = "\n".join(f"  TfLiteStatus {m}() {{ return kTfLiteOk; }}" for m in methods)
    return ("#pragma once\n"
            "typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;\n"
            "namespace tflite {\n"
            "template <unsigned int tOpCount>\n"
            "class MicroMutableOpResolver {\n public:\n"
            "  TfLiteStatus AddCustom(const char*, const void*) { return kTfLiteOk; }\n"
            f"{body}\n}};\n}}  // namespace tflite\n")


# ---- ExecuTorch ---------------------------------------------------------------------------

@dataclass
class PteOperators:
    operators: list[str]  # "aten::convolution.out": kernels a selective build must register
    delegates: list[str]  # backend ids ("XnnpackBackend") the runtime must link
    kernel_calls: int = 0  # instructions that call a kernel
    delegate_calls: int = 0  # instructions that call a delegate

    @property
    def root_ops(self) -> str:
        """For CMake: ``gen_selected_ops(LIB_NAME ... ROOT_OPS "<this>")``."""
        return ",".join(self.operators)

    def yaml(self) -> str:
        """A selected-operators YAML (``OPS_SCHEMA_YAML``) listing the kernels."""
        lines = ["# Generated by edgekit: the kernels this program calls (selective build)"]
        for op in self.operators:
            lines.append(f"- op: {op}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {"operators": self.operators, "delegates": self.delegates, "kernel_calls": self.kernel_calls,
                "delegate_calls": self.delegate_calls, "root_ops": self.root_ops}


def pte_operators(path_or_bytes) -> PteOperators:
    """Operators and delegates in a .pte program's execution plan, read with edgekit's torch-free
    reader (``edgekit.graph.pte_reader``; ExecuTorch's own deserializer would import torch)."""
    import tempfile

    from edgekit.graph.pte_reader import read_pte

    if isinstance(path_or_bytes, (bytes, bytearray)):
        with tempfile.TemporaryDirectory(prefix="edgekit-pte-") as tmp:
            path = Path(tmp) / "program.pte"
            path.write_bytes(bytes(path_or_bytes))
            g = read_pte(path)
    else:
        g = read_pte(path_or_bytes)
    m = g.meta
    return PteOperators(operators=list(m["operators"]), delegates=list(m["delegate_backends"]),
                        kernel_calls=int(m["kernel_calls"]), delegate_calls=int(m["delegate_calls"]))
