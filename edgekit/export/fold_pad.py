"""Fold an explicit PAD into the convolution after it, where TFLite's SAME padding pads exactly
the same pixels: a .tflite post-pass (no torch, no TensorFlow).

litert-torch already turns ``F.pad(x, pads)`` + ``conv(padding=0)`` into one SAME conv when the
pad sits right before the conv in its NHWC graph, but not on the model's first layer: there the
pad is applied to the NCHW input, before the converter's NCHW->NHWC TRANSPOSE (measured:
``PAD, TRANSPOSE, CONV_2D(VALID)``). This pass rewrites

- ``PAD -> CONV_2D/DEPTHWISE_CONV_2D(VALID)`` and
- ``PAD -> TRANSPOSE -> CONV_2D/DEPTHWISE_CONV_2D(VALID)`` (pads permuted like the tensor)

into the conv with SAME padding on the unpadded tensor, when all of these hold:

- the PAD's only consumer is that conv (or that transpose, whose only consumer is the conv);
- its pads are exactly TFLite's SAME pads for the conv's kernel, stride, dilation and the
  unpadded size (``tensorflow/lite/kernels/padding.h``: ``total = max((ceil(n/s) - 1) * s +
  (k - 1) * d + 1 - n, 0)``, ``total // 2`` before, the rest after), on the spatial axes only;
- it pads with zero: PAD pads with 0 in float and with the zero point (real 0) in int8, as a
  SAME conv does (the kernels add ``input_offset`` to the padded reads, conv.h); a PADV2 only
  when its constant is that value.

So the result computes the same numbers with one op and one activation copy less.

A second, smaller rewrite: the converter pads a max pooling with ``PADV2`` and the lowest value
(-inf, or -128 in int8), which XNNPACK's delegate does not take (measured: LiteRT 2.3 leaves the
PADV2 to its reference kernels and splits the graph). When the pooled tensor comes out of a RELU
or RELU6 (fused or not), no value is below zero (the zero point in int8), and every pooling window
holds at least one real pixel, so padding with zero gives the same maxima: the PADV2 becomes a
PAD, which XNNPACK runs.
"""

from __future__ import annotations

import numpy as np

from edgekit.padding import same_pads


def fold_pad_into_conv(model_bytes: bytes) -> tuple[bytes, int]:
    """Return (model bytes, number of PAD ops folded); the input bytes when nothing folds."""
    from ai_edge_litert import schema_py_generated as S
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(model_bytes))
    names = _opcode_names(model, S)
    folded = 0
    for sg in model.subgraphs:
        folded += _relu_pool_pads(model, sg, names, S)
    for i, sg in enumerate(model.subgraphs):
        n = _fold_subgraph(model, sg, names, S)
        if n:
            _drop_unused_tensors(model, i)
        folded += n
    if not folded:
        return model_bytes, 0
    return bytes(fbu.convert_object_to_bytearray(model)), folded


def _opcode_names(model, S) -> list[str]:
    rev = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    return [rev.get(max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode)), "?") for oc in model.operatorCodes]


def _const(model, sg, t: int) -> np.ndarray | None:
    tensor = sg.tensors[t]
    buf = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
    if buf is None or buf.data is None or not len(buf.data):
        return None
    dtype = {2: np.int32, 4: np.int64, 0: np.float32, 9: np.int8, 3: np.uint8}.get(int(tensor.type))
    if dtype is None:
        return None
    return np.frombuffer(bytes(bytearray(buf.data)), dtype=dtype).reshape(list(tensor.shape))


def _fold_subgraph(model, sg, names, S) -> int:
    consumers: dict[int, list] = {}
    for op in sg.operators:
        for t in op.inputs:
            if t >= 0:
                consumers.setdefault(int(t), []).append(op)
    graph_outputs = {int(t) for t in sg.outputs}
    folded = []
    for op in sg.operators:
        if names[op.opcodeIndex] not in ("PAD", "PADV2") or not _pads_with_zero(model, sg, op):
            continue
        pads = _const(model, sg, op.inputs[1])
        out = int(op.outputs[0])
        nxt = consumers.get(out, [])
        if pads is None or len(nxt) != 1 or out in graph_outputs:
            continue
        perm, conv = None, nxt[0]
        if names[conv.opcodeIndex] == "TRANSPOSE":
            perm = _const(model, sg, conv.inputs[1])
            t_out = int(conv.outputs[0])
            if perm is None or len(consumers.get(t_out, [])) != 1 or t_out in graph_outputs:
                continue
            transpose, conv = conv, consumers[t_out][0]
            pads = pads[[int(p) for p in perm]]
        if names[conv.opcodeIndex] not in ("CONV_2D", "DEPTHWISE_CONV_2D") or not _is_same(model, sg, conv, pads):
            continue
        src = int(op.inputs[0])
        if perm is None:
            conv.inputs[0] = src
        else:
            transpose.inputs[0] = src
            shape = [int(d) for d in sg.tensors[src].shape]
            t = sg.tensors[int(transpose.outputs[0])]
            t.shape = [shape[int(p)] for p in perm]
            if t.shapeSignature is not None and len(t.shapeSignature):
                t.shapeSignature = list(t.shape)
        conv.builtinOptions.padding = S.Padding.SAME
        folded.append(op)
    for op in folded:
        sg.operators.remove(op)
    return len(folded)


def _drop_unused_tensors(model, index: int) -> None:
    """Remove tensors no op and no graph input/output refers to (the folded PADs' outputs): an
    orphan tensor without data makes LiteRT's preserve-all-tensors calibration fail. Tensor
    indices are renumbered everywhere they appear (ops, subgraph I/O, signature defs)."""
    sg = model.subgraphs[index]
    used = {int(t) for t in list(sg.inputs) + list(sg.outputs) if t >= 0}
    for op in sg.operators:
        for vec in (op.inputs, op.outputs, op.intermediates):
            used.update(int(t) for t in (vec if vec is not None else []) if t >= 0)
    keep = sorted(used)
    new_index = {old: new for new, old in enumerate(keep)}
    sg.tensors = [sg.tensors[i] for i in keep]

    def remap(vec):
        return None if vec is None else [new_index[int(t)] if t >= 0 else -1 for t in vec]

    sg.inputs, sg.outputs = remap(sg.inputs), remap(sg.outputs)
    for op in sg.operators:
        op.inputs, op.outputs, op.intermediates = remap(op.inputs), remap(op.outputs), remap(op.intermediates)
    for sig in model.signatureDefs or []:
        if int(sig.subgraphIndex) == index:
            for tm in list(sig.inputs or []) + list(sig.outputs or []):
                tm.tensorIndex = new_index[int(tm.tensorIndex)]


_NON_NEGATIVE_ACTS = (1, 3)  # ActivationFunctionType RELU, RELU6


def _relu_pool_pads(model, sg, names, S) -> int:
    """PADV2(lowest) -> MAX_POOL_2D on a RELU/RELU6 output becomes a zero PAD (see module doc)."""
    producer = {int(t): op for op in sg.operators for t in op.outputs}
    consumers: dict[int, list] = {}
    for op in sg.operators:
        for t in op.inputs:
            consumers.setdefault(int(t), []).append(op)
    changed = 0
    for op in sg.operators:
        if names[op.opcodeIndex] != "PADV2" or len(op.inputs) < 3:
            continue
        value = _const(model, sg, op.inputs[2])
        x = sg.tensors[int(op.inputs[0])]
        lowest = -np.inf if int(x.type) == 0 else np.iinfo(np.int8).min
        src = producer.get(int(op.inputs[0]))
        users = consumers.get(int(op.outputs[0]), [])
        if (value is None or value.size != 1 or float(value.ravel()[0]) != float(lowest) or src is None
                or not users or any(names[u.opcodeIndex] != "MAX_POOL_2D" for u in users)
                or not _non_negative(src, names)):
            continue
        op.opcodeIndex = _opcode_index(model, S, "PAD", names)
        op.inputs = list(op.inputs[:2])
        op.builtinOptionsType = S.BuiltinOptions.PadOptions
        op.builtinOptions = S.PadOptionsT()
        changed += 1
    return changed


def _non_negative(op, names) -> bool:
    if names[op.opcodeIndex] in ("RELU", "RELU6"):
        return True
    act = getattr(op.builtinOptions, "fusedActivationFunction", None)
    return act is not None and int(act) in _NON_NEGATIVE_ACTS


def _opcode_index(model, S, name: str, names: list[str]) -> int:
    if name in names:
        return names.index(name)
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = getattr(S.BuiltinOperator, name)
    code.version = 2  # PAD v2: int8 as well as float (LiteRT and TFLite-Micro register it)
    model.operatorCodes.append(code)
    names.append(name)
    return len(names) - 1


def _pads_with_zero(model, sg, op) -> bool:
    x = sg.tensors[int(op.inputs[0])]
    zp = 0
    if x.quantization is not None and x.quantization.zeroPoint is not None and len(x.quantization.zeroPoint):
        zp = int(x.quantization.zeroPoint[0])
    if len(op.inputs) < 3 or op.inputs[2] < 0:  # PAD, or PADV2 without a constant: zero / zero point
        return True
    value = _const(model, sg, op.inputs[2])
    return value is not None and value.size == 1 and float(value.ravel()[0]) == float(zp)


def _is_same(model, sg, conv, pads: np.ndarray) -> bool:
    """True when ``pads`` (NHWC, [4, 2]) are the SAME pads of this VALID conv on the unpadded input."""
    opts = conv.builtinOptions
    if opts is None or int(opts.padding) != 1:  # Padding.VALID
        return False
    if pads.shape != (4, 2) or pads[0].any() or pads[3].any():
        return False
    w = sg.tensors[int(conv.inputs[1])].shape  # CONV_2D: [O, kh, kw, I]; DEPTHWISE: [1, kh, kw, O]
    x = sg.tensors[int(conv.inputs[0])].shape  # padded NHWC
    sizes = (int(x[1]) - int(pads[1].sum()), int(x[2]) - int(pads[2].sum()))
    steps = (int(opts.strideH), int(opts.strideW))
    dils = (int(getattr(opts, "dilationHFactor", 1) or 1), int(getattr(opts, "dilationWFactor", 1) or 1))
    for axis in range(2):
        want = same_pads(sizes[axis], int(w[1 + axis]), steps[axis], dils[axis])
        if tuple(int(p) for p in pads[1 + axis]) != want:
            return False
    return True
