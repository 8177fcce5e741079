"""How long the static runnability check takes, next to the other work `edgekit check` does.

Prints one table: ``unrunnable`` (TFLite-Micro reference and CMSIS-NN, LiteRT) and
``predict_tflm_arena`` on a synthetic 5,000-op int8 graph shaped like a converted CNN (conv,
depthwise, add, reshape, pad, a float16 DEQUANTIZE every 50 ops), and the cold start of a
child process that imports the module, reads a .tflite and checks it (no torch). Medians of
several runs. Usage: python benchmarks/runtime_support_speed.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic_graph(n_ops: int = 5000):
    from edgekit.graph.ir import Graph, Op, QuantParams, Tensor

    tensors: list = []

    def t(shape, dtype, const=False, channels=1):
        q = QuantParams(num_scales=channels, axis=0 if channels > 1 else None, scale=0.05, zero_point=0) \
            if dtype in ("int8", "int16") else None
        tensors.append(Tensor(len(tensors), f"t{len(tensors)}", tuple(shape), dtype, is_const=const, quant=q))
        return len(tensors) - 1

    ops = []
    x = t((1, 16, 16, 32), "int8")
    first = x
    kinds = ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "RESHAPE", "PAD"]
    for i in range(n_ops):
        if i % 50 == 49:
            w = t((32, 3, 3, 32), "float16", const=True)
            ops.append(Op(i, "dequantize", f"DEQUANTIZE_{i}", [w], [t((32, 3, 3, 32), "float32")],
                          attrs={"opcode": "DEQUANTIZE"}, source=f"blocks.{i}.conv"))
            continue
        code = kinds[i % len(kinds)]
        if code == "CONV_2D":
            ins = [x, t((32, 3, 3, 32), "int8", True, 32), t((32,), "int32", True)]
        elif code == "DEPTHWISE_CONV_2D":
            ins = [x, t((1, 3, 3, 32), "int8", True, 32), t((32,), "int32", True)]
        elif code == "ADD":
            ins = [x, x]
        else:
            ins = [x, t((4,) if code == "RESHAPE" else (4, 2), "int32", True)]
        y = t((1, 16, 16, 32), "int8")
        ops.append(Op(i, code.lower(), f"{code}_{i}", ins, [y], attrs={"opcode": code, "fused_activation": "relu"},
                      source=f"blocks.{i}"))
        x = y
    return Graph(tensors=tensors, ops=ops, inputs=[first], outputs=[x], source_format="tflite").link()


def timed(fn, repeats=7):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cold_check(path: Path, repeats=3) -> float:
    code = ("from edgekit.graph.tflite_reader import read_tflite\n"
            "from edgekit.analysis.runtime_support import unrunnable\n"
            f"unrunnable(read_tflite({str(path)!r}), 'tflite-micro')\n"
            "import sys; assert 'torch' not in sys.modules\n")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    from edgekit.analysis.runtime_support import unrunnable
    from edgekit.analysis.tflm_arena import predict_tflm_arena

    g = synthetic_graph(5000)
    found = unrunnable(g, "tflite-micro")
    assert [u.text().split(" (")[0] for u in found] == ["DEQUANTIZE with float16 input"], found
    rows = [
        ("unrunnable, TFLite-Micro reference, 5,000 ops", timed(lambda: unrunnable(g, "tflite-micro"))),
        ("unrunnable, TFLite-Micro CMSIS-NN, 5,000 ops",
         timed(lambda: unrunnable(g, "tflite-micro", kernels="cmsis-nn"))),
        ("unrunnable, LiteRT, 5,000 ops", timed(lambda: unrunnable(g, "litert"))),
        ("predict_tflm_arena, same graph (for scale)", timed(lambda: predict_tflm_arena(g), repeats=3)),
    ]
    sys.path.insert(0, str(ROOT / "tests"))
    from test_runtime_support import _fp16_conv_model

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "fp16.tflite"
        p.write_bytes(_fp16_conv_model())
        rows.append(("cold process: import, read .tflite, unrunnable (no torch)", cold_check(p)))
    base = rows[0][1]
    print(f"{'what':62s} {'median':>10s} {'x first row':>12s}")
    for name, sec in rows:
        print(f"{name:62s} {sec * 1e3:8.1f} ms {sec / base:11.1f}x")


if __name__ == "__main__":
    main()
