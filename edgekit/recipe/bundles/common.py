"""What every bundle has: the models, ``labels.txt``, ``model_io.json`` (:func:`io_spec`), and the
helpers the bundles write their own files with.

``model_io.json`` is read from the built .tflite's flatbuffer without running it
(``runtime.litert.input_details`` / ``output_details``): the shapes, dtypes and quantization an app
must feed (tests/test_recipes.py checks them against the LiteRT and TFLite-Micro interpreters), plus
the preprocessing (the recipe's mean/std, else ImageNet's for RGB).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

from edgekit.models.catalog import IMAGENET_MEAN, IMAGENET_STD
from edgekit.recipe.bundles.base import Bundle, BundleJob
from edgekit.recipe.errors import RecipeError
from edgekit.recipe.render import template_text
from edgekit.runtime.litert import input_details, output_details

PREPROCESS_FORMULA = ("x = (pixel * scale - mean[c]) / std[c]; then quantize if the input has quantization: "
                      "q = clamp(round(x / scale) + zero_point)")


def io_spec(tflite_path, *, rec=None, labels_file="labels.txt", pte_path=None, num_classes=None) -> dict:
    """The model's inputs/outputs for an app: shapes, dtypes, layout, quantization, preprocessing."""
    ins = [_entry(d, i, is_input=True) for i, d in enumerate(input_details(tflite_path))]
    outs = [_entry(d, i, is_input=False) for i, d in enumerate(output_details(tflite_path))]
    first = ins[0]
    nchw = first["layout"] == "NCHW"
    channels = first["shape"][1] if nchw else first["shape"][-1]
    mean = rec.mean if rec is not None and rec.mean is not None else (list(IMAGENET_MEAN) if channels == 3 else [0.0])
    std = rec.std if rec is not None and rec.std is not None else (list(IMAGENET_STD) if channels == 3 else [1.0])
    h, w = (first["shape"][2], first["shape"][3]) if nchw else (first["shape"][1], first["shape"][2])
    spec = {
        "schema": "edgekit.model_io/1",
        "model": Path(tflite_path).name,
        "inputs": ins,
        "outputs": outs,
        "preprocess": {"color": "RGB" if channels == 3 else "L", "resize": [h, w], "scale": 1 / 255,
                       "mean": mean, "std": std, "formula": PREPROCESS_FORMULA},
        "labels": labels_file,
        "num_classes": num_classes if num_classes is not None else int(math.prod(outs[0]["shape"][1:])),
    }
    if pte_path is not None:
        spec["pte"] = {"model": Path(pte_path).name,
                       "inputs": [{"shape": first["shape"], "dtype": "float32", "layout": first["layout"]}],
                       "note": "the .pte takes float32 input (preprocessed as above, no quantization)"}
    return spec


def _entry(d: dict, index: int, *, is_input: bool) -> dict:
    e = {"name": d["name"], "index": index, "shape": list(d["shape"]), "dtype": d["dtype"],
         "quantization": ({"scale": float(d["scale"]), "zero_point": int(d["zero_point"])}
                          if d.get("scale") and d["dtype"] in ("int8", "uint8", "int16") else None)}
    if is_input:
        e["layout"] = layout(d["shape"])
    return e


def layout(shape) -> str:
    """NCHW or NHWC for a 4-d image input (the channel axis is the one of size 1, 3 or 4), else flat."""
    if len(shape) == 4 and shape[1] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
        return "NCHW"
    if len(shape) == 4 and shape[-1] in (1, 3, 4):
        return "NHWC"
    return "NCHW" if len(shape) == 4 else "flat"


def labels_for(rec, n: int) -> list[str]:
    """The recipe's labels file (one per output index), else class_0 … class_{n-1}."""
    if rec.labels is not None:
        labels = [ln.strip() for ln in rec.labels.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(labels) != n:
            raise RecipeError(f"{rec.path}: model.labels: {rec.labels.name} has {len(labels)} labels but the model "
                              f"has {n} outputs", path=rec.path, key="model.labels")
        return labels
    return [f"class_{i}" for i in range(n)]


def prepare(rec, target, builds: dict, latency: str, folder: Path) -> BundleJob:
    """The model_io.json and labels of a recipe's builds."""
    tfl = Path(builds["tflite"]["artifacts"]["model.tflite"])
    pte = Path(builds["pte"]["artifacts"]["model.pte"]) if "pte" in builds else None
    spec = io_spec(tfl, rec=rec, pte_path=pte)
    labels = labels_for(rec, spec["num_classes"])
    spec["source"] = rec.model
    spec["target"] = target.id
    return BundleJob(recipe=rec, target=target, builds=builds, spec=spec, labels=labels, latency=latency,
                     folder=folder)


def write_bundle(bundle: Bundle, job: BundleJob) -> list[str]:
    """The shared files, the bundle's own, then README.md; returns the sorted file names."""
    b = job.folder
    files = [copy_file(job.artifact("tflite"), b)]
    if job.have_pte:
        files.append(copy_file(job.artifact("pte"), b))
    files.append(write_file(b, "labels.txt", "\n".join(job.labels) + "\n"))
    files.append(write_file(b, "model_io.json", json.dumps(job.spec, indent=2) + "\n"))
    files += bundle.write(job)
    files.append(write_file(b, "README.md", bundle.readme(job)))
    return sorted(files)


def copy_file(src, dst_dir: Path, name: str | None = None) -> str:
    dst = dst_dir / (name or Path(src).name)
    shutil.copy2(src, dst)
    return dst.name


def write_file(folder: Path, name: str, text: str, *, executable: bool = False) -> str:
    (folder / name).write_text(text, encoding="utf-8")
    if executable:
        os.chmod(folder / name, 0o755)
    return name


def copy_template(folder: Path, name: str, *, executable: bool = False) -> str:
    """A template that needs no values (a script, a module), copied as it is shipped."""
    return write_file(folder, name, template_text(name), executable=executable)


def python_scripts(folder: Path, *scripts: str) -> list[str]:
    """Host scripts and the module they share (edgekit_io.py: model_io.json, preprocessing, top-k)."""
    return [*(copy_template(folder, s, executable=True) for s in scripts), copy_template(folder, "edgekit_io.py")]
