"""`edgekit lint`: what export did to the model, at build time, with the PyTorch module at
fault and a concrete fix.

``lint(artifact, model=None, target=None)`` reads a .tflite (or .pte) and returns a
:class:`LintResult` of findings:

- ``unfolded-norm``: BatchNorm left as MUL/ADD, LayerNorm/GroupNorm/InstanceNorm decomposed;
- ``unfused-activation``: RELU/RELU6 not fused into the conv/FC/add before it, ReLU6 as MIN+RELU;
- ``decomposed-hswish`` / ``decomposed-hsigmoid``: h-swish/h-sigmoid spelled out in 2-4 ops;
- ``transpose``: every TRANSPOSE (where, how many bytes, whether the target runs it);
- ``rank-gt-4``: tensors of rank > 4 (an error where the target's kernels refuse them);
- ``grouped-conv-split`` / ``grouped-conv``: a grouped conv as split + convs + concat / native;
- ``requantize``, ``weight-dequantize``, ``float-island``, ``concat-scales``: int8 graphs that are
  not quite int8, and concat inputs TFLite-Micro would mix up;
- ``tflm-unsupported-op``, ``tflm-refused``, ``offline-buffers``: what the TFLite-Micro interpreter
  itself refuses (for --target tflite-micro or an MCU target);
- ``not-delegated``: ops XNNPACK leaves to LiteRT's reference kernels and the partition count
  (for LiteRT targets);
- ``pte-kernels``: for a .pte, the operators outside the delegate (and the selective-build list).

Each finding has the op(s) and tensor(s), the cost (extra ops, bytes, estimated time on the
target) and the module path recovered from litert-torch's tensor names (``features.3.conv``).
``result.unusable`` is true when a finding is an ``error``.
"""

from __future__ import annotations

from collections import Counter

from edgekit.errors import ArtifactError, UsageError, checked_path
from edgekit.lint.findings import Cost, Finding, LintResult

__all__ = ["lint", "lint_tflite", "lint_pte", "LintResult", "Finding", "Cost", "resolve_target"]

_GENERIC = {"tflite-micro": "tflite-micro", "micro": "tflite-micro", "tflm": "tflite-micro", "mcu": "tflite-micro",
            "litert": "litert", "tflite": "litert", "xnnpack": "litert", "executorch": "executorch",
            "pte": "executorch"}


def resolve_target(target) -> tuple[str | None, object | None]:
    """(runtime, Target or None) for --target: a runtime name, a target id/file, a Target, or None."""
    if target is None:
        return None, None
    if isinstance(target, str) and target.strip().lower() in _GENERIC:
        return _GENERIC[target.strip().lower()], None
    from edgekit.targets import load_target

    t = load_target(target)
    return t.runtime.default, t


def _module_table(model):
    from edgekit.graph.names import ModuleTable

    if model is None:
        return None
    if isinstance(model, ModuleTable):
        return model
    if isinstance(model, dict):
        return ModuleTable(model)
    if hasattr(model, "named_modules"):
        return ModuleTable.from_module(model)
    from edgekit.loader import load_model, parse_spec

    spec = parse_spec(str(model))
    if spec.kind == "keras":  # Keras layer names: the layer table, read in a TensorFlow child (edgekit.keras)
        from edgekit.keras.capture import describe_keras

        return ModuleTable(keras=describe_keras(spec.path, spec.kwargs["format"]).table)
    if spec.is_artifact:
        raise UsageError(f"--model takes the PyTorch model the artifact came from, not another artifact ({model})")
    loaded = load_model(spec)
    return ModuleTable.from_module(loaded.module)


def lint(artifact, *, model=None, target=None, runtime_checks: bool = True) -> LintResult:
    """Lint a built artifact (.tflite or .pte) for ``target`` (a target id or file, or a runtime
    name: tflite-micro, litert, executorch; None lints for LiteRT/XNNPACK). ``model`` (a model
    spec, an nn.Module or {path: class}) makes module names exact. ``runtime_checks=False``
    skips the child-process interpreter checks (graph rules only)."""
    p = checked_path(str(artifact), "artifact path")
    if not p.exists():
        raise UsageError(f"no such file: {artifact}")
    suffix = p.suffix.lower()
    if suffix == ".pte":
        return lint_pte(p, target=target)
    if suffix != ".tflite":
        raise UsageError(f"lint takes a .tflite or .pte artifact, got {artifact}")
    return lint_tflite(p, model=model, target=target, runtime_checks=runtime_checks)


def lint_tflite(path, *, model=None, target=None, runtime_checks: bool = True) -> LintResult:
    from edgekit.lint import rules_tflite as R
    from edgekit.lint.artifact import load_artifact

    runtime, tgt = resolve_target(target)
    if runtime == "executorch":
        raise UsageError(f"target {target} runs ExecuTorch (.pte); this is a .tflite artifact")
    runtime = runtime or "litert"
    art = load_artifact(path, modules=_module_table(model))
    ctx = R.Ctx(art, runtime=runtime, target=tgt)
    result = LintResult(artifact=str(path), format="tflite", target=getattr(tgt, "id", None) or
                        (str(target) if target is not None else None), runtime=runtime)
    g = art.graph
    delegation = None
    if runtime_checks and runtime == "litert":
        from edgekit.lint.runtimes import xnnpack_check

        delegation = xnnpack_check(path)
        result.checks["xnnpack"] = {"ok": delegation["ok"], "partitions": delegation["partitions"],
                                    "not_delegated": len(delegation["not_delegated"]), "source": "LiteRT interpreter"}
        if delegation["ok"]:
            result.findings += _delegation_findings(ctx, delegation)
        else:
            result.findings.append(Finding(
                code="litert-refused", severity="error",
                message=f"LiteRT with its default XNNPACK delegate refuses the model: {delegation['error'][:300]}",
                fix="see the other findings for the op named in the message (int8 CONCATENATION inputs with "
                    "different scales are one cause)"))
            delegation = None
    if runtime_checks and runtime == "tflite-micro":
        result.findings += _tflm_findings(ctx, result)
    for rule in R.GRAPH_RULES:
        result.findings += _run_rule(rule, path, ctx)
    result.findings += _run_rule(R.rule_transposes, path, ctx, delegation)
    transposes = [op for op in g.ops if art.opcode(op) == "TRANSPOSE"]
    result.summary = {
        "ops": len(g.ops), "opcodes": dict(Counter(art.opcode(op) for op in g.ops)), "int8": ctx.int8,
        "transposes": {"count": len(transposes), "bytes": sum(g.tensors[op.outputs[0]].nbytes for op in transposes)},
        "modules_named": sum(1 for op in g.ops if art.locations(op)),
        "extra_ops": sum(f.cost.extra_ops for f in result.findings if f.severity != "info"),
    }
    if delegation is not None:
        result.summary["xnnpack_partitions"] = delegation["partitions"]
    return result.sort()


def _run_rule(rule, path, *args) -> list[Finding]:
    """The rules read the graph as the converter writes it (a MUL has an activation input, a
    TRANSPOSE a permutation); a file that parses but breaks that shape is one ArtifactError."""
    try:
        return rule(*args)
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError) as exc:
        raise ArtifactError(f"{path}: lint rule {rule.__name__} cannot read this graph ({type(exc).__name__}: "
                            f"{str(exc)[:120]}); the file may be corrupt: rebuild it") from exc


def _tflm_findings(ctx, result) -> list[Finding]:
    from edgekit.export.op_resolver import TFLM_ADD_METHODS
    from edgekit.lint.runtimes import tflm_check

    art = ctx.art
    try:
        chk = tflm_check(art.path)
    except ArtifactError as exc:
        result.checks["tflite-micro"] = {"ok": False, "source": "not run: " + str(exc)[:120]}
        return [Finding(code="offline-buffers", severity="error", message=str(exc),
                        fix="re-serialize with inline buffers: edgekit.export.tflite.inline_buffers(data) "
                            "(edgekit build does this)")]
    result.checks["tflite-micro"] = {"ok": chk["ok"], "stage": chk["stage"], "missing": chk["missing"],
                                     "source": "TFLite-Micro interpreter (tflite_micro.runtime, reference kernels)"}
    out = []
    for name in chk["missing"]:
        ops = [op for op in art.graph.ops if art.opcode(op) == name]
        out.append(ctx.finding(
            "tflm-unsupported-op", "error",
            f"TFLite-Micro has no kernel for {name} ({len(ops)} op(s)): the interpreter fails to allocate the model"
            + ("" if name in TFLM_ADD_METHODS else "; MicroMutableOpResolver has no Add method for it either"),
            f"replace the layer that produces {name} with one TFLite-Micro runs (see edgekit.export.op_resolver."
            f"TFLM_ADD_METHODS for the list), or register a custom kernel", ops, cost=Cost()))
    # ops this build has a kernel for but the MicroMutableOpResolver cannot register
    for name in sorted(set(chk["ops"]) - set(chk["missing"])):
        if name not in TFLM_ADD_METHODS and not name.startswith("CUSTOM:"):
            ops = [op for op in art.graph.ops if art.opcode(op) == name]
            out.append(ctx.finding(
                "tflm-unsupported-op", "warning",
                f"{name} runs in the TFLite-Micro Python interpreter, but MicroMutableOpResolver has no Add method "
                f"for it: a firmware build cannot register it", "replace the layer, or register it by hand",
                ops, cost=Cost()))
    if not chk["ok"] and not chk["missing"]:
        out.append(Finding(
            code="tflm-refused", severity="error",
            message=f"TFLite-Micro refuses the model at {chk['stage'] or 'load'}"
                    f"{' (the interpreter crashed)' if chk['crash'] else ''}: {chk['log'][:400]}",
            fix="see the kernel message; the other findings usually name the op and the module"))
    return out


# reasons XNNPACK gives no word for; from its README's operator list and constraints
_XNN_UNLISTED = {"BROADCAST_TO", "GATHER", "GATHER_ND", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "CAST", "TANH",
                 "REDUCE_MAX", "REDUCE_MIN", "SUM", "ARG_MAX", "ARG_MIN", "SQUEEZE", "EXPAND_DIMS", "SHAPE",
                 "RSQRT", "EXP", "LOG", "POW"}


def _delegation_findings(ctx, d: dict) -> list[Finding]:
    art = ctx.art
    nd = [art.graph.ops[i] for i in d["not_delegated"] if i < len(art.graph.ops)]
    if not nd:
        return []
    by: dict[str, list] = {}
    for op in nd:
        by.setdefault(art.opcode(op), []).append(op)
    out = []
    for name, ops in by.items():
        floats = [op for op in ops if any(art.tensor(t).dtype == "float32" for t in op.outputs)]
        if ctx.int8 and name == "HARD_SWISH" and not floats:
            why = "this XNNPACK build takes HARD_SWISH in float only (measured: the int8 op stays outside)"
        elif ctx.int8 and floats:
            why = "it computes in float inside an int8 graph"
        elif name in _XNN_UNLISTED:
            why = "it is not in the XNNPACK delegate's operator list"
        elif name in ("QUANTIZE", "DEQUANTIZE"):
            why = "XNNPACK takes only the quantize/dequantize conversions it supports (int8<->float at its edges)"
        else:
            why = "its types, shapes or attributes are outside the delegate's constraints for this op"
        out.append(ctx.finding(
            "not-delegated", "warning",
            f"XNNPACK leaves {len(ops)} {name} op(s) to LiteRT's reference kernels ({why}); the graph runs in "
            f"{d['partitions']} XNNPACK partition(s) with {len(nd)} op(s) outside",
            "each op outside XNNPACK splits the graph and copies its tensors; remove or replace the op (see the "
            "other findings on the same module)", ops, cost=ctx.cost(ops, extra_ops=0),
            partitions=d["partitions"], reason=why))
    return out


def lint_pte(path, *, target=None) -> LintResult:
    """A .pte: which operators run outside the delegate, and what a selective build needs."""
    from edgekit.export.op_resolver import pte_operators
    from edgekit.graph.pte_reader import read_pte

    runtime, tgt = resolve_target(target)
    read_pte(path)  # a corrupt or truncated file: one ArtifactError naming it, before importing ExecuTorch
    ops = pte_operators(path)
    result = LintResult(artifact=str(path), format="pte", target=getattr(tgt, "id", None) or
                        (str(target) if target is not None else None), runtime=runtime or "executorch")
    result.summary = ops.to_dict()
    from edgekit.lint.rules_pte import delegate_findings, delegate_summary  # issue 16: inside XNNPACK

    result.findings += delegate_findings(path)
    result.summary.update(delegate_summary(path))
    if ops.kernel_calls:
        sev = "warning" if ops.delegates else "info"
        result.findings.append(Finding(
            code="pte-kernels", severity=sev,
            message=(f"{ops.kernel_calls} instruction(s) call {len(ops.operators)} kernel operator(s) outside "
                     f"{'the ' + ', '.join(ops.delegates) + ' delegate' if ops.delegates else 'any delegate'}: "
                     f"{', '.join(ops.operators[:8])}{' ...' if len(ops.operators) > 8 else ''}"),
            fix=(f"a selective build registers only these: gen_selected_ops(... ROOT_OPS \"{ops.root_ops}\")"
                 if ops.operators else ""),
            details=ops.to_dict()))
    return result.sort()
