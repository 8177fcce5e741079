"""TFLite-Micro op resolver headers (checked against the interpreter's own op list, and compiled
against a stub MicroMutableOpResolver), and the operator list of a .pte for selective builds."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from artifacts import TINY_GELU, Net, normal_calibration, pte_info

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("tflite_micro")
from torch import nn  # noqa: E402

from edgekit.export.op_resolver import (  # noqa: E402
    TFLM_ADD_METHODS,
    model_ops,
    op_resolver_header,
    resolver_for,
    stub_resolver_header,
    write_op_resolver,
)
from edgekit.runtime.tflm_resolver import check_resolver  # noqa: E402


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.act = nn.Hardswish()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = self.act(self.dw(torch.relu(self.conv(x))))
        return torch.softmax(self.fc(y.mean((2, 3))), -1)


# SmallNet itself matters (the header must register its depthwise conv, HARD_SWISH and SOFTMAX); any
# GELU model will do for the missing kernel.
SMALL_NET = Net("op_resolver_small", SmallNet, (1, 3, 16, 16), calibration=normal_calibration)


@pytest.fixture(scope="session")
def models(artifact):
    return {"int8": artifact(SMALL_NET, "int8"), "gelu": artifact(TINY_GELU)}


def test_method_names_follow_tflm_convention():
    # AddConv2D, AddDepthwiseConv2D, AddFullyConnected ... every builtin maps to one method
    assert TFLM_ADD_METHODS["CONV_2D"] == "AddConv2D"
    assert TFLM_ADD_METHODS["DEPTHWISE_CONV_2D"] == "AddDepthwiseConv2D"
    assert TFLM_ADD_METHODS["HARD_SWISH"] == "AddHardSwish"
    assert TFLM_ADD_METHODS["LOGISTIC"] == "AddLogistic"
    assert len(set(TFLM_ADD_METHODS.values())) == len(TFLM_ADD_METHODS)
    assert all(re.fullmatch(r"Add[A-Z][A-Za-z0-9]*", m) for m in TFLM_ADD_METHODS.values())


@pytest.mark.export
def test_header_registers_exactly_what_the_interpreter_reports(models):
    chk = check_resolver(models["int8"])
    assert chk.ok, chk.problems
    assert set(chk.registered) == set(chk.interpreter) and all(chk.interpreter.values())
    text = op_resolver_header(models["int8"], model_name="small")
    n = int(re.search(r"MicroMutableOpResolver<(\d+)>", text).group(1))
    calls = re.findall(r"resolver\.(Add\w+)\(\)", text)
    assert n == len(calls) == len(model_ops(models["int8"])) == len(chk.interpreter)
    assert {TFLM_ADD_METHODS[op] for op in chk.interpreter} == set(calls)
    assert "AddConv2D" in calls and "AddHardSwish" in calls and "#error" not in text


@pytest.mark.export
def test_header_compiles_against_a_stub_resolver(models, tmp_path):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not installed")
    inc = tmp_path / "tensorflow" / "lite" / "micro"
    inc.mkdir(parents=True)
    (inc / "micro_mutable_op_resolver.h").write_text(stub_resolver_header())
    write_op_resolver(models["int8"], tmp_path, model_name="small")
    (tmp_path / "main.cc").write_text('#include "op_resolver.h"\n'
                                      "int main() { static EdgekitOpResolver r; return edgekit_register_ops(r); }\n")
    res = subprocess.run([gxx, "-std=c++17", "-fsyntax-only", "-I", str(tmp_path), str(tmp_path / "main.cc")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # a method TFLite-Micro does not have would not compile against the stub
    (tmp_path / "bad.cc").write_text('#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n'
                                     "int main() { tflite::MicroMutableOpResolver<1> r; return r.AddGelu(); }\n")
    bad = subprocess.run([gxx, "-std=c++17", "-fsyntax-only", "-I", str(tmp_path), str(tmp_path / "bad.cc")],
                         capture_output=True, text=True)
    assert bad.returncode != 0


@pytest.mark.export
def test_an_op_without_tflm_kernel_becomes_an_error_directive(models):
    r = resolver_for(models["gelu"])
    assert r.missing == ["GELU"]
    text = op_resolver_header(models["gelu"])
    assert '#error "edgekit: TFLite-Micro has no kernel for builtin operator GELU' in text
    chk = check_resolver(models["gelu"])
    assert chk.interpreter["GELU"] is False  # the interpreter agrees


@pytest.mark.export
def test_pte_operators_for_a_selective_build(artifact):
    pytest.importorskip("executorch")
    from edgekit.export.op_resolver import pte_operators

    for backend in ("xnnpack", "portable"):
        p = artifact(SMALL_NET, fmt="pte", backend=backend)
        res = pte_info(p)
        ops = pte_operators(p.read_bytes())
        # the program's operator table (export_pte lists names without the overload)
        assert sorted({op.split(".", 1)[0] for op in ops.operators}) == sorted(res["operators"])
        if backend == "xnnpack":
            assert ops.delegates == ["XnnpackBackend"] and ops.delegate_calls >= 1
        else:
            assert not ops.delegates and ops.kernel_calls >= 4
            assert any(op.startswith("aten::convolution") for op in ops.operators)
            assert ops.root_ops.count(",") == len(ops.operators) - 1
        from edgekit.lint import lint

        r = lint(p)
        assert r.format == "pte" and r.summary["operators"] == ops.operators
