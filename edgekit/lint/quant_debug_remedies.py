"""The quantization debugger's remedies: re-quantize (or rewrite) the model a named way, measure the
model output against fp32 in a child process, and optionally the top-1 accuracy on labelled data.

Names (``check_remedy_names``): ``per_channel``, ``shared_concat_scales`` (``share_concat_scales``
rewrites the concat inputs' scales where the producer requantizes), ``float_worst:K`` and
``int16_worst:K`` (the K layers adding the most error kept float / with int16 activations). The
re-quantization is ``edgekit.lint.quant_debug._quantize``, looked up there at call time
(``_requantize``) so that a patch of that name (the tests' export guard) applies here too.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgekit.errors import UsageError
from edgekit.isolate import run_isolated
from edgekit.lint import quant_debug_child
from edgekit.lint.quant_debug_report import QuantDebugReport, RemedyResult, _cos, _sqnr

# requantizing producers: an op that computes a new int8 value from a wider accumulator can
# write any output scale, so a concat input can take the concat's scale there for free
_REQUANTIZING = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MEAN",
                 "QUANTIZE", "HARD_SWISH", "TRANSPOSE_CONV", "BATCH_MATMUL"}


def check_remedy_names(names) -> None:
    """Refuse an unknown remedy before any slow work starts."""
    for name in names:
        kind, _, arg = str(name).partition(":")
        ok = kind in ("per_channel", "shared_concat_scales") and not arg
        ok = ok or (kind in ("float_worst", "int16_worst") and (not arg or (arg.isdigit() and int(arg) > 0)))
        if not ok:
            raise UsageError(f"unknown quantization remedy {name!r}: choose per_channel, shared_concat_scales, "
                             f"float_worst:K or int16_worst:K (K a positive number of layers)")


def remedy_accuracy(remedy: RemedyResult, eval_data, *, baseline) -> RemedyResult:
    """Fill ``remedy``'s accuracy fields: top-1 on ``eval_data`` of the remedied model and of
    ``baseline`` (model bytes or a path), each in LiteRT's builtin kernels, one child per model."""
    from edgekit.evaluation.metrics import score
    from edgekit.evaluation.runners import run_litert

    tmp = Path(tempfile.mkdtemp(prefix="edgekit-qdebug-acc-"))
    try:
        accs = []
        for i, model in enumerate((remedy.model, baseline)):
            p = Path(model) if not isinstance(model, (bytes, bytearray)) else tmp / f"m{i}.tflite"
            if isinstance(model, (bytes, bytearray)):
                p.write_bytes(bytes(model))
            out = run_litert(p, eval_data, kernels="builtin")
            accs.append(score(out, eval_data.y, name=remedy.name, runtime="litert").accuracy)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    remedy.accuracy, remedy.baseline_accuracy = accs
    remedy.accuracy_delta_pp = round(100.0 * (accs[0] - accs[1]), 4)
    remedy.eval_samples = len(eval_data)
    return remedy


def _requantize(*args, **kwargs) -> bytes:
    """``edgekit.lint.quant_debug._quantize``, looked up at call time (the export guard patches it there)."""
    from edgekit.lint import quant_debug

    return quant_debug._quantize(*args, **kwargs)


def _remedy(name: str, fp32_path: Path, int8_path: Path, cal, feed, report: QuantDebugReport, target,
            timeout_s) -> RemedyResult:
    base = report.output_sqnr_db
    kind, _, arg = str(name).partition(":")
    runtime = None
    tgt = None
    if target is not None:
        from edgekit.lint import resolve_target

        runtime, tgt = resolve_target(target)
    try:
        if kind == "per_channel":
            return _per_channel(name, fp32_path, int8_path, cal, feed, timeout_s)
        if kind == "shared_concat_scales":
            return _shared_concat(name, fp32_path, int8_path, feed, base, timeout_s)
        if kind in ("float_worst", "int16_worst"):
            return _keep_worst(name, kind, arg, fp32_path, int8_path, cal, feed, report, runtime, tgt, timeout_s)
    except UsageError:
        raise
    except Exception as exc:  # a recipe the quantizer refuses: report, do not fail the whole debug run
        return RemedyResult(name, False, f"could not apply: {type(exc).__name__}: {str(exc)[:200]}",
                            baseline_sqnr_db=base)
    raise UsageError(f"unknown quantization remedy {name!r}: choose per_channel, shared_concat_scales, "
                     f"float_worst:K or int16_worst:K")


def _per_channel(name: str, fp32_path: Path, int8_path: Path, cal, feed, timeout_s) -> RemedyResult:
    """Per-channel against per-tensor weight scales, both quantized from the fp32 model."""
    tensorwise = _requantize(fp32_path, cal, weight_granularity="TENSORWISE")
    channelwise = _requantize(fp32_path, cal, weight_granularity="CHANNELWISE")
    s_t = _output_error(fp32_path, tensorwise, feed, timeout_s)
    s_c = _output_error(fp32_path, channelwise, feed, timeout_s)
    return RemedyResult(
        name, True, f"per-tensor weights: {s_t[0]:.2f} dB, per-channel: {s_c[0]:.2f} dB at the output"
        + (" (the artifact already uses per-channel weights)" if _is_per_channel(int8_path) else ""),
        output_sqnr_db=s_c[0], output_cosine=s_c[1], baseline_sqnr_db=s_t[0],
        delta_db=round(s_c[0] - s_t[0], 3), model_bytes=len(channelwise), model=channelwise,
        baseline_model=tensorwise)


def _shared_concat(name: str, fp32_path: Path, int8_path: Path, feed, base: float, timeout_s) -> RemedyResult:
    """The int8 model with every concat input at the output's scale where its producer allows."""
    data, changed, impossible = share_concat_scales(int8_path.read_bytes())
    if not changed:
        return RemedyResult(name, False, "every CONCATENATION input already has the output's scale"
                            + (f"; {impossible} input(s) could not take it" if impossible else ""),
                            baseline_sqnr_db=base)
    s = _output_error(fp32_path, data, feed, timeout_s)
    return RemedyResult(name, True, f"{changed} concat input(s) now share the output scale"
                        + (f", {impossible} could not" if impossible else ""),
                        output_sqnr_db=s[0], output_cosine=s[1], baseline_sqnr_db=base,
                        delta_db=round(s[0] - base, 3), model_bytes=len(data), model=data)


def _keep_worst(name: str, kind: str, arg: str, fp32_path: Path, int8_path: Path, cal, feed,
                report: QuantDebugReport, runtime, tgt, timeout_s) -> RemedyResult:
    """The K layers that add the most error kept float (``float_worst``) or int16 (``int16_worst``)."""
    base = report.output_sqnr_db
    k = int(arg or 3)
    if kind == "int16_worst" and runtime == "litert":
        return RemedyResult(name, False, "LiteRT/XNNPACK has no int16-activation kernels for most ops: "
                            "use float_worst on this target", baseline_sqnr_db=base)
    if kind == "float_worst" and tgt is not None and tgt.is_mcu and "fpu-sp" not in tgt.cpu.features:
        note_fpu = f"; {tgt.id} has no FPU: float layers run in software"
    else:
        note_fpu = ""
    worst = [lay for lay in report.layers if lay.opcode not in ("QUANTIZE", "DEQUANTIZE")][:k]
    overrides = [lay.tensor for lay in worst]
    data = _requantize(fp32_path, cal, keep=overrides, keep_mode="float" if kind == "float_worst" else "int16")
    s = _output_error(fp32_path, data, feed, timeout_s)
    extra = _count_qdq(data) - _count_qdq(int8_path.read_bytes())
    return RemedyResult(name, True, f"kept {len(worst)} layer(s) in "
                        f"{'float' if kind == 'float_worst' else 'int16 activations'}: "
                        f"{', '.join(lay.module or lay.op for lay in worst)}{note_fpu}",
                        output_sqnr_db=s[0], output_cosine=s[1], baseline_sqnr_db=base,
                        delta_db=round(s[0] - base, 3), extra_ops=extra, model_bytes=len(data),
                        layers=[lay.module or lay.op for lay in worst], model=data)


def _output_error(fp32_path: Path, int8_bytes: bytes, feed, timeout_s) -> tuple[float, float]:
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-qdebug-"))
    try:
        p = tmp / "remedy.tflite"
        p.write_bytes(int8_bytes)
        raw = run_isolated(quant_debug_child.__name__, "_child_compare",
                           {"fp32_path": str(fp32_path), "int8_path": str(p), "samples": list(feed),
                            "isolate": False, "outputs_only": True},
                           timeout_s=timeout_s, runtime="LiteRT", artifact=p).value
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    o = raw["output"]
    return round(_sqnr(o["ref2"], o["err2"]), 3), round(_cos(o["dot"], o["ref2"], o["q2"]), 6)


def share_concat_scales(int8_bytes: bytes) -> tuple[bytes, int, int]:
    """Give every int8 CONCATENATION input the output's scale/zero point by rewriting the input
    tensor's quantization where its producer requantizes (conv, add, ... write any output scale);
    returns (model bytes, inputs changed, inputs that could not be changed)."""
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    from edgekit.export.tflite import inline_buffers

    model = fbu.read_model_from_bytearray(bytearray(int8_bytes))
    names = _opcode_names(model)
    sg = model.subgraphs[0]
    producer = {t: op for op in sg.operators for t in op.outputs}
    changed = impossible = 0
    for op in sg.operators:
        if names[op.opcodeIndex] != "CONCATENATION":
            continue
        out = sg.tensors[op.outputs[0]]
        oq = out.quantization
        if oq is None or oq.scale is None or len(oq.scale) != 1:
            continue
        for t in op.inputs:
            tq = sg.tensors[t].quantization
            if tq is None or tq.scale is None:
                continue
            if np.allclose(tq.scale, oq.scale, rtol=1e-6) and list(tq.zeroPoint) == list(oq.zeroPoint):
                continue
            p = producer.get(t)
            if p is None or names[p.opcodeIndex] not in _REQUANTIZING:
                impossible += 1
                continue
            tq.scale = [float(oq.scale[0])]
            tq.zeroPoint = [int(oq.zeroPoint[0])]
            changed += 1
    return inline_buffers(bytes(fbu.convert_object_to_bytearray(model))), changed, impossible


def _opcode_names(model) -> list[str]:
    from ai_edge_litert import schema_py_generated as S

    rev = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    return [rev.get(max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode)), "?") for oc in model.operatorCodes]


def _count_qdq(data: bytes) -> int:
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(data))
    names = _opcode_names(model)
    return sum(1 for op in model.subgraphs[0].operators if names[op.opcodeIndex] in ("QUANTIZE", "DEQUANTIZE"))


def _is_per_channel(int8_path: Path) -> bool:
    from edgekit.graph.tflite_reader import read_tflite

    g = read_tflite(int8_path)
    for op in g.ops:
        if op.attrs.get("opcode") in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) > 1:
            q = g.tensors[op.inputs[1]].quant
            return q is not None and q.num_scales > 1
    return False
