"""edgekit.analysis.runtime_support against the real runtimes.

The oracle is the runtime itself: each single-op model of ``runtime_support_cases`` is loaded
and invoked once in TFLite-Micro's interpreter (``tflite_micro``, reference kernels), and
``unrunnable`` must report an op exactly when the interpreter refuses it (fails to prepare,
fails to invoke or crashes). Facts the table marks *silent* (the kernel runs and computes
nonsense) must run in the interpreter, and their outputs are compared with an independent
result to show they are wrong. The op registries of TFLite-Micro and LiteRT are checked
against every builtin opcode of the schema; ExecuTorch's portable list against the operators
its Python runtime registers.

Run ``pytest tests/test_runtime_support.py -m slow -s -k matrix`` to print the op x type matrix.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import defaultdict
from functools import partial

import numpy as np
import pytest

pytest.importorskip("tflite_micro")
pytest.importorskip("ai_edge_litert")

import runtime_support_cases as C  # noqa: E402  (tests/ is on sys.path under pytest)
from artifacts import Net  # noqa: E402
from runtime_support_models import act, const, graph_model, model, run_batch  # noqa: E402

from edgekit.analysis.runtime_support import (  # noqa: E402
    KERNEL_LIBRARIES,
    RUNTIMES,
    Unrunnable,
    op_problems,
    support,
    unrunnable,
)
from edgekit.analysis.runtime_support import executorch as et_table  # noqa: E402
from edgekit.analysis.runtime_support import litert as litert_table  # noqa: E402
from edgekit.analysis.runtime_support import tflm as tflm_table  # noqa: E402
from edgekit.errors import UsageError  # noqa: E402
from edgekit.graph.ir import Graph, Op, Tensor  # noqa: E402
from edgekit.graph.tflite_reader import read_tflite  # noqa: E402


def _read(tmp_path, data: bytes, name="m"):
    p = tmp_path / f"{name}.tflite"
    p.write_bytes(data)
    return read_tflite(p), p


def _expect(g: Graph, runtime="tflite-micro", kernels="reference"):
    """(refused, silent): what the table says of a one-op model."""
    probs = op_problems(g.ops[0], g, runtime, kernels=kernels)
    hard = [p for p in probs if not p[2] and not p[0].startswith("unknown:")]
    return bool(hard), [p for p in probs if p[2]]


# ---- the op x type matrix against TFLite-Micro -------------------------------------------------

@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """{opcode: [(case, outcome, refused_by_table, silent)]} for every case, one child run."""
    work = tmp_path_factory.mktemp("rs-matrix")
    cases = C.cases()
    res = run_batch({c.name: c.data for c in cases}, work / "run")
    out = defaultdict(list)
    for i, c in enumerate(cases):
        g, _ = _read(work, c.data, f"c{i}")
        refused, silent = _expect(g)
        out[c.opcode].append((c, res[c.name], refused, silent))
    return out


def _row(opcode, entries) -> str:
    cells = []
    for c, o, refused, silent in entries:
        mark = ("runs" if o.ok else "refused") if refused == (not o.ok) else "DISAGREE"
        if silent:
            mark = "wrong-results" if o.ok else "DISAGREE"
        cells.append(f"{c.label}: {mark}")
    return f"{opcode:30s} " + "; ".join(cells)


MATRIX_OPS = sorted({c.opcode for c in C.cases()})


@pytest.mark.slow
@pytest.mark.parametrize("opcode", MATRIX_OPS)
def test_matrix_table_agrees_with_the_interpreter(matrix, opcode):
    """Refused by TFLite-Micro <=> reported by unrunnable(); silent facts run (wrong results)."""
    entries = matrix[opcode]
    print(_row(opcode, entries))
    bad = []
    for c, o, refused, silent in entries:
        if silent and not refused:
            if not o.ok:
                bad.append(f"{c.name}: table says it runs with wrong results, interpreter refused: {o.log[:200]}")
        elif refused != (not o.ok):
            bad.append(f"{c.name}: table {'refuses' if refused else 'runs'} it, interpreter "
                       f"{'refused: ' + o.log[:200] if not o.ok else 'ran it'}")
    assert not bad, "\n".join(bad)


@pytest.mark.slow
def test_matrix_every_op_has_a_valid_recipe(matrix):
    """Each op the table says runs for some type has a case the interpreter runs: the recipes
    are valid models, so a refusal is about the type, not a broken test model."""
    broken = [op for op, entries in matrix.items() if not any(o.ok for _, o, _, _ in entries)
              and any(not r for _, _, r, _ in entries)]
    assert not broken


@pytest.mark.slow
def test_matrix_covers_every_registered_op_but_control_flow_and_variables(matrix):
    untested = sorted(tflm_table.REGISTERED - set(matrix))
    # subgraph and resource-variable ops need multi-subgraph models: their facts are source-only
    assert untested == ["ASSIGN_VARIABLE", "CALL_ONCE", "IF", "READ_VARIABLE", "VAR_HANDLE", "WHILE"]


@pytest.mark.slow
def test_matrix_summary(matrix, capsys):
    n = sum(len(v) for v in matrix.values())
    ran = sum(o.ok for v in matrix.values() for _, o, _, _ in v)
    with capsys.disabled():
        print(f"\nruntime_support matrix: {len(matrix)} TFLite-Micro ops, {n} op x type cases, {ran} run, "
              f"{n - ran} refused by the interpreter")
        for op in sorted(matrix):
            print(textwrap.shorten(_row(op, matrix[op]), 400))


# ---- silent facts: the kernel runs, the numbers are wrong ------------------------------------------

def _dw_int16(bias_dtype: str) -> bytes:
    # ones in (0.05), ones weights (0.01 per channel), bias 100 (scale 0.0005): real output
    # 4 * 0.05 * 0.01 + 0.05 = 0.052 -> quantized at 0.05: 1 everywhere
    ins = [act((1, 4, 4, 2), "int16"), const((1, 2, 2, 2), "int8", 1, quant=("pc", 3, 0.01)),
           const((2,), bias_dtype, 100, quant=("pc", 0, 0.0005))]
    return model("DEPTHWISE_CONV_2D", ins, [act((1, 3, 3, 2), "int16")],
                 ("DepthwiseConv2DOptions", dict(padding=1, strideW=1, strideH=1, depthMultiplier=1)))


@pytest.mark.slow
def test_silent_dw_int16_int32_bias_gives_wrong_results(tmp_path):
    ms = {b: _dw_int16(b) for b in ("int64", "int32")}
    res = run_batch(ms, tmp_path)
    assert res["int64"].ok and res["int32"].ok
    assert res["int64"].out == [1.0] * 18  # the independent arithmetic above
    assert res["int32"].out != res["int64"].out
    g, _ = _read(tmp_path, ms["int32"])
    assert [u.text() for u in unrunnable(g, "tflite-micro")] == [
        "DEPTHWISE_CONV_2D with int16 input and int32 bias (the kernel reads the bias as int64: wrong results, "
        "no error) (1 op)"]
    g, _ = _read(tmp_path, ms["int64"])
    assert unrunnable(g, "tflite-micro") == []


@pytest.mark.slow
def test_silent_hybrid_lstm_gives_wrong_results(tmp_path):
    data = C.lstm("float32", "int8")
    tflm_res = run_batch({"m": data}, tmp_path / "t")["m"]
    litert_res = run_batch({"m": data}, tmp_path / "l", runtime="litert")["m"]
    assert tflm_res.ok and litert_res.ok  # LiteRT runs hybrid LSTMs (dynamic-range weights)
    assert np.max(np.abs(np.array(litert_res.out))) > 1e-3
    assert not np.allclose(tflm_res.out, litert_res.out, atol=1e-4)
    g, _ = _read(tmp_path, data)
    assert "hybrid" in unrunnable(g, "tflite-micro")[0].why


# ---- the two cases, built programmatically (fast) ------------------------------------------

def _fp16_conv_model() -> bytes:
    """A conv whose float16 weights and bias sit behind DEQUANTIZE ops, as fp16 exports write it."""
    ts = [act((1, 4, 4, 2), "float32"), const((3, 2, 2, 2), "float16", 0.5), act((3, 2, 2, 2), "float32"),
          const((3,), "float16", 0.25), act((3,), "float32"), act((1, 3, 3, 3), "float32")]
    ops = [("DEQUANTIZE", [1], [2], None), ("DEQUANTIZE", [3], [4], None),
           ("CONV_2D", [0, 2, 4], [5], ("Conv2DOptions", dict(padding=1, strideW=1, strideH=1)))]
    return graph_model(ts, ops, outputs=[5])


def _gelu_model() -> bytes:
    ts = [act((1, 4), "float32"), const((3, 4), "float32", 0.1), act((1, 3), "float32"), act((1, 3), "float32")]
    ops = [("FULLY_CONNECTED", [0, 1, -1], [2], ("FullyConnectedOptions", {})), ("GELU", [2], [3], None)]
    return graph_model(ts, ops, outputs=[3])


def test_fp16_dequantize_cannot_run_on_tflite_micro(tmp_path):
    from edgekit.lint.runtimes import tflm_check

    g, p = _read(tmp_path, _fp16_conv_model())
    us = unrunnable(g, "tflite-micro")
    assert [u.text() for u in us] == ["DEQUANTIZE with float16 input (2 ops)"]
    assert us[0].source == "kernels/dequantize_common.cc DequantizePrepare"
    chk = tflm_check(p)
    assert not chk["ok"] and "dequantize_common.cc" in chk["log"]
    assert unrunnable(g, "litert") == []
    assert run_batch({"m": p.read_bytes()}, tmp_path / "l", runtime="litert")["m"].ok


def test_op_tflite_micro_lacks(tmp_path):
    from edgekit.lint.runtimes import tflm_check

    g, p = _read(tmp_path, _gelu_model())
    assert [u.text() for u in unrunnable(g, "tflite-micro")] == ["GELU has no kernel in TFLite-Micro (1 op)"]
    chk = tflm_check(p)
    assert chk["missing"] == ["GELU"]
    assert unrunnable(g, "litert") == []
    assert run_batch({"m": p.read_bytes()}, tmp_path / "l", runtime="litert")["m"].ok


def test_absent_bias_slot_is_read_and_crashes_depthwise(tmp_path):
    data = C.dwconv("int8", "int8", None)
    g, p = _read(tmp_path, data)
    assert g.ops[0].attrs["input_slots"][2] == -1
    assert "empty (-1) bias" in unrunnable(g, "tflite-micro")[0].why
    assert run_batch({"m": data}, tmp_path / "r")["m"].stage == "crash"


# ---- registries: every builtin opcode of the schema ------------------------------------------------

def _all_builtins():
    from ai_edge_litert import schema_py_generated as S

    return sorted(k for k in vars(S.BuiltinOperator) if not k.startswith("_") and k != "CUSTOM")


_MISSING = ("registration from op code", "Didn't find op for builtin opcode")


@pytest.mark.parametrize("runtime", ["tflite-micro", "litert"])
def test_registry_matches_the_runtime_for_every_builtin_opcode(runtime, tmp_path):
    """A generic one-op model per opcode: the runtime says "no registration / didn't find op"
    exactly for the opcodes the table says it has no kernel for. (LiteRT registers
    BROADCAST_TO from version 2 on: register.cc min_version 2; converters write 2.)"""
    names = _all_builtins()
    ms = {n: model(n, [act((1, 4), "float32")], [act((1, 4), "float32")],
                   version=2 if n == "BROADCAST_TO" else 1) for n in names}
    res = run_batch(ms, tmp_path, runtime="tflm" if runtime == "tflite-micro" else "litert")
    missing = {n for n, o in res.items() if not o.ok and any(m in o.log for m in _MISSING)}
    table = tflm_table.REGISTERED if runtime == "tflite-micro" else litert_table.REGISTERED
    assert missing == set(names) - table
    g = Graph(tensors=[Tensor(0, "x", (1, 4), "float32"), Tensor(1, "y", (1, 4), "float32")],
              ops=[Op(i, n.lower(), n, [0], [1], attrs={"opcode": n}) for i, n in enumerate(names)],
              inputs=[0], outputs=[1], source_format="tflite").link()
    no_kernel = {u.opcode for u in unrunnable(g, runtime) if u.why.startswith("has no kernel")}
    assert no_kernel == missing


def test_tflm_registry_and_op_resolver_methods():
    """export.op_resolver.TFLM_ADD_METHODS (the generated op_resolver.h) covers the same builtins."""
    from edgekit.export.op_resolver import TFLM_ADD_METHODS

    assert set(TFLM_ADD_METHODS) == tflm_table.REGISTERED


def test_litert_schema_builtins_are_all_classified():
    assert set(_all_builtins()) | {"CUSTOM"} == litert_table.TFLITE_BUILTINS


# ---- ExecuTorch ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_executorch_table_matches_the_runtime_registry():
    pytest.importorskip("executorch")
    code = ("from executorch.extension.pybindings import portable_lib as pl; "
            "print('\\n'.join(pl._get_operator_names()))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-500:]
    registered = set(p.stdout.split())
    assert registered == et_table.LIBRARIES["optimized"]


@pytest.mark.slow
@pytest.mark.export
def test_executorch_quantized_ops_outside_the_delegate(tmp_path):
    """A PT2E-quantized program lowered without a delegate keeps quantized_decomposed kernels:
    the table reports them, and the executorch wheel's runtime (which registers them only when
    ``executorch.kernels.quantized`` is imported) fails with OperatorMissing (0x14)."""
    pytest.importorskip("executorch")
    from edgekit.graph.pte_reader import read_pte

    make = textwrap.dedent(f"""
        import torch
        import executorch.kernels.quantized  # noqa: F401  (out variants for export)
        from executorch.exir import to_edge_transform_and_lower
        from edgekit.export.executorch import _quantize_xnnpack
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
        x = torch.randn(1, 3, 8, 8)
        q = _quantize_xnnpack(m, (x,), [torch.randn(1, 3, 8, 8) for _ in range(4)])
        for name, mod in (("q", q), ("f", m)):
            ep = torch.export.export(mod, (x,), strict=False)
            open({str(tmp_path)!r} + "/" + name + ".pte", "wb").write(
                to_edge_transform_and_lower(ep).to_executorch().buffer)
    """)
    run = textwrap.dedent(f"""
        import torch
        from executorch.extension.pybindings import portable_lib as pl
        for name in ("f", "q"):
            try:
                pl._load_for_executorch({str(tmp_path)!r} + "/" + name + ".pte").forward([torch.randn(1, 3, 8, 8)])
                print(name, "runs")
            except Exception as e:
                print(name, "fails", str(e)[-40:])
    """)
    for code in (make, run):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-1500:]
    assert "f runs" in p.stdout and "q fails" in p.stdout and "0x14" in p.stdout, p.stdout
    assert unrunnable(read_pte(tmp_path / "f.pte"), "executorch") == []
    us = unrunnable(read_pte(tmp_path / "q.pte"), "executorch")
    assert us and all(u.opcode.startswith("quantized_decomposed::") for u in us)
    assert "quantized kernel library" in us[0].why


# ---- the interface ------------------------------------------------------------------------------------

def _graph(ops_spec, source_format="tflite"):
    """ops_spec: [(opcode, input dtype, output dtype, source)], each op on its own tensors."""
    tensors, ops = [], []
    for i, (code, din, dout, src) in enumerate(ops_spec):
        tensors += [Tensor(2 * i, f"x{i}", (1, 8), din), Tensor(2 * i + 1, f"y{i}", (1, 8), dout)]
        ops.append(Op(i, code.lower(), f"{code}_{i}", [2 * i], [2 * i + 1], attrs={"opcode": code}, source=src))
    return Graph(tensors=tensors, ops=ops, inputs=[0], outputs=[len(tensors) - 1],
                 source_format=source_format).link()


def test_groups_count_and_modules():
    g = _graph([("DEQUANTIZE", "float16", "float32", "a.b"), ("DEQUANTIZE", "float16", "float32", None),
                ("DEQUANTIZE", "float16", "float32", "c.d"), ("DEQUANTIZE", "float16", "float32", "a.b"),
                ("GELU", "float32", "float32", "e"), ("RELU", "float32", "float32", "f")])
    us = unrunnable(g, "tflite-micro")
    assert [(u.opcode, u.why, u.count, u.modules) for u in us] == [
        ("DEQUANTIZE", "with float16 input", 4, ["a.b", "c.d"]), ("GELU", "has no kernel in TFLite-Micro", 1, ["e"])]
    assert us[0].text() == "DEQUANTIZE with float16 input (4 ops) at a.b, c.d"
    assert Unrunnable("litert", "X", "why", 5, ["a", "b", "c", "d"]).text() == "X why (5 ops) at a, b, c ..."
    assert Unrunnable("litert", "X", "why", 1).text() == "X why (1 op)"


def test_bad_runtime_or_kernel_library_is_a_usage_error():
    g = _graph([("RELU", "float32", "float32", None)])
    with pytest.raises(UsageError, match="unknown runtime 'tflm2'"):
        unrunnable(g, "tflm2")
    with pytest.raises(UsageError, match="unknown kernel library 'esp-nn'"):
        unrunnable(g, "tflite-micro", kernels="esp-nn")
    assert set(RUNTIMES) == set(KERNEL_LIBRARIES)


def test_lowered_graph_unknown_ops_are_not_called_runnable():
    g = _graph([("HARD_SIGMOID", "float32", "float32", "blocks.0.gate"), ("RELU", "float32", "float32", None)],
               source_format="torch")
    rep = support(g, "tflite-micro")
    assert rep.unrunnable == [] and rep.runnable is None
    assert [(u.opcode, u.modules) for u in rep.unknown] == [("HARD_SIGMOID", ["blocks.0.gate"])]
    assert "lowering" in rep.unknown[0].why


def test_pre_export_graph_for_litert_or_executorch_says_not_checked():
    g = _graph([("RELU", "float32", "float32", None)], source_format="torch")
    for op in g.ops:
        del op.attrs["opcode"]
    for rt in ("litert", "executorch"):
        rep = support(g, rt)
        assert rep.unrunnable == [] and rep.runnable is None and rep.notes[0].startswith("not checked")


def test_cmsis_nn_refuses_what_the_reference_kernels_run(tmp_path):
    cases = {"rank-5 int8 transpose": (C.transpose("int8", rank=5), "TRANSPOSE"),
             "rank-5 batch matmul": (C.batch_matmul("float32", rank=5), "BATCH_MATMUL"),
             "int16 FC with int32 bias": (C.fc("int16", "int8", "int32"), "FULLY_CONNECTED")}
    res = run_batch({k: v[0] for k, v in cases.items()}, tmp_path / "r")
    for name, (data, code) in cases.items():
        g, _ = _read(tmp_path, data)
        assert unrunnable(g, "tflite-micro") == [] and res[name].ok, name  # the reference kernel runs it
        [u] = unrunnable(g, "tflite-micro", kernels="cmsis-nn")
        assert u.opcode == code and "cmsis_nn/" in u.source, name


def test_litert_custom_and_flex_ops():
    g = _graph([("CUSTOM:FlexErf", "float32", "float32", None), ("CUSTOM:MyOp", "float32", "float32", None),
                ("CUSTOM:TFLite_Detection_PostProcess", "float32", "float32", None)])
    whys = [u.why for u in unrunnable(g, "litert")]
    assert len(whys) == 2 and "Select-TF-ops" in whys[0] and "custom op" in whys[1]
    tflm_whys = {u.opcode: u.why for u in unrunnable(g, "tflite-micro")}
    assert "AddCustom" in tflm_whys["CUSTOM:MyOp"]


def test_check_of_a_tflite_is_torch_free_and_fast(tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(_fp16_conv_model())
    code = textwrap.dedent(f"""
        import sys, time
        t0 = time.perf_counter()
        from edgekit.graph.tflite_reader import read_tflite
        from edgekit.analysis.runtime_support import unrunnable
        us = unrunnable(read_tflite({str(p)!r}), "tflite-micro")
        dt = time.perf_counter() - t0
        heavy = [m for m in ("torch", "tensorflow", "executorch", "tflite_micro", "litert_torch") if m in sys.modules]
        print(us[0].text(), "|", heavy, "|", round(dt, 3))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-800:]
    text, heavy, dt = out.stdout.strip().split(" | ")
    assert text == "DEQUANTIZE with float16 input (2 ops)" and heavy == "[]"
    print(f"import + read + unrunnable: {dt} s")


# ---- real exports: litert-torch + ai-edge-quantizer ------------------------------------------------

def _cnn(gelu: bool):
    from torch import nn

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                         nn.GELU() if gelu else nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10)).eval()


@pytest.fixture(scope="module")
def exported(artifact):
    """{"fp16": path, "gelu": path} of ``_cnn`` (the model itself matters: the pre-export tests capture
    the same module and compare layer names and DEQUANTIZE counts)."""
    pytest.importorskip("torch")
    return {"fp16": artifact(Net("rs_cnn", partial(_cnn, False), (1, 3, 16, 16)), "fp16"),
            "gelu": artifact(Net("rs_gelu", partial(_cnn, True), (1, 3, 16, 16)))}


@pytest.mark.slow
@pytest.mark.export
def test_real_fp16_export_check_and_interpreter_agree(exported):
    from edgekit.lint.runtimes import tflm_check

    g = read_tflite(exported["fp16"])
    n_deq = sum(op.attrs["opcode"] == "DEQUANTIZE" for op in g.ops)
    assert n_deq == 3  # the weights of the three layers (ai-edge-quantizer leaves biases float32)
    assert [u.text() for u in unrunnable(g, "tflite-micro")] == [f"DEQUANTIZE with float16 input ({n_deq} ops)"]
    chk = tflm_check(exported["fp16"])
    assert not chk["ok"] and "dequantize_common.cc" in chk["log"]
    assert unrunnable(g, "litert") == []


@pytest.mark.slow
@pytest.mark.export
def test_real_gelu_export_and_pre_export_graph(exported):
    from edgekit.analysis.lowering import lower_for_tflite
    from edgekit.graph.capture import capture
    from edgekit.lint.runtimes import tflm_check

    g = read_tflite(exported["gelu"])
    assert [u.text() for u in unrunnable(g, "tflite-micro")] == ["GELU has no kernel in TFLite-Micro (1 op)"]
    assert tflm_check(exported["gelu"])["missing"] == ["GELU"]
    pre = lower_for_tflite(capture(_cnn(True), (1, 3, 16, 16)))
    [u] = unrunnable(pre, "tflite-micro")
    assert (u.opcode, u.why, u.count, u.modules) == ("GELU", "has no kernel in TFLite-Micro", 1, ["3"])


def test_silent_fused_tanh_is_ignored_by_both_runtimes(tmp_path):
    """float CONV_2D, ones in, weights 0.5, bias 0: each output is 2*2*2*0.5 = 4; a fused TANH
    would make it tanh(4) = 0.9993. Both runtimes output 4: the activation is dropped."""
    for rt in ("tflm", "litert"):
        ins = [act((1, 4, 4, 2), "float32"), const((3, 2, 2, 2), "float32", 0.5), const((3,), "float32", 0)]
        data = model("CONV_2D", ins, [act((1, 3, 3, 3), "float32")],
                     ("Conv2DOptions", dict(padding=1, strideW=1, strideH=1, fusedActivationFunction=4)))
        out = run_batch({"m": data}, tmp_path / rt, runtime=rt)["m"]
        assert out.ok and out.out == [4.0] * 27, rt
    g, _ = _read(tmp_path, data)
    for rt in ("tflite-micro", "litert"):
        [u] = unrunnable(g, rt)
        assert u.why == "with a fused TANH activation (the kernel ignores it: wrong results, no error)"


@pytest.mark.slow
@pytest.mark.export
def test_pre_export_fp16_predicts_the_exports_dequantize_ops(exported):
    """The lowering writes fp16 weights as float32; runtime_support adds the float16 DEQUANTIZE
    ops the fp16 export writes: as many as the real export has, at the layers that own them."""
    from edgekit.analysis.lowering import lower_for_tflite
    from edgekit.graph.capture import capture

    real = read_tflite(exported["fp16"])
    n_real = sum(op.attrs["opcode"] == "DEQUANTIZE" for op in real.ops)
    pre = lower_for_tflite(capture(_cnn(False), (1, 3, 16, 16), dtype="fp16"))
    [u] = unrunnable(pre, "tflite-micro")
    assert (u.opcode, u.why, u.count) == ("DEQUANTIZE", "with float16 input", n_real)
    assert u.modules == ["0", "2", "6"]
    assert unrunnable(lower_for_tflite(capture(_cnn(False), (1, 3, 16, 16))), "tflite-micro") == []


def test_tflm_custom_ops_registered_npu_and_unknown():
    g = _graph([("CUSTOM:SignalFramer", "int16", "int16", None), ("CUSTOM:ethos-u", "int8", "int8", None),
                ("CUSTOM:CIRCULAR_BUFFER", "float32", "float32", None)])
    rep = support(g, "tflite-micro")
    assert [u.opcode for u in rep.unknown] == ["CUSTOM:SignalFramer"]  # registered, types not in the table
    assert {u.opcode: u.why for u in rep.unrunnable} == {
        "CUSTOM:ethos-u": tflm_table.NPU_CUSTOM["ethos-u"], "CUSTOM:CIRCULAR_BUFFER": "with float32 input"}
