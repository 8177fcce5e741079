"""How close an artifact's outputs are to PyTorch's, and how close they must be."""

from __future__ import annotations

import numpy as np

from edgekit.errors import EdgekitError


def compare(ref: list, got: list) -> dict:
    """Cosine similarity, max abs / relative error and top-1 agreement of outputs vs PyTorch."""
    r = np.concatenate([np.asarray(a, np.float64).reshape(len(a), -1) for a in ref])
    g = np.concatenate([np.asarray(a, np.float64).reshape(len(a), -1) for a in got])
    if r.shape != g.shape:
        raise EdgekitError(f"the artifact's output shape {g.shape} differs from PyTorch's {r.shape}")
    denom = np.linalg.norm(r) * np.linalg.norm(g)
    cosine = float(np.dot(r.ravel(), g.ravel()) / denom) if denom > 0 else float(np.allclose(r, g))
    max_abs = float(np.max(np.abs(r - g))) if r.size else 0.0
    scale = float(np.max(np.abs(r))) if r.size else 1.0
    top1 = float(np.mean(np.argmax(r, axis=1) == np.argmax(g, axis=1))) if r.ndim == 2 and r.shape[1] > 1 else 1.0
    return {"cosine": cosine, "max_abs_error": max_abs, "max_rel_error": max_abs / scale if scale else max_abs,
            "top1_agreement": top1, "samples": int(len(ref))}


def tolerance(dtype: str) -> dict:
    """fp32 artifacts must reproduce PyTorch; int8 ones are compared with fp32 PyTorch (the
    accuracy cost, reported) with a loose floor — an untrained network amplifies quantization
    noise layer by layer (measured on the default model: cosine 0.9997 after the first conv,
    0.73 after 26 layers) — and the interpreters running the same int8 graph must agree."""
    if dtype == "fp16":  # fp16 weights: ~1e-3 relative error per weight, amplified by untrained nets
        return {"cosine": 0.999, "max_rel_error": 5e-2, "cross_runtime_cosine": 0.999}
    if dtype != "int8":
        return {"cosine": 0.999, "max_rel_error": 1e-3, "cross_runtime_cosine": 0.999}
    return {"cosine": 0.80, "max_rel_error": None, "cross_runtime_cosine": 0.9999}


def check_verification(verification: dict[str, dict], dtype: str) -> None:
    """Raise when an artifact's outputs are further from PyTorch (or the two interpreters from
    each other) than ``tolerance`` allows: such an artifact is never written."""
    tol = tolerance(dtype)
    for rt, m in verification.items():
        floor = tol["cross_runtime_cosine"] if rt.endswith("_vs_litert") else tol["cosine"]
        if m["cosine"] < floor or (dtype != "int8" and m["max_rel_error"] > tol["max_rel_error"]):
            raise EdgekitError(f"verification failed in {rt}: cosine {m['cosine']:.4f}, max rel error "
                               f"{m['max_rel_error']:.3g} (tolerance {tol}); the artifact was not written")
