"""Export to .pte with ExecuTorch: XNNPACK (phones, Pis) or portable kernels (no delegate).

fp32: torch.export -> to_edge_transform_and_lower(XnnpackPartitioner) -> to_executorch.
int8 (XNNPACK only): XNNPACKQuantizer (symmetric, per-channel) with prepare_pt2e /
convert_pt2e on the calibration data, then the same lowering: XNNPACK runs the int8 ops.

Memory planning (``planner``): "executorch" is ExecuTorch's stock ``to_executorch()``;
"edgekit" (the default for portable kernels) folds weight-only subgraphs into constants
(``do_quant_fusion_and_const_prop``: e.g. the ``permute_copy`` of every linear weight,
which the stock flow computes at run time into the activation arena), lets element-wise
ops write into an input that dies there (``inplace``), and plans with
``edgekit.analysis.et_planner`` (verified by ExecuTorch's storage-reuse verifier). See
that module's docstring for the measurements behind it.
"""

from __future__ import annotations

from edgekit.errors import EdgekitError, UsageError, require
from edgekit.quiet import quiet_native


def export_pte(module, example_input, *, backend: str = "xnnpack", dtype: str = "fp32", calibration=None,
               planner: str | None = None, inplace: bool = True, compare_default: bool = True) -> dict:
    """Export ``module`` to a .pte; return its bytes and how its memory was planned.

    Keys: ``bytes`` (the program), ``planned_bytes`` (sum of the planned non-constant
    arenas, what the runtime allocates for activations), ``buffer_sizes``
    (``non_const_buffer_sizes``; index 0 is reserved), ``delegates``, ``operators``,
    ``planner``, ``lower_bound_bytes`` (liveness lower bound of the planned tensors on
    ExecuTorch's lifetimes: no plan of this graph can be smaller),
    ``executorch_default_planned_bytes`` (ExecuTorch's stock plan of the same model;
    None if ``compare_default`` is False and the planner is not "executorch"), and for the
    edgekit planner ``executorch_greedy_planned_bytes`` (ExecuTorch's greedy on the same
    folded/aliased graph), ``plan_algorithm`` and ``inplace_aliased`` (outputs written
    into a dying input).

    ``planner``: "edgekit" or "executorch"; default "edgekit" for ``backend="portable"``,
    "executorch" for XNNPACK (whose activations live inside the delegate anyway).
    """
    import torch

    if backend not in ("xnnpack", "portable"):
        raise UsageError(f"unknown ExecuTorch backend {backend!r}: choose xnnpack or portable")
    planner = planner or ("edgekit" if backend == "portable" else "executorch")
    if planner not in ("edgekit", "executorch"):
        raise UsageError(f"unknown memory planner {planner!r}: choose edgekit or executorch")
    if dtype == "int8" and backend != "xnnpack":
        raise UsageError("int8 .pte needs --backend xnnpack (portable kernels only simulate int8)")
    if dtype == "fp16":
        raise UsageError("fp16 .pte is not supported by edgekit yet: use --dtype fp32 or int8")
    from edgekit.quiet import EXECUTORCH_IMPORT_LOGGERS, quiet_loggers

    with quiet_loggers(*EXECUTORCH_IMPORT_LOGGERS):
        require("executorch.exir", "executorch")
        from executorch.exir import to_edge_transform_and_lower
    from edgekit.passes.eval_mode import to_eval

    module = to_eval(module)
    sample = (example_input,)
    info: dict = {"planner": planner}
    try:
        with torch.no_grad(), quiet_native():
            if dtype == "int8":
                module = _quantize_xnnpack(module, sample, calibration)
            ep = torch.export.export(module, sample, strict=False)
            partitioner = []
            if backend == "xnnpack":
                from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

                partitioner = [XnnpackPartitioner()]
            edge = to_edge_transform_and_lower(ep, partitioner=partitioner)
            prog = _to_executorch(edge, planner, inplace, compare_default, info, xnnpack=backend == "xnnpack")
    except EdgekitError:
        raise
    except Exception as exc:
        text = str(exc).strip()
        raise EdgekitError(f"ExecuTorch could not export the model ({backend}): {type(exc).__name__}: "
                           f"{(text.splitlines()[0] if text else '')[:300]}") from exc
    plan = prog.executorch_program.execution_plan[0]
    sizes = [int(x) for x in plan.non_const_buffer_sizes]
    delegated = sum(1 for _ in plan.delegates)
    from edgekit.analysis.et_planner import planned_lower_bound

    info["lower_bound_bytes"] = planned_lower_bound(prog.exported_program().graph_module)
    if planner == "executorch":
        info["executorch_default_planned_bytes"] = int(sum(sizes[1:]))
    return {"bytes": bytes(prog.buffer), "planned_bytes": int(sum(sizes[1:])), "buffer_sizes": sizes,
            "delegates": delegated, "operators": sorted({op.name for op in plan.operators}), **info}


def _to_executorch(edge, planner: str, inplace: bool, compare_default: bool, info: dict, *, xnnpack: bool = False):
    from executorch.exir import ExecutorchBackendConfig

    if planner == "executorch":
        if not xnnpack:  # ExecuTorch's stock flow, as the memory-plan comparisons expect
            return edge.to_executorch()
        # with XNNPACK, constant propagation folds the dtype copies of lifted scalar constants (16
        # _to_dim_order_copy kernel calls outside the delegate in MobileNetV3, measured) into constants
        return edge.to_executorch(ExecutorchBackendConfig(do_quant_fusion_and_const_prop=True))
    import copy

    from edgekit.analysis.et_planner import edgekit_memory_planning_pass

    if compare_default:  # ExecuTorch's stock plan of the same program, for the report
        stock = copy.deepcopy(edge).to_executorch().executorch_program.execution_plan[0]
        info["executorch_default_planned_bytes"] = int(sum(stock.non_const_buffer_sizes[1:]))
    else:
        info["executorch_default_planned_bytes"] = None
    mp = edgekit_memory_planning_pass(inplace=inplace)
    prog = edge.to_executorch(ExecutorchBackendConfig(memory_planning_pass=mp, do_quant_fusion_and_const_prop=True))
    st = mp.edgekit_planner.stats
    info["executorch_greedy_planned_bytes"] = int(sum(st.executorch_greedy_bytes.values()))
    info["plan_algorithm"] = ",".join(sorted(set(st.algorithm.values())))
    info["inplace_aliased"] = int(mp.aliased)
    info["storage_reuse_pairs"] = int(mp.reuse_pairs)
    return prog


def _quantize_xnnpack(module, sample, calibration):
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if calibration is None:
        raise UsageError("int8 needs calibration data: pass --calibration DIR|FILE.npy|random")
    from torchao.quantization.pt2e.quantizer.composable_quantizer import ComposableQuantizer

    config = get_symmetric_quantization_config(is_per_channel=True)
    q = ComposableQuantizer([_SelectorQuantizer(config), XNNPACKQuantizer().set_global(config)])
    ep = torch.export.export(module, sample, strict=False)
    prepared = prepare_pt2e(ep.module(), q)
    for x in calibration:
        prepared(torch.as_tensor(x))
    return convert_pt2e(prepared)


def _selector_quantizer_class():
    from torchao.quantization.pt2e.quantizer.quantizer import QuantizationAnnotation, Quantizer, SharedQuantizationSpec

    class SelectorQuantizer(Quantizer):
        """The channel-selection convs of ``passes.shuffle_free`` (a 0/1 grouped 1x1 weight) pick channels:
        their input and output share the producer's scale, as the split they replace does, so the int8
        model has the unpermuted model's quantization points (else each adds an observer and a requantize)."""

        def __init__(self, config):
            super().__init__()
            self.config = config

        def annotate(self, model):
            for node in model.graph.nodes:
                w = node.args[1] if node.op == "call_function" and len(node.args) > 1 else None
                if getattr(w, "op", None) != "get_attr" or not str(w.target).startswith("_shuffle_free_select_"):
                    continue
                x = node.args[0]
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={x: SharedQuantizationSpec(x), w: self.config.weight},
                    output_qspec=SharedQuantizationSpec(x), _annotated=True)
            return model

        def validate(self, model):
            pass

    return SelectorQuantizer


def _SelectorQuantizer(config):
    return _selector_quantizer_class()(config)
