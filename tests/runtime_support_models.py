"""Single-operator .tflite models built with the flatbuffer object API, and a batch runner
that asks TFLite-Micro's interpreter (and LiteRT's) whether it runs each one.

The models are built from ``ai_edge_litert.schema_py_generated`` (the generated flatbuffer
classes; importing it loads numpy and flatbuffers, not TensorFlow). ``model(opcode, inputs,
outputs, ...)`` takes :class:`T` tensor specs: a spec with ``data`` is a constant (its
buffer holds the data), the others are graph inputs (or, for outputs, graph outputs).
Quantization follows what the converters write: int8/uint8/int16 tensors get a scale and a
zero point (int16: 0), per-channel weights one scale per output channel, biases the product
of input and weight scales; int32/int64 activations are not quantized.

``run_tflm(models)`` loads every model in TFLite-Micro's interpreter and invokes it once on
ones, in one child process (``edgekit.isolate.run_isolated``); a model that crashes
the interpreter is recorded as refused and the batch resumes after it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NP = {"float32": np.float32, "float16": np.float16, "float64": np.float64, "int8": np.int8, "int16": np.int16,
      "int32": np.int32, "int64": np.int64, "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32,
      "uint64": np.uint64, "bool": np.bool_, "complex64": np.complex64}
SCALE = 0.05


@dataclass
class T:
    shape: tuple
    dtype: str
    data: object = None  # constant value: a scalar broadcast to the shape, or an array/list
    quant: object = "auto"  # "auto", None, (scale, zero_point), or ("pc", axis, scale)
    variable: bool = False

    @property
    def const(self) -> bool:
        return self.data is not None


def act(shape, dtype, quant="auto") -> T:
    return T(tuple(shape), dtype, quant=quant)


def const(shape, dtype, value=1, quant="auto") -> T:
    return T(tuple(shape), dtype, data=value, quant=quant)


def ints(values, dtype="int32") -> T:
    a = np.asarray(values)
    return T(a.shape, dtype, data=a, quant=None)


def _quant(S, t: T):
    q = t.quant
    if q == "auto":
        q = {"int8": (SCALE, 0), "uint8": (SCALE, 128), "int16": (SCALE, 0), "int4": (SCALE, 0)}.get(t.dtype)
    if q is None:
        return None
    p = S.QuantizationParametersT()
    if q[0] == "pc":
        _, axis, scale = q
        n = t.shape[axis]
        p.scale, p.zeroPoint, p.quantizedDimension = [float(scale)] * n, [0] * n, axis
    else:
        p.scale, p.zeroPoint = [float(q[0])], [int(q[1])]
    return p


def _bytes(t: T) -> list[int]:
    n = int(np.prod(t.shape)) if t.shape else 1
    if t.dtype == "int4":  # two values per byte, low nibble first
        v = np.broadcast_to(np.asarray(t.data, np.int8), (n,)).astype(np.uint8) & 0xF
        v = np.concatenate([v, np.zeros(n % 2, np.uint8)])
        return (v[0::2] | (v[1::2] << 4)).astype(np.uint8).tolist()
    if t.dtype == "string":
        raise ValueError("no string constants")
    a = np.broadcast_to(np.asarray(t.data, NP[t.dtype]), t.shape if t.shape else ()).astype(NP[t.dtype])
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8).tolist()


def _options(S, opts):
    if opts is None:
        return 0, None
    name, kw = opts
    o = getattr(S, name + "T")()
    for k, v in kw.items():
        setattr(o, k, v)
    return getattr(S.BuiltinOptions, name), o


def model(opcode: str, inputs: list, outputs: list, opts=None, *, custom: str | None = None,
          version: int = 1) -> bytes:
    """A one-op model. ``inputs`` may hold None for an absent optional input (index -1)."""
    tensors = [t for t in inputs if t is not None] + list(outputs)
    idx, k = [], 0
    for t in inputs:
        idx.append(-1 if t is None else k)
        k += t is not None
    outs = list(range(k, k + len(outputs)))
    return graph_model(tensors, [(opcode, idx, outs, opts, custom, version)], outputs=outs)


def graph_model(tensors: list[T], ops: list[tuple], *, outputs: list[int]) -> bytes:
    """A model of several ops: ``ops`` are (opcode, input ids, output ids, opts[, custom[, version]])
    over ``tensors``; the graph inputs are the non-constant tensors no op writes."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S

    m = S.ModelT()
    m.version = 3
    m.operatorCodes, m.buffers = [], [S.BufferT()]
    codes: dict[tuple, int] = {}
    st_list = []
    for i, t in enumerate(tensors):
        st = S.TensorT()
        st.shape, st.type, st.name = list(t.shape), getattr(S.TensorType, t.dtype.upper()), f"t{i}"
        st.quantization, st.isVariable = _quant(S, t), t.variable
        b = S.BufferT()
        if t.const:
            b.data = _bytes(t)
        m.buffers.append(b)
        st.buffer = len(m.buffers) - 1
        st_list.append(st)
    written = set()
    sops = []
    for spec in ops:
        opcode, ins, outs, opts = spec[:4]
        custom = spec[4] if len(spec) > 4 else None
        version = spec[5] if len(spec) > 5 else 1
        key = (opcode, custom, version)
        if key not in codes:
            code = S.OperatorCodeT()
            bc = getattr(S.BuiltinOperator, "CUSTOM" if custom else opcode)
            code.builtinCode, code.deprecatedBuiltinCode, code.version = bc, min(bc, 127), version
            if custom:
                code.customCode = custom
            codes[key] = len(m.operatorCodes)
            m.operatorCodes.append(code)
        op = S.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = codes[key], list(ins), list(outs)
        op.builtinOptionsType, op.builtinOptions = _options(S, opts)
        sops.append(op)
        written.update(outs)
    used = {i for spec in ops for i in spec[1] if i >= 0}
    g_in = [i for i in sorted(used) if not tensors[i].const and not tensors[i].variable and i not in written]
    sg = S.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = st_list, sops, g_in, list(outputs), "main"
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# ---- running them ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    ok: bool
    stage: str | None = None  # "load", "invoke", "crash"
    log: str = ""
    out: list | None = None  # the first output's raw values, flattened


@contextlib.contextmanager
def _tests_on_path():
    """run_isolated's child imports this module by name: put tests/ on its PYTHONPATH."""
    here = str(Path(__file__).resolve().parent)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [here, old] if p)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def run_batch(models: dict[str, bytes], workdir, *, runtime: str = "tflm", timeout_s: float = 600.0) -> dict:
    """{name: Outcome}: each model loaded and invoked once in ``runtime`` ("tflm" or "litert")."""
    from edgekit.isolate import ChildFailure, run_isolated

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, (name, data) in enumerate(models.items()):
        p = work / f"m{i}.tflite"
        p.write_bytes(data)
        jobs.append([name, str(p)])
    results = work / f"{runtime}-results.jsonl"
    results.unlink(missing_ok=True)
    out: dict[str, Outcome] = {}
    with _tests_on_path():
        while len(out) < len(jobs):
            todo = [j for j in jobs if j[0] not in out]
            try:
                run_isolated("runtime_support_models", "_child_batch",
                             {"jobs": todo, "results": str(results), "runtime": runtime},
                             timeout_s=timeout_s, runtime=runtime)
            except ChildFailure as exc:
                if exc.kind != "crash":
                    raise
            started = None
            for line in results.read_text().splitlines() if results.exists() else []:
                rec = json.loads(line)
                if "started" in rec:
                    started = rec["started"]
                else:
                    out[rec["name"]] = Outcome(rec["ok"], rec["stage"], rec["log"], rec.get("out"))
            if started is not None and started not in out:  # the model the child died on
                out[started] = Outcome(False, "crash", "the interpreter crashed")
                with results.open("a") as f:
                    f.write(json.dumps({"name": started, "ok": False, "stage": "crash",
                                        "log": "the interpreter crashed"}) + "\n")
    return out


def _child_batch(jobs: list, results: str, runtime: str) -> int:
    with open(results, "a") as f:
        for name, path in jobs:
            f.write(json.dumps({"started": name}) + "\n")
            f.flush()
            rec = _run_tflm(path) if runtime == "tflm" else _run_litert(path)
            f.write(json.dumps({"name": name, **rec}) + "\n")
            f.flush()
    return len(jobs)


def _ones(shape, dtype):
    return np.ones([int(s) for s in shape], dtype=dtype)


def _run_tflm(path: str) -> dict:
    from tflite_micro import runtime as rt

    from edgekit.runtime.tflm import CaptureFd2

    with CaptureFd2() as cap:
        try:
            it = rt.Interpreter.from_file(path, arena_size=1 << 20)
        except Exception as exc:
            err = str(exc)
        else:
            err = None
    if err is not None:
        return {"ok": False, "stage": "load", "log": (err + " " + cap.text)[:600]}
    with CaptureFd2() as cap:
        try:
            i = 0
            while True:
                try:
                    d = it.get_input_details(i)
                except Exception:
                    break
                with contextlib.suppress(Exception):
                    it.set_input(_ones(d["shape"], d["dtype"]), i)
                i += 1
            it.invoke()
            err = None
        except Exception as exc:
            err = str(exc)
    if err is not None:
        return {"ok": False, "stage": "invoke", "log": (err + " " + cap.text)[:600]}
    return {"ok": True, "stage": None, "log": "", "out": np.asarray(it.get_output(0)).astype(float).ravel().tolist()}


def _run_litert(path: str) -> dict:
    from ai_edge_litert import interpreter as lr

    try:
        it = lr.Interpreter(model_path=path,
                            experimental_op_resolver_type=lr.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    except Exception as exc:
        return {"ok": False, "stage": "load", "log": str(exc)[:600]}
    try:
        for d in it.get_input_details():
            with contextlib.suppress(Exception):
                it.set_tensor(d["index"], _ones(d["shape"], d["dtype"]))
        it.invoke()
    except Exception as exc:
        return {"ok": False, "stage": "invoke", "log": str(exc)[:600]}
    out = it.get_tensor(it.get_output_details()[0]["index"])
    return {"ok": True, "stage": None, "log": "", "out": np.asarray(out).astype(float).ravel().tolist()}


@dataclass
class Case:
    opcode: str
    label: str  # "int8", "float32 input, int8 weights", ...
    data: bytes = field(repr=False, default=b"")

    @property
    def name(self) -> str:
        return f"{self.opcode} [{self.label}]"
