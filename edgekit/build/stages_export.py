"""Build stages that make the artifact: .tflite (litert-torch, then ai-edge-quantizer for int8
and fp16 weights) or .pte (ExecuTorch)."""

from __future__ import annotations

from edgekit.build.context import BuildContext


def export_tflite(ctx: BuildContext) -> None:
    from edgekit.export.tflite import convert_fp32

    ctx.fp32_tflite = convert_fp32(ctx.module, ctx.example, channels_last_io=ctx.options.channels_last_io)
    if ctx.plan.dtype == "fp32":
        _write_tflite(ctx, ctx.fp32_tflite)


def quantize_int8(ctx: BuildContext) -> None:
    from edgekit.export.tflite import quantize_int8 as quantize

    _write_tflite(ctx, quantize(ctx.fp32_tflite, ctx.calibration_in))


def quantize_fp16(ctx: BuildContext) -> None:
    from edgekit.export.tflite import quantize_fp16 as quantize

    _write_tflite(ctx, quantize(ctx.fp32_tflite))


def _write_tflite(ctx: BuildContext, data: bytes) -> None:
    ctx.artifact = ctx.stage_file("model.tflite")
    ctx.artifact.write_bytes(data)
    ctx.report.model_bytes = len(data)


def export_pte(ctx: BuildContext) -> None:
    from edgekit.export.executorch import export_pte as export
    from edgekit.export.op_resolver import pte_operators

    plan = ctx.plan
    res = export(ctx.module, ctx.example, backend=plan.backend, dtype=plan.dtype, calibration=ctx.calibration)
    ctx.artifact = ctx.stage_file("model.pte")
    ctx.artifact.write_bytes(res["bytes"])
    ctx.report.model_bytes = len(res["bytes"])
    ctx.report.arena_bytes.planned_by_executorch = res["planned_bytes"]
    section = {"delegates": res["delegates"], "operators": res["operators"],
               "non_const_buffer_sizes": res["buffer_sizes"]}
    if plan.backend == "portable":  # edgekit's planner laid out the buffers, not ExecuTorch's default
        section["memory_planner"] = "edgekit greedy-by-size, in-place"
    section["selective_build"] = pte_operators(ctx.artifact).to_dict()
    ctx.report.executorch = section
