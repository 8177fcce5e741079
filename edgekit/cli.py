"""edgekit's command line: parses, calls the library with keywords, renders. Nothing imports cli.

Heavy modules (torch, executorch, litert_torch) are imported inside the command functions,
so `edgekit --help` and `edgekit check model.tflite` start fast.
"""

from __future__ import annotations

import argparse
import sys

from edgekit.errors import EdgekitError
from edgekit.targets import RUNTIMES
from edgekit.units import SIZE_HELP

EXIT_FITS, EXIT_OVER_BUDGET, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"edgekit: error: {message} (see {self.prog} --help)\n")


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

    parser = _Parser(prog="edgekit", description=(
        "Take a CNN from PyTorch to a phone, a Raspberry Pi or a microcontroller, and know whether it fits "
        "and how fast it runs before you flash anything."),
        epilog="Exit codes: 0 fits / success, 1 over budget, 2 usage or input error. Sizes: " + SIZE_HELP + ".")
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
    rsub = p.add_subparsers(dest="recipe_command", metavar="ACTION", parser_class=_Parser)
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


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except EdgekitError as exc:
        if args.debug:
            raise
        _fail(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _fail("interrupted; nothing half-written was left behind")
        return 130
    except BrokenPipeError:  # e.g. `edgekit check | head`
        return 0
    except Exception as exc:  # a bug or an unexpected library failure: still one line
        if args.debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(f"unexpected {type(exc).__name__}: {msg[:300]} (run again with --debug for the traceback)")
        return EXIT_USAGE


def _fail(message: str) -> None:
    one_line = " ".join(message.split())
    print(f"edgekit: error: {one_line}", file=sys.stderr)


# ---------------------------------------------------------------- commands

def _shape(args):
    from edgekit.units import parse_shape

    return parse_shape(args.input_shape) if getattr(args, "input_shape", None) else None


def _validate_budget(args):
    from edgekit.units import parse_size

    if getattr(args, "sram", None) is not None:
        parse_size(args.sram)
    if getattr(args, "flash", None) is not None:
        parse_size(args.flash)


def _check_output_file(path, example: str) -> None:
    """Refuse a bad output path before the slow work, not after it."""
    if path:
        from edgekit.fileio import output_file

        output_file(path, example=example)


def _analyze(args):
    """The analysis `check` and `report` make: the same flags resolved the same way (edgekit.plan)."""
    from edgekit.analysis.api import analyze

    _validate_budget(args)
    return analyze(args.model, input_shape=_shape(args), dtype=args.dtype, runtime=args.runtime,
                   fold=not args.no_fold, target=args.target, sram=args.sram, flash=args.flash,
                   memory_plan=args.memory_plan)


def _baseline(args, analysis):
    from edgekit.report.diff import load_baseline

    return load_baseline(args.baseline, like=analysis, target=args.target, sram=args.sram, flash=args.flash)


def _evaluate(args, analysis) -> None:
    """`check --eval`: PyTorch fp32 accuracy beside the analysis (fast: no export)."""
    if getattr(args, "eval", None) is None:
        return
    from edgekit.evaluation.runners import evaluate_model

    analysis.evaluation = evaluate_model(args.model, args.eval, input_shape=_shape(args)).to_dict()


def cmd_check(args) -> int:
    from edgekit.report import text

    _check_output_file(args.plot, "memory.png")
    analysis = _analyze(args)
    _evaluate(args, analysis)
    verdict = analysis.check()
    baseline = _baseline(args, analysis) if args.baseline else None
    if args.plot:
        from edgekit.report.plots import memory_plot

        memory_plot(analysis, args.plot)
    if args.json:
        import json

        d = analysis.to_dict()
        if baseline is not None:
            from edgekit.report.diff import diff_reports

            d["baseline"] = diff_reports(baseline, analysis)
        print(json.dumps(d, indent=2))
    elif args.markdown:
        print(text.markdown(analysis, baseline=baseline))
    else:
        text.print_check(analysis, baseline=baseline, timeline=args.timeline)
    return EXIT_FITS if verdict.fits else EXIT_OVER_BUDGET


def cmd_build(args) -> int:
    from edgekit.build import build
    from edgekit.report import text

    _validate_budget(args)
    result = build(args.model, target=args.target, sram=args.sram, flash=args.flash, dtype=args.dtype,
                   calibration=args.calibration, input_shape=_shape(args), channels_last_io=args.channels_last_io,
                   backend=args.backend, fold=not args.no_fold, output=args.output, force=args.force,
                   memory_plan=args.memory_plan, eval_data=args.eval, patch=args.patch,
                   progress=text.stage_printer(quiet=args.json), quant_remedies=tuple(args.quant_remedy))
    if args.json:
        import json

        print(json.dumps(result.report.to_dict(), indent=2))
    else:
        text.print_build(result)
    return EXIT_FITS if result.fits else EXIT_OVER_BUDGET


def cmd_profile(args) -> int:
    from edgekit.profile.api import profile
    from edgekit.report import text

    if args.runs < 1:
        raise EdgekitError(f"--runs must be at least 1 (got {args.runs})")
    if args.warmup < 0:
        raise EdgekitError(f"--warmup must not be negative (got {args.warmup})")
    if args.batch < 1:
        raise EdgekitError(f"--batch must be at least 1 (got {args.batch})")
    if args.threads is not None and args.threads < 1:
        raise EdgekitError(f"--threads must be at least 1 (got {args.threads})")
    _check_output_file(args.plot, "latency.png")
    result = profile(args.model, target=args.target, runs=args.runs, warmup=args.warmup, threads=args.threads,
                     batch=args.batch, input_shape=_shape(args), runtime=args.runtime,
                     xnnpack=not args.no_xnnpack, compare=args.compare, emulate=args.emulate, ops=args.ops,
                     ssh=args.ssh, port=args.port, identity=args.identity,
                     accept_new_host_key=args.accept_new_host_key, known_hosts=args.known_hosts,
                     adb=args.adb, progress=not args.json, remote_python=args.remote_python)
    if args.plot:
        from edgekit.report.plots import latency_histogram

        latency_histogram(result, args.plot)
    if args.json:
        import json

        print(json.dumps(result.to_dict(), indent=2))
    else:
        text.print_profile(result)
    return 0


def cmd_fold(args) -> int:
    from edgekit.loader import load_model, parse_spec
    from edgekit.report import text

    _check_output_file(args.output, "folded.pt2")
    spec = parse_spec(args.model)
    if spec.kind == "keras":  # what TensorFlow's converter folds, per Keras layer (edgekit.keras.fold)
        return _fold_keras(args, spec)
    from edgekit.passes.fold_bn import fold_bn

    loaded = load_model(spec, input_shape=_shape(args))
    if loaded.module is None:
        raise EdgekitError(f"{args.model} is a built artifact; fold works on PyTorch models")
    import torch

    x = torch.randn(*loaded.input_shape, generator=torch.Generator().manual_seed(0))  # reproducible errors
    result = fold_bn(loaded.module, (x,))
    if args.output:
        from edgekit.export.pt2 import save_pt2

        save_pt2(result.model, (x,), args.output)
    if args.json:
        import json

        print(json.dumps(result.to_dict(), indent=2))
    else:
        text.print_fold(result)
    return 0


def _fold_keras(args, spec) -> int:
    from edgekit.keras.fold import fold_keras
    from edgekit.report import text

    if args.output:
        raise EdgekitError("-o saves a folded PyTorch model (.pt2); TensorFlow's converter folds a Keras model itself")
    result = fold_keras(spec.path, spec.kwargs["format"], input_shape=_shape(args))
    if args.json:
        import json

        print(json.dumps(result.to_dict(), indent=2))
    else:
        text.print_fold(result)
    return 0


def cmd_targets(args) -> int:
    from edgekit.report import text
    from edgekit.targets import list_targets, load_target

    if args.name:
        t = load_target(args.name)
        if args.json:
            import json

            print(json.dumps(text.target_dict(t), indent=2, default=str))
        else:
            text.print_target(t)
        return 0
    ts = list_targets()
    if args.json:
        import json

        print(json.dumps([text.target_dict(t) for t in ts], indent=2, default=str))
    else:
        text.print_targets(ts)
    return 0


def cmd_models(args) -> int:
    from edgekit.models.registry import list_model_info
    from edgekit.report import text

    infos = list_model_info()
    if args.json:
        import json

        print(json.dumps(infos, indent=2))
    else:
        text.print_models(infos)
    return 0


def cmd_lint(args) -> int:
    from edgekit.lint import lint
    from edgekit.report import text

    result = lint(args.artifact, model=args.model, target=args.target)
    if args.json:
        import json

        print(json.dumps(result.to_dict(), indent=2))
    else:
        text.print_lint(result)
    return 1 if result.unusable else 0


def cmd_report(args) -> int:
    from edgekit.report.html import default_latency_target, write_html

    _check_output_file(args.output, "report.html")
    analysis = _analyze(args)
    _evaluate(args, analysis)
    verdict = analysis.check()
    diff = None
    if args.baseline:
        from edgekit.report.diff import diff_reports

        diff = diff_reports(_baseline(args, analysis), analysis)
    path = write_html(analysis, args.output, target=args.target,
                      latency_target=default_latency_target(analysis, args.target), diff=diff)
    print(f"wrote {path}: {verdict.summary()}")
    return EXIT_FITS if verdict.fits else EXIT_OVER_BUDGET


def cmd_recipe(args) -> int:
    if getattr(args, "recipe_command", None) != "run":
        raise EdgekitError("usage: edgekit recipe run RECIPE [--ssh USER@HOST | --adb [SERIAL]] [-o OUTDIR]")
    from edgekit.recipe import run_recipe
    from edgekit.report import text

    if args.runs is not None and args.runs < 1:
        raise EdgekitError(f"--runs must be at least 1 (got {args.runs})")
    result = run_recipe(args.recipe, output=args.output, ssh=args.ssh, adb=args.adb, port=args.port,
                        identity=args.identity, accept_new_host_key=args.accept_new_host_key,
                        known_hosts=args.known_hosts, remote_python=args.remote_python, runs=args.runs,
                        progress=text.stage_printer(quiet=args.json), eval_data=args.eval)
    if args.json:
        import json

        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(f"recipe {result.recipe} ({result.kind}) -> {result.output}")
        for fmt, b in result.builds.items():
            print(f"  .{fmt}: {(b.get('verdict') or {}).get('summary', '')}")
        if result.report_html:
            print(f"  design review: {result.report_html}")
        if result.files:
            print(f"  bundle {result.bundle}: {', '.join(result.files)}")
        if result.latency:
            print(f"  latency: {result.latency}")
        if result.pip:
            print(f"  install on the device: {result.pip}")
        for note in result.notes:
            print(f"  note: {note}")
    return EXIT_FITS if result.fits else EXIT_OVER_BUDGET


# ---------------------------------------------------------------- sweep (issue 19): one command block

def cmd_sweep(args) -> int:
    from edgekit.sweep import sweep

    evaluator = None
    if args.eval:
        from edgekit.sweep import DataEvaluator

        evaluator = DataEvaluator(args.eval)
    if args.workers is not None and args.workers < 1:
        raise EdgekitError(f"--workers must be at least 1 (got {args.workers})")
    bars = _SweepBars(quiet=args.json)
    with bars:
        result = sweep(args.family, args.grid, targets=args.targets, dtype=args.dtype, memory_plan=args.memory_plan,
                       verify=args.verify, calibration=args.calibration, evaluator=evaluator,
                       objectives=args.objective, output=args.output, executor="serial" if args.serial else "auto",
                       ray_address=args.ray_address, workers=args.workers, progress=bars.update)
    if args.json:
        import json

        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_sweep(result)
    return EXIT_FITS if all(result.best(t) is not None for t in result.targets) else EXIT_OVER_BUDGET


class _SweepBars:
    """A rich progress bar per phase: candidates done / total and the current best per target."""

    def __init__(self, quiet: bool):
        self.quiet, self.bars, self.tasks = quiet, None, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bars is not None:
            self.bars.__exit__(*exc)

    def _start(self):  # on the first event: a sweep refused before any work draws nothing
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=_stderr_console())
        self.bars.__enter__()

    def update(self, e) -> None:
        if self.quiet:
            return
        if self.bars is None:
            self._start()
        if e.phase not in self.tasks:
            self.tasks[e.phase] = self.bars.add_task(e.phase, total=max(e.total, 1))
        best = "; ".join(f"{t}: {b or 'nothing fits yet'}" for t, b in e.best.items())
        fails = f", {e.failed} failed" if e.failed else ""
        reused = f", {e.reused} from an earlier run" if e.reused else ""
        self.bars.update(self.tasks[e.phase], completed=e.done, total=max(e.total, 1),
                         description=f"{e.phase}{reused}{fails} | best: {best}")


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _print_sweep(result) -> None:
    print(f"sweep {result.family}: {len(result.candidates)} candidates x {len(result.targets)} targets on "
          f"{result.executor} ({result.workers} workers) -> {result.output}")
    for t in result.targets:
        rows = [r for r in result.rows if r.target == t]
        best = result.best(t)
        print(f"  {t}: {sum(r.eligible for r in rows)}/{len(rows)} fit, Pareto front {len(result.fronts[t])}, "
              f"pick {best.candidate if best else 'none'}")
        for v in (v for v in result.verified if v.target == t):
            arena = f"measured arena {v.measured_arena_bytes:,} B (predicted {v.predicted_arena_bytes:,} B)" \
                if v.measured_arena_bytes is not None else f"arena {v.arena_bytes or 0:,} B"
            print(f"    built {v.candidate}: {v.status}" + (f", {arena}" if v.status != "error" else f": {v.error}"))
    for f in result.failures():
        print(f"  failed ({f['phase']}) {f['candidate']} on {f['target']}: {f['error']}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"  wrote sweep.json, sweep.csv, sweep.html and the Pareto plots in {result.output}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
