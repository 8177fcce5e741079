"""The quantization debugger's child side: what runs in the ``run_isolated`` child process.

``_child_compare`` runs the fp32 and the int8 .tflite in LiteRT's builtin kernels (every tensor
preserved) on the calibration samples and returns sums (``ref2``, ``err2``, ``dot``, ``q2``) per
int8 op output matched to an fp32 tensor by name, and for the model output; with ``isolate``,
each op also runs alone (``_single_op_models``) on the fp32 model's inputs to it (``_isolated``).
Only numpy at import; LiteRT is imported inside the functions. The parent side turns the sums
into SQNR and cosine (``edgekit.lint.quant_debug_report``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _interp(path: str, preserve: bool):
    from ai_edge_litert import interpreter as lr

    it = lr.Interpreter(model_path=path, experimental_preserve_all_tensors=preserve,
                        experimental_op_resolver_type=lr.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def _deq(value, detail) -> np.ndarray:
    q = detail.get("quantization_parameters") or {}
    sc, zp = q.get("scales"), q.get("zero_points")
    v = np.asarray(value)
    if v.dtype.kind in "iu" and sc is not None and len(sc):
        axis = q.get("quantized_dimension", 0)
        if len(sc) == 1:
            return (v.astype(np.float64) - float(zp[0])) * float(sc[0])
        shape = [1] * v.ndim
        shape[axis] = len(sc)
        return (v.astype(np.float64) - np.reshape(zp, shape)) * np.reshape(sc, shape)
    return v.astype(np.float64)


def _quant(x: np.ndarray, detail) -> np.ndarray:
    dt = np.dtype(detail["dtype"])
    if dt.kind not in "iu":
        return np.asarray(x, dtype=dt)
    q = detail.get("quantization_parameters") or {}
    sc, zp = q.get("scales"), q.get("zero_points")
    if sc is None or not len(sc):
        return np.asarray(x).astype(dt)
    info = np.iinfo(dt)
    return np.clip(np.round(np.asarray(x, np.float64) / float(sc[0])) + float(zp[0]), info.min, info.max).astype(dt)


def _acc(stats: dict, key, ref: np.ndarray, q: np.ndarray):
    s = stats.setdefault(key, {"ref2": 0.0, "err2": 0.0, "dot": 0.0, "q2": 0.0})
    r, v = ref.astype(np.float64).ravel(), q.astype(np.float64).ravel()
    s["ref2"] += float(r @ r)
    s["err2"] += float((r - v) @ (r - v))
    s["dot"] += float(r @ v)
    s["q2"] += float(v @ v)



def _child_compare(fp32_path: str, int8_path: str, samples: list, isolate: bool = True,
                   outputs_only: bool = False) -> dict:
    f_it = _interp(fp32_path, not outputs_only)
    q_it = _interp(int8_path, not outputs_only)
    q_details = {d["index"]: d for d in q_it.get_tensor_details()}
    q_ops = [o for o in q_it._get_ops_details()]
    stats: dict = {}
    fp32_values, q_values = _run_samples(f_it, q_it, samples, stats, q_details, outputs_only)
    out = {"output": stats.pop("__output__")}
    if outputs_only:
        return out
    layers, unmatched = _layer_stats(int8_path, q_ops, q_details, fp32_values, q_values, stats, isolate)
    out.update(layers=layers, unmatched=unmatched)
    return out


def _run_samples(f_it, q_it, samples: list, stats: dict, q_details: dict, outputs_only: bool):
    """Run both models on every sample; accumulate the output error in ``stats["__output__"]``
    and, unless ``outputs_only``, keep every tensor: ([{fp32 name: value}], [{int8 index: value}])."""
    f_in, q_in = f_it.get_input_details()[0], q_it.get_input_details()[0]
    f_out, q_out = f_it.get_output_details()[0], q_it.get_output_details()[0]
    f_details = {d["index"]: d for d in f_it.get_tensor_details()}
    fp32_values: list[dict] = []
    q_values: list[dict] = []
    for x in samples:
        x = np.asarray(x, dtype=np.float32).reshape(f_in["shape"])
        f_it.set_tensor(f_in["index"], x)
        f_it.invoke()
        q_it.set_tensor(q_in["index"], _quant(x, q_in))
        q_it.invoke()
        ref_out = f_it.get_tensor(f_out["index"])
        _acc(stats, "__output__", ref_out, _deq(q_it.get_tensor(q_out["index"]), q_out))
        if outputs_only:
            continue
        fv = {}
        for i, d in f_details.items():
            try:
                fv[d["name"]] = np.array(f_it.get_tensor(i))
            except ValueError:  # a tensor without data (optional / const without buffer)
                pass
        qv = {}
        for i in q_details:
            try:
                qv[i] = np.array(q_it.get_tensor(i))
            except ValueError:
                pass
        fp32_values.append(fv)
        q_values.append(qv)
    return fp32_values, q_values


def _layer_stats(int8_path: str, q_ops, q_details, fp32_values, q_values, stats: dict, isolate: bool):
    """Per int8 op output matched to an fp32 tensor by name: its sums (and its isolated run's)."""
    layers, unmatched = [], []
    iso_models = _single_op_models(int8_path) if isolate else {}
    for op in q_ops:
        if not len(op["outputs"]):
            continue
        t = int(op["outputs"][0])
        d = q_details[t]
        name = d["name"]
        ref_name = name[: -len("_quantized")] if name.endswith("_quantized") else name
        if ref_name not in fp32_values[0] or t not in q_values[0]:
            unmatched.append(name)
            continue
        key = (op["index"], name)
        for fv, qv in zip(fp32_values, q_values):
            ref = fv[ref_name]
            got = _deq(qv[t], d)
            if ref.shape != got.shape:
                break
            _acc(stats, key, ref, got)
        if key not in stats:
            unmatched.append(name)
            continue
        entry = {"index": int(op["index"]), "opcode": op["op_name"], "tensor": name, **stats[key], "iso": None,
                 "input_names": [q_details[int(i)]["name"] for i in op["inputs"] if int(i) >= 0]}
        mdl = iso_models.get(int(op["index"]))
        if mdl is not None:
            entry["iso"] = _isolated(mdl, op, q_details, fp32_values, q_values, ref_name)
        layers.append(entry)
    return layers, unmatched


def _isolated(model_bytes: bytes, op, q_details, fp32_values, q_values, ref_name):
    """Run the op alone on the fp32 model's inputs (quantized like the int8 model's)."""
    from ai_edge_litert import interpreter as lr

    try:
        it = lr.Interpreter(model_content=bytes(model_bytes),
                            experimental_op_resolver_type=lr.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    except Exception:
        return None
    ins, outs = it.get_input_details(), it.get_output_details()
    src = [int(t) for t in op["inputs"] if int(t) >= 0 and q_details[int(t)].get("name") in
           {d["name"] for d in ins}]
    by_name = {q_details[t]["name"]: t for t in src}
    stats: dict = {}
    for fv, qv in zip(fp32_values, q_values):
        for d in ins:
            t = by_name.get(d["name"])
            if t is None:
                return None
            nm = d["name"]
            base = nm[: -len("_quantized")] if nm.endswith("_quantized") else nm
            if base in fv and fv[base].shape == tuple(d["shape"]):
                x = _quant(fv[base], d) if np.dtype(d["dtype"]).kind in "iu" else fv[base].astype(d["dtype"])
            else:
                x = qv[t]  # no fp32 counterpart: feed what the int8 model computed
            it.set_tensor(d["index"], np.asarray(x).reshape(d["shape"]))
        try:
            it.invoke()
        except Exception:
            return None
        got = _deq(it.get_tensor(outs[0]["index"]), outs[0])
        _acc(stats, "o", fv[ref_name], got)
    return stats.get("o")


def _single_op_models(int8_path: str) -> dict[int, bytes]:
    """{op index: a model holding only that op}, its non-constant inputs as model inputs."""
    import copy

    from ai_edge_litert import schema_py_generated as S
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(Path(int8_path).read_bytes()))
    sg = model.subgraphs[0]
    out = {}
    for idx, op in enumerate(sg.operators):
        try:
            new = S.ModelT()
            new.version = model.version
            new.operatorCodes = [model.operatorCodes[op.opcodeIndex]]
            new.buffers = [S.BufferT()]
            tmap: dict[int, int] = {}
            tensors = []
            graph_inputs = []
            for t in list(op.inputs) + list(op.outputs):
                if t < 0 or t in tmap:
                    continue
                src = sg.tensors[t]
                nt = copy.copy(src)
                buf = model.buffers[src.buffer] if src.buffer < len(model.buffers) else None
                if buf is not None and buf.data is not None and len(buf.data):
                    new.buffers.append(buf)
                    nt.buffer = len(new.buffers) - 1
                else:
                    nt.buffer = 0
                    if t in op.inputs:
                        graph_inputs.append(len(tensors))
                tmap[t] = len(tensors)
                tensors.append(nt)
            nop = copy.copy(op)
            nop.opcodeIndex = 0
            nop.inputs = [tmap[t] if t >= 0 else -1 for t in op.inputs]
            nop.outputs = [tmap[t] for t in op.outputs]
            nop.intermediates = []
            nsg = S.SubGraphT()
            nsg.tensors = tensors
            nsg.inputs = graph_inputs
            nsg.outputs = [tmap[t] for t in op.outputs]
            nsg.operators = [nop]
            nsg.name = "op"
            new.subgraphs = [nsg]
            new.description = "edgekit single-op model"
            out[idx] = bytes(fbu.convert_object_to_bytearray(new))
        except Exception:
            continue
    return out
