"""The op x type cases the runtime-support tables are verified on: one small valid model per
TFLite-Micro op and tensor type (the "probe" types on the op's data tensors, the other tensors
as a converter would write them), plus the combinations that matter (hybrid weights, int4
weights, int16 activations with int32/int64 bias, float16 weights) and the option/shape limits
the tables claim (ranks, fused activations, constant operands, quantization).

``cases()`` yields :class:`runtime_support_models.Case` objects; a case whose model cannot be
built (no constant of that type) is skipped, never silently counted.
"""

from __future__ import annotations

from runtime_support_models import Case, T, act, const, ints, model

PROBE = ("float32", "float16", "int8", "int16", "int32", "int64", "uint8", "bool")
Q = {"int8": (0.05, 0), "int16": (0.05, 0), "uint8": (0.05, 128)}


def _bias_for(t: str) -> str:
    return {"int8": "int32", "int16": "int64", "uint8": "int32"}.get(t, t)


def _w_for(t: str) -> str:
    return "int8" if t == "int16" else t


def _bq(t_in: str, n: int):
    return ("pc", 0, 0.05 * 0.01) if t_in in ("int8", "int16", "uint8") else None


def _wq(t_w: str, axis: int):
    return ("pc", axis, 0.01) if t_w in ("int8", "int16", "int4", "uint8") else None


# ---- builders: f(types...) -> bytes ----------------------------------------------------------------

def unary(opcode, t, *, shape=(1, 2, 2, 3), opts=None, out=None, oq="auto"):
    return model(opcode, [act(shape, t)], [act(shape, out or t, quant=oq)], opts)


def binary(opcode, t, *, out=None, opts=None, shape=(1, 2, 2, 3)):
    return model(opcode, [act(shape, t), act(shape, t)], [act(shape, out or t)], opts)


def conv(t, w=None, b="auto", *, opts_act=0):
    w = w or _w_for(t)
    b = _bias_for(t) if b == "auto" else b
    ins = [act((1, 4, 4, 2), t), const((3, 2, 2, 2), w, 1, quant=_wq(w, 0)),
           None if b is None else const((3,), b, 0, quant=_bq(t, 3))][:2 if b is False else 3]
    return model("CONV_2D", ins, [act((1, 3, 3, 3), t)],
                 ("Conv2DOptions", dict(padding=1, strideW=1, strideH=1, fusedActivationFunction=opts_act)))


def dwconv(t, w=None, b="auto"):
    w = w or _w_for(t)
    b = _bias_for(t) if b == "auto" else b
    ins = [act((1, 4, 4, 2), t), const((1, 2, 2, 2), w, 1, quant=_wq(w, 3)),
           None if b is None else const((2,), b, 0, quant=_bq(t, 2))][:2 if b is False else 3]
    return model("DEPTHWISE_CONV_2D", ins, [act((1, 3, 3, 2), t)],
                 ("DepthwiseConv2DOptions", dict(padding=1, strideW=1, strideH=1, depthMultiplier=1)))


def fc(t, w=None, b="auto", *, per_channel=True):
    w = w or _w_for(t)
    b = _bias_for(t) if b == "auto" else b
    wq = _wq(w, 0) if per_channel else ((0.01, 0) if w in ("int8", "int4") else None)
    ins = [act((1, 4), t), const((3, 4), w, 1, quant=wq),
           None if b is None else const((3,), b, 0, quant=_bq(t, 3))][:2 if b is False else 3]
    return model("FULLY_CONNECTED", ins, [act((1, 3), t)], ("FullyConnectedOptions", {}))


def tconv(t, w=None, b=None):
    w = w or _w_for(t)
    ins = [ints([1, 4, 4, 3]), const((3, 2, 2, 2), w, 1, quant=_wq(w, 0)), act((1, 3, 3, 2), t)]
    if b:
        ins.append(const((3,), b, 0, quant=_bq(t, 3)))
    return model("TRANSPOSE_CONV", ins, [act((1, 4, 4, 3), t)],
                 ("TransposeConvOptions", dict(padding=1, strideW=1, strideH=1)))


def pool(opcode, t, *, oq="auto"):
    return model(opcode, [act((1, 4, 4, 2), t)], [act((1, 3, 3, 2), t, quant=oq)],
                 ("Pool2DOptions", dict(padding=1, strideW=1, strideH=1, filterWidth=2, filterHeight=2)))


def concat(t, *, n=2, rank=4, fused=0):
    shape = (1,) * (rank - 1) + (2,)
    return model("CONCATENATION", [act(shape, t) for _ in range(n)], [act(shape[:-1] + (2 * n,), t)],
                 ("ConcatenationOptions", dict(axis=rank - 1, fusedActivationFunction=fused)))


def transpose(t, *, rank=3, perm_const=True):
    shape = tuple(range(1, rank + 1))
    perm = list(range(rank))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    p = ints(perm) if perm_const else act((rank,), "int32")
    out = tuple(shape[i] for i in perm)
    return model("TRANSPOSE", [act(shape, t), p], [act(out, t)])


def strided_slice(t, *, rank=2, begin_const=True):
    shape = (2,) * (rank - 1) + (4,)
    begin = ints([0] * rank) if begin_const else act((rank,), "int32")
    return model("STRIDED_SLICE", [act(shape, t), begin, ints(list(shape)), ints([1] * (rank - 1) + [2])],
                 [act(shape[:-1] + (2,), t)], ("StridedSliceOptions", {}))


def pad(opcode, t, *, rank=4, paddings="int32"):
    shape = (1,) * (rank - 2) + (2, 2)
    ins = [act(shape, t), ints([[0, 0]] * (rank - 2) + [[1, 1], [1, 1]], paddings)]
    if opcode == "PADV2":
        ins.append(const((), t, 0))
    out = shape[:-2] + (4, 4)
    if opcode == "MIRROR_PAD":
        return model(opcode, ins, [act(out, t)], ("MirrorPadOptions", dict(mode=0)))
    return model(opcode, ins, [act(out, t)])


def batch_matmul(t, *, rank=3):
    lead = (1,) * (rank - 2)
    return model("BATCH_MATMUL", [act(lead + (2, 3), t), act(lead + (3, 4), t)], [act(lead + (2, 4), t)],
                 ("BatchMatMulOptions", {}))


def reduce(opcode, t, *, out=None):
    return model(opcode, [act((1, 2, 2, 3), t), ints([1, 2])], [act((1, 3), out or t)],
                 ("ReducerOptions", dict(keepDims=False)))


def softmax(t, out=None, oq="auto"):
    out = out or t
    if oq == "auto":
        oq = {("int8", "int8"): (1 / 256, -128), ("int8", "int16"): (1 / 65536, -32768),
              ("int16", "int16"): (1 / 32768, 0)}.get((t, out), "auto")
    return model("SOFTMAX", [act((1, 4), t)], [act((1, 4), out, quant=oq)], ("SoftmaxOptions", dict(beta=1.0)))


def quantize(t_in, t_out):
    return model("QUANTIZE", [act((4,), t_in)], [act((4,), t_out, quant=Q.get(t_out, (0.05, 0)))])


def dequantize(t_in, t_out="float32", *, const_in=False):
    x = const((4,), t_in, 1) if const_in else act((4,), t_in)
    return model("DEQUANTIZE", [x], [act((4,), t_out)])


# output quantization a converter writes for fixed-range ops (TFLite's op_version / quantize specs)
_OUT_Q = {"LOGISTIC": {"int8": (1 / 256, -128), "int16": (1 / 32768, 0)},
          "TANH": {"int8": (1 / 128, 0), "int16": (1 / 32768, 0)},
          "LOG_SOFTMAX": {"int8": (16 / 256, 127)},
          "L2_NORMALIZATION": {"int8": (1 / 128, 0)},
          "HARD_SWISH": {}, "ELU": {}}

UNARY = ["ABS", "CEIL", "COS", "SIN", "LOG", "SQRT", "SQUARE", "RSQRT", "EXP", "FLOOR", "NEG", "ROUND", "ELU",
         "HARD_SWISH", "LOGISTIC", "TANH", "RELU", "RELU6", "LOGICAL_NOT", "ZEROS_LIKE"]
BINARY = ["ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "FLOOR_DIV", "FLOOR_MOD"]
COMPARE = ["EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL"]


def _probe_cases():
    """(opcode, label, thunk) for each op on every probe type."""
    for op in UNARY:
        for t in PROBE:
            yield op, t, lambda op=op, t=t: unary(op, t, oq=_OUT_Q.get(op, {}).get(t, "auto"))
    for t in PROBE:
        yield "LEAKY_RELU", t, lambda t=t: unary("LEAKY_RELU", t, opts=("LeakyReluOptions", dict(alpha=0.1)))
        yield "LOG_SOFTMAX", t, lambda t=t: unary("LOG_SOFTMAX", t, shape=(1, 4),
                                                  oq=_OUT_Q["LOG_SOFTMAX"].get(t, "auto"))
        yield "L2_NORMALIZATION", t, lambda t=t: unary("L2_NORMALIZATION", t, shape=(1, 4),
                                                       opts=("L2NormOptions", {}),
                                                       oq=_OUT_Q["L2_NORMALIZATION"].get(t, "auto"))
    for op in BINARY:
        for t in PROBE:
            yield op, t, lambda op=op, t=t: binary(op, t)
    for op in COMPARE:
        for t in PROBE:
            yield op, t, lambda op=op, t=t: binary(op, t, out="bool")
    for op in ("LOGICAL_AND", "LOGICAL_OR"):
        for t in PROBE:
            yield op, t, lambda op=op, t=t: binary(op, t, out="bool")
    for t in PROBE:
        yield from _probe_one(t)


def _probe_one(t):
    s4 = (1, 2, 2, 1)
    yield "ADD_N", t, lambda: model("ADD_N", [act((2, 3), t)] * 3, [act((2, 3), t)])
    for op in ("ARG_MAX", "ARG_MIN"):
        yield op, t, lambda op=op: model(op, [act((1, 4), t), ints([1])], [act((1,), "int32")],
                                         (op.title().replace("_", "") + "Options", dict(outputType=2)))
    for op in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
        yield op, t, lambda op=op: pool(op, t)
    yield "BATCH_MATMUL", t, lambda: batch_matmul(t)
    yield "BATCH_TO_SPACE_ND", t, lambda: model("BATCH_TO_SPACE_ND", [act((4, 2, 2, 1), t), ints([2, 2]),
                                                                       ints([[0, 0], [0, 0]])], [act((1, 4, 4, 1), t)])
    yield "SPACE_TO_BATCH_ND", t, lambda: model("SPACE_TO_BATCH_ND", [act((1, 4, 4, 1), t), ints([2, 2]),
                                                                       ints([[0, 0], [0, 0]])], [act((4, 2, 2, 1), t)])
    yield "BROADCAST_ARGS", t, lambda: model("BROADCAST_ARGS", [const((2,), t, [1, 3]), const((2,), t, [2, 1])],
                                             [act((2,), t, quant=None)])
    yield "BROADCAST_TO", t, lambda: model("BROADCAST_TO", [act((1, 3), t), ints([2, 3])], [act((2, 3), t)])
    yield "CONCATENATION", t, lambda: concat(t)
    yield "CONV_2D", t, lambda: conv(t)
    yield "DEPTHWISE_CONV_2D", t, lambda: dwconv(t)
    yield "FULLY_CONNECTED", t, lambda: fc(t)
    yield "TRANSPOSE_CONV", t, lambda: tconv(t)
    yield "CUMSUM", t, lambda: model("CUMSUM", [act((2, 3), t), const((), "int32", 1, quant=None)],
                                     [act((2, 3), t)], ("CumsumOptions", {}))
    yield "DEPTH_TO_SPACE", t, lambda: model("DEPTH_TO_SPACE", [act((1, 2, 2, 4), t)], [act((1, 4, 4, 1), t)],
                                             ("DepthToSpaceOptions", dict(blockSize=2)))
    yield "SPACE_TO_DEPTH", t, lambda: model("SPACE_TO_DEPTH", [act((1, 4, 4, 1), t)], [act((1, 2, 2, 4), t)],
                                             ("SpaceToDepthOptions", dict(blockSize=2)))
    yield "DEQUANTIZE", t, lambda: dequantize(t)
    yield "DYNAMIC_UPDATE_SLICE", t, lambda: model("DYNAMIC_UPDATE_SLICE", [act((4, 4), t), act((2, 2), t),
                                                                             ints([1, 1])], [act((4, 4), t)])
    yield "EMBEDDING_LOOKUP", t, lambda: model("EMBEDDING_LOOKUP", [act((2,), "int32"), const((3, 4), t, 1)],
                                               [act((2, 4), t)])
    yield "EXPAND_DIMS", t, lambda: model("EXPAND_DIMS", [act((2, 3), t), ints([0])], [act((1, 2, 3), t)])
    yield "FILL", t, lambda: model("FILL", [ints([2, 3]), const((), t, 1)], [act((2, 3), t)])
    yield "GATHER", t, lambda: model("GATHER", [act((3, 4), t), ints([0, 1])], [act((2, 4), t)],
                                     ("GatherOptions", dict(axis=0)))
    yield "GATHER_ND", t, lambda: model("GATHER_ND", [act((3, 4), t), ints([[0], [1]])], [act((2, 4), t)])
    for op in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_ALL"):
        yield op, t, lambda op=op: reduce(op, t)
    for op in ("PAD", "PADV2", "MIRROR_PAD"):
        yield op, t, lambda op=op: pad(op, t)
    yield "PACK", t, lambda: model("PACK", [act((2, 3), t), act((2, 3), t)], [act((2, 2, 3), t)],
                                   ("PackOptions", dict(valuesCount=2, axis=0)))
    yield "UNPACK", t, lambda: model("UNPACK", [act((2, 3), t)], [act((3,), t), act((3,), t)],
                                     ("UnpackOptions", dict(num=2, axis=0)))
    yield "PRELU", t, lambda: model("PRELU", [act((1, 2, 2, 3), t), const((1, 1, 3), t, 1)], [act((1, 2, 2, 3), t)])
    yield "QUANTIZE", t, lambda: quantize(t, "int8")
    yield "RESHAPE", t, lambda: model("RESHAPE", [act((2, 3), t), ints([3, 2])], [act((3, 2), t)])
    for op in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        yield op, t, lambda op=op: model(op, [act(s4, t), ints([4, 4])], [act((1, 4, 4, 1), t)])
    yield "REVERSE_V2", t, lambda: model("REVERSE_V2", [act((2, 3), t), ints([1])], [act((2, 3), t)])
    yield "SELECT_V2", t, lambda: model("SELECT_V2", [act((2, 3), "bool"), act((2, 3), t), act((2, 3), t)],
                                        [act((2, 3), t)])
    yield "SHAPE", t, lambda: model("SHAPE", [act((2, 3), t)], [act((2,), "int32")], ("ShapeOptions", dict(outType=2)))
    yield "SLICE", t, lambda: model("SLICE", [act((3, 4), t), ints([0, 1]), ints([2, 2])], [act((2, 2), t)])
    yield "SOFTMAX", t, lambda: softmax(t)
    yield "SPLIT", t, lambda: model("SPLIT", [const((), "int32", 1, quant=None), act((2, 4), t)],
                                    [act((2, 2), t), act((2, 2), t)], ("SplitOptions", dict(numSplits=2)))
    yield "SPLIT_V", t, lambda: model("SPLIT_V", [act((2, 4), t), ints([1, 3]), const((), "int32", 1, quant=None)],
                                      [act((2, 1), t), act((2, 3), t)], ("SplitVOptions", dict(numSplits=2)))
    yield "SQUEEZE", t, lambda: model("SQUEEZE", [act((1, 2, 1, 3), t)], [act((2, 3), t)],
                                      ("SqueezeOptions", dict(squeezeDims=[0, 2])))
    yield "STRIDED_SLICE", t, lambda: strided_slice(t)
    yield "TRANSPOSE", t, lambda: transpose(t)
    yield "SVDF", t, lambda: svdf(t)
    yield "UNIDIRECTIONAL_SEQUENCE_LSTM", t, lambda: lstm(t)


def svdf(t, wt=None, state=None, b="auto"):
    """batch 1, input 4, 2 units of rank 1, memory 3 (svdf_common.cc PrepareSvdf's shapes)."""
    wt = wt or {"int8": "int16"}.get(t, t)
    state = state or {"int8": "int16"}.get(t, t)
    b = ({"int8": "int32"}.get(t, t) if b == "auto" else b)
    quantized = t in ("int8", "int16", "uint8")
    ins = [act((1, 4), t), const((2, 4), _w_for(t) if t != "int16" else "int8", 1),
           const((2, 3), wt, 1),
           None if b is None else const((2,), b, 0, quant=(0.05 * 0.05, 0) if quantized else None),
           T((1, 6), state, quant=(0.05, 0) if state in ("int8", "int16") else None, variable=True)]
    return model("SVDF", ins, [act((1, 2), t)], ("SVDFOptions", dict(rank=1)))


def lstm(t, w=None):
    """UNIDIRECTIONAL_SEQUENCE_LSTM: batch 1, 2 steps, input 3, 4 cells, no CIFG, peepholes,
    projection or layer norm (lstm_shared.h input order)."""
    w = w or _w_for(t)
    cell = "int16" if t in ("int8", "int16") else t
    bias = {"int8": "int32", "int16": "int64"}.get(t, t)
    wq = (0.01, 0) if w in ("int8", "int16") else None
    ins = [act((1, 2, 3), t)]
    ins += [const((4, 3), w, 1, quant=wq) for _ in range(4)]
    ins += [const((4, 4), w, 1, quant=wq) for _ in range(4)]
    ins += [None, None, None]
    ins += [const((4,), bias, 0, quant=(0.0005, 0) if bias != t or t in ("int8", "int16") else None)
            for _ in range(4)]
    ins += [None, None]
    ins += [T((1, 4), t, quant="auto", variable=True), T((1, 4), cell, quant=(2 ** -11, 0), variable=True)]
    ins += [None, None, None, None]
    return model("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [act((1, 2, 4), t)],
                 ("UnidirectionalSequenceLSTMOptions", dict(fusedActivationFunction=4, timeMajor=False)))


def _variant_cases():
    """Mixed-type combinations and the option/shape limits."""
    v = []
    # weights and bias types of the conv-like ops
    for name, f in (("CONV_2D", conv), ("DEPTHWISE_CONV_2D", dwconv), ("FULLY_CONNECTED", fc)):
        v += [(name, "int8 input, int4 weights", lambda f=f: f("int8", "int4")),
              (name, "float32 input, int8 weights (hybrid)", lambda f=f: f("float32", "int8")),
              (name, "float32 input, float16 weights", lambda f=f: f("float32", "float16")),
              (name, "int8 input, int16 weights", lambda f=f: f("int8", "int16")),
              (name, "int16 input, int16 weights", lambda f=f: f("int16", "int16")),
              (name, "int16 input, int8 weights, int32 bias", lambda f=f: f("int16", "int8", "int32")),
              (name, "int16 input, int8 weights, empty (-1) bias", lambda f=f: f("int16", "int8", None)),
              (name, "int8 input, int8 weights, empty (-1) bias", lambda f=f: f("int8", "int8", None)),
              (name, "float32, empty (-1) bias", lambda f=f: f("float32", "float32", None)),
              (name, "int16 input, int8 weights, two inputs", lambda f=f: f("int16", "int8", False)),
              (name, "int8 input, int8 weights, two inputs", lambda f=f: f("int8", "int8", False)),
              (name, "float32, two inputs", lambda f=f: f("float32", "float32", False))]
    v += [("FULLY_CONNECTED", "int8 input, int4 weights per-tensor", lambda: fc("int8", "int4", per_channel=False)),
          ("FULLY_CONNECTED", "int8 input, int8 weights per-tensor", lambda: fc("int8", "int8", per_channel=False))]
    v += [("TRANSPOSE_CONV", "int16 input, int16 weights", lambda: tconv("int16", "int16")),
          ("TRANSPOSE_CONV", "int16 input, int8 weights, int64 bias", lambda: tconv("int16", "int8", "int64")),
          ("TRANSPOSE_CONV", "int8 input, int8 weights, int32 bias", lambda: tconv("int8", "int8", "int32")),
          ("TRANSPOSE_CONV", "float32 input, int8 weights (hybrid)", lambda: tconv("float32", "int8")),
          ("TRANSPOSE_CONV", "int8 input, int4 weights", lambda: tconv("int8", "int4"))]
    # float16 weights behind DEQUANTIZE, as fp16 exports for phones write them
    v += [("DEQUANTIZE", "float16 constant input", lambda: dequantize("float16", const_in=True)),
          ("DEQUANTIZE", "int8 input, float16 output", lambda: dequantize("int8", "float16"))]
    for ti in PROBE + ("uint32",):
        for to in ("int8", "int16", "int32", "uint8", "float32"):
            if to != "int8":
                v.append(("QUANTIZE", f"{ti} -> {to}", lambda ti=ti, to=to: quantize(ti, to)))
    for ti in PROBE + ("uint32",):
        for to in PROBE + ("uint32",):
            v.append(("CAST", f"{ti} -> {to}", lambda ti=ti, to=to: model("CAST", [act((4,), ti, quant=None)],
                                                                          [act((4,), to, quant=None)])))
    v += [("SOFTMAX", "int8 -> int16", lambda: softmax("int8", "int16")),
          ("SOFTMAX", "int8, output scale 1/128", lambda: softmax("int8", oq=(1 / 128, -128))),
          ("SOFTMAX", "int16, output zero point 5", lambda: softmax("int16", oq=(1 / 32768, 5))),
          ("PRELU", "int16 input, int16 alpha", lambda: model("PRELU", [act((1, 2, 2, 3), "int16"),
                                                                       const((1, 1, 3), "int16", 1)],
                                                               [act((1, 2, 2, 3), "int16")])),
          ("PRELU", "int16 input, int8 alpha", lambda: model("PRELU", [act((1, 2, 2, 3), "int16"),
                                                                      const((1, 1, 3), "int8", 1)],
                                                              [act((1, 2, 2, 3), "int16")])),
          ("EMBEDDING_LOOKUP", "int8 table, float32 output", lambda: model(
              "EMBEDDING_LOOKUP", [act((2,), "int32"), const((3, 4), "int8", 1)], [act((2, 4), "float32")])),
          ("EMBEDDING_LOOKUP", "int64 ids", lambda: model(
              "EMBEDDING_LOOKUP", [act((2,), "int64"), const((3, 4), "float32", 1)], [act((2, 4), "float32")])),
          ("GATHER", "int64 indices", lambda: model("GATHER", [act((3, 4), "float32"), ints([0, 1], "int64")],
                                                    [act((2, 4), "float32")], ("GatherOptions", dict(axis=0)))),
          ("ARG_MAX", "int64 output", lambda: model("ARG_MAX", [act((1, 4), "float32"), ints([1])],
                                                    [act((1,), "int64")], ("ArgMaxOptions", dict(outputType=4)))),
          ("SHAPE", "int64 output", lambda: model("SHAPE", [act((2, 3), "float32")], [act((2,), "int64")],
                                                  ("ShapeOptions", dict(outType=4)))),
          ("EXPAND_DIMS", "int64 axis", lambda: model("EXPAND_DIMS", [act((2, 3), "float32"), ints([0], "int64")],
                                                      [act((1, 2, 3), "float32")])),
          ("SLICE", "int64 begin and size", lambda: model(
              "SLICE", [act((3, 4), "float32"), ints([0, 1], "int64"), ints([2, 2], "int64")],
              [act((2, 2), "float32")])),
          ("MIRROR_PAD", "int64 paddings", lambda: pad("MIRROR_PAD", "float32", paddings="int64")),
          ("SELECT_V2", "int8 condition", lambda: model("SELECT_V2", [act((2, 3), "int8"), act((2, 3), "float32"),
                                                                     act((2, 3), "float32")],
                                                        [act((2, 3), "float32")])),
          ("DYNAMIC_UPDATE_SLICE", "int64 indices", lambda: model(
              "DYNAMIC_UPDATE_SLICE", [act((4, 4), "float32"), act((2, 2), "float32"), ints([1, 1], "int64")],
              [act((4, 4), "float32")]))]
    v += [("SVDF", "int8, int8 weights_time and state", lambda: svdf("int8", "int8", "int8")),
          ("SVDF", "int8 without bias", lambda: svdf("int8", b=None)),
          ("SVDF", "float32 without bias", lambda: svdf("float32", b=None)),
          ("SVDF", "int8, float32 weights_time", lambda: svdf("int8", "float32")),
          ("UNIDIRECTIONAL_SEQUENCE_LSTM", "float32 input, int8 weights (hybrid)", lambda: lstm("float32", "int8")),
          ("UNIDIRECTIONAL_SEQUENCE_LSTM", "int16 input, int16 weights", lambda: lstm("int16", "int16"))]
    # options and shape limits
    v += [("CONCATENATION", "float32, fused RELU", lambda: concat("float32", fused=1)),
          ("CONCATENATION", "int8, fused RELU6", lambda: concat("int8", fused=3)),
          ("CONCATENATION", "float32, 10 inputs", lambda: concat("float32", n=10)),
          ("CONCATENATION", "float32, 11 inputs", lambda: concat("float32", n=11)),
          ("CONCATENATION", "int8, rank 5", lambda: concat("int8", rank=5)),
          ("CONCATENATION", "int8, rank 6", lambda: concat("int8", rank=6)),
          ("CONCATENATION", "int8, rank 7", lambda: concat("int8", rank=7)),
          ("TRANSPOSE", "int8, rank 5", lambda: transpose("int8", rank=5)),
          ("TRANSPOSE", "int8, rank 6", lambda: transpose("int8", rank=6)),
          ("TRANSPOSE", "float32, non-constant perm", lambda: transpose("float32", perm_const=False)),
          ("STRIDED_SLICE", "float32, rank 4", lambda: strided_slice("float32", rank=4)),
          ("STRIDED_SLICE", "float32, rank 5", lambda: strided_slice("float32", rank=5)),
          ("STRIDED_SLICE", "float32, non-constant begin", lambda: strided_slice("float32", begin_const=False)),
          ("PAD", "float32, rank 5", lambda: pad("PAD", "float32", rank=5)),
          ("PAD", "float32, rank 6", lambda: pad("PAD", "float32", rank=6)),
          ("BATCH_MATMUL", "float32, rank 5", lambda: batch_matmul("float32", rank=5)),
          ("BATCH_MATMUL", "float32, rank 6", lambda: batch_matmul("float32", rank=6)),
          ("BATCH_MATMUL", "int8, rank 4", lambda: batch_matmul("int8", rank=4)),
          ("MAX_POOL_2D", "int8, output scale differs", lambda: pool("MAX_POOL_2D", "int8", oq=(0.1, 0))),
          ("AVERAGE_POOL_2D", "int8, output zero point differs", lambda: pool("AVERAGE_POOL_2D", "int8", oq=(0.05, 3))),
          ("CONV_2D", "float32, fused TANH", lambda: conv("float32", opts_act=4)),
          ("CONV_2D", "int8, fused RELU6", lambda: conv("int8", opts_act=3))]
    return v


def cases():
    """Every case, built; unbuildable ones (no constant of that type) are left out."""
    out = []
    for opcode, label, thunk in list(_probe_cases()) + _variant_cases():
        try:
            data = thunk()
        except (ValueError, TypeError, KeyError):
            continue
        out.append(Case(opcode, label, data))
    return out
