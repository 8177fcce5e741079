"""Build stages for a .tflite the user already has (made by edgekit or any other tool): re-plan its
memory for TFLite-Micro, verify it against the original file, and write the C array, the op
resolver and the report — no PyTorch involved."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgekit.analysis.api import analyze_graph
from edgekit.build.compare import compare
from edgekit.build.context import BuildContext
from edgekit.errors import UsageError
from edgekit.graph.tflite_reader import read_tflite


def read_artifact(ctx: BuildContext) -> None:
    """The .tflite analysed as `edgekit check` analyses it (runnability, the arena under the plan the
    build will write); over budget or unrunnable ends the build here."""
    from edgekit.runtime.tflm_verify import default_inputs

    src = Path(ctx.model)
    g = read_tflite(src)
    if g.meta.get("offline_buffers"):
        raise UsageError(f"{src} stores its weights outside the flatbuffer; TFLite-Micro cannot load it "
                         "(re-serialize it with edgekit.export.tflite.inline_buffers)")
    ctx.artifact = ctx.stage_file("model.tflite")
    shutil.copyfile(src, ctx.artifact)
    pre = analyze_graph(g, str(src), plan=ctx.plan)
    ctx.analysis = pre
    r = ctx.report
    r.model, r.input_shape, r.model_bytes = str(src), list(pre.input_shape), ctx.artifact.stat().st_size
    r.params, r.macs, r.peak_activation_bytes = pre.params, pre.macs, pre.peak_activation_bytes
    r.dtype = pre.dtype
    r.arena_bytes.predicted_pre_export = pre.arena_bytes
    ctx.feed = default_inputs(g)[: max(1, ctx.options.verify_samples)]
    ctx.stop_unless_fits(pre.check(suggest=False), "predicted before the build")


def verify_against_original(ctx: BuildContext) -> None:
    """The built file and the user's file, in TFLite-Micro on the same inputs: bit for bit."""
    from edgekit.runtime.tflm import tflm_run

    const = ctx.report.arena_bytes.c_constant
    original = [tflm_run(Path(ctx.model), f)[0] for f in ctx.feed]
    ctx.tflm_outputs = [tflm_run(ctx.artifact, f, arena_size=const)[0] for f in ctx.feed]
    ctx.report.verification["tflite-micro_vs_original"] = compare(original, ctx.tflm_outputs)
