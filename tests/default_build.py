"""The trained default model built once per test session (int8 .tflite for a 256 kB
microcontroller, and an fp32 .pte), shared by test_default_model.py and test_evaluation.py.
Built fresh in each session: the weights and the build code change together."""

from __future__ import annotations

from pathlib import Path

_BUILT: dict[str, object] = {}


def built(kind: str, root: Path):
    """kind "int8": edgekit.build(target="tflite", sram="256kB"); "pte": target="executorch"."""
    if kind not in _BUILT:
        from edgekit.build import build

        out = Path(root) / f"default-{kind}"
        if kind == "int8":
            res = build(None, target="tflite", sram="256kB", output=out)
        else:
            res = build(None, target="executorch", output=out)
        assert res.written, res.report.get("verdict")
        _BUILT[kind] = res
    return _BUILT[kind]
