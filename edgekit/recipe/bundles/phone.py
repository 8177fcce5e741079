"""The Android phone bundle: model.tflite, model.pte, model_io.json (shapes, dtypes, layout,
quantization, preprocessing), ``ModelRunner.kt`` (LiteRT's CompiledModel API), ``predict.py`` to
check the same files on a laptop, and a README. Measured on the phone over adb (``--adb``).

``ModelRunner.kt`` is ``templates/ModelRunner.kt`` filled from model_io.json: the input size and
layout, mean/std, and for a quantized input or output the scale and zero point with the functions
that apply them (the only Kotlin written here, below)."""

from __future__ import annotations

from edgekit.recipe.bundles.base import Bundle, BundleJob, tflite_required
from edgekit.recipe.bundles.common import python_scripts, write_file
from edgekit.recipe.render import render

LITERT_ANDROID = "com.google.ai.edge.litert:litert:2.1.0"
PTE_LINE = ("- `model.pte`: the same network for ExecuTorch with XNNPACK (`org.pytorch.executorch` Module API), "
            "float32 input as above.")

_RGB = "floatArrayOf(((p shr 16) and 0xFF) / 255f, ((p shr 8) and 0xFF) / 255f, (p and 0xFF) / 255f)"
_GRAY = "floatArrayOf((0.299f * ((p shr 16) and 0xFF) + 0.587f * ((p shr 8) and 0xFF) + 0.114f * (p and 0xFF)) / 255f)"
_QUANTIZE_FUN = ("\n    private fun quantizeInput(x: FloatArray): ByteArray =\n"
                 "        ByteArray(x.size) { (x[it] / INPUT_SCALE + INPUT_ZERO_POINT).roundToInt().coerceIn(-128, 127)"
                 ".toByte() }\n")
_READ_INT8 = ("val raw = outputBuffers[0].readInt8()\n"
              "        val scores = FloatArray(raw.size) { (raw[it] - OUTPUT_ZERO_POINT) * OUTPUT_SCALE }")


def kotlin_snippet(spec: dict, *, model: str = "model", package: str = "com.example.edgekit") -> str:
    """A minimal Android class that loads model.tflite with LiteRT (CompiledModel API) and classifies a Bitmap."""
    inp, outp = spec["inputs"][0], spec["outputs"][0]
    pre = spec["preprocess"]
    h, w = pre["resize"]
    channels = 3 if pre["color"] == "RGB" else 1
    q_in, q_out = inp.get("quantization"), outp.get("quantization")
    constants = ""
    if q_in:
        constants += (f"\n        const val INPUT_SCALE = {q_in['scale']:.9g}f"
                      f"\n        const val INPUT_ZERO_POINT = {q_in['zero_point']}")
    if q_out:
        constants += (f"\n        const val OUTPUT_SCALE = {q_out['scale']:.9g}f"
                      f"\n        const val OUTPUT_ZERO_POINT = {q_out['zero_point']}")
    return render(
        "ModelRunner.kt", model=model, package=package, litert_android=LITERT_ANDROID,
        input_dtype=inp["dtype"], input_shape=inp["shape"], input_layout=inp["layout"],
        output_dtype=outp["dtype"], output_shape=outp["shape"],
        imports="import kotlin.math.roundToInt\n" if q_in else "",
        write_input=("inputBuffers[0].writeInt8(quantizeInput(preprocess(bitmap)))" if q_in else
                     "inputBuffers[0].writeFloat(preprocess(bitmap))"),
        read_output=_READ_INT8 if q_out else "val scores = outputBuffers[0].readFloat()",
        pixel=_RGB if channels == 3 else _GRAY,
        index="c * WIDTH * HEIGHT + i" if inp["layout"] == "NCHW" else f"i * {channels} + c",
        quantize_fun=_QUANTIZE_FUN if q_in else "", quant_constants=constants,
        width=w, height=h, channels=channels,
        mean=", ".join(f"{float(v):.6g}f" for v in pre["mean"]), std=", ".join(f"{float(v):.6g}f" for v in pre["std"]))


class PhoneBundle(Bundle):
    kind = "phone"
    device_kinds = ("phone",)
    formats = ("tflite", "pte")
    transport = "adb"
    measure_hint = "--adb [SERIAL]"

    def validate(self, recipe, plan):
        return tflite_required(self.kind, recipe.formats)

    def write(self, job: BundleJob) -> list[str]:
        kt = kotlin_snippet(job.spec, model=job.recipe.model)
        return [write_file(job.folder, "ModelRunner.kt", kt), *python_scripts(job.folder, "predict.py")]

    def readme(self, job: BundleJob) -> str:
        rec, spec = job.recipe, job.spec
        inp, outp, pre = spec["inputs"][0], spec["outputs"][0], spec["preprocess"]
        return render("README-phone.md", name=rec.name, model=rec.model, target_name=job.target.name,
                      litert_android=LITERT_ANDROID, input_name=inp["name"], input_dtype=inp["dtype"],
                      input_shape=inp["shape"], input_layout=inp["layout"], input_quantization=inp["quantization"],
                      output_name=outp["name"], output_dtype=outp["dtype"], output_shape=outp["shape"],
                      output_quantization=outp["quantization"], resize=pre["resize"], color=pre["color"],
                      mean=pre["mean"], std=pre["std"], pte_line=PTE_LINE if job.have_pte else "",
                      latency=job.latency, recipe_folder=rec.folder)
