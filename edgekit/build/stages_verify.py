"""Build stages that run the artifact: in LiteRT, ExecuTorch or TFLite-Micro, against PyTorch,
and — for microcontrollers — the measured arena, the C array and the op resolver."""

from __future__ import annotations

import numpy as np

from edgekit.analysis.runtime_models import predict_arena
from edgekit.build.compare import compare
from edgekit.build.context import BuildContext


def prepare_samples(ctx: BuildContext) -> None:
    """Verification inputs (calibration samples when there are some, else seeded noise) and
    PyTorch's outputs on them; for a .tflite, the inputs as the artifact takes them."""
    import torch

    n = ctx.options.verify_samples
    if ctx.calibration is not None:
        ctx.samples = ctx.calibration[:n]
    elif ctx.loaded.calibration is not None:
        ctx.samples = ctx.loaded.calibration[:n]
    else:
        ctx.samples = np.random.default_rng(0).standard_normal((n, *ctx.shape)).astype(np.float32)
    with torch.no_grad():
        ctx.reference = [ctx.module(torch.as_tensor(s)).numpy() for s in ctx.samples]
    if ctx.plan.format == "tflite":
        from edgekit.runtime.litert import input_details, quantize_to

        ind = input_details(ctx.artifact)[0]
        nhwc = ctx.options.channels_last_io
        ctx.feed = [[quantize_to(s.transpose(0, 2, 3, 1) if nhwc else s, ind)] for s in ctx.samples]


def _dequantized(ctx: BuildContext, outputs) -> list:
    from edgekit.runtime.litert import dequantize_from, output_details

    outd = output_details(ctx.artifact)[0]
    return [dequantize_from(o, outd) for o in outputs]


def verify_litert(ctx: BuildContext) -> None:
    """What a phone or a Pi runs: LiteRT with XNNPACK."""
    from edgekit.runtime.litert import litert_run

    got = _dequantized(ctx, [o[0] for o in litert_run(ctx.artifact, ctx.feed)])
    ctx.report.verification["litert"] = compare(ctx.reference, got)


def verify_executorch(ctx: BuildContext) -> None:
    from edgekit.runtime.executorch import et_run

    got = [o[0] for o in et_run(ctx.artifact, [[s] for s in ctx.samples])]
    ctx.report.verification["executorch"] = compare(ctx.reference, got)


def runtime_memory(ctx: BuildContext) -> None:
    """What LiteRT+XNNPACK or ExecuTorch allocates beyond the planned tensors (packed weights,
    delegate workspace), measured as RSS growth in a child process."""
    from edgekit.runtime.footprint import runtime_footprint

    ctx.report.runtime_memory = runtime_footprint(ctx.artifact).to_dict()


def measure_tflm(ctx: BuildContext) -> None:
    from edgekit.export.c_source import arena_with_margin
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.runtime.tflm import tflm_min_arena

    arena = ctx.report.arena_bytes
    arena.measured = tflm_min_arena(ctx.artifact, verify=True)
    pred = predict_arena(read_tflite(ctx.artifact), "tflite-micro")  # the plan in the file, if any
    arena.predicted, arena.predicted_breakdown = pred.bytes, pred.breakdown
    arena.c_constant = arena_with_margin(arena.measured)


def memory_plan(ctx: BuildContext) -> None:
    """edgekit's offline memory plan written into the .tflite (``OfflineMemoryAllocation``) when it
    lowers the measured arena, after every intermediate tensor of the planned model was compared
    with the unplanned one in TFLite-Micro; otherwise TFLite-Micro's own plan, and why."""
    from edgekit.export.c_source import arena_with_margin
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.runtime.tflm_verify import check_dict, default_inputs, make_planned_tflite

    plan, arena = ctx.plan, ctx.report.arena_bytes
    own = arena.measured
    section = {"mode": plan.memory_plan, "kernels": plan.kernels, "used": False, "tflm_arena_bytes": own}
    ctx.report.memory_plan = section
    inputs = default_inputs(read_tflite(ctx.artifact)) + list(ctx.feed[:3])
    res = make_planned_tflite(ctx.artifact.read_bytes(), kernels=plan.kernels, inputs=inputs)
    if res.check is not None:
        section["verification"] = check_dict(res.check)
    if not res.verified or (res.check.arena_bytes >= own and plan.memory_plan == "auto"):
        section["reason"] = res.reason or (f"the verified offline plan measured {res.check.arena_bytes:,d} B, "
                                           f"not below TFLite-Micro's own {own:,d} B")
        if plan.memory_plan == "offline":
            ctx.warn(f"--memory-plan offline: kept TFLite-Micro's own plan: {section['reason']}")
        return
    ctx.artifact.write_bytes(res.data)
    ctx.report.model_bytes = len(res.data)
    arena.measured_tflm_plan, arena.measured = own, res.check.arena_bytes
    arena.c_constant = arena_with_margin(arena.measured)
    pred = predict_arena(read_tflite(ctx.artifact), "tflite-micro")  # the plan now in the file
    arena.predicted, arena.predicted_breakdown = pred.bytes, pred.breakdown
    section.update(used=True, arena_bytes=arena.measured, saving_bytes=own - arena.measured,
                   plan=res.plan.to_dict(),
                   verified=(f"every intermediate tensor bit-identical to the unplanned model on "
                             f"{res.check.input_sets} input sets, in TFLite-Micro's reference kernels on the host"),
                   derived=("the in-place distances for the CMSIS-NN kernels the board runs come from their "
                            "sources (edgekit/analysis/inplace_rules.py), not from a run"
                            if "cmsis-nn" in plan.kernels else ""))


def verify_tflm(ctx: BuildContext) -> None:
    """The artifact in TFLite-Micro with exactly the arena the firmware will have."""
    from edgekit.runtime.tflm import tflm_run

    const = ctx.report.arena_bytes.c_constant
    ctx.tflm_outputs = _dequantized(ctx, [tflm_run(ctx.artifact, f, arena_size=const)[0] for f in ctx.feed])
    ctx.report.verification["tflite-micro"] = compare(ctx.reference, ctx.tflm_outputs)


def c_source(ctx: BuildContext) -> None:
    from edgekit.export.c_source import model_data_sources

    arena = ctx.report.arena_bytes
    header, source = model_data_sources(ctx.artifact.read_bytes(), arena_bytes=arena.c_constant,
                                        measured_arena_bytes=arena.measured)
    ctx.stage_file("model_data.h").write_text(header)
    ctx.stage_file("model_data.cc").write_text(source)


def cross_check_litert(ctx: BuildContext) -> None:
    """TFLite-Micro's kernels and LiteRT's reference kernels run the same graph: they must agree
    to the bit (XNNPACK and LiteRT's optimized kernels round int8 requantization differently)."""
    from edgekit.runtime.litert import litert_run

    ref = _dequantized(ctx, [o[0] for o in litert_run(ctx.artifact, ctx.feed, kernels="reference")])
    ctx.report.verification["tflite-micro_vs_litert"] = compare(ref, ctx.tflm_outputs)


def op_resolver(ctx: BuildContext) -> None:
    from edgekit.export.op_resolver import write_op_resolver
    from edgekit.runtime.tflm_resolver import check_resolver

    ctx.artifacts["op_resolver.h"] = write_op_resolver(ctx.artifact, ctx.staging, model_name=ctx.model_name)
    check = check_resolver(ctx.artifact)
    ctx.report.op_resolver = {"header": "op_resolver.h", "ok": check.ok, "registered": check.registered,
                              "problems": check.problems}
