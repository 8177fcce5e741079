"""The commands: each parses nothing, calls the library with keywords and renders what it returns."""

from __future__ import annotations

from edgekit.cli.base import EXIT_FITS, EXIT_OVER_BUDGET
from edgekit.errors import EdgekitError


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
