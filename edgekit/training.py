"""Train the default model (``mcu_mobilenet_v1``: MobileNetV1-0.25, 96×96 RGB, 10 classes) on
scikit-learn's ``load_digits`` and write its package data (see ``edgekit.models.digits``).

Re-run it whenever the architecture changes (a padding, a stride, a layer; the test
``tests/test_default_model.py`` compares the architecture's fingerprint with the one recorded
next to the weights), from the repository root::

    python -m edgekit.training            # writes edgekit/models/data/*
    python -m edgekit.training --check    # trains, compares with the shipped files

Recipe (fixed; nothing is tuned on the held-out split):

- split: per class, a seeded permutation (``numpy.random.default_rng(SEED)``, PCG64, stable
  across NumPy versions) puts ``round(HELDOUT_FRACTION × n_class)`` images in the held-out split
  and the rest in the training split: 1,347 / 450 images, stratified;
- inputs: ``edgekit.images.pixel_samples`` (bicubic 8×8 → 96×96, grey → RGB, ImageNet
  normalisation), exactly what ``--eval``/``--calibration`` apply to a folder of images;
- augmentation: each epoch, every image is shifted by a seeded random offset of up to
  ``SHIFT_PX`` pixels (zero background, i.e. the normalised black) so the network does not
  learn the exact position of the centred digits;
- SGD (momentum 0.9, Nesterov), weight decay ``WEIGHT_DECAY`` (small weights and activations
  quantize well), one-cycle learning rate peaking at ``LR``, batch ``BATCH``, ``EPOCHS`` epochs,
  then BatchNorm statistics re-estimated in eval-mode passes over the unaugmented training split
  (so the folded weights see the activations they will see at inference);
- determinism: ``torch.manual_seed(SEED)``, ``torch.use_deterministic_algorithms(True)`` and
  ``THREADS`` threads (CPU reductions split work by thread: another thread count can change the
  last bits). The same machine, torch version and thread count give bit-identical weights.

The calibration set is ``CALIBRATION_PER_CLASS`` images per class from the training split (seeded),
in an order that interleaves the classes (the build verifies on the first 8).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager

import numpy as np

SEED = 0
HELDOUT_FRACTION = 0.25
EPOCHS = 8
BATCH = 32
LR = 0.05
WEIGHT_DECAY = 4e-5
SHIFT_PX = 8
THREADS = 2
CALIBRATION_PER_CLASS = 10


def split_digits(seed: int = SEED, fraction: float = HELDOUT_FRACTION) -> dict:
    """{"x_train", "y_train", "x_heldout", "y_heldout"}: uint8 (N, 8, 8) pictures and int64 labels."""
    from sklearn.datasets import load_digits

    from edgekit.models.digits import to_pixels

    d = load_digits()
    x, y = to_pixels(d.images), d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(fraction * len(idx)))
        held.append(idx[:k])
        train.append(idx[k:])
    train, held = np.sort(np.concatenate(train)), np.sort(np.concatenate(held))
    return {"x_train": x[train], "y_train": y[train], "x_heldout": x[held], "y_heldout": y[held]}


def calibration_subset(x: np.ndarray, y: np.ndarray, per_class: int = CALIBRATION_PER_CLASS,
                       seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` training pictures per class, seeded, classes interleaved (0, 1, ..., 9, 0, ...)."""
    rng = np.random.default_rng(seed + 1)
    picks = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]
    order = np.stack(picks, axis=1).ravel()  # row r: the r-th pick of every class
    return x[order], y[order]


def _shift(xb, gen, max_px: int):
    """Shift each image by its own (dy, dx) in [-max_px, max_px], filling with zeros."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = xb.shape
    d = torch.randint(-max_px, max_px + 1, (n, 2), generator=gen)
    padded = F.pad(xb, (max_px, max_px, max_px, max_px))
    out = torch.empty_like(xb)
    for i in range(n):
        dy, dx = int(d[i, 0]), int(d[i, 1])
        out[i] = padded[i, :, max_px + dy:max_px + dy + h, max_px + dx:max_px + dx + w]
    return out


def _model():
    import torch

    from edgekit.models import create_model

    with torch.random.fork_rng(devices=[]):  # the caller's random state is left alone
        torch.manual_seed(SEED)
        return create_model("mcu_mobilenet_v1")


@contextmanager
def _deterministic():
    """Deterministic kernels on THREADS threads for the duration, then the caller's settings back."""
    import torch

    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.utils.deterministic.fill_uninitialized_memory, torch.get_num_threads())
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # NaN-filling new tensors cost 30 % here
    torch.set_num_threads(THREADS)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.utils.deterministic.fill_uninitialized_memory = saved[2]
        torch.set_num_threads(saved[3])


def train(x_train: np.ndarray, y_train: np.ndarray, *, epochs: int = EPOCHS, log=None):
    """Train from the uint8 pictures (deterministically, see the module docstring); returns the
    eval-mode model."""
    with _deterministic():
        return _train(x_train, y_train, epochs, log)


def _train(x_train, y_train, epochs, log):
    import torch
    import torch.nn.functional as F

    from edgekit.images import pixel_samples

    cl = torch.channels_last  # MKLDNN's depthwise and 1x1 kernels are faster in NHWC on this CPU
    model = _model().train().to(memory_format=cl)
    x = torch.from_numpy(pixel_samples(x_train, (1, 3, 96, 96))[:, 0])
    y = torch.from_numpy(y_train)
    # the zero background is black after normalisation: shift with the normalised black, not 0
    black = torch.from_numpy(pixel_samples(np.zeros((1, 8, 8), np.uint8), (1, 3, 96, 96))[0, 0, :, :1, :1])
    gen = torch.Generator().manual_seed(SEED)
    steps = epochs * ((len(x) + BATCH - 1) // BATCH)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps, pct_start=0.25)
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        total, correct = 0.0, 0
        for i in range(0, len(x), BATCH):
            idx = perm[i:i + BATCH]
            xb = _shift(x[idx] - black, gen, SHIFT_PX) + black
            logits = model(xb.contiguous(memory_format=cl))
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}, train accuracy {correct / len(x):.4f}")
    return _final_bn(model, x).to(memory_format=torch.contiguous_format)


def _final_bn(model, x):
    """Re-estimate BatchNorm statistics on the unaugmented training inputs (cumulative average)."""
    from edgekit.passes.bn_stats import reestimate_bn_stats

    return reestimate_bn_stats(model.eval(), [x[i:i + 64] for i in range(0, len(x), 64)], inplace=True).eval()


def _logits(model, x_pictures: np.ndarray):
    import torch

    from edgekit.images import pixel_samples

    x = torch.from_numpy(pixel_samples(x_pictures, (1, 3, 96, 96))[:, 0])
    with torch.no_grad():
        return torch.cat([model(x[i:i + 128]) for i in range(0, len(x), 128)]).numpy()


def accuracy(model, x_pictures: np.ndarray, y: np.ndarray) -> float:
    return float((_logits(model, x_pictures).argmax(1) == y).mean())


def describe(model, split: dict, *, epochs: int, seconds: float, cpu_seconds: float, weights_bytes: int) -> dict:
    """What goes into data/mcu_mobilenet_v1_digits.json: the recipe, the time it took, the scores,
    the architecture's fingerprint and the logits of the first 4 held-out images (a change of the
    network's computation, e.g. its padding, changes them: the weights must then be re-trained)."""
    import torch

    from edgekit.models import digits

    cal_n = CALIBRATION_PER_CLASS * len(np.unique(split["y_train"]))
    return {"model": "mcu_mobilenet_v1", "options": digits.TRAINED_OPTIONS,
            "dataset": "sklearn.datasets.load_digits", "seed": SEED, "heldout_fraction": HELDOUT_FRACTION,
            "train_samples": len(split["y_train"]), "heldout_samples": len(split["y_heldout"]),
            "calibration_samples": cal_n, "epochs": epochs, "batch": BATCH, "lr": LR,
            "weight_decay": WEIGHT_DECAY, "shift_px": SHIFT_PX, "threads": THREADS, "torch": torch.__version__,
            "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu_seconds, 1),
            "fp32_heldout_accuracy": accuracy(model, split["x_heldout"], split["y_heldout"]),
            "fp32_train_accuracy": accuracy(model, split["x_train"], split["y_train"]),
            "architecture": digits.architecture_fingerprint(model), "weights_bytes": int(weights_bytes),
            "reference_logits": np.round(_logits(model, split["x_heldout"][:4]), 4).tolist()}


def main(argv=None) -> int:
    import io

    import torch

    from edgekit.models import digits

    p = argparse.ArgumentParser(prog="python -m edgekit.training", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--check", action="store_true", help="train and compare with the shipped files; write nothing")
    args = p.parse_args(argv)
    split = split_digits()
    t0, c0 = time.perf_counter(), time.process_time()
    model = train(split["x_train"], split["y_train"], epochs=args.epochs, log=lambda s: print(s, flush=True))
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    cal_x, cal_y = calibration_subset(split["x_train"], split["y_train"])
    info = describe(model, split, epochs=args.epochs, seconds=seconds, cpu_seconds=cpu_seconds,
                    weights_bytes=len(buf.getvalue()))
    print(json.dumps(info, indent=2))
    if args.check:
        return _check(state, split, cal_x)
    digits.DATA_DIR.mkdir(parents=True, exist_ok=True)
    digits.WEIGHTS.write_bytes(buf.getvalue())
    np.savez_compressed(digits.HELDOUT, x=split["x_heldout"], y=split["y_heldout"])
    np.savez_compressed(digits.CALIBRATION, x=cal_x, y=cal_y)
    digits.INFO.write_text(json.dumps(info, indent=2) + "\n")
    return 0


def _check(state, split, cal_x) -> int:
    import torch

    from edgekit.models import digits

    shipped = torch.load(digits.WEIGHTS, weights_only=True)
    same_w = shipped.keys() == state.keys() and all(torch.equal(shipped[k], state[k]) for k in state)
    x, y = digits.heldout_pictures()
    same_d = np.array_equal(x, split["x_heldout"]) and np.array_equal(y, split["y_heldout"])
    with np.load(digits.CALIBRATION) as z:
        same_c = np.array_equal(z["x"], cal_x)
    print(f"weights identical: {same_w}; held-out split identical: {same_d}; calibration identical: {same_c}")
    return 0 if same_w and same_d and same_c else 1


if __name__ == "__main__":
    sys.exit(main())
