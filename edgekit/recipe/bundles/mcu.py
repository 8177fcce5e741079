"""The microcontroller bundle: an int8 TFLite-Micro build. model.tflite, model_data.h/.cc (the C
array and ``kTensorArenaSize``) and op_resolver.h from the build, ``main.cc`` (one inference with
TFLite-Micro), ``run_on_host.py`` (the TFLite-Micro Python interpreter with that arena) and a README.
A microcontroller is never measured here: its latency is the target's cycle model."""

from __future__ import annotations

import json

from edgekit.recipe.bundles.base import Bundle, BundleJob
from edgekit.recipe.bundles.common import copy_file, python_scripts, write_file
from edgekit.recipe.render import render

MCU_PIP = "python3 -m pip install tflite-micro numpy pillow"
# written by the build beside model.tflite; it checked op_resolver.h against TFLite-Micro
BUILD_SOURCES = ("model_data.h", "model_data.cc", "op_resolver.h")


def main_cc(spec: dict, labels: list[str], *, model: str = "model") -> str:
    """A minimal TFLite-Micro program: model_data.h + op_resolver.h, one inference, the top class."""
    inp, outp = spec["inputs"][0], spec["outputs"][0]
    q_out = outp.get("quantization") or {"scale": 1.0, "zero_point": 0}
    if inp["dtype"] == "int8":
        zp = (inp.get("quantization") or {}).get("zero_point", 0)
        fill = f"  for (size_t i = 0; i < input->bytes; ++i) input->data.int8[i] = static_cast<int8_t>({zp});"
    else:
        fill = "  for (size_t i = 0; i < input->bytes / sizeof(float); ++i) input->data.f[i] = 0.0f;"
    return render("main.cc", model=model, input_dtype=inp["dtype"], input_shape=inp["shape"],
                  input_layout=inp["layout"], output_dtype=outp["dtype"], output_shape=outp["shape"],
                  num_classes=spec["num_classes"], labels=",\n    ".join(json.dumps(x) for x in labels),
                  output_scale=_float_literal(q_out["scale"]), output_zero_point=q_out["zero_point"], fill_input=fill,
                  output_field="int8" if outp["dtype"] == "int8" else "f")


def _float_literal(value: float) -> str:
    """A C++ float literal without its ``f``: ``1`` is ``1.0`` (``1f`` does not compile), else 9 digits."""
    text = f"{value:.9g}"
    return text if any(c in text for c in ".en") else text + ".0"


class McuBundle(Bundle):
    kind = "mcu"
    device_kinds = ("mcu",)
    formats = ("tflite",)
    pip = MCU_PIP + "  # run_on_host.py only"

    def validate(self, recipe, plan):
        if plan.runtime != "tflite-micro":
            yield "target.device", (f"{plan.target_name} runs {plan.runtime} by default; a microcontroller recipe "
                                    "builds for TFLite-Micro (a target with runtime.default = \"tflite-micro\")")
        if plan.dtype != "int8":
            yield "target.dtype", "a microcontroller recipe builds int8 for TFLite-Micro; use dtype = \"int8\""
        if recipe.formats != ("tflite",):
            yield "outputs.formats", ("a microcontroller recipe builds the int8 .tflite and its C source: "
                                      "formats = [\"tflite\"]")

    def write(self, job: BundleJob) -> list[str]:
        build_dir = job.artifact("tflite").parent
        files = [copy_file(build_dir / name, job.folder) for name in BUILD_SOURCES]
        files.append(write_file(job.folder, "main.cc", main_cc(job.spec, job.labels, model=job.recipe.model)))
        return files + python_scripts(job.folder, "run_on_host.py")

    def readme(self, job: BundleJob) -> str:
        rec, build = job.recipe, job.builds["tflite"]
        arena = build.get("arena_bytes") or {}
        return render("README-mcu.md", name=rec.name, model=rec.model, target_name=job.target.name,
                      arena_c_constant=arena.get("c_constant"), arena_measured=arena.get("measured"), pip=MCU_PIP,
                      model_bytes=build.get("model_bytes"), sram_bytes=job.target.sram_bytes,
                      latency=job.latency, target_id=job.target.id)

