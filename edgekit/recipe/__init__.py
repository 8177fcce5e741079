"""Recipes: one ``recipe.toml`` from a PyTorch model to a deployable bundle for one kind of device.

``edgekit recipe run recipes/raspberry-pi [--ssh USER@HOST] [-o OUTDIR]`` runs :func:`run_recipe`:
design review (report.html), builds, profile, bundle (``run.py``). The package:

* ``schema.py``: ``recipe.toml`` (the schema is in its docstring), :class:`Recipe`, :func:`load_recipe`;
* ``run.py``: :func:`run_recipe`, :class:`RecipeResult`, which build makes which format, profiling;
  ``undo.py``: the rollback of a failed run;
* ``bundles/``: one module per kind of device, each a ``Bundle`` registered in ``BUNDLES``:

  * ``raspberry-pi``: model.tflite (+ model.pte), labels.txt, model_io.json, ``predict.py``
    (ai_edge_litert, falling back to tflite_runtime; ExecuTorch for the .pte) and ``edgekit_io.py``,
    requirements.txt and README.md with the pip line;
  * ``phone``: model.tflite, model.pte, labels.txt, model_io.json (shapes, dtypes, layout,
    quantization, preprocessing), ``ModelRunner.kt`` (LiteRT CompiledModel API), ``predict.py`` and
    ``edgekit_io.py`` to check the same files on a laptop, README.md;
  * ``mcu``: model.tflite, model_data.h/.cc (``kTensorArenaSize``), op_resolver.h, ``main.cc``
    (TFLite-Micro), ``run_on_host.py`` and ``edgekit_io.py`` (the TFLite-Micro Python interpreter
    with that arena), README.md;

* ``templates/``: the files the bundles write, as files (package data), filled by ``render.py``.

The library prints nothing; the CLI renders.
"""

from edgekit.recipe.bundles import BUNDLES, Bundle, BundleJob
from edgekit.recipe.bundles.common import io_spec
from edgekit.recipe.bundles.mcu import main_cc
from edgekit.recipe.bundles.phone import kotlin_snippet
from edgekit.recipe.errors import RecipeError
from edgekit.recipe.run import RecipeResult, run_recipe
from edgekit.recipe.schema import DTYPES, FORMATS, KINDS, Recipe, load_recipe, recipe_file

__all__ = [
    "BUNDLES", "DTYPES", "FORMATS", "KINDS", "Bundle", "BundleJob", "Recipe", "RecipeError", "RecipeResult",
    "io_spec", "kotlin_snippet", "load_recipe", "main_cc", "recipe_file", "run_recipe",
]
