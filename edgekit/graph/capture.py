"""Capture an nn.Module (or a saved .pt2) into the Graph IR through torch.export.

Shapes come from each node's ``meta["val"]``; the PyTorch module a node came from is
the innermost entry of ``meta["nn_module_stack"]``. Views (reshape, flatten, split,
getitem, ...) become ops of kind ``view`` whose output aliases their input, so memory
analysis sees no new buffer for them, as in eager PyTorch.
"""

from __future__ import annotations

import math

from edgekit.errors import ArtifactError, EdgekitError, UsageError
from edgekit.graph.ir import MODEL_DTYPES, Graph, Op, QuantParams, Tensor
from edgekit.graph.kinds import FOLDS_BN, TRANSPOSING_VIEWS, aten_kind, clamp_kind


def _permutation(base: str, node) -> tuple[int, ...] | None:
    """The dims permutation of a permute/transpose node, normalised to non-negative dims."""
    val = node.meta.get("val")
    rank = len(getattr(val, "shape", ()))
    try:
        if base == "permute":
            dims = [int(d) % rank for d in node.args[1]]
        elif base == "transpose":
            dims = list(range(rank))
            a, b = int(node.args[1]) % rank, int(node.args[2]) % rank
            dims[a], dims[b] = dims[b], dims[a]
        else:
            return None
    except (IndexError, TypeError, ValueError, ZeroDivisionError):
        return None
    return tuple(dims)


def export_module(module, example_inputs, *, strict: bool = False):
    """torch.export a module in eval mode; errors from the model become EdgekitError."""
    import torch

    if module.training:
        raise UsageError(
            "the model is in training mode; call model.eval() first (analysis, folding and export are for inference)"
        )
    try:
        with torch.no_grad():
            return torch.export.export(module, tuple(example_inputs), strict=strict)
    except Exception as exc:  # the model's own forward raised, or torch.export refused it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgekitError(
            f"torch.export could not trace the model with input shape "
            f"{[tuple(x.shape) for x in example_inputs]}: {type(exc).__name__}: {first[:300]}"
            " (check --input-shape and that forward runs in eval mode)"
        ) from exc


def _val_shape(val):
    import torch

    if isinstance(val, torch.Tensor):
        return tuple(int(d) for d in val.shape), str(val.dtype).replace("torch.", "")
    return None


def _module_path(node) -> str | None:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path.replace("L['self'].", "").replace("L__self___", "") or None


def graph_from_exported(ep, *, dtype: str = "fp32", name: str = "model") -> Graph:
    """Build the IR from an ExportedProgram, sizing activations and weights as ``dtype``."""
    import torch

    act_dtype = MODEL_DTYPES[dtype]
    sig = ep.graph_signature
    param_names = dict(sig.inputs_to_parameters)
    buffer_names = dict(sig.inputs_to_buffers)
    const_names = dict(getattr(sig, "inputs_to_lifted_tensor_constants", {}) or {})
    state = dict(ep.state_dict)
    state.update(getattr(ep, "constants", {}) or {})

    tensors: list[Tensor] = []
    ops: list[Op] = []
    node_tensor: dict[str, object] = {}  # node name -> tensor id or list of ids
    is_param: dict[int, bool] = {}
    const_fill: dict[int, float] = {}  # constant tensor id -> its value, where every element is 0 or 1
    graph_inputs: list[int] = []

    def new_tensor(tname, shape, tdtype, *, const=False):
        t = Tensor(id=len(tensors), name=tname, shape=shape, dtype=tdtype, is_const=const)
        tensors.append(t)
        return t.id

    def float_like(tdtype: str) -> bool:
        return tdtype in ("float32", "float64", "float16", "bfloat16")

    for node in ep.graph.nodes:
        if node.op == "placeholder":
            val = node.meta.get("val")
            sd = _val_shape(val)
            if sd is None:
                continue
            shape, tdtype = sd
            if node.name in param_names or node.name in buffer_names or node.name in const_names:
                key = param_names.get(node.name) or buffer_names.get(node.name) or const_names.get(node.name)
                tid = new_tensor(key, shape, tdtype, const=True)
                is_param[tid] = node.name in param_names
                fill = _constant_fill(state.get(key))
                if fill is not None:
                    const_fill[tid] = fill
            else:
                tid = new_tensor(node.name, shape, act_dtype if float_like(tdtype) else tdtype)
                graph_inputs.append(tid)
            node_tensor[node.name] = tid
        elif node.op == "call_function":
            target = node.target
            opname = getattr(target, "__name__", str(target))
            base = opname.split(".")[0]
            if getattr(target, "_schema", None) is not None:
                base = target._schema.name.split("::")[-1]
            kind = aten_kind(base)
            in_ids = []
            flat_args = []

            def collect(a, flat_args=flat_args):
                flat_args.append(a)
                return a

            torch.fx.node.map_arg((node.args, node.kwargs), collect)
            for a in flat_args:
                ref = node_tensor.get(a.name)
                if isinstance(ref, int):
                    in_ids.append(ref)
                elif isinstance(ref, list):
                    in_ids.extend(ref)
            if base == "getitem":
                src = node_tensor.get(node.args[0].name)
                idx = node.args[1]
                if isinstance(src, list) and isinstance(idx, int) and idx < len(src):
                    node_tensor[node.name] = src[idx]
                continue
            val = node.meta.get("val")
            outs = []
            vals = val if isinstance(val, (list, tuple)) else [val]
            for i, v in enumerate(vals):
                sd = _val_shape(v)
                if sd is None:
                    outs.append(None)
                    continue
                shape, tdtype = sd
                outs.append(new_tensor(f"{node.name}" + (f":{i}" if len(vals) > 1 else ""), shape,
                                       act_dtype if float_like(tdtype) else tdtype))
            out_ids = [o for o in outs if o is not None]
            # batch_norm's extra outputs (saved mean/invstd) are empty or unused at inference
            if kind == "batch_norm" and len(out_ids) > 1:
                for extra in out_ids[1:]:
                    tensors[extra].shape = (0,)
            node_tensor[node.name] = outs if isinstance(val, (list, tuple)) else (out_ids[0] if out_ids else None)
            op = Op(index=len(ops), kind=kind, name=node.name, inputs=in_ids, outputs=out_ids,
                    source=_module_path(node), attrs={"aten": base})
            if base in TRANSPOSING_VIEWS:
                op.attrs["transposes"] = True
                perm = _permutation(base, node)
                if perm is not None:
                    op.attrs["perm"] = perm
            _annotate(op, node, tensors, is_param)
            ops.append(op)
        elif node.op == "output":
            out_refs = []
            for a in node.args[0] if isinstance(node.args[0], (list, tuple)) else [node.args[0]]:
                ref = node_tensor.get(getattr(a, "name", None))
                if isinstance(ref, int):
                    out_refs.append(ref)
            graph_outputs = out_refs
    g = Graph(tensors=tensors, ops=ops, inputs=graph_inputs, outputs=graph_outputs,
              source_format="torch", name=name, meta={"dtype": dtype})
    g.link()
    if dtype == "int8":
        _quantize_consts(g, is_param)
    elif dtype == "fp16":
        for t in g.tensors:
            if t.is_const and t.dtype == "float32":
                t.dtype = "float16"
    g.meta["param_tensors"] = [tid for tid, p in is_param.items() if p]
    g.meta["const_fill"] = const_fill
    return g


def _constant_fill(value) -> float | None:
    """0.0 or 1.0 when every element of a constant is that value (an untrained LayerNorm's weight
    and bias, a zero bias): the TFLite converter drops a multiplication by 1 and an addition of 0."""
    import torch

    if not isinstance(value, torch.Tensor) or value.numel() == 0 or not value.is_floating_point():
        return None
    for v in (0.0, 1.0):
        if bool((value == v).all()):
            return v
    return None


def _arg_attrs(op: Op, node) -> None:
    """Arguments the TFLite lowering needs that shapes do not tell: activation bounds (which
    decide between relu/relu6/relu1 and a clamp), slice steps, concat/softmax dims, pad widths,
    and whether attention is causal or masked."""
    base, args, kw = op.attrs["aten"], list(node.args), dict(node.kwargs)
    if base in ("hardtanh", "hardtanh_", "clamp"):
        lo = args[1] if len(args) > 1 else kw.get("min", -1.0 if base != "clamp" else None)
        hi = args[2] if len(args) > 2 else kw.get("max", 1.0 if base != "clamp" else None)
        if all(v is None or isinstance(v, (int, float)) for v in (lo, hi)):
            op.kind = clamp_kind(None if lo is None else float(lo), None if hi is None else float(hi))
            op.attrs.update(min=lo, max=hi)
    elif base == "slice":
        op.attrs.update(dim=args[1] if len(args) > 1 else 0, start=args[2] if len(args) > 2 else 0,
                        step=args[4] if len(args) > 4 else 1)
    elif base == "select":
        op.attrs.update(dim=args[1], index=args[2])
    elif base in ("layer_norm", "native_layer_norm"):
        op.attrs["eps"] = float(args[4]) if len(args) > 4 else 1e-5
    elif base in ("split", "split_with_sizes", "chunk"):  # (x, size(s) or chunks, dim)
        dim = args[2] if len(args) > 2 else kw.get("dim", 0)
        op.attrs["dim"] = dim if isinstance(dim, int) else 0
    elif base in ("narrow", "cat", "concat", "_softmax", "softmax", "log_softmax", "_log_softmax"):
        dim = args[1] if len(args) > 1 else kw.get("dim", 0)
        op.attrs["dim"] = dim if isinstance(dim, int) else 0
        if base == "narrow":
            op.attrs["start"] = args[2] if len(args) > 2 else 0
    elif base in ("pad", "constant_pad_nd"):
        op.attrs["pad"] = tuple(int(p) for p in args[1]) if len(args) > 1 else ()
        op.attrs["mode"] = (args[2] if len(args) > 2 else kw.get("mode", "constant")) if base == "pad" else "constant"
        value = args[2] if base == "constant_pad_nd" and len(args) > 2 else (
            args[3] if len(args) > 3 else kw.get("value", 0.0))
        op.attrs["value"] = float(value or 0.0) if isinstance(value, (int, float)) or value is None else None
    elif base == "scaled_dot_product_attention":
        op.attrs.update(masked=(len(args) > 3 and args[3] is not None) or kw.get("attn_mask") is not None,
                        causal=bool(args[5] if len(args) > 5 else kw.get("is_causal", False)))
    elif base in ("pixel_shuffle", "pixel_unshuffle"):
        op.attrs["factor"] = int(args[1])
    elif base in ("mean", "sum", "amax"):
        dims = args[1] if len(args) > 1 else kw.get("dim")
        if isinstance(dims, int):
            dims = [dims]
        op.attrs["dims"] = tuple(int(d) for d in dims) if isinstance(dims, (list, tuple)) and dims else None
        op.attrs["keepdim"] = bool(args[2] if len(args) > 2 else kw.get("keepdim", False))


def _annotate(op: Op, node, tensors: list[Tensor], is_param: dict[int, bool]) -> None:
    """Fill MACs, params and conv attributes for one op."""
    _arg_attrs(op, node)
    consts = [tid for tid in op.inputs if tensors[tid].is_const]
    op.params = sum(tensors[tid].numel for tid in consts if is_param.get(tid))
    if not op.outputs:
        return
    out = tensors[op.outputs[0]]
    if op.kind == "pad" and len(node.args) > 1:  # issue 16: the pad amounts, for lowering (SAME pads)
        base, args = op.attrs["aten"], list(node.args)
        mode = args[2] if base == "pad" and len(args) > 2 else "constant"
        value = args[3] if base == "pad" and len(args) > 3 else (args[2] if base != "pad" and len(args) > 2 else 0)
        op.attrs.update(pads=[int(p) for p in args[1]], pad_mode=mode, pad_value=float(value or 0))
        return
    if op.kind in ("max_pool", "avg_pool") and op.attrs["aten"] in ("max_pool2d", "max_pool2d_with_indices",
                                                                    "avg_pool2d", "max_pool1d", "avg_pool1d"):
        args = list(node.args)
        op.attrs.update(kernel=args[1] if len(args) > 1 else None, stride=args[2] if len(args) > 2 else None,
                        padding=args[3] if len(args) > 3 else 0)
        if op.kind == "max_pool":  # max_pool(x, k, s, p, dilation, ceil_mode)
            op.attrs.update(dilation=args[4] if len(args) > 4 else 1, ceil_mode=bool(len(args) > 5 and args[5]))
        else:  # avg_pool(x, k, s, p, ceil_mode, count_include_pad, divisor_override)
            op.attrs.update(ceil_mode=bool(len(args) > 4 and args[4]),
                            count_include_pad=bool(args[5]) if len(args) > 5 else True,
                            divisor_override=args[6] if len(args) > 6 else None)
        return
    if op.kind in ("conv1d", "conv2d", "conv3d", "conv_transpose"):
        weight = tensors[op.inputs[1]]
        args = list(node.args)
        base = op.attrs["aten"]
        if base in ("conv1d", "conv2d", "conv3d"):
            stride = args[3] if len(args) > 3 else 1
            padding = args[4] if len(args) > 4 else 0
            dilation = args[5] if len(args) > 5 else 1
            groups = args[6] if len(args) > 6 else 1
        elif base == "convolution":
            stride, padding, dilation = args[3], args[4], args[5]
            groups = args[8]
            if args[6]:
                op.kind = "conv_transpose"
        else:  # conv_transpose*
            stride = args[3] if len(args) > 3 else 1
            padding = args[4] if len(args) > 4 else 0
            groups = args[6] if len(args) > 6 else 1
            dilation = args[7] if len(args) > 7 else 1
        op.attrs.update(stride=stride, padding=padding, dilation=dilation, groups=int(groups),
                        kernel=tuple(weight.shape[2:]))
        if op.kind == "conv_transpose":
            in_t = tensors[op.inputs[0]]
            # each input element is multiplied into (out_ch/groups) * k elements
            op.macs = in_t.numel * weight.numel // weight.shape[0]
        else:
            cin = tensors[op.inputs[0]].shape[1]
            if groups > 1 and groups == cin and weight.shape[1] == 1 and op.kind == "conv2d":
                op.kind = "depthwise_conv2d"
            op.macs = out.numel * weight.numel // weight.shape[0]
        op.attrs["out_channels"] = int(weight.shape[0])
    elif op.kind == "linear":
        base = op.attrs["aten"]
        if base == "linear":
            weight = tensors[op.inputs[1]]
            op.macs = out.numel * weight.shape[-1]
        elif base == "addmm":
            a = tensors[op.inputs[1]]
            op.macs = out.numel * a.shape[-1]
        else:
            a = tensors[op.inputs[0]]
            op.macs = out.numel * a.shape[-1]
        if len(op.inputs) > 1 and tensors[op.inputs[1]].is_const:
            op.attrs["out_channels"] = int(out.shape[-1])


def _quantize_consts(g: Graph, is_param: dict[int, bool]) -> None:
    """Size constants as a full-integer int8 model: int8 weights with per-channel scale and
    zero point (float32 + int64 each, as TFLite stores them), int32 biases; BN folded away."""
    for op in g.ops:
        consts = [tid for tid in op.inputs if g.tensors[tid].is_const]
        if op.kind in ("conv1d", "conv2d", "conv3d", "depthwise_conv2d", "conv_transpose", "linear"):
            for _pos, tid in enumerate(op.inputs):
                t = g.tensors[tid]
                if not t.is_const:
                    continue
                if t.dtype.startswith("float") and len(t.shape) >= 2:
                    t.dtype = "int8"
                    channels = t.shape[0]
                    t.quant = QuantParams(num_scales=channels, axis=0)
                elif t.dtype.startswith("float") and len(t.shape) == 1:
                    t.dtype = "int32"
        elif op.kind == "batch_norm":
            for tid in consts:  # folded into the conv: nothing stored
                g.tensors[tid].buffer_bytes = 0
        else:
            for tid in consts:
                t = g.tensors[tid]
                if t.dtype.startswith("float"):
                    t.dtype = "int8"
                    t.quant = QuantParams(num_scales=1)


def fold_bn_in_graph(g: Graph) -> int:
    """Fold, on the graph, every BatchNorm whose input is a conv/linear output with no other
    user: the BN op becomes a ``view`` (its output aliases the conv's) and its stored bytes
    vanish, as ``edgekit.passes.fold_bn`` does to the module. Returns how many were folded."""
    folded = 0
    for op in g.ops:
        if op.kind != "batch_norm":
            continue
        acts = [t for t in op.inputs if not g.tensors[t].is_const]
        if not acts:
            continue
        src = g.tensors[acts[0]]
        if src.producer is None or g.ops[src.producer].kind not in FOLDS_BN or len(src.consumers) != 1:
            continue
        op.kind = "view"
        op.attrs["folded_bn"] = True
        for t in op.inputs:
            if g.tensors[t].is_const:
                g.tensors[t].buffer_bytes = 0
        producer = g.ops[src.producer]
        out_ch = producer.attrs.get("out_channels")
        if out_ch and not any(len(g.tensors[t].shape) == 1 for t in producer.inputs if g.tensors[t].is_const):
            producer.attrs["bias_from_bn"] = True
        folded += 1
    g.meta["folded_bn"] = folded
    return folded


def quant_overhead_bytes(g: Graph) -> int:
    """Bytes of quantization parameters of constants (float32 scale + int64 zero point each)."""
    return sum(12 * t.quant.num_scales for t in g.tensors if t.is_const and t.quant is not None)


def capture(module, input_shape, *, dtype: str = "fp32", name: str = "model") -> Graph:
    """Export ``module`` with a random input of ``input_shape`` and build the IR."""
    import torch

    x = torch.randn(*input_shape)
    ep = export_module(module, (x,))
    return graph_from_exported(ep, dtype=dtype, name=name)


def load_pt2(path) -> object:
    from pathlib import Path

    import torch

    from edgekit.quiet import quiet_loggers

    if Path(path).is_dir():
        raise UsageError(f"{path} is a directory, expected a .pt2 file")
    try:
        # torch.export.load logs a corrupt archive's traceback as a warning before raising its own
        # error; the one-line error below says the same
        with quiet_loggers("torch.export"):
            return torch.export.load(str(path))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ArtifactError(f"cannot read {path} as a .pt2 ExportedProgram ({type(exc).__name__}: {first}); "
                            "save it again with torch.export.save or `edgekit fold -o FILE.pt2`") from None


def numel(shape) -> int:
    return int(math.prod(shape)) if shape else 1
