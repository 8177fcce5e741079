"""The argument parser: one function per command; each names the command function it calls."""

from __future__ import annotations

import argparse

from edgekit.cli.base import OneLineParser
from edgekit.cli.commands import (
    cmd_build,
    cmd_check,
    cmd_fold,
    cmd_lint,
    cmd_models,
    cmd_profile,
    cmd_recipe,
    cmd_report,
    cmd_targets,
)
from edgekit.cli.sweep import cmd_sweep
from edgekit.targets import RUNTIMES
from edgekit.units import SIZE_HELP

MODEL_HELP = ("registered model with options (mobilenet_v2:width=0.35,resolution=96), torchvision:NAME, "
              "file.py:factory (imports and runs that file), package.module:factory, a .pt2/.tflite/.pte "
              "file, or a Keras .keras/.h5 file or TensorFlow SavedModel folder; MODEL@weights.pt loads trained "
              "weights (a state dict, never pickled code); default: the embedded microcontroller model")


def _add_budget(p):
    p.add_argument("--target", metavar="NAME|FILE", help="a device from `edgekit targets` or your own TOML file")
    p.add_argument("--sram", metavar="SIZE", help=f"SRAM budget for the arena: {SIZE_HELP}")
    p.add_argument("--flash", metavar="SIZE", help=f"flash budget for the model: {SIZE_HELP}")
    _add_memory_plan(p)


def _add_eval(p):
    p.add_argument("--eval", metavar="DATA", help="labelled data to measure accuracy on: a folder of class folders of "
                                                  "images, or an .npz with x and y (the default model ships its own)")


def _add_memory_plan(p):
    p.add_argument("--memory-plan", choices=["auto", "offline", "tflm"],
                   help="TFLite-Micro: auto (default: edgekit's offline plan where it lowers the arena, verified "
                        "tensor by tensor), offline (always edgekit's plan) or tflm (TFLite-Micro's own planner)")


def _add_model(p, *, optional=True):
    p.add_argument("model", nargs="?" if optional else None, metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--input-shape", metavar="N,C,H,W", help="input shape, e.g. 1,3,96,96 (default: the model's)")
    p.add_argument("--dtype", choices=["int8", "fp16", "fp32"], help="analyse/build as this dtype")


def build_parser() -> argparse.ArgumentParser:
    from edgekit import __version__

    parser = OneLineParser(prog="edgekit", description=(
        "Take a CNN from PyTorch to a phone, a Raspberry Pi or a microcontroller, and know whether it fits "
        "and how fast it runs before you flash anything."),
        epilog="Exit codes: 0 fits / success, 1 over budget, 2 usage or input error. Sizes: " + SIZE_HELP + ".")
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    _parser_check(sub)
    _parser_build(sub)
    _parser_profile(sub)
    _parser_fold(sub)
    _parser_targets(sub)
    _parser_models(sub)
    _parser_lint(sub)
    _parser_report(sub)
    _parser_recipe(sub)
    _parser_sweep(sub)
    return parser


def _parser_check(sub) -> None:
    p = sub.add_parser("check", help="params, MACs, memory per layer and the verdict against a budget",
                       description="Analyse a model: params, MACs, model bytes, per-layer activations, peak "
                                   "memory and the arena the runtime needs; compare with a target's SRAM/flash. "
                                   "Exit 0 fits, 1 over budget, 2 input error.")
    _add_model(p)
    _add_budget(p)
    p.add_argument("--runtime", choices=RUNTIMES)
    p.add_argument("--no-fold", action="store_true", help="analyse without folding BatchNorm")
    p.add_argument("--baseline", metavar="OLD", help="a model spec or a saved --json report to diff against")
    p.add_argument("--json", action="store_true", help="print one JSON object (schema: README)")
    p.add_argument("--markdown", action="store_true", help="print Markdown (for a PR comment)")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of live bytes per layer with the SRAM line")
    p.add_argument("--timeline", action="store_true", help="print the planned arena as an ASCII timeline")
    _add_eval(p)
    p.set_defaults(func=cmd_check)


def _parser_build(sub) -> None:
    p = sub.add_parser("build", help="fold, quantize, export, verify in the real runtime, write artifact + report",
                       description="Build a deployable artifact: fold BN, check the budget, quantize, export "
                                   "(.tflite/.pte/C array), verify against PyTorch in the real runtime, measure "
                                   "the arena. Exit 0 built, 1 over budget (nothing written), 2 error.")
    _add_model(p)
    p.add_argument("--target", metavar="tflite|executorch|NAME|FILE", default="tflite",
                   help="format (tflite, executorch) or a device from `edgekit targets`")
    p.add_argument("--sram", metavar="SIZE", help=f"SRAM budget: {SIZE_HELP}")
    p.add_argument("--flash", metavar="SIZE", help=f"flash budget: {SIZE_HELP}")
    _add_memory_plan(p)
    p.add_argument("--patch", metavar="auto|none|GRIDxGRID@LAYER", default="auto",
                   help="int8 TFLite-Micro: patch-based inference for the first stages (auto: only when the model "
                        "would not fit otherwise; 2x2@features.5 forces a grid and split)")
    _add_eval(p)
    p.add_argument("--calibration", metavar="DIR|FILE.npy|random",
                   help="calibration data for int8: a folder of images, a .npy array, or 'random' (warned)")
    p.add_argument("--backend", choices=["xnnpack", "portable"], help="ExecuTorch backend (default xnnpack)")
    p.add_argument("--channels-last-io", action="store_true", help="NHWC input: drops the leading TRANSPOSE")
    p.add_argument("--no-fold", action="store_true", help="do not fold BatchNorm before export")
    p.add_argument("--quant-remedy", action="append", default=[], metavar="NAME",
                   help="int8: measure a remedy for quantization error and report it (repeatable): per_channel, "
                        "shared_concat_scales, float_worst:K, int16_worst:K")
    p.add_argument("-o", "--output", metavar="OUTDIR", default="out", help="output folder (default: out)")
    p.add_argument("--force", action="store_true", help="write the artifact even when over budget; overwrite")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_build)


def _parser_profile(sub) -> None:
    p = sub.add_parser("profile", help="latency: host, Raspberry Pi over ssh, phone over adb, or emulated",
                       description="Measure latency with warm-up runs and many timed runs (mean, std, "
                                   "percentiles), or estimate it for a target without the device.")
    p.add_argument("model", nargs="?", metavar="ARTIFACT|MODEL", help=MODEL_HELP)
    p.add_argument("--target", metavar="NAME|FILE", help="device (default: host)")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--input-shape", metavar="N,C,H,W")
    p.add_argument("--runtime", choices=[*RUNTIMES, "eager"],
                   help="which runtime runs a .tflite/.pte/model on the host")
    p.add_argument("--no-xnnpack", action="store_true", help="LiteRT without the XNNPACK delegate")
    p.add_argument("--compare", action="store_true", help="host: run eager, LiteRT and ExecuTorch side by side")
    p.add_argument("--emulate", action="store_true", help="estimate latency from the target's cost model")
    p.add_argument("--ops", action="store_true", help="per-operator profile where the runtime gives one")
    p.add_argument("--ssh", metavar="USER@HOST", help="profile on a device over ssh")
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--identity", metavar="FILE", help="ssh private key")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="trust an unknown host key on first use (default: refuse unknown hosts)")
    p.add_argument("--known-hosts", metavar="FILE", help="known_hosts file to check host keys against")
    p.add_argument("--remote-python", default="python3", metavar="PYTHON",
                   help="python on the ssh device (default: python3)")
    p.add_argument("--adb", nargs="?", const="", metavar="SERIAL", help="profile on an Android device over adb")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="hist.png", help="latency histogram")
    p.set_defaults(func=cmd_profile)


def _parser_fold(sub) -> None:
    p = sub.add_parser("fold", help="fold BatchNorm and report the fate of every normalization layer")
    _add_model(p)
    p.add_argument("-o", "--output", metavar="folded.pt2", help="save the folded model as a .pt2")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fold)


def _parser_targets(sub) -> None:
    p = sub.add_parser("targets", help="list the device catalogue, or show one device")
    p.add_argument("name", nargs="?", metavar="NAME|FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_targets)


def _parser_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)


def _parser_lint(sub) -> None:
    p = sub.add_parser("lint", help="what the converter did to the model: findings with fixes")
    p.add_argument("artifact", metavar="ARTIFACT")
    p.add_argument("--model", metavar="MODEL", help="the PyTorch model it came from")
    p.add_argument("--target", metavar="NAME|FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lint)


def _parser_report(sub) -> None:
    p = sub.add_parser("report", help="a self-contained HTML design-review page (summary, layers, memory, latency)",
                       description="Write one HTML file (no network: inline CSS and SVG) with the verdict, the "
                                   "summary, the memory-per-layer chart against the SRAM line, the estimated "
                                   "latency breakdown and the per-layer table. Exit 0 fits, 1 over budget (the "
                                   "page is written either way), 2 input error.")
    _add_model(p)
    _add_budget(p)
    p.add_argument("--runtime", choices=RUNTIMES)
    p.add_argument("--no-fold", action="store_true", help="analyse without folding BatchNorm")
    p.add_argument("--baseline", metavar="OLD", help="a model spec or a saved --json report: adds the change table")
    _add_eval(p)
    p.add_argument("-o", "--output", metavar="FILE.html", default="report.html", help="default: report.html")
    p.set_defaults(func=cmd_report)


def _parser_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="a model family's grid on several boards: what fits, Pareto fronts, builds",
                       description="Analyse every candidate of a grid on every target (pre-export arena, flash, "
                                   "MACs, runnability, estimated latency), rank each target's candidates (Pareto "
                                   "front), build and verify the front for real, and write sweep.json, sweep.csv, "
                                   "a Pareto plot per target and sweep.html. Runs on Ray when installed "
                                   "(edgekit[sweep]); an interrupted sweep resumes from what is done. Exit 0 done, "
                                   "1 a target where nothing fits, 2 input error.")
    p.add_argument("family", metavar="MODEL_FAMILY", help="a registered model (see `edgekit models`)")
    p.add_argument("--grid", nargs="+", default=[], metavar="NAME=V1,V2",
                   help="model arguments to vary: width=0.25,0.35,0.5 resolution=64,96,128 (num_classes too)")
    p.add_argument("--targets", required=True, metavar="NAME,NAME",
                   help="devices from `edgekit targets`, or .toml files")
    p.add_argument("--dtype", metavar="int8,fp32", help="dtypes to try (default: each target's own)")
    p.add_argument("--memory-plan", metavar="auto,offline,tflm", help="TFLite-Micro memory plans to try")
    p.add_argument("--verify", choices=["pareto", "all", "none"], default="pareto",
                   help="build and verify the Pareto front (default), every candidate that fits, or none")
    p.add_argument("--eval", metavar="DATA", help="labelled data: accuracy becomes a Pareto objective")
    p.add_argument("--calibration", metavar="DIR|FILE.npy|random", help="calibration data for int8 builds")
    p.add_argument("--objective", action="append", metavar="FIELD:min|max",
                   help="Pareto objectives (repeatable; default arena_bytes:min latency_ms:min and accuracy:max "
                        "with --eval, else macs:max)")
    p.add_argument("--ray-address", metavar="ADDRESS", help="run on an existing Ray cluster (default: a local Ray)")
    p.add_argument("--workers", type=int, metavar="N", help="CPUs of the local Ray (default: all cores)")
    p.add_argument("--serial", action="store_true", help="run the candidates one after the other, without Ray")
    p.add_argument("-o", "--output", metavar="OUTDIR", default="sweep", help="output folder (default: sweep)")
    p.add_argument("--json", action="store_true", help="print sweep.json")
    p.set_defaults(func=cmd_sweep)


def _parser_recipe(sub) -> None:
    p = sub.add_parser("recipe", help="run a recipe: build, profile and bundle a model for a Pi, a phone or an MCU",
                       description="Recipes live in recipes/ (raspberry-pi, phone, mcu): a recipe.toml naming the "
                                   "model, target, dtype, calibration data and outputs.")
    rsub = p.add_subparsers(dest="recipe_command", metavar="ACTION", parser_class=OneLineParser)
    rp = rsub.add_parser("run", help="build the artifacts, profile them and write the deployable bundle",
                         description="Build every format the recipe lists, profile (over --ssh / --adb, else "
                                     "emulated), write OUTDIR/bundle (artifact, labels, I/O spec, inference code) "
                                     "and OUTDIR/report.html. Exit 0 done, 1 over budget, 2 error.")
    rp.add_argument("recipe", metavar="RECIPE", help="a recipe folder (with recipe.toml) or a .toml file")
    rp.add_argument("-o", "--output", metavar="OUTDIR", help="output folder (default: the recipe's outputs.dir)")
    rp.add_argument("--ssh", metavar="USER@HOST", help="Raspberry Pi: profile on the board over ssh")
    rp.add_argument("--port", type=int, default=22)
    rp.add_argument("--identity", metavar="FILE", help="ssh private key")
    rp.add_argument("--accept-new-host-key", action="store_true", help="trust an unknown host key on first use")
    rp.add_argument("--known-hosts", metavar="FILE")
    rp.add_argument("--remote-python", default="python3", metavar="PYTHON")
    rp.add_argument("--adb", nargs="?", const="", metavar="SERIAL", help="phone: profile on the device over adb")
    rp.add_argument("--runs", type=int, help="timed runs on the device (default: the recipe's)")
    rp.add_argument("--json", action="store_true", help="print the summary (recipe.json) as JSON")
    _add_eval(rp)
    rp.set_defaults(func=cmd_recipe)
    p.set_defaults(func=cmd_recipe)
