"""edgekit.evaluation: labelled data, metrics and the runners, each checked against an independent
computation: scipy/scikit-learn for the metrics, and each runtime's own Python API (ai_edge_litert's
Interpreter, tflite_micro, executorch.runtime, the PyTorch module called directly) on the shipped
held-out split of scikit-learn's digits."""

from __future__ import annotations

import json
import math

import default_build  # tests/ is on sys.path under pytest
import numpy as np
import pytest

from edgekit.errors import UsageError
from edgekit.evaluation import (
    EvalData,
    evaluate_build,
    evaluate_executorch,
    evaluate_litert,
    evaluate_tflm,
    evaluate_torch,
    load_eval_data,
    score,
    wilson_interval,
)
from edgekit.models import digits

SHAPE = (1, 3, 96, 96)


# ---- metrics -------------------------------------------------------------------------------------

@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (3, 7), (445, 450), (1, 1), (50, 100), (449, 450)])
def test_wilson_interval_matches_scipy(k, n):
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def _logits(n=500, k=12, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.standard_normal((n, k))
    logits[np.arange(n), labels] += 1.2  # better than chance, far from perfect
    return logits, labels


def test_accuracy_confusion_and_per_class_match_sklearn():
    from sklearn.metrics import accuracy_score, confusion_matrix, recall_score, top_k_accuracy_score

    logits, labels = _logits()
    res = score(logits, labels, name="m", runtime="pytorch")
    pred = logits.argmax(1)
    k = logits.shape[1]
    assert res.top1.accuracy == accuracy_score(labels, pred)
    assert res.top1.correct == int(np.sum(pred == labels)) and res.samples == len(labels)
    assert res.top5.accuracy == pytest.approx(top_k_accuracy_score(labels, logits, k=5, labels=list(range(k))))
    assert res.confusion == confusion_matrix(labels, pred, labels=list(range(k))).tolist()
    recall = recall_score(labels, pred, average=None, labels=list(range(k)), zero_division=0)
    assert [p["accuracy"] for p in res.per_class] == pytest.approx(recall.tolist())
    assert [p["samples"] for p in res.per_class] == np.bincount(labels, minlength=k).tolist()
    lo, hi = res.top1.ci_low, res.top1.ci_high
    assert lo < res.top1.accuracy < hi
    json.dumps(res.to_dict())
    # below 10 classes top-5 says little: not reported
    assert score(logits[:, :5], labels % 5, name="m", runtime="pytorch").top5 is None


def test_agreement_with_a_reference_matches_an_independent_computation():
    from scipy.spatial.distance import cosine
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    a, labels = _logits(seed=1)
    b = a + np.random.default_rng(2).normal(0, 0.6, a.shape)  # a noisy copy, as int8 would be
    ref = score(a, labels, name="fp32", runtime="pytorch")
    got = score(b, labels, name="int8", runtime="litert", reference=ref).vs_reference
    assert got.reference == "fp32"
    assert got.cosine == pytest.approx(1 - cosine(a.ravel(), b.ravel()), abs=1e-12)
    assert got.l2_relative_error == pytest.approx(math.sqrt(((b - a) ** 2).sum() / (a ** 2).sum()))
    assert got.mae == pytest.approx(mean_absolute_error(a.ravel(), b.ravel()))
    assert got.rmse == pytest.approx(math.sqrt(mean_squared_error(a.ravel(), b.ravel())))
    ra, rb = a.argmax(1) == labels, b.argmax(1) == labels
    assert got.top1_agreement == pytest.approx(np.mean(a.argmax(1) == b.argmax(1)))
    assert got.accuracy_delta_pp == pytest.approx(100 * (rb.mean() - ra.mean()))
    assert (got.gained, got.lost) == (int(np.sum(rb & ~ra)), int(np.sum(ra & ~rb)))


def test_score_refuses_labels_outside_the_outputs():
    logits, labels = _logits(k=4)
    with pytest.raises(UsageError, match="outside the model's 3 classes"):
        score(logits[:, :3], labels, name="m", runtime="pytorch")


# ---- data ----------------------------------------------------------------------------------------

def _png_folder(root, x, y):
    from PIL import Image

    for i, (p, c) in enumerate(zip(x, y)):
        d = root / str(int(c))
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(p).save(d / f"{i:04d}.png")
    return root


def test_npz_and_a_folder_of_the_same_pngs_give_identical_samples(tmp_path):
    from PIL import Image

    x, y = digits.heldout_pictures()
    a = load_eval_data(digits.HELDOUT, SHAPE, num_classes=10)
    b = load_eval_data(_png_folder(tmp_path / "digits", x, y), SHAPE, num_classes=10)
    assert a.x.shape == (450, 1, 3, 96, 96) and a.x.dtype == np.float32 and a.y.dtype == np.int64
    idx = [int(f.rsplit("/", 1)[-1][:-4]) for f in b.files]
    assert np.array_equal(a.x[idx], b.x) and np.array_equal(a.y[idx], b.y)
    assert b.class_names == [str(i) for i in range(10)] and a.describe()["samples_per_class"] == np.bincount(y).tolist()
    # the preprocessing written out here: bicubic 8x8 -> 96x96, grey -> RGB, /255, ImageNet mean/std
    im = np.asarray(Image.fromarray(x[7]).convert("RGB").resize((96, 96), Image.Resampling.BICUBIC), np.float32)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(a.x[7, 0], ((im / 255.0 - mean) / std).transpose(2, 0, 1), atol=1e-6)


def test_non_integer_class_folders_follow_sorted_names(tmp_path):
    from PIL import Image

    x, _ = digits.heldout_pictures()
    root = tmp_path / "animals"
    for name, i in (("dog", 0), ("cat", 1), ("owl", 2)):
        (root / name).mkdir(parents=True)
        Image.fromarray(x[i]).save(root / name / "a.png")
    (root / "emu").mkdir()  # an empty class folder still takes its place in the numbering
    d = load_eval_data(root, SHAPE)
    assert d.class_names == ["cat", "dog", "emu", "owl"] and d.y.tolist() == [0, 1, 3]


def test_float_npz_is_taken_as_preprocessed_samples(tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 3, 96, 96)).astype(np.float32)
    np.savez(tmp_path / "f.npz", x=x, y=np.arange(5))
    d = load_eval_data(tmp_path / "f.npz", SHAPE)
    assert np.array_equal(d.x[:, 0], x) and d.y.tolist() == list(range(5))


def _bad_cases(tmp):
    """(source, num_classes, expected message part, the file or folder the message must name)."""
    x, y = digits.heldout_pictures()
    cases = []
    empty = tmp / "empty"
    empty.mkdir()
    cases.append((empty, None, "no images", empty))
    notes = tmp / "notes" / "cat"
    notes.mkdir(parents=True)
    (notes / "README.txt").write_text("not an image")
    cases.append((notes.parent, None, "no images", notes.parent))
    stray = _png_folder(tmp / "stray", x[:2], y[:2])
    (stray / "loose.png").write_bytes((stray / str(y[0]) / "0000.png").read_bytes())
    cases.append((stray, None, "not inside a class folder", "loose.png"))
    broken = _png_folder(tmp / "broken", x[:2], y[:2])
    (broken / "3").mkdir(exist_ok=True)
    (broken / "3" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    cases.append((broken, None, "cannot read image", broken / "3" / "bad.png"))
    high = _png_folder(tmp / "high", x[:1], [12])
    cases.append((high, 10, "label 12 is outside the model's 10 classes", high))
    np.savez(tmp / "noy.npz", x=x)
    cases.append((tmp / "noy.npz", None, "no 'y' array", tmp / "noy.npz"))
    np.savez(tmp / "short.npz", x=x, y=y[:-3])
    cases.append((tmp / "short.npz", None, "450 sample(s) but y holds 447", tmp / "short.npz"))
    np.savez(tmp / "labels.npz", x=x, y=np.where(y == 3, 10, y))
    cases.append((tmp / "labels.npz", 10, "label 10 is outside", tmp / "labels.npz"))
    np.savez(tmp / "neg.npz", x=x, y=np.where(y == 3, -1, y))
    cases.append((tmp / "neg.npz", 10, "label -1 is outside", tmp / "neg.npz"))
    np.savez(tmp / "floaty.npz", x=x, y=y + 0.5)
    cases.append((tmp / "floaty.npz", None, "integer class labels", tmp / "floaty.npz"))
    np.savez(tmp / "shape.npz", x=np.zeros((4, 3, 64, 64), np.float32), y=np.arange(4))
    cases.append((tmp / "shape.npz", None, "does not fit the model input", tmp / "shape.npz"))
    np.savez(tmp / "nchw8.npz", x=np.zeros((4, 3, 96, 96), np.uint8), y=np.arange(4))
    cases.append((tmp / "nchw8.npz", None, "pictures shaped (N, H, W)", tmp / "nchw8.npz"))
    nan = np.zeros((2, 3, 96, 96), np.float32)
    nan[1, 0, 0, 0] = np.nan
    np.savez(tmp / "nan.npz", x=nan, y=np.arange(2))
    cases.append((tmp / "nan.npz", None, "NaN", tmp / "nan.npz"))
    np.savez(tmp / "none.npz", x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, np.int64))
    cases.append((tmp / "none.npz", None, "no samples", tmp / "none.npz"))
    (tmp / "text.npz").write_text("hello")
    cases.append((tmp / "text.npz", None, "cannot read", tmp / "text.npz"))
    (tmp / "data.csv").write_text("1,2")
    cases.append((tmp / "data.csv", None, "folder of class folders", tmp / "data.csv"))
    cases.append((tmp / "missing", None, "no such evaluation data", tmp / "missing"))
    return cases


def test_bad_data_is_one_usage_error_line_naming_the_file(tmp_path):
    for source, num_classes, part, names in _bad_cases(tmp_path):
        with pytest.raises(UsageError) as info:
            load_eval_data(source, SHAPE, num_classes=num_classes)
        msg = str(info.value)
        assert part in msg and str(names) in msg and "\n" not in msg, (source, msg)


# ---- runners, against each runtime's own API --------------------------------------------------

@pytest.fixture(scope="module")
def data():
    return load_eval_data(digits.HELDOUT, SHAPE, num_classes=10)


@pytest.fixture(scope="module")
def int8(tmp_path_factory):
    return default_build.built("int8", tmp_path_factory.mktemp("eval-int8"))


def _own_int8_io(detail):
    q = detail["quantization_parameters"]
    return float(q["scales"][0]), int(q["zero_points"][0])


def _accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, 1) == labels))


def test_torch_runner_matches_the_module_called_directly(data):
    import torch

    from edgekit.loader import load_model

    module = load_model(None).module
    res = evaluate_torch(module, data)
    with torch.no_grad():  # other batches than the runner's 64
        own = np.concatenate([module(torch.from_numpy(data.x[i:i + 90, 0])).numpy() for i in range(0, 450, 90)])
    np.testing.assert_allclose(res.outputs, own, rtol=1e-4, atol=1e-4)
    assert res.top1.accuracy == _accuracy(own, data.y) and res.name == "PyTorch fp32"


@pytest.mark.slow
def test_litert_runner_matches_ai_edge_litert(int8, data):
    from ai_edge_litert.interpreter import Interpreter

    path = int8.output / "model.tflite"
    res = evaluate_litert(path, data)
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    ind, outd = it.get_input_details()[0], it.get_output_details()[0]
    (si, zi), (so, zo) = _own_int8_io(ind), _own_int8_io(outd)
    own = []
    for s in data.x:
        it.set_tensor(ind["index"], np.clip(np.round(s / si) + zi, -128, 127).astype(np.int8))
        it.invoke()
        own.append((it.get_tensor(outd["index"]).astype(np.float32) - zo) * so)
    own = np.concatenate(own)
    np.testing.assert_array_equal(res.outputs, own)
    assert res.top1.correct == int(np.sum(own.argmax(1) == data.y)) and res.name == "LiteRT int8"


@pytest.mark.slow
def test_tflm_runner_matches_tflite_micro(int8, data):
    from tflite_micro.python.tflite_micro import runtime

    path = int8.output / "model.tflite"
    arena = int8.report.to_dict()["arena_bytes"]["c_constant"]
    res = evaluate_tflm(path, data, arena_size=arena)
    it = runtime.Interpreter.from_file(str(path), arena_size=arena)
    (si, zi), (so, zo) = _own_int8_io(it.get_input_details(0)), _own_int8_io(it.get_output_details(0))
    own = []
    for s in data.x:
        it.set_input(np.clip(np.round(s / si) + zi, -128, 127).astype(np.int8), 0)
        it.invoke()
        own.append((it.get_output(0).astype(np.float32) - zo) * so)
    own = np.concatenate(own)
    np.testing.assert_array_equal(res.outputs, own)
    assert res.top1.accuracy == _accuracy(own, data.y) and res.details["arena_bytes"] == arena


@pytest.mark.slow
def test_executorch_runner_matches_executorch_runtime(tmp_path_factory, data):
    import torch
    from executorch.runtime import Runtime

    pte = default_build.built("pte", tmp_path_factory.mktemp("eval-pte")).output / "model.pte"
    res = evaluate_executorch(pte, data)
    method = Runtime.get().load_program(str(pte)).load_method("forward")
    own = np.concatenate([method.execute([torch.from_numpy(s)])[0].numpy() for s in data.x])
    np.testing.assert_array_equal(res.outputs, own)
    assert res.top1.accuracy == _accuracy(own, data.y)


@pytest.mark.slow
def test_evaluate_build_reports_every_runtime_and_plots(int8, data, tmp_path):
    from edgekit.loader import load_model
    from edgekit.report.eval_plots import confusion_matrix_plot

    arena = int8.report.to_dict()["arena_bytes"]["c_constant"]
    rep = evaluate_build(data, module=load_model(None).module, artifact=int8.output / "model.tflite",
                         runtime="tflite-micro", arena_size=arena)
    assert [r.name for r in rep.results] == ["PyTorch fp32", "LiteRT int8", "TFLite-Micro int8"]
    assert rep.reference.vs_reference is None
    for r in rep.results[1:]:
        v = r.vs_reference
        assert v.reference == "PyTorch fp32"
        assert v.accuracy_delta_pp == pytest.approx(100 * (r.top1.accuracy - rep.reference.top1.accuracy))
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["data"]["samples"] == 450 and len(d["results"]) == 3 and d["results"][2]["details"]["arena_bytes"] == arena
    png = confusion_matrix_plot(rep, tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_data_passes_through(data):
    assert load_eval_data(data, SHAPE, num_classes=10) is data
    with pytest.raises(UsageError, match="outside the model's 5 classes"):
        load_eval_data(EvalData(x=data.x[:20], y=data.y[:20], source="digits"), SHAPE, num_classes=5)
