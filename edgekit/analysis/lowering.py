"""Lower a captured PyTorch graph the way the TFLite converter (litert-torch) does, so the
TFLite-Micro arena model can predict the arena of the .tflite before it exists.

What the converter does, as measured on this machine (see DESIGN.md and the tests):
- a rank-4 NCHW graph input gets a leading TRANSPOSE to NHWC (a full copy of the input);
- BatchNorm is folded into the conv; ReLU/ReLU6 after a conv, linear or add is fused;
- a conv whose symmetric PyTorch padding differs from TFLite's SAME padding (stride-2
  convs on even sizes) gets an explicit PAD op before a VALID conv;
- adaptive average pooling + flatten becomes one MEAN; other reshapes are real RESHAPE
  ops; permute/transpose are TRANSPOSE ops, except NCHW<->NHWC permutes of 4-D activations,
  which the converter cancels against its own layout transposes; split/chunk/slice are SLICE ops;
- h-swish is one HARD_SWISH op, sigmoid one LOGISTIC, h-sigmoid stays a separate op.
The result is a Graph in TFLite's NHWC layout whose ops carry ``attrs["opcode"]``.
"""

from __future__ import annotations

from edgekit.graph.ir import Graph, Op, QuantParams, Tensor

_FUSABLE_ACTS = {"relu": "relu", "relu6": "relu6"}
_FUSING_KINDS = {"conv2d", "depthwise_conv2d", "linear", "add", "sub", "mul"}
_OPCODE = {
    "conv2d": "CONV_2D", "depthwise_conv2d": "DEPTHWISE_CONV_2D", "linear": "FULLY_CONNECTED",
    "add": "ADD", "sub": "SUB", "mul": "MUL", "div": "DIV", "concat": "CONCATENATION", "mean": "MEAN",
    "avg_pool": "AVERAGE_POOL_2D", "max_pool": "MAX_POOL_2D", "hard_swish": "HARD_SWISH",
    "sigmoid": "LOGISTIC", "relu": "RELU", "relu6": "RELU6", "softmax": "SOFTMAX", "pad": "PAD",
    "transpose": "TRANSPOSE", "reshape": "RESHAPE", "slice": "SLICE", "hard_sigmoid": "HARD_SIGMOID",
    "batch_norm": "MUL", "conv_transpose": "TRANSPOSE_CONV", "resize": "RESIZE_NEAREST_NEIGHBOR",
    "silu": "LOGISTIC", "tanh": "TANH", "leaky_relu": "LEAKY_RELU", "gelu": "GELU", "copy": "RESHAPE",
}
_LAYOUT_PERMS = {(0, 2, 3, 1), (0, 3, 1, 2)}
_SLICING_VIEWS = {"split", "split_with_sizes", "chunk", "slice", "select", "narrow"}


def _nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape


def _same_pad(in_size: int, k: int, s: int, d: int) -> tuple[int, int]:
    eff = (k - 1) * d + 1
    out = -(-in_size // s)
    total = max((out - 1) * s + eff - in_size, 0)
    return total // 2, total - total // 2


def _same_padded_conv(g: Graph, op: Op, consumers: dict) -> Op | None:
    """Issue 16: the conv a zero 2-D pad feeds, when the pad is exactly that conv's TFLite SAME
    padding (the conv itself unpadded), else None."""
    pads, out = op.attrs.get("pads"), op.outputs[0]
    cs = consumers.get(out, [])
    if (not pads or len(pads) != 4 or op.attrs.get("pad_mode", "constant") != "constant"
            or op.attrs.get("pad_value", 0) != 0 or len(cs) != 1 or out in g.outputs
            or cs[0].kind not in ("conv2d", "depthwise_conv2d") or any(_pair(cs[0].attrs.get("padding", 0)))):
        return None
    conv, x = cs[0], g.tensors[op.inputs[0]]
    k, s, d = (tuple(conv.attrs.get("kernel", ())), _pair(conv.attrs.get("stride", 1)),
               _pair(conv.attrs.get("dilation", 1)))
    if len(x.shape) != 4 or len(k) != 2:
        return None
    want = [_same_pad(x.shape[3], k[1], s[1], d[1]), _same_pad(x.shape[2], k[0], s[0], d[0])]
    return conv if [tuple(pads[0:2]), tuple(pads[2:4])] == want else None


def lower_for_tflite(g: Graph, *, channels_last_io: bool | None = None, same_padding: bool = False) -> Graph:
    """``channels_last_io`` (default: ``g.meta["channels_last_io"]``): the model takes NHWC input,
    as `edgekit build --channels-last-io` exports it, so there is no leading TRANSPOSE.
    ``same_padding``: a what-if: every padded conv as if its padding were TFLite's SAME (no
    explicit PAD); not exact for the model's own symmetric padding, so only for reports."""
    if channels_last_io is None:
        channels_last_io = bool(g.meta.get("channels_last_io", False))
    dtype = g.meta.get("dtype", "fp32")
    act_dtype = {"fp32": "float32", "fp16": "float32", "int8": "int8"}[dtype]
    w_dtype = "int8" if dtype == "int8" else "float32"
    tensors: list[Tensor] = []
    ops: list[Op] = []
    new_id: dict[int, int] = {}  # torch tensor id -> lowered tensor id

    def add_tensor(name, shape, dt=act_dtype, const=False, quant=None, nbytes=None):
        t = Tensor(id=len(tensors), name=name, shape=tuple(shape), dtype=dt, is_const=const, quant=quant,
                   buffer_bytes=nbytes)
        tensors.append(t)
        return t.id

    def add_op(kind, name, inputs, outputs, source=None, **attrs):
        op = Op(index=len(ops), kind=kind, name=name, inputs=list(inputs), outputs=list(outputs), source=source,
                attrs={"opcode": _OPCODE.get(kind, kind.upper()), **attrs})
        ops.append(op)
        return op

    shared_consts: dict[tuple, int] = {}

    def shared_const(key, name, shape, nbytes):
        """The converter stores identical small constants once (e.g. one paddings tensor for
        every PAD with the same padding): so do we."""
        if key not in shared_consts:
            shared_consts[key] = add_tensor(name, shape, "int32", const=True, nbytes=nbytes)
        return shared_consts[key]

    def per_channel(n):
        return QuantParams(num_scales=n, axis=0) if dtype == "int8" else None

    def act_quant():
        return QuantParams(num_scales=1) if dtype == "int8" else None

    def act_tensor(name, shape):
        return add_tensor(name, shape, quant=act_quant())

    g_inputs = []
    for tid in g.inputs:
        t = g.tensors[tid]
        if len(t.shape) == 4 and channels_last_io:
            new_id[tid] = act_tensor(t.name, _nhwc(t.shape))
            g_inputs.append(new_id[tid])
        elif len(t.shape) == 4:
            raw = act_tensor(t.name, t.shape)
            perm = add_tensor(f"{t.name}_perm", (4,), "int32", const=True, nbytes=16)
            out = act_tensor(f"{t.name}_nhwc", _nhwc(t.shape))
            add_op("transpose", "input_transpose", [raw, perm], [out])
            g_inputs.append(raw)
            new_id[tid] = out
        else:
            new_id[tid] = act_tensor(t.name, t.shape)
            g_inputs.append(new_id[tid])

    consumers = {t.id: [g.ops[c] for c in t.consumers] for t in g.tensors}
    skip: set[int] = set()  # torch op indices absorbed into an earlier lowered op

    def single_act_consumer(out_tid):
        cs = consumers.get(out_tid, [])
        if len(cs) == 1 and cs[0].kind in _FUSABLE_ACTS and out_tid not in g.outputs:
            return cs[0]
        return None

    same_convs: set[int] = set()  # issue 16: convs whose zero PAD is TFLite's SAME (no PAD op)
    for op in g.ops:
        if op.index in skip:
            continue
        acts_in = [i for i in op.inputs if not g.tensors[i].is_const and i in new_id]
        outs = [g.tensors[o] for o in op.outputs]
        src = op.source or op.name
        kind = op.kind
        # --- issue 16 (clean artifacts): a zero pad equal to TFLite's SAME pads of its only consumer,
        # a VALID conv, is no op on the device: litert-torch or edgekit.export.fold_pad folds it ---
        conv = _same_padded_conv(g, op, consumers) if kind == "pad" and acts_in and outs else None
        if conv is not None:
            new_id[outs[0].id] = new_id[acts_in[0]]
            same_convs.add(conv.index)
            continue
        # --- end issue 16 ---
        if kind == "view" or (kind == "batch_norm" and acts_in and _producer_kind(g, op) in
                              ("conv2d", "depthwise_conv2d", "linear")):
            if not acts_in or not outs:
                continue
            aten = op.attrs.get("aten", "")
            src_t = acts_in[0]
            prod = tensors[new_id[src_t]]
            o = outs[0]
            if kind == "batch_norm" or aten in ("dropout", "dropout_", "detach", "alias", "getitem",
                                                "contiguous") or o.numel == 0:
                new_id[o.id] = new_id[src_t]
                for extra in outs[1:]:
                    new_id[extra.id] = new_id[src_t]
                continue
            producer_ops = [p for p in ops if new_id[src_t] in p.outputs]
            if producer_ops and producer_ops[-1].kind == "mean" and o.numel == prod.numel:
                prod.shape = tuple(o.shape)  # MEAN with keep_dims=False already gives (N, C)
                new_id[o.id] = new_id[src_t]
                continue
            if aten in _SLICING_VIEWS:
                outs_ids = [act_tensor(x.name, _nhwc(x.shape)) for x in outs]
                for x, nid in zip(outs, outs_ids):
                    new_id[x.id] = nid
                for nid in outs_ids:
                    add_op("slice", src, [new_id[src_t]], [nid], source=op.source)
                continue
            if op.attrs.get("perm") in _LAYOUT_PERMS and len(o.shape) == 4:
                # NCHW<->NHWC of a 4-D activation: TFLite already stores it NHWC, and the converter
                # cancels this permute against its own layout transpose (no op, no copy)
                new_id[o.id] = new_id[src_t]
                continue
            if op.attrs.get("transposes"):
                nid = act_tensor(o.name, o.shape)
                perm = add_tensor(f"{o.name}_perm", (len(o.shape),), "int32", const=True, nbytes=4 * len(o.shape))
                add_op("transpose", src, [new_id[src_t], perm], [nid], source=op.source)
                new_id[o.id] = nid
                continue
            if tuple(o.shape) == tuple(g.tensors[src_t].shape):
                new_id[o.id] = new_id[src_t]
                continue
            nid = act_tensor(o.name, _nhwc(o.shape) if len(o.shape) == 4 else o.shape)
            shp = add_tensor(f"{o.name}_shape", (len(o.shape),), "int32", const=True, nbytes=4 * len(o.shape))
            add_op("reshape", src, [new_id[src_t], shp], [nid], source=op.source)
            new_id[o.id] = nid
            continue
        if not outs:
            continue
        o = outs[0]
        fused = None
        final_torch_out = o.id
        absorbed = [o.id]  # torch tensors that all become this op's output
        if kind in ("conv2d", "depthwise_conv2d", "linear"):
            # an unfolded BN right after the conv folds into it (the converter does this)
            cs = consumers.get(final_torch_out, [])
            while (len(cs) == 1 and (cs[0].kind == "batch_norm" or cs[0].attrs.get("folded_bn")) and cs[0].outputs
                   and final_torch_out not in g.outputs):
                skip.add(cs[0].index)
                final_torch_out = cs[0].outputs[0]
                absorbed.append(final_torch_out)
                cs = consumers.get(final_torch_out, [])
        if kind in _FUSING_KINDS:
            act_op = single_act_consumer(final_torch_out)
            if act_op is not None and act_op.outputs:
                fused = act_op.kind
                skip.add(act_op.index)
                final_torch_out = act_op.outputs[0]
                absorbed.append(final_torch_out)
        if kind in ("conv2d", "depthwise_conv2d"):
            x = g.tensors[acts_in[0]]
            w = g.tensors[op.inputs[1]]
            k = tuple(op.attrs.get("kernel", w.shape[2:]))
            stride = _pair(op.attrs.get("stride", 1))
            pad = _pair(op.attrs.get("padding", 0))
            dil = _pair(op.attrs.get("dilation", 1))
            cur = new_id[acts_in[0]]
            padding_mode = "same" if op.index in same_convs else "valid"  # issue 16
            if any(pad):
                same = [_same_pad(x.shape[2 + i], k[i], stride[i], dil[i]) for i in range(2)]
                if same_padding or all(same[i] == (pad[i], pad[i]) for i in range(2)):
                    padding_mode = "same"
                else:
                    n, c, h, wd = x.shape
                    padded = act_tensor(f"{src}_pad", (n, h + 2 * pad[0], wd + 2 * pad[1], c))
                    pads = shared_const(("pad", pad), f"{src}_paddings", (4, 2), 32)
                    add_op("pad", f"{src}/pad", [cur, pads], [padded], source=op.source)
                    cur = padded
            cout = int(op.attrs.get("out_channels", w.shape[0]))
            if kind == "depthwise_conv2d":
                wshape = (1, k[0], k[1], cout)
            else:
                wshape = (cout, k[0], k[1], w.shape[1])
            wt = add_tensor(f"{src}.weight", wshape, w_dtype, const=True, quant=per_channel(cout),
                            nbytes=_prod(wshape) * (1 if w_dtype == "int8" else 4))
            bt = add_tensor(f"{src}.bias", (cout,), "int32" if dtype == "int8" else "float32", const=True,
                            quant=per_channel(cout), nbytes=4 * cout)
            out = act_tensor(o.name, _nhwc(g.tensors[final_torch_out].shape))
            add_op(kind, src, [cur, wt, bt], [out], source=op.source, padding=padding_mode,
                   fused_activation=fused, stride=stride, kernel=k, out_channels=cout)
            new_id.update({t: out for t in absorbed})
            continue
        if kind == "linear":
            x = g.tensors[acts_in[0]]
            cout = int(o.shape[-1])
            cin = int(x.shape[-1])
            wt = add_tensor(f"{src}.weight", (cout, cin), w_dtype, const=True, quant=per_channel(cout),
                            nbytes=cout * cin * (1 if w_dtype == "int8" else 4))
            bt = add_tensor(f"{src}.bias", (cout,), "int32" if dtype == "int8" else "float32", const=True,
                            nbytes=4 * cout)
            out = act_tensor(o.name, g.tensors[final_torch_out].shape)
            add_op("linear", src, [new_id[acts_in[0]], wt, bt], [out], source=op.source, fused_activation=fused,
                   out_channels=cout)
            new_id.update({t: out for t in absorbed})
            continue
        if kind in ("max_pool", "avg_pool") and any(_pair(op.attrs.get("padding", 0))) and acts_in:
            # the converter pads explicitly (PADV2 with the lowest value for max pooling)
            x = g.tensors[acts_in[0]]
            pad = _pair(op.attrs["padding"])
            n, c, h, wd = x.shape
            padded = act_tensor(f"{src}_pad", (n, h + 2 * pad[0], wd + 2 * pad[1], c))
            pads = shared_const(("pad", pad), f"{src}_paddings", (4, 2), 32)
            extra = [add_tensor(f"{src}_padvalue", (), act_dtype, const=True, nbytes=1 if dtype == "int8" else 4)]
            add_op("pad", f"{src}/pad", [new_id[acts_in[0]], pads, *extra], [padded], source=op.source)
            ops[-1].attrs["opcode"] = "PADV2"
            new_id[acts_in[0]] = padded
            acts_in = [acts_in[0]]
        # everything else: one op, same inputs, NHWC outputs
        in_ids = [new_id[i] for i in acts_in]
        for i in op.inputs:
            t = g.tensors[i]
            if t.is_const and t.nbytes:
                in_ids.append(add_tensor(t.name, t.shape, w_dtype if t.dtype.startswith("float") else t.dtype,
                                         const=True, nbytes=t.numel * (1 if w_dtype == "int8" else 4)))
        if kind == "mean":
            axes = shared_const(("axes", 1, 2), f"{src}_axes", (2,), 8)
            in_ids.append(axes)
        out_ids = []
        for x in outs:
            if x.numel == 0:
                continue
            nid = act_tensor(x.name, _nhwc(g.tensors[final_torch_out].shape if x.id == o.id else x.shape))
            new_id[x.id] = nid
            out_ids.append(nid)
        if out_ids:
            new_id.update({t: out_ids[0] for t in absorbed})
        add_op(kind, src, in_ids, out_ids, source=op.source, fused_activation=fused)
    g_outputs = []
    for t in g.outputs:
        if new_id.get(t) is None:
            continue
        out = tensors[new_id[t]]
        if len(out.shape) == 4:  # back to NCHW for the caller: a trailing TRANSPOSE
            perm = shared_const(("perm", 0, 3, 1, 2), f"{out.name}_perm", (4,), 16)
            nchw = act_tensor(f"{out.name}_nchw", g.tensors[t].shape)
            add_op("transpose", "output_transpose", [new_id[t], perm], [nchw])
            g_outputs.append(nchw)
        else:
            g_outputs.append(new_id[t])
    lowered = Graph(tensors=tensors, ops=ops, inputs=g_inputs, outputs=g_outputs, source_format="tflite",
                    name=g.name, meta={"dtype": dtype, "lowered_from": "torch"})
    for op_ in lowered.ops:
        if op_.kind in ("conv2d", "depthwise_conv2d", "linear"):
            w = lowered.tensors[op_.inputs[1]]
            out = lowered.tensors[op_.outputs[0]]
            op_.macs = out.numel * (w.numel // max(int(op_.attrs.get("out_channels", 1)), 1))
            op_.params = sum(lowered.tensors[i].numel for i in op_.inputs if lowered.tensors[i].is_const)
    return lowered.link()


def _producer_kind(g: Graph, op: Op) -> str | None:
    acts = [i for i in op.inputs if not g.tensors[i].is_const]
    if not acts:
        return None
    p = g.tensors[acts[0]].producer
    if p is None or len(g.tensors[acts[0]].consumers) != 1:
        return None
    return g.ops[p].kind


def _pair(v):
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in v) if len(v) == 2 else (int(v[0]), int(v[0]))
    return (int(v), int(v))


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n
