"""The Raspberry Pi bundle (any Linux board): model.tflite (+ model.pte), ``predict.py`` with LiteRT
(``ai_edge_litert``, falling back to ``tflite_runtime``; ExecuTorch for the .pte), requirements.txt
and a README with the pip line. Measured on the board over ssh (``edgekit recipe run --ssh``)."""

from __future__ import annotations

from edgekit.recipe.bundles.base import Bundle, BundleJob, tflite_required
from edgekit.recipe.bundles.common import python_scripts, write_file
from edgekit.recipe.render import render

PI_PIP = "python3 -m pip install ai-edge-litert numpy pillow"
PI_PIP_FALLBACK = "python3 -m pip install tflite-runtime numpy pillow"
PTE_LINE = ("- `model.pte`: the same network for ExecuTorch (XNNPACK): `python3 predict.py model.pte photo.jpg` "
            "(needs `pip install executorch`).")


class RaspberryPiBundle(Bundle):
    kind = "raspberry-pi"
    device_kinds = ("sbc",)
    formats = ("tflite", "pte")
    transport = "ssh"
    measure_hint = "--ssh USER@HOST"
    pip = PI_PIP

    def validate(self, recipe, plan):
        return tflite_required(self.kind, recipe.formats)

    def write(self, job: BundleJob) -> list[str]:
        requirements = render("requirements-raspberry-pi.txt", pip=PI_PIP, pip_fallback=PI_PIP_FALLBACK)
        return [*python_scripts(job.folder, "predict.py"), write_file(job.folder, "requirements.txt", requirements)]

    def readme(self, job: BundleJob) -> str:
        rec, inp = job.recipe, job.spec["inputs"][0]
        return render("README-raspberry-pi.md", name=rec.name, model=rec.model, target_name=job.target.name,
                      bundle=job.folder, pip=PI_PIP, pip_fallback=PI_PIP_FALLBACK, input_dtype=inp["dtype"],
                      input_shape=inp["shape"], input_layout=inp["layout"],
                      pte_line=PTE_LINE if job.have_pte else "", latency=job.latency, target_id=job.target.id,
                      recipe_folder=rec.folder)
