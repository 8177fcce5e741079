"""Hand-built .tflite models for the TFLite-Micro arena tests: recurrent and stateful ops,
control flow, signal ops, every tensor type and one model per registered kernel.

No converter on this machine emits these (no TensorFlow), so they are written with the
flatbuffer schema (``tests/tflite_builder.py``), with the shapes, types and options of
TFLite-Micro's own kernel tests (``tensorflow/lite/micro/kernels/*_test.cc``). Weights are
seeded random numbers: these models are for allocation, not accuracy.

``build(name, cache_dir)`` writes ``<name>.s<SYNTH_VERSION>.tflite`` once and returns its
path (``EDGEKIT_TFLM_CACHE`` keeps the files across sessions, as in ``tflm_models``).
``MODELS`` maps every name to its generator; ``STATEFUL`` and ``SINGLE_OPS`` group them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tflite_builder import TfliteModel, schema

SYNTH_VERSION = 1  # bump when a generator changes


def _rng(seed: int = 0):
    return np.random.default_rng(seed)


def _s():
    return schema()


# ---- recurrent and stateful models ---------------------------------------------------------

def _lstm_into(m: TfliteModel, g, x: int, *, dtype: str, batch: int, time: int, n_in: int, n_state: int,
               seed: int = 0, time_major: bool = False, peephole: bool = False) -> int:
    """Append a UNIDIRECTIONAL_SEQUENCE_LSTM (no CIFG, peephole, projection or layer norm, as
    in unidirectional_sequence_lstm_test.cc) reading ``x`` [batch, time, n_in]; returns its
    output tensor [batch, time, n_state] ([time, batch, n_state] if time_major). int8: 8x8->16
    (int8 weights, int32 bias, int8 hidden state, int16 cell state with a power-of-two scale);
    int16: 16x8->16 (int64 bias, int16 hidden state)."""
    s = _s()
    rng = _rng(seed)
    q = dtype in ("int8", "int16")
    act = "int8" if dtype == "int8" else ("int16" if dtype == "int16" else "float32")
    bias_dt = "int64" if dtype == "int16" else "int32"

    def w(rows, cols):
        if q:
            return g.const(rng.integers(-127, 128, (rows, cols)), "int8", scale=0.01)
        return g.const(rng.standard_normal((rows, cols)) * 0.1, "float32")

    def b():
        if q:
            return g.const(rng.integers(-100, 100, (n_state,)), bias_dt, scale=0.001)
        return g.const(np.zeros(n_state), "float32")

    ins = [x] + [w(n_state, n_in) for _ in range(4)] + [w(n_state, n_state) for _ in range(4)]
    peep = [g.const(np.full(n_state, 0.1), "float32") for _ in range(3)] if peephole else [-1, -1, -1]
    ins += peep + [b() for _ in range(4)] + [-1, -1]
    if q:
        h = g.tensor((batch, n_state), act, scale=1 / 128, zero_point=0, variable=True, name="hidden_state")
        c = g.tensor((batch, n_state), "int16", scale=2.0 ** -11, zero_point=0, variable=True, name="cell_state")
        out = g.tensor((time, batch, n_state) if time_major else (batch, time, n_state), act, scale=1 / 128,
                       zero_point=0)
    else:
        h = g.tensor((batch, n_state), "float32", variable=True, name="hidden_state")
        c = g.tensor((batch, n_state), "float32", variable=True, name="cell_state")
        out = g.tensor((time, batch, n_state) if time_major else (batch, time, n_state), "float32")
    ins += [h, c, -1, -1, -1, -1]
    opts = s.UnidirectionalSequenceLSTMOptionsT()
    opts.fusedActivationFunction = s.ActivationFunctionType.TANH
    opts.cellClip, opts.projClip, opts.timeMajor = 0.0, 0.0, time_major
    g.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [out], opts)
    return out


def _act(g, shape, dtype, scale=0.05, zp=0):
    return g.tensor(shape, dtype, scale=scale, zero_point=zp) if dtype in ("int8", "int16") else g.tensor(shape, dtype)


def lstm(dtype: str, batch: int = 1, time: int = 8, n_in: int = 16, n_state: int = 32, time_major: bool = False,
         peephole: bool = False):
    """One LSTM layer over a sequence (a keyword-spotting shape)."""
    def make():
        m = TfliteModel()
        g = m.main
        act = dtype if dtype in ("int8", "int16") else "float32"
        x = _act(g, (time, batch, n_in) if time_major else (batch, time, n_in), act, 0.05)
        y = _lstm_into(m, g, x, dtype=dtype, batch=batch, time=time, n_in=n_in, n_state=n_state,
                       time_major=time_major, peephole=peephole)
        g.inputs, g.outputs = [x], [y]
        return m
    return make


def lstm_stack(dtype: str):
    """Two stacked LSTMs and a dense head: the state of both lives across invocations."""
    def make():
        s = _s()
        m = TfliteModel()
        g = m.main
        act = "int8" if dtype == "int8" else "float32"
        x = _act(g, (1, 10, 12), act, 0.05)
        y1 = _lstm_into(m, g, x, dtype=dtype, batch=1, time=10, n_in=12, n_state=24, seed=1)
        y2 = _lstm_into(m, g, y1, dtype=dtype, batch=1, time=10, n_in=24, n_state=20, seed=2)
        flat = _act(g, (1, 200), act, 1 / 128)
        g.op("RESHAPE", [y2, g.const(np.array([1, 200]), "int32")], [flat], s.ReshapeOptionsT())
        rng = _rng(3)
        if dtype == "int8":
            wt = g.const(rng.integers(-127, 128, (6, 200)), "int8", scale=0.01)
            bias = g.const(np.zeros(6), "int32", scale=1 / 128 * 0.01)
        else:
            wt = g.const(rng.standard_normal((6, 200)), "float32")
            bias = g.const(np.zeros(6), "float32")
        out = _act(g, (1, 6), act, 0.1)
        g.op("FULLY_CONNECTED", [flat, wt, bias], [out], s.FullyConnectedOptionsT())
        g.inputs, g.outputs = [x], [out]
        return m
    return make


def svdf(dtype: str, batch: int = 1, n_in: int = 40, units: int = 16, rank: int = 2, memory: int = 10,
         state_dtype: str = "int16"):
    """SVDF as in svdf_test.cc (the keyword-spotting 'svdf' layer); int8 with int16 or int8 state."""
    def make():
        s = _s()
        rng = _rng(4)
        m = TfliteModel()
        g = m.main
        filters = units * rank
        if dtype == "int8":
            x = g.tensor((batch, n_in), "int8", scale=0.05, zero_point=0)
            wf = g.const(rng.integers(-127, 128, (filters, n_in)), "int8", scale=0.01)
            wt_scale, st_scale = (0.0001, 0.0005) if state_dtype == "int16" else (0.01, 0.05)
            lim = 1000 if state_dtype == "int16" else 127
            wt = g.const(rng.integers(-lim, lim, (filters, memory)), state_dtype, scale=wt_scale)
            bias = g.const(rng.integers(-100, 100, (units,)), "int32", scale=wt_scale * st_scale)
            st = g.tensor((batch, memory * filters), state_dtype, scale=st_scale,
                          zero_point=0, variable=True, name="svdf_state")
            out = g.tensor((batch, units), "int8", scale=0.1, zero_point=0)
        else:
            x = g.tensor((batch, n_in), "float32")
            wf = g.const(rng.standard_normal((filters, n_in)) * 0.1, "float32")
            wt = g.const(rng.standard_normal((filters, memory)) * 0.1, "float32")
            bias = g.const(np.zeros(units), "float32")
            st = g.tensor((batch, memory * filters), "float32", variable=True, name="svdf_state")
            out = g.tensor((batch, units), "float32")
        opts = s.SVDFOptionsT()
        opts.rank = rank
        opts.fusedActivationFunction = s.ActivationFunctionType.RELU
        g.op("SVDF", [x, wf, wt, bias, st], [out], opts)
        g.inputs, g.outputs = [x], [out]
        return m
    return make


def gru_like(dtype: str, n_in: int = 16, n_state: int = 24):
    """One GRU step written with the ops a converter emits for a GRU cell: FULLY_CONNECTED
    gates, LOGISTIC, TANH, MUL, SUB, ADD, CONCATENATION and SPLIT, the state a variable
    tensor (read as an input of the first ops, written by an ASSIGN-free update: the state
    tensor is an op input and a graph output, as in a converted stateful GRU)."""
    def make():
        s = _s()
        rng = _rng(5)
        m = TfliteModel()
        g = m.main
        q = dtype == "int8"
        act = "int8" if q else "float32"

        def fc(x, n_out, cols, scale_out=0.05):
            if q:
                wt = g.const(rng.integers(-127, 128, (n_out, cols)), "int8", scale=[0.01] * n_out, axis=0)
                bias = g.const(np.zeros(n_out), "int32", scale=[0.0005] * n_out, axis=0)
            else:
                wt = g.const(rng.standard_normal((n_out, cols)) * 0.1, "float32")
                bias = g.const(np.zeros(n_out), "float32")
            y = _act(g, (1, n_out), act, scale_out)
            g.op("FULLY_CONNECTED", [x, wt, bias], [y], s.FullyConnectedOptionsT())
            return y

        def unary(opcode, x, scale=1 / 256, zp=-128, opts=None):
            y = _act(g, (1, n_state), act, scale, zp)
            g.op(opcode, [x], [y], opts)
            return y

        def binary(opcode, a, b_, opts):
            y = _act(g, (1, n_state), act, 0.05)  # the concatenation's scale: int8 CONCATENATION does not rescale
            g.op(opcode, [a, b_], [y], opts)
            return y

        x = _act(g, (1, n_in), act, 0.05)
        h = _act(g, (1, n_state), act, 0.05)
        xh = _act(g, (1, n_in + n_state), act, 0.05)
        c = s.ConcatenationOptionsT()
        c.axis = 1
        g.op("CONCATENATION", [x, h], [xh], c)
        zr = fc(xh, 2 * n_state, n_in + n_state)
        z_pre, r_pre = _act(g, (1, n_state), act, 0.05), _act(g, (1, n_state), act, 0.05)
        sp = s.SplitOptionsT()
        sp.numSplits = 2
        g.op("SPLIT", [g.const(np.array(1), "int32"), zr], [z_pre, r_pre], sp)
        z, r = unary("LOGISTIC", z_pre), unary("LOGISTIC", r_pre)
        rh = binary("MUL", r, h, s.MulOptionsT())
        xrh = _act(g, (1, n_in + n_state), act, 0.05)
        g.op("CONCATENATION", [x, rh], [xrh], c)
        n_pre = fc(xrh, n_state, n_in + n_state)
        n = unary("TANH", n_pre, 1 / 128, 0)
        hn = binary("SUB", h, n, s.SubOptionsT())
        zhn = binary("MUL", z, hn, s.MulOptionsT())
        h_new = binary("ADD", n, zhn, s.AddOptionsT())
        g.inputs, g.outputs = [x, h], [h_new]
        return m
    return make


def variables(dtype: str):
    """A model whose only state is variable tensors read by ADD (an accumulator, as TFLite
    writes a stateful RNN's state): variable tensors are allocated in the arena's tail."""
    def make():
        s = _s()
        m = TfliteModel()
        g = m.main
        act = "int8" if dtype == "int8" else "float32"
        x = _act(g, (1, 64), act, 0.05)
        v1 = g.tensor((1, 64), act, scale=0.05 if act == "int8" else None, variable=True, name="acc1")
        v2 = g.tensor((4, 33), act, scale=0.05 if act == "int8" else None, variable=True, name="acc2")
        y = _act(g, (1, 64), act, 0.1)
        g.op("ADD", [x, v1], [y], s.AddOptionsT())
        z = _act(g, (4, 33), act, 0.1)
        g.op("ADD", [v2, v2], [z], s.AddOptionsT())
        g.inputs, g.outputs = [x], [y, z]
        return m
    return make


# ---- control flow and resource variables -----------------------------------------------------

def while_loop():
    """WHILE (while_test.cc): i < 3 in the cond subgraph, (i + 1, x + x) in the body."""
    def make():
        s = _s()
        m = TfliteModel()
        g = m.main
        cond, body = m.subgraph("cond"), m.subgraph("body")
        i, x = g.tensor((), "int32"), g.tensor((1, 16), "float32")
        i2, y = g.tensor((), "int32"), g.tensor((1, 16), "float32")
        w = s.WhileOptionsT()
        w.condSubgraphIndex, w.bodySubgraphIndex = 1, 2
        g.op("WHILE", [i, x], [i2, y], w)
        g.inputs, g.outputs = [i, x], [i2, y]
        ci, cx, cb = cond.tensor((), "int32"), cond.tensor((1, 16), "float32"), cond.tensor((), "bool")
        cond.op("LESS", [ci, cond.const(np.array(3), "int32")], [cb])
        cond.inputs, cond.outputs = [ci, cx], [cb]
        bi, bx = body.tensor((), "int32"), body.tensor((1, 16), "float32")
        bi2, bx2 = body.tensor((), "int32"), body.tensor((1, 16), "float32")
        body.op("ADD", [bi, body.const(np.array(1), "int32")], [bi2], s.AddOptionsT())
        body.op("ADD", [bx, bx], [bx2], s.AddOptionsT())
        body.inputs, body.outputs = [bi, bx], [bi2, bx2]
        return m
    return make


def if_cond(dtype: str = "float32"):
    """IF (if_test.cc): then = x + y, else = x * y, each in its own subgraph."""
    def make():
        s = _s()
        m = TfliteModel()
        g = m.main
        then, other = m.subgraph("then"), m.subgraph("else")
        c = g.tensor((1,), "bool")
        a, b = _act(g, (1, 2, 8), dtype), _act(g, (1, 2, 8), dtype)
        y = _act(g, (1, 2, 8), dtype, 0.1)
        o = s.IfOptionsT()
        o.thenSubgraphIndex, o.elseSubgraphIndex = 1, 2
        g.op("IF", [c, a, b], [y], o)
        g.inputs, g.outputs = [c, a, b], [y]
        for sub, opcode, opts in ((then, "ADD", s.AddOptionsT()), (other, "MUL", s.MulOptionsT())):
            p, q, r = _act(sub, (1, 2, 8), dtype), _act(sub, (1, 2, 8), dtype), _act(sub, (1, 2, 8), dtype, 0.1)
            sub.op(opcode, [p, q], [r], opts)
            sub.inputs, sub.outputs = [p, q], [r]
        return m
    return make


def resource_variables():
    """A stateful model as the converter writes one (CALL_ONCE initialiser subgraph,
    VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE): acc = acc + x, returned."""
    def make():
        s = _s()
        m = TfliteModel()
        g = m.main
        init = m.subgraph("init")
        co = s.CallOnceOptionsT()
        co.initSubgraphIndex = 1
        g.op("CALL_ONCE", [], [], co)
        for sub, names in ((g, ("acc", "count")), (init, ("acc", "count"))):
            handles = []
            for name in names:
                h = sub.tensor((), "resource")
                vh = s.VarHandleOptionsT()
                vh.container, vh.sharedName = "", name
                sub.op("VAR_HANDLE", [], [h], vh)
                handles.append(h)
            if sub is init:
                sub.op("ASSIGN_VARIABLE", [handles[0], sub.const(np.zeros((1, 24)), "float32")], [])
                sub.op("ASSIGN_VARIABLE", [handles[1], sub.const(np.zeros((1,)), "int32")], [])
            else:
                x = g.tensor((1, 24), "float32")
                acc, cnt = g.tensor((1, 24), "float32"), g.tensor((1,), "int32")
                g.op("READ_VARIABLE", [handles[0]], [acc])
                g.op("READ_VARIABLE", [handles[1]], [cnt])
                y, c2 = g.tensor((1, 24), "float32"), g.tensor((1,), "int32")
                g.op("ADD", [acc, x], [y], s.AddOptionsT())
                g.op("ADD", [cnt, g.const(np.array([1]), "int32")], [c2], s.AddOptionsT())
                g.op("ASSIGN_VARIABLE", [handles[0], y], [])
                g.op("ASSIGN_VARIABLE", [handles[1], c2], [])
                g.inputs, g.outputs = [x], [y, c2]
        return m
    return make


def audio_frontend():
    """The TFLite-Micro signal library's audio front end (signal/micro/kernels, as the
    micro_speech feature generator chains it): window, FFT auto-scale, RFFT, energy, mel
    filter bank (uint64), square root, spectral subtraction (uint32 noise estimate), PCAN
    gain control and log, on one 30 ms frame of 16 kHz int16 audio."""
    def make():
        from tflite_builder import flexbuffer_map as fx

        rng = _rng(6)
        m = TfliteModel()
        g = m.main
        n, fft, bins, ch = 480, 512, 257, 40
        x = g.tensor((n,), "int16")
        win = g.tensor((n,), "int16")
        g.op("CUSTOM:SignalWindow", [x, g.const(rng.integers(0, 4096, n), "int16")], [win],
             custom_options=fx({"shift": 12}))
        pad = g.tensor((fft,), "int16")
        g.op("PAD", [win, g.const(np.array([[0, fft - n]]), "int32")], [pad])
        scaled, bits = g.tensor((fft,), "int16"), g.tensor((), "int32")
        g.op("CUSTOM:SignalFftAutoScale", [pad], [scaled, bits])
        spec = g.tensor((2 * bins,), "int16")
        g.op("CUSTOM:SignalRfft", [scaled], [spec], custom_options=fx({"T": 7, "fft_length": fft}))
        energy = g.tensor((bins,), "uint32")
        g.op("CUSTOM:SignalEnergy", [spec], [energy], custom_options=fx({"end_index": bins - 1, "start_index": 1}))
        fb = g.tensor((ch + 1,), "uint64")
        starts = np.linspace(2, bins - 12, ch + 1).astype(int)
        g.op("CUSTOM:SignalFilterBank",
             [energy, g.const(rng.integers(0, 4096, bins), "int16"), g.const(rng.integers(0, 4096, bins), "int16"),
              g.const(starts, "int16"), g.const(np.arange(ch + 1) * 4, "int16"), g.const(np.full(ch + 1, 4), "int16")],
             [fb], custom_options=fx({"num_channels": ch}))
        sq = g.tensor((ch + 1,), "uint32")
        shift = g.tensor((), "int32")
        g.op("ADD", [bits, g.const(np.array(0), "int32")], [shift])
        g.op("CUSTOM:SignalFilterBankSquareRoot", [fb, shift], [sq])
        sq40 = g.tensor((ch,), "uint32")
        g.op("SLICE", [sq, g.const(np.array([1]), "int32"), g.const(np.array([ch]), "int32")], [sq40])
        sub, noise = g.tensor((ch,), "uint32"), g.tensor((ch,), "uint32")
        g.op("CUSTOM:SignalFilterBankSpectralSubtraction", [sq40], [sub, noise], custom_options=fx(
            {"alternate_one_minus_smoothing": 15729, "alternate_smoothing": 655, "clamping": False,
             "min_signal_remaining": 3276, "num_channels": ch, "one_minus_smoothing": 15729, "smoothing": 655,
             "smoothing_bits": 10, "spectral_subtraction_bits": 14}))
        pcan = g.tensor((ch,), "uint32")
        g.op("CUSTOM:SignalPCAN", [sub, noise, g.const(rng.integers(0, 4096, 125), "int16")], [pcan],
             custom_options=fx({"snr_shift": 6}))
        feats = g.tensor((ch,), "int16")
        g.op("CUSTOM:SignalFilterBankLog", [pcan], [feats],
             custom_options=fx({"input_correction_bits": 3, "output_scale": 1600}))
        g.inputs, g.outputs = [x], [feats]
        return m
    return make


def offline_plan():
    """ADD with an offline memory plan (OfflineMemoryAllocation metadata: version, subgraph,
    tensor count, one arena offset per tensor, -1 = plan online): TFLite-Micro honours it, the
    arena model refuses it by name."""
    def make():
        s = _s()
        m = TfliteModel()
        g = m.main
        x, y = g.tensor((1, 64), "float32"), g.tensor((1, 64), "float32")
        g.op("ADD", [x, x], [y], s.AddOptionsT())
        g.inputs, g.outputs = [x], [y]
        m.metadata.append(("OfflineMemoryAllocation", np.array([1, 0, 2, 0, 256], "<i4").tobytes()))
        return m
    return make


def all_dtypes(dtype: str):
    """One CAST (or, for types no kernel takes, a graph input passed straight to the output)
    per TFLite tensor type, plus a constant of that type: TFLite-Micro either sizes every
    tensor (memory_helpers.cc TfLiteTypeSizeOf) or refuses the model."""
    def make():
        m = TfliteModel()
        g = m.main
        x = g.tensor((2, 8), dtype)
        y = g.tensor((2, 8), "float32")
        k = g.tensor((2, 8), "float32")
        g.const(np.zeros(4), "float32")
        c = g.tensor((4,), dtype, data=bytes(64))  # a constant of the type (unused)
        del c
        g.op("CAST", [x], [y]) if dtype in _CASTABLE else g.op("ZEROS_LIKE", [k], [y])
        g.inputs, g.outputs = ([x] if dtype in _CASTABLE else [k, x]), [y]
        return m
    return make


# cast.cc CastEval: the input types TFLite-Micro's CAST converts from
_CASTABLE = {"float32", "int8", "int16", "int32", "uint8", "uint32", "int64", "float16", "bool"}
DTYPES = ["float32", "float16", "int32", "uint8", "int64", "string", "bool", "int16", "complex64", "int8",
          "float64", "complex128", "uint64", "resource", "variant", "uint32", "uint16", "int4", "bfloat16",
          "int2", "uint4", "float8_e4m3fn", "float8_e5m2"]


# ---- the registry ----------------------------------------------------------------------------

MODELS: dict = {
    "lstm_int8": lstm("int8"),
    "lstm_fp32": lstm("float32"),
    "lstm_int8_b2": lstm("int8", batch=2, time=5, n_in=10, n_state=12),
    "lstm_int16": lstm("int16", time=6, n_in=12, n_state=20),
    "lstm_fp32_time_major": lstm("float32", batch=3, time=4, n_in=8, n_state=16, time_major=True),
    "lstm_peephole_fp32": lstm("float32", peephole=True),  # a variant TFLite-Micro refuses
    "lstm_stack_int8": lstm_stack("int8"),
    "lstm_stack_fp32": lstm_stack("float32"),
    "svdf_int8": svdf("int8"),
    "svdf_int8_state8": svdf("int8", state_dtype="int8"),
    "svdf_fp32": svdf("float32"),
    "svdf_fp32_b3": svdf("float32", batch=3, n_in=20, units=8, rank=1, memory=6),
    "gru_like_int8": gru_like("int8"),
    "gru_like_fp32": gru_like("float32"),
    "variables_int8": variables("int8"),
    "variables_fp32": variables("float32"),
    "while_loop": while_loop(),
    "if_cond_fp32": if_cond("float32"),
    "if_cond_int8": if_cond("int8"),
    "resource_variables": resource_variables(),
    "audio_frontend": audio_frontend(),
    "offline_plan": offline_plan(),
}
STATEFUL = list(MODELS)  # recurrent, stateful, control-flow and signal models (+ the refusals)
MODELS.update({f"dtype_{d}": all_dtypes(d) for d in DTYPES})

from tflm_synth_ops import SINGLE_OP_MODELS  # noqa: E402

SINGLE_OPS = list(SINGLE_OP_MODELS)
MODELS.update(SINGLE_OP_MODELS)


def cache_dir_from_env() -> Path | None:
    d = os.environ.get("EDGEKIT_TFLM_CACHE")
    return Path(d) if d else None


def build(name: str, cache_dir) -> Path:
    """Path of the model ``name``, written to ``cache_dir`` if not there yet."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}.s{SYNTH_VERSION}.tflite"
    if not path.exists():
        data = MODELS[name]().to_bytes()
        tmp = path.with_suffix(f".part{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
