"""One small model per kernel the ``tflite_micro`` Python package registers
(python/tflite_micro/python_ops_resolver.cc), float and int8 where the kernel has both.

Each model is the op alone between its graph input(s) and output(s), with the shapes and
options of the kernel's own test (tensorflow/lite/micro/kernels/<op>_test.cc): its
allocation report isolates that kernel's Init/Prepare memory. Names: ``op_<opcode>_<dtype>``
(lower case), plus a suffix for a variant (``op_conv_2d_int8_pc`` ...).
"""

from __future__ import annotations

import numpy as np
from tflite_builder import TfliteModel, schema

Q = {"int8": (0.05, 0), "int16": (0.001, 0), "uint8": (0.05, 128)}


def _opts(name: str, **fields):
    o = getattr(schema(), name + "T")()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


def _t(g, shape, dtype, scale=None, zp=None, **kw):
    """An activation tensor, quantized with a default scale when ``dtype`` is int8/16/uint8."""
    if dtype in Q and scale is None:
        scale, zp = Q[dtype]
    return g.tensor(shape, dtype, scale=scale, zero_point=zp, **kw)


def _one(opcode, in_specs, out_specs, opts=None, consts=(), *, custom_options=None, order=None):
    """A model with one op. ``in_specs``/``out_specs``: (shape, dtype[, scale, zp]) graph
    tensors; ``consts``: (position, array, dtype[, kw]) constant inputs inserted at position."""
    def make():
        m = TfliteModel()
        g = m.main
        ins = [_t(g, *spec) for spec in in_specs]
        outs = [_t(g, *spec) for spec in out_specs]
        op_ins = list(ins)
        for pos, arr, dt, *kw in consts:
            tid = -1 if arr is None else g.const(arr, dt, **(kw[0] if kw else {}))
            op_ins.insert(pos, tid)
        g.op(opcode, op_ins, outs, opts() if callable(opts) else opts, custom_options=custom_options)
        g.inputs, g.outputs = ins, outs
        return m
    return make


S4 = (1, 8, 8, 4)


def _unary(opcode, dtypes=("float32",), opts=None, out_dtype=None, shape=S4, out_q=None):
    return {f"op_{opcode.lower()}_{_dn(dt)}": _one(opcode, [(shape, dt)],
                                                    [(shape, out_dtype or dt, *(out_q or ()))], opts)
            for dt in dtypes}


def _binary(opcode, dtypes=("float32",), opts=None, out_dtype=None, shape=S4, shape2=None):
    return {f"op_{opcode.lower()}_{_dn(dt)}": _one(opcode, [(shape, dt), (shape2 or shape, dt)],
                                                    [(shape, out_dtype or dt)], opts)
            for dt in dtypes}


def _dn(dt: str) -> str:
    return {"float32": "fp32"}.get(dt, dt)


def _conv_models():
    rng = np.random.default_rng(0)
    out = {}
    for dt in ("float32", "int8", "int16"):
        pc = dt != "float32"
        wdt = "int8" if pc else "float32"
        bdt = {"float32": "float32", "int8": "int32", "int16": "int64"}[dt]
        wq = {"scale": [0.01] * 8, "axis": 0} if pc else {}
        bq = {"scale": [0.0005] * 8, "axis": 0} if pc else {}
        w = rng.integers(-127, 128, (8, 3, 3, 4)) if pc else rng.standard_normal((8, 3, 3, 4))
        out[f"op_conv_2d_{_dn(dt)}"] = _one(
            "CONV_2D", [((1, 8, 8, 4), dt)], [((1, 8, 8, 8), dt)],
            lambda: _opts("Conv2DOptions", padding=0, strideW=1, strideH=1, dilationWFactor=1, dilationHFactor=1),
            [(1, w, wdt, wq), (2, np.zeros(8), bdt, bq)])
        wd = rng.integers(-127, 128, (1, 3, 3, 8)) if pc else rng.standard_normal((1, 3, 3, 8))
        wdq = {"scale": [0.01] * 8, "axis": 3} if pc else {}
        out[f"op_depthwise_conv_2d_{_dn(dt)}"] = _one(
            "DEPTHWISE_CONV_2D", [((1, 8, 8, 4), dt)], [((1, 8, 8, 8), dt)],
            lambda: _opts("DepthwiseConv2DOptions", padding=0, strideW=1, strideH=1, depthMultiplier=2,
                          dilationWFactor=1, dilationHFactor=1),
            [(1, wd, wdt, wdq), (2, np.zeros(8), bdt, bq)])
        wt = rng.integers(-127, 128, (8, 3, 3, 4)) if pc else rng.standard_normal((8, 3, 3, 4))
        out[f"op_transpose_conv_{_dn(dt)}"] = _one(
            "TRANSPOSE_CONV", [((1, 4, 4, 4), dt)], [((1, 8, 8, 8), dt)],
            lambda: _opts("TransposeConvOptions", padding=0, strideW=2, strideH=2),
            [(0, np.array([1, 8, 8, 8]), "int32"), (1, wt, wdt, wq), (3, np.zeros(8), bdt, bq)])
        wf = rng.integers(-127, 128, (10, 32)) if pc else rng.standard_normal((10, 32))
        fq = {"scale": [0.01] * 10, "axis": 0} if pc else {}
        fbq = {"scale": [0.0005] * 10, "axis": 0} if pc else {}
        out[f"op_fully_connected_{_dn(dt)}"] = _one(
            "FULLY_CONNECTED", [((2, 32), dt)], [((2, 10), dt)], lambda: _opts("FullyConnectedOptions"),
            [(1, wf, wdt, fq), (2, np.zeros(10), bdt, fbq)])
    # per-tensor int8 FULLY_CONNECTED (the common converter output) and int4 weights
    out["op_fully_connected_int8_pt"] = _one(
        "FULLY_CONNECTED", [((2, 32), "int8")], [((2, 10), "int8")], lambda: _opts("FullyConnectedOptions"),
        [(1, np.ones((10, 32)), "int8", {"scale": 0.01}), (2, np.zeros(10), "int32", {"scale": 0.0005})])
    return out


def _pool_models():
    out = {}
    for op in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
        for dt in (("float32", "int8", "int16") if op != "L2_POOL_2D" else ("float32",)):
            out[f"op_{op.lower()}_{_dn(dt)}"] = _one(
                op, [(S4, dt)], [((1, 4, 4, 4), dt)],
                lambda: _opts("Pool2DOptions", padding=1, strideW=2, strideH=2, filterWidth=2, filterHeight=2))
    return out


def _reduce_models():
    out = {}
    for op in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"):
        for dt in ("float32", "int8"):
            out[f"op_{op.lower()}_{_dn(dt)}"] = _one(
                op, [(S4, dt)], [((1, 1, 1, 4), dt)], lambda: _opts("ReducerOptions", keepDims=True),
                [(1, np.array([1, 2]), "int32")])
    out["op_reduce_all_bool"] = _one("REDUCE_ALL", [(S4, "bool")], [((1, 4), "bool")],
                                     lambda: _opts("ReducerOptions", keepDims=False), [(1, np.array([1, 2]), "int32")])
    return out


def _shape_models():
    i32 = "int32"
    out = {}
    for dt in ("float32", "int8"):
        d = _dn(dt)
        out[f"op_reshape_{d}"] = _one("RESHAPE", [(S4, dt)], [((1, 256), dt)], None, [(1, np.array([1, 256]), i32)])
        out[f"op_squeeze_{d}"] = _one("SQUEEZE", [((1, 8, 1, 4), dt)], [((1, 8, 4), dt)],
                                      lambda: _opts("SqueezeOptions", squeezeDims=[2]))
        out[f"op_expand_dims_{d}"] = _one("EXPAND_DIMS", [((8, 4), dt)], [((8, 1, 4), dt)], None,
                                          [(1, np.array([1]), i32)])
        out[f"op_transpose_{d}"] = _one("TRANSPOSE", [(S4, dt)], [((1, 4, 8, 8), dt)], None,
                                        [(1, np.array([0, 3, 1, 2]), i32)])
        out[f"op_pad_{d}"] = _one("PAD", [(S4, dt)], [((1, 10, 10, 4), dt)], None,
                                  [(1, np.array([[0, 0], [1, 1], [1, 1], [0, 0]]), i32)])
        out[f"op_padv2_{d}"] = _one("PADV2", [(S4, dt)], [((1, 10, 10, 4), dt)], None,
                                    [(1, np.array([[0, 0], [1, 1], [1, 1], [0, 0]]), i32),
                                     (2, np.zeros(1 if dt == "float32" else 1), dt,
                                      {"scale": 0.05, "zero_point": 0} if dt != "float32" else {})])
        out[f"op_mirror_pad_{d}"] = _one("MIRROR_PAD", [(S4, dt)], [((1, 10, 10, 4), dt)],
                                         lambda: _opts("MirrorPadOptions", mode=0),
                                         [(1, np.array([[0, 0], [1, 1], [1, 1], [0, 0]]), i32)])
        out[f"op_concatenation_{d}"] = _one("CONCATENATION", [(S4, dt), (S4, dt), (S4, dt)], [((1, 8, 8, 12), dt)],
                                            lambda: _opts("ConcatenationOptions", axis=3))
        out[f"op_pack_{d}"] = _one("PACK", [((8, 4), dt), ((8, 4), dt)], [((2, 8, 4), dt)],
                                   lambda: _opts("PackOptions", valuesCount=2, axis=0))
        out[f"op_unpack_{d}"] = _one("UNPACK", [((2, 8, 4), dt)], [((8, 4), dt), ((8, 4), dt)],
                                     lambda: _opts("UnpackOptions", num=2, axis=0))
        out[f"op_split_{d}"] = _one("SPLIT", [(S4, dt)], [((1, 8, 8, 2), dt), ((1, 8, 8, 2), dt)],
                                    lambda: _opts("SplitOptions", numSplits=2), [(0, np.array(3), i32)])
        out[f"op_split_v_{d}"] = _one("SPLIT_V", [(S4, dt)], [((1, 8, 8, 1), dt), ((1, 8, 8, 3), dt)],
                                      lambda: _opts("SplitVOptions", numSplits=2),
                                      [(1, np.array([1, 3]), i32), (2, np.array(3), i32)])
        out[f"op_slice_{d}"] = _one("SLICE", [(S4, dt)], [((1, 4, 4, 4), dt)], None,
                                    [(1, np.array([0, 2, 2, 0]), i32), (2, np.array([1, 4, 4, 4]), i32)])
        out[f"op_strided_slice_{d}"] = _one("STRIDED_SLICE", [(S4, dt)], [((1, 4, 8, 4), dt)],
                                            lambda: _opts("StridedSliceOptions"),
                                            [(1, np.array([0, 0, 0, 0]), i32), (2, np.array([1, 8, 8, 4]), i32),
                                             (3, np.array([1, 2, 1, 1]), i32)])
        out[f"op_gather_{d}"] = _one("GATHER", [((10, 4), dt)], [((3, 4), dt)], lambda: _opts("GatherOptions", axis=0),
                                     [(1, np.array([1, 5, 7]), i32)])
        out[f"op_gather_nd_{d}"] = _one("GATHER_ND", [((10, 4), dt)], [((3, 4), dt)], None,
                                        [(1, np.array([[1], [5], [7]]), i32)])
        out[f"op_reverse_v2_{d}"] = _one("REVERSE_V2", [(S4, dt)], [(S4, dt)], None, [(1, np.array([1]), i32)])
        out[f"op_depth_to_space_{d}"] = _one("DEPTH_TO_SPACE", [(S4, dt)], [((1, 16, 16, 1), dt)],
                                             lambda: _opts("DepthToSpaceOptions", blockSize=2))
        out[f"op_space_to_depth_{d}"] = _one("SPACE_TO_DEPTH", [(S4, dt)], [((1, 4, 4, 16), dt)],
                                             lambda: _opts("SpaceToDepthOptions", blockSize=2))
        out[f"op_batch_to_space_nd_{d}"] = _one("BATCH_TO_SPACE_ND", [((4, 4, 4, 4), dt)], [((1, 8, 8, 4), dt)], None,
                                                [(1, np.array([2, 2]), i32), (2, np.zeros((2, 2)), i32)])
        out[f"op_space_to_batch_nd_{d}"] = _one("SPACE_TO_BATCH_ND", [(S4, dt)], [((4, 4, 4, 4), dt)], None,
                                                [(1, np.array([2, 2]), i32), (2, np.zeros((2, 2)), i32)])
        out[f"op_resize_bilinear_{d}"] = _one("RESIZE_BILINEAR", [(S4, dt)], [((1, 16, 16, 4), dt)],
                                              lambda: _opts("ResizeBilinearOptions"), [(1, np.array([16, 16]), i32)])
        out[f"op_resize_nearest_neighbor_{d}"] = _one(
            "RESIZE_NEAREST_NEIGHBOR", [(S4, dt)], [((1, 16, 16, 4), dt)],
            lambda: _opts("ResizeNearestNeighborOptions"), [(1, np.array([16, 16]), i32)])
        out[f"op_broadcast_to_{d}"] = _one("BROADCAST_TO", [((1, 1, 8, 4), dt)], [(S4, dt)], None,
                                           [(1, np.array([1, 8, 8, 4]), i32)])
        out[f"op_dynamic_update_slice_{d}"] = _one("DYNAMIC_UPDATE_SLICE", [(S4, dt), ((1, 2, 2, 4), dt)], [(S4, dt)],
                                                   None, [(2, np.array([0, 1, 1, 0]), i32)])
        out[f"op_embedding_lookup_{d}"] = _one("EMBEDDING_LOOKUP", [((3,), i32)], [((3, 4), "float32")], None,
                                               [(1, np.arange(40).reshape(10, 4), dt,
                                                 {"scale": 0.05, "zero_point": 0} if dt == "int8" else {})])
        out[f"op_cumsum_{d}"] = _one("CUMSUM", [(S4, dt)], [(S4, dt)], lambda: _opts("CumsumOptions"),
                                     [(1, np.array(1), i32)])
        out[f"op_arg_max_{d}"] = _one("ARG_MAX", [(S4, dt)], [((1, 8, 8), i32)],
                                      lambda: _opts("ArgMaxOptions", outputType=2), [(1, np.array([3]), i32)])
        out[f"op_arg_min_{d}"] = _one("ARG_MIN", [(S4, dt)], [((1, 8, 8), i32)],
                                      lambda: _opts("ArgMinOptions", outputType=2), [(1, np.array([3]), i32)])
        out[f"op_zeros_like_{d}"] = _one("ZEROS_LIKE", [(S4, dt)], [(S4, dt)])
        out[f"op_fill_{d}"] = _one("FILL", [], [(S4, dt)], None,
                                   [(0, np.array([1, 8, 8, 4]), i32),
                                    (1, np.array(1), dt, {"scale": 0.05, "zero_point": 0} if dt == "int8" else {})])
    out["op_shape_int32"] = _one("SHAPE", [(S4, "float32")], [((4,), i32)], lambda: _opts("ShapeOptions", outType=2))
    out["op_broadcast_args_int32"] = _one("BROADCAST_ARGS", [((4,), i32), ((4,), i32)], [((4,), i32)])
    out["op_select_v2_fp32"] = _one("SELECT_V2", [(S4, "bool"), (S4, "float32"), (S4, "float32")], [(S4, "float32")])
    out["op_select_v2_int8"] = _one("SELECT_V2", [(S4, "bool"), (S4, "int8"), (S4, "int8")], [(S4, "int8")])
    return out


def _elementwise_models():
    out = {}
    f, i8, i16 = "float32", "int8", "int16"
    for op in ("ABS", "RSQRT"):
        out.update(_unary(op, (f, i8, i16)))
    for op in ("CEIL", "COS", "EXP", "FLOOR", "LOG", "NEG", "ROUND", "SIN", "SQRT", "SQUARE"):
        out.update(_unary(op, (f,)))
    out.update(_unary("LOGICAL_NOT", ("bool",)))
    out.update(_unary("ELU", (f, i8)))
    out.update(_unary("HARD_SWISH", (f, i8)))
    out.update(_unary("LOGISTIC", (f,)))
    out.update(_unary("LOGISTIC", (i8,), out_q=(1 / 256, -128)))
    out.update(_unary("TANH", (f,)))
    out.update(_unary("TANH", (i8,), out_q=(1 / 128, 0)))
    out.update(_unary("RELU", (f, i8)))
    out.update(_unary("RELU6", (f, i8)))
    out.update(_unary("RELU_N1_TO_1", (f, i8)))
    out.update(_unary("LEAKY_RELU", (f, i8), opts=lambda: _opts("LeakyReluOptions", alpha=0.1)))
    out.update(_unary("SOFTMAX", (f,), opts=lambda: _opts("SoftmaxOptions", beta=1.0), shape=(1, 10)))
    out.update(_unary("SOFTMAX", (i8,), opts=lambda: _opts("SoftmaxOptions", beta=1.0), shape=(1, 10),
                      out_q=(1 / 256, -128)))
    out.update(_unary("LOG_SOFTMAX", (f,), opts=lambda: _opts("LogSoftmaxOptions"), shape=(1, 10)))
    out.update(_unary("LOG_SOFTMAX", (i8,), opts=lambda: _opts("LogSoftmaxOptions"), shape=(1, 10),
                      out_q=(16 / 256, 127)))
    out.update(_unary("L2_NORMALIZATION", (f,), opts=lambda: _opts("L2NormOptions")))
    out.update(_unary("L2_NORMALIZATION", (i8,), opts=lambda: _opts("L2NormOptions"), out_q=(1 / 128, 0)))
    out["op_quantize_int8"] = _one("QUANTIZE", [(S4, f)], [(S4, i8)])
    out["op_quantize_int8_int16"] = _one("QUANTIZE", [(S4, i8)], [(S4, i16)])
    out["op_dequantize_int8"] = _one("DEQUANTIZE", [(S4, i8)], [(S4, f)])
    out["op_cast_fp32"] = _one("CAST", [(S4, f)], [(S4, "int32")])
    out["op_cast_int8"] = _one("CAST", [(S4, i8)], [(S4, f)])
    out["op_prelu_fp32"] = _one("PRELU", [(S4, f)], [(S4, f)], None, [(1, np.full((1, 1, 4), 0.1), f)])
    out["op_prelu_int8"] = _one("PRELU", [(S4, i8)], [(S4, i8)], None,
                                [(1, np.full((1, 1, 4), 10), i8, {"scale": 0.01, "zero_point": 0})])
    # binary
    for op in ("ADD", "SUB", "MUL"):
        def opts(op=op):
            return _opts({"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions"}[op])

        out.update(_binary(op, (f, i8, i16), opts=opts))
        out[f"op_{op.lower()}_int8_bcast"] = _one(op, [(S4, i8), ((1, 1, 1, 4), i8)], [(S4, i8)], opts)
        out[f"op_{op.lower()}_int32"] = _one(op, [(S4, "int32"), (S4, "int32")], [(S4, "int32")], opts)
    out.update(_binary("DIV", (f, i8), opts=lambda: _opts("DivOptions")))
    for op in ("MAXIMUM", "MINIMUM"):
        out.update(_binary(op, (f, i8)))
    out.update(_binary("SQUARED_DIFFERENCE", (f, i8)))
    out.update(_binary("FLOOR_DIV", (f,)))
    out.update(_binary("FLOOR_MOD", (f,)))
    for op in ("EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL"):
        out.update(_binary(op, (f, i8), out_dtype="bool"))
    out.update(_binary("LOGICAL_AND", ("bool",)))
    out.update(_binary("LOGICAL_OR", ("bool",)))
    for dt in (f, i8):
        out[f"op_add_n_{_dn(dt)}"] = _one("ADD_N", [(S4, dt), (S4, dt), (S4, dt)], [(S4, dt)])
    out["op_batch_matmul_fp32"] = _one("BATCH_MATMUL", [((1, 4, 8), f), ((1, 8, 6), f)], [((1, 4, 6), f)],
                                       lambda: _opts("BatchMatMulOptions"))
    out["op_batch_matmul_int8"] = _one("BATCH_MATMUL", [((1, 4, 8), i8), ((1, 8, 6), i8)], [((1, 4, 6), i8)],
                                       lambda: _opts("BatchMatMulOptions"))
    out["op_batch_matmul_int8_const"] = _one(
        "BATCH_MATMUL", [((1, 4, 8), i8)], [((1, 4, 6), i8)], lambda: _opts("BatchMatMulOptions"),
        [(1, np.ones((1, 8, 6)), i8, {"scale": 0.05, "zero_point": 0})])
    return out


SINGLE_OP_MODELS: dict = {}
for _f in (_conv_models, _pool_models, _reduce_models, _shape_models, _elementwise_models):
    SINGLE_OP_MODELS.update(_f())


# ---- custom and signal ops (flexbuffer options, as the TF ops of signal/tensorflow_core/ops) --------

def _custom(name, in_specs, out_specs, options: dict, consts=()):
    from tflite_builder import flexbuffer_map

    return _one(f"CUSTOM:{name}", in_specs, out_specs, None, consts, custom_options=flexbuffer_map(options))


def _signal_models():
    i16, u32, u64, i32, b = "int16", "uint32", "uint64", "int32", "bool"
    rng = np.random.default_rng(3)
    n_fft, bins, ch = 64, 33, 8
    out = {
        "op_signal_window": _custom("SignalWindow", [((n_fft,), i16)], [((n_fft,), i16)], {"shift": 12},
                                    [(1, rng.integers(0, 4096, n_fft), i16)]),
        "op_signal_fft_auto_scale": _one("CUSTOM:SignalFftAutoScale", [((n_fft,), i16)], [((n_fft,), i16), ((), i32)]),
        "op_signal_rfft_int16": _custom("SignalRfft", [((n_fft,), i16)], [((2 * bins,), i16)],
                                        {"T": 7, "fft_length": n_fft}),
        "op_signal_rfft_int32": _custom("SignalRfft", [((n_fft,), i32)], [((2 * bins,), i32)],
                                        {"T": 2, "fft_length": n_fft}),
        "op_signal_rfft_fp32": _custom("SignalRfft", [((n_fft,), "float32")], [((2 * bins,), "float32")],
                                       {"T": 0, "fft_length": n_fft}),
        "op_signal_irfft_int16": _custom("SignalIrfft", [((2 * bins,), i16)], [((n_fft,), i16)],
                                         {"T": 7, "fft_length": n_fft}),
        "op_signal_irfft_fp32": _custom("SignalIrfft", [((2 * bins,), "float32")], [((n_fft,), "float32")],
                                        {"T": 0, "fft_length": n_fft}),
        "op_signal_energy": _custom("SignalEnergy", [((2 * bins,), i16)], [((bins,), u32)],
                                    {"end_index": bins - 1, "start_index": 1}),
        "op_signal_filter_bank": _custom(
            "SignalFilterBank", [((bins,), u32)], [((ch + 1,), u64)], {"num_channels": ch},
            [(1, rng.integers(0, 4096, bins), i16), (2, rng.integers(0, 4096, bins), i16),
             (3, np.arange(1, ch + 2) * 3, i16), (4, np.arange(ch + 1) * 3, i16), (5, np.full(ch + 1, 3), i16)]),
        "op_signal_filter_bank_square_root": _one("CUSTOM:SignalFilterBankSquareRoot", [((ch + 1,), u64)],
                                                  [((ch + 1,), u32)], None, [(1, np.array(2), i32)]),
        "op_signal_filter_bank_spectral_subtraction": _custom(
            "SignalFilterBankSpectralSubtraction", [((ch,), u32)], [((ch,), u32), ((ch,), u32)],
            {"alternate_one_minus_smoothing": 15729, "alternate_smoothing": 655, "clamping": False,
             "min_signal_remaining": 3276, "num_channels": ch, "one_minus_smoothing": 15729, "smoothing": 655,
             "smoothing_bits": 10, "spectral_subtraction_bits": 14}),
        "op_signal_pcan": _custom("SignalPCAN", [((ch,), u32), ((ch,), u32)], [((ch,), u32)], {"snr_shift": 6},
                                  [(2, rng.integers(0, 4096, 125), i16)]),
        "op_signal_filter_bank_log": _custom("SignalFilterBankLog", [((ch,), u32)], [((ch,), i16)],
                                             {"input_correction_bits": 3, "output_scale": 1600}),
        "op_signal_framer": _custom("SignalFramer", [((2, 160), i16)], [((2, 1, 400), i16), ((), b)],
                                    {"frame_size": 400, "frame_step": 160, "prefill": False}),
        "op_signal_stacker": _custom("SignalStacker", [((ch,), i16)], [((ch * 4,), i16), ((), b)],
                                     {"num_channels": ch, "stacker_left_context": 2, "stacker_right_context": 1,
                                      "stacker_step": 1}),
        "op_signal_delay": _custom("SignalDelay", [((3, 16), i16)], [((3, 16), i16)], {"delay_length": 5}),
        "op_signal_overlap_add_int16": _custom("SignalOverlapAdd", [((2, 3, 8), i16)], [((2, 12), i16)],
                                               {"T": 7, "frame_step": 4}),
        "op_signal_overlap_add_fp32": _custom("SignalOverlapAdd", [((2, 3, 8), "float32")], [((2, 12), "float32")],
                                              {"T": 0, "frame_step": 4}),
    }
    return out


def _other_custom_models():
    rng = np.random.default_rng(4)
    return {
        "op_circular_buffer_int8": _custom("CIRCULAR_BUFFER", [((1, 1, 1, 16), "int8")], [((1, 3, 1, 16), "int8")],
                                           {"cycles_max": 1}),
        "op_detection_postprocess": _custom(
            "TFLite_Detection_PostProcess", [((1, 20, 4), "float32"), ((1, 20, 3), "float32")],
            [((1, 5, 4), "float32"), ((1, 5), "float32"), ((1, 5), "float32"), ((1,), "float32")],
            {"max_detections": 5, "max_classes_per_detection": 1, "detections_per_class": 100,
             "use_regular_nms": False, "nms_score_threshold": 0.1, "nms_iou_threshold": 0.5, "num_classes": 2,
             "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0},
            [(2, rng.random((20, 4)), "float32")]),
    }


def _extra_models():
    rng = np.random.default_rng(5)
    i8 = "int8"
    w4 = rng.integers(-7, 8, (10, 32))
    packed = ((w4[:, 0::2] & 0xF) | ((w4[:, 1::2] & 0xF) << 4)).astype(np.uint8)  # two int4 per byte
    c4 = rng.integers(-7, 8, (8, 3, 3, 4)).reshape(8, -1)
    cpacked = ((c4[:, 0::2] & 0xF) | ((c4[:, 1::2] & 0xF) << 4)).astype(np.uint8)

    def int4(g_shape, data, n):
        return lambda g: g.tensor(g_shape, "int4", scale=[0.01] * n, zero_point=[0] * n, axis=0, data=data.tobytes())

    def fc4():
        from tflite_builder import TfliteModel
        m = TfliteModel()
        g = m.main
        x, y = _t(g, (2, 32), i8), _t(g, (2, 10), i8)
        w = g.tensor((10, 32), "int4", scale=0.01, zero_point=0, data=packed.tobytes())  # per-tensor: the
        b = g.const(np.zeros(10), "int32", scale=0.0005)  # int8 kernel takes int4 weights only so
        g.op("FULLY_CONNECTED", [x, w, b], [y], _opts("FullyConnectedOptions"))
        g.inputs, g.outputs = [x], [y]
        return m

    def conv4():
        from tflite_builder import TfliteModel
        m = TfliteModel()
        g = m.main
        x, y = _t(g, (1, 8, 8, 4), i8), _t(g, (1, 8, 8, 8), i8)
        w = int4((8, 3, 3, 4), cpacked, 8)(g)
        b = g.const(np.zeros(8), "int32", scale=[0.0005] * 8, axis=0)
        g.op("CONV_2D", [x, w, b], [y], _opts("Conv2DOptions", padding=0, strideW=1, strideH=1, dilationWFactor=1,
                                                dilationHFactor=1))
        g.inputs, g.outputs = [x], [y]
        return m

    return {
        "op_fully_connected_int8_int4w": fc4,
        "op_conv_2d_int8_int4w": conv4,
        "op_softmax_int16": _one("SOFTMAX", [((1, 10), "int16", 0.001, 0)], [((1, 10), "int16", 1 / 32768, 0)],
                                 lambda: _opts("SoftmaxOptions", beta=1.0)),
        "op_transpose_conv_int16_b16": _one(
            "TRANSPOSE_CONV", [((1, 4, 4, 4), "int16")], [((1, 8, 8, 8), "int16")],
            lambda: _opts("TransposeConvOptions", padding=0, strideW=2, strideH=2),
            [(0, np.array([1, 8, 8, 8]), "int32"),
             (1, rng.integers(-127, 128, (8, 3, 3, 4)), i8, {"scale": [0.01] * 8, "axis": 0}),
             (3, np.zeros(8), "int16", {"scale": [0.0005] * 8, "axis": 0})]),
        "op_batch_matmul_fp32_adj": _one("BATCH_MATMUL", [((1, 8, 4), "float32"), ((1, 6, 8), "float32")],
                                         [((1, 4, 6), "float32")],
                                         lambda: _opts("BatchMatMulOptions", adjX=True, adjY=True)),
        "op_reshape_stretch_fp32": _one("RESHAPE", [(S4, "float32")], [((4, 64), "float32")],
                                        lambda: _opts("ReshapeOptions", newShape=[4, -1]),
                                        [(1, np.array([4, -1]), "int32")]),
        # registered kernels the arena model refuses by name
        "op_ethos_u": _custom("ethos-u", [((1, 16), i8)], [((1, 16), i8)], {"unused": 0}),
        "op_tflm_decode": _custom("TFLM_DECODE", [((16,), i8)], [((16,), i8)], {"unused": 0}),
    }


SINGLE_OP_MODELS.update(_extra_models())
SINGLE_OP_MODELS.update(_signal_models())
SINGLE_OP_MODELS.update(_other_custom_models())
