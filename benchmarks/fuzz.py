"""Fuzz edgekit's inputs: parsers and artifact readers in process, `check`/`profile` as real processes.

Builds its own seed artifacts in a temp folder (a tiny CNN exported with
``edgekit.export.tflite.convert_fp32`` and ``edgekit.export.executorch.export_pte``, a .pt2,
a calibration .npy, a copy of a target TOML and of the mcu recipe), mutates them byte by byte
(bit flips, truncation, byte insertion and deletion, overwriting or filling a random range) and
feeds the results

* in process (thousands of cases): ``parse_size``, ``parse_shape`` and ``parse_spec`` on
  generated strings; ``read_tflite`` + ``analyze`` + the verdict + JSON + ``lint`` (graph rules)
  on mutated .tflite; ``read_pte`` + ``analyze`` on mutated .pte; ``load_target`` on mutated
  target TOML; ``load_recipe`` on mutated recipe.toml; ``load_calibration`` on mutated .npy;
  ``load_model`` on mutated .pt2. Only edgekit's own errors (``EdgekitError``) may escape;
* through the CLI (``python -m edgekit check FILE`` and ``profile FILE --runs 2 --warmup 0``) on
  mutated .tflite and .pte: exit 0/1, or exit 2 with one clean stderr line; never a traceback,
  another exit code, a signal or a hang.

Prints one table: family, cases, ok (a result / exit 0 or 1), clean error (EdgekitError / exit 2
with one line), crashes (any other exception; a traceback, "unexpected ...", another exit code or a
signal), hangs (over --timeout), seconds. Crashing inputs are kept in --keep DIR for reproduction.

Usage: python benchmarks/fuzz.py [--cases 3000] [--cli-cases 160] [--seed 0] [--timeout 120]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import random
import shutil
import signal
import string
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MUTATIONS = ("bitflip", "truncate", "insert", "delete", "overwrite", "fill")


# ---------------------------------------------------------------- mutations

def mutate(blob: bytes, rng: random.Random, kind: str | None = None, *, region: int | None = None) -> bytes:
    """One byte-level mutation of ``blob`` (positions below ``region`` if given)."""
    kind = kind or rng.choice(MUTATIONS)
    b = bytearray(blob)
    n = max(1, min(len(b), region or len(b)))
    if kind == "bitflip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del b[rng.randrange(len(b)):]
    elif kind == "insert":
        i = rng.randrange(n + 1)
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "delete":
        i = rng.randrange(n)
        del b[i:i + rng.randint(1, 64)]
    elif kind == "overwrite":
        i = rng.randrange(n)
        chunk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        b[i:i + len(chunk)] = chunk[:len(b) - i]
    elif kind == "fill":
        i = rng.randrange(n)
        end = min(len(b), i + rng.randint(1, 256))
        b[i:end] = bytes([rng.choice((0x00, 0xFF, 0x7F))]) * (end - i)
    else:  # pragma: no cover
        raise ValueError(kind)
    return bytes(b)


def size_string(rng: random.Random) -> str:
    num = rng.choice([
        str(rng.randint(0, 10**rng.randint(0, 30))), f"{rng.random() * 10**rng.randint(0, 25):.{rng.randint(0, 6)}f}",
        "", ".", "..5", "1.", ".5", "-1", "+1", "1e3", "nan", "inf", "9" * rng.randint(1, 400), "٣", "१२", "1_000",
        "0x10", "1,5", "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 6)))])
    unit = rng.choice(["", "b", "B", "k", "K", "kB", "KB", "KiB", "kib", "m", "MB", "MiB", "G", "GiB", "T",
                       "kBs", "bytes", "µB", "ｋB", "%", "e3", "x"])
    sp = lambda: rng.choice(["", "", " ", "  ", "\t", "\n", "\u00a0"])  # noqa: E731
    return sp() + num + sp() + unit + sp()


def shape_string(rng: random.Random) -> str:
    parts = [rng.choice(["1", "3", "96", "0", "-1", "a", "", " ", "1e3", "2" * rng.randint(1, 30), "٣", "1.5"])
             for _ in range(rng.randint(0, 9))]
    return rng.choice([",", "x", " ", ";", ", ", "×"]).join(parts) if rng.random() < 0.9 else \
        "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 20)))


def spec_string(rng: random.Random, files: dict) -> str:
    head = rng.choice(["mcu_mobilenet_v1", "mobilenet_v2", "squeezenet1_1", "torchvision", "torchvision:resnet18",
                       "os.path", "edgekit.models", "nope", files["py"], files["tflite"], files["pte"], files["pt2"],
                       files["dir"], "x" * rng.randint(200, 5000), "a\x00b", "..", "/", "~",
                       "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 12)))])
    opts = ",".join(f"{rng.choice(['width', 'resolution', 'num_classes', '1x', '', 'a b'])}="
                    f"{rng.choice(['0.35', '96', 'true', '-1', 'nan', '1e400', ''])}"
                    for _ in range(rng.randint(0, 3)))
    sep = rng.choice(["", ":", "::", ":factory:", ":1bad:"])
    return head + sep + (opts if sep else "")


# ---------------------------------------------------------------- seeds

def build_seeds(d: Path) -> dict:
    import numpy as np
    import torch
    from torch import nn

    from edgekit.export.executorch import export_pte
    from edgekit.export.pt2 import save_pt2
    from edgekit.export.tflite import convert_fp32

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 4)).eval()
    x = torch.randn(1, 3, 16, 16)
    (d / "seed.tflite").write_bytes(convert_fp32(m, x))
    (d / "seed.pte").write_bytes(export_pte(m, x, backend="portable", compare_default=False)["bytes"])
    save_pt2(m, (x,), d / "seed.pt2")
    np.save(d / "seed.npy", np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32))
    shutil.copy(ROOT / "targets" / "nrf52840-dk.toml", d / "seed_target.toml")
    shutil.copytree(ROOT / "recipes" / "mcu", d / "recipe")
    (d / "model.py").write_text("def f():\n    return None\n")
    (d / "dir.tflite").mkdir()
    return {k: (d / name).read_bytes() for k, name in (("tflite", "seed.tflite"), ("pte", "seed.pte"),
                                                        ("pt2", "seed.pt2"), ("npy", "seed.npy"),
                                                        ("target", "seed_target.toml"),
                                                        ("recipe", "recipe/recipe.toml"))}


# ---------------------------------------------------------------- in process

class _Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise _Hang


class Tally:
    def __init__(self):
        self.rows: dict[str, collections.Counter] = {}
        self.secs: collections.Counter = collections.Counter()
        self.by_mutation: dict[str, collections.Counter] = {}  # byte-level mutation -> outcomes
        self.examples: list[tuple[str, str, str]] = []  # (family, detail, kept file)

    def add(self, family: str, outcome: str, seconds: float, mutation: str | None = None):
        self.rows.setdefault(family, collections.Counter())[outcome] += 1
        self.secs[family] += seconds
        if mutation is not None:
            where = "cli" if family.startswith("cli") else "in process"
            self.by_mutation.setdefault(f"{mutation} ({where})", collections.Counter())[outcome] += 1
            self.secs[f"{mutation} ({where})"] += seconds

    def crash(self, family, detail, blob, keep: Path | None, suffix: str):
        kept = ""
        if keep is not None and blob is not None:
            keep.mkdir(parents=True, exist_ok=True)
            f = keep / f"{family.replace(':', '_').replace(' ', '_')}_{len(self.examples)}{suffix}"
            f.write_bytes(blob)
            kept = str(f)
        if sum(1 for e in self.examples if e[0] == family) < 3:
            self.examples.append((family, detail, kept))


def in_process(family: str, fn, tally: Tally, timeout: float, *, blob=None, keep=None, suffix="", mutation=None):
    from edgekit.errors import EdgekitError

    t0 = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        fn()
        outcome = "ok"
    except _Hang:
        outcome = "hang"
        tally.crash(family, f"over {timeout} s", blob, keep, suffix)
    except EdgekitError as exc:
        msg = str(exc).strip()
        if msg and "\n" not in msg:
            outcome = "clean"
        else:
            outcome = "crash"
            tally.crash(family, f"EdgekitError with a bad message: {msg[:200]!r}", blob, keep, suffix)
    except Exception as exc:  # noqa: BLE001 - this is what the fuzzer looks for
        outcome = "crash"
        where = traceback.extract_tb(exc.__traceback__)[-1]
        tally.crash(family, f"{type(exc).__name__}: {str(exc)[:160]} ({Path(where.filename).name}:{where.lineno})",
                    blob, keep, suffix)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    tally.add(family, outcome, time.perf_counter() - t0, mutation)


def run_in_process(d: Path, seeds: dict, cases: int, rng: random.Random, tally: Tally, timeout: float, keep):
    import numpy as np

    from edgekit.analysis.api import analyze
    from edgekit.calibration import load_calibration
    from edgekit.graph.pte_reader import read_pte
    from edgekit.graph.tflite_reader import read_tflite
    from edgekit.lint import lint
    from edgekit.loader import load_model, parse_spec
    from edgekit.recipe import load_recipe
    from edgekit.targets import load_target
    from edgekit.units import parse_shape, parse_size

    files = {"py": str(d / "model.py"), "tflite": str(d / "seed.tflite"), "pte": str(d / "seed.pte"),
             "pt2": str(d / "seed.pt2"), "dir": str(d / "dir.tflite")}

    def returns_int(s):
        n = parse_size(s)
        assert type(n) is int and 0 <= n <= 2**62, (s, n)

    def returns_shape(s):
        shape = parse_shape(s)
        assert shape and all(type(x) is int and x > 0 for x in shape), (s, shape)

    # strings: a share of the cases each
    n_str = max(1, cases // 6)
    for _ in range(n_str):
        s = size_string(rng)
        in_process("parse_size (strings)", lambda s=s: returns_int(s), tally, timeout)
    for _ in range(n_str // 2):
        s = shape_string(rng)
        in_process("parse_shape (strings)", lambda s=s: returns_shape(s), tally, timeout)
    for _ in range(n_str):
        s = spec_string(rng, files)
        in_process("parse_spec (strings)", lambda s=s: parse_spec(s), tally, timeout)

    # artifacts and files: the rest, most on .tflite and .pte
    def tflite_case(path):
        read_tflite(path)
        r = analyze(str(path))
        r.check(None, sram="256kB", flash="1MB")
        json.dumps(r.to_dict())
        lint(path, runtime_checks=False)

    def pte_case(path):
        read_pte(path)
        r = analyze(str(path))
        r.check(None, sram="256kB", flash="1MB")
        json.dumps(r.to_dict())

    program = struct.unpack_from("<Q", seeds["pte"], 16)[0]
    plan = [(".tflite: read, analyze, lint", "tflite", ".tflite", tflite_case, None, 0.35),
            (".pte: read, analyze", "pte", ".pte", pte_case, program, 0.35),
            ("target .toml: load_target", "target", ".toml", lambda p: load_target(str(p)), None, 0.08),
            ("recipe.toml: load_recipe", "recipe", ".toml", lambda p: load_recipe(p), None, 0.07),
            (".npy: load_calibration", "npy", ".npy", lambda p: load_calibration(str(p), (1, 3, 16, 16)), None,
             0.08),
            (".pt2: load_model", "pt2", ".pt2", lambda p: load_model(str(p)), None, 0.07)]
    rest = cases - 2 * n_str - n_str // 2
    for name, seed, suffix, fn, region, share in plan:
        blob0 = seeds[seed]
        path = (d / "recipe" / "recipe.toml") if seed == "recipe" else d / f"mut{suffix}"
        for _ in range(max(1, int(rest * share))):
            kind = rng.choice(MUTATIONS)
            blob = mutate(blob0, rng, kind, region=region if rng.random() < 0.5 else None)
            path.write_bytes(blob)
            in_process(name, lambda fn=fn, path=path: fn(path), tally, timeout, blob=blob, keep=keep, suffix=suffix,
                       mutation=kind)
        path.write_bytes(blob0)
    _ = np  # numpy is imported for load_calibration's sake (and to fail early if missing)


# ---------------------------------------------------------------- through the CLI

def classify(p: subprocess.CompletedProcess) -> tuple[str, str]:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    if p.returncode < 0:
        return "crash", f"killed by signal {-p.returncode}"
    if "Traceback" in p.stderr:
        return "crash", "traceback: " + " | ".join(lines[-2:])[:300]
    if p.returncode in (0, 1):
        return "ok", ""
    if p.returncode == 2:
        errors = [ln for ln in lines if ln.startswith("edgekit: error:")]
        if len(errors) == 1 and "unexpected" not in errors[0]:
            # progress lines (timed runs) may precede the error; the error itself is one line
            others = [ln for ln in lines if ln not in errors and "timed runs" not in ln]
            if not others:
                return "clean", ""
        return "crash", "exit 2 but not one clean line: " + " | ".join(lines)[:300]
    return "crash", f"exit {p.returncode}: " + " | ".join(lines[-2:])[:300]


def run_cli(d: Path, seeds: dict, cases: int, rng: random.Random, tally: Tally, timeout: float, keep,
            workers: int):
    program = struct.unpack_from("<Q", seeds["pte"], 16)[0]
    jobs = []
    for i in range(cases):
        kind = ("tflite", "pte")[i % 2]
        cmd = ("check", "profile")[(i // 2) % 2]
        mut = rng.choice(MUTATIONS)
        blob = mutate(seeds[kind], rng, mut, region=program if kind == "pte" and rng.random() < 0.5 else None)
        f = d / "cli" / f"m{i}.{kind}"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(blob)
        args = [cmd, f.name] + (["--runs", "2", "--warmup", "0"] if cmd == "profile" else [])
        jobs.append((f"cli: edgekit {' '.join(args[:1])} .{kind}", args, f, blob, mut))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def one(job):
        family, args, f, blob, mut = job
        t0 = time.perf_counter()
        try:
            p = subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True,
                               cwd=f.parent, timeout=timeout, env=env)
            outcome, detail = classify(p)
        except subprocess.TimeoutExpired:
            outcome, detail = "hang", f"over {timeout} s"
        return family, outcome, detail, blob, f.suffix, time.perf_counter() - t0, mut

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for family, outcome, detail, blob, suffix, secs, mut in pool.map(one, jobs):
            tally.add(family, outcome, secs, mut)
            if outcome in ("crash", "hang"):
                tally.crash(family, detail, blob, keep, suffix)


# ---------------------------------------------------------------- report

def print_table(tally: Tally, title: str, families: list[str], rows=None):
    head = f"{'family':34} {'cases':>6} {'ok':>6} {'clean error':>11} {'crashes':>8} {'hangs':>6} {'seconds':>8}"
    print(f"\n{title}\n{head}\n{'-' * len(head)}")
    tot = collections.Counter()
    secs = 0.0
    for fam in families:
        c = (rows or tally.rows)[fam]
        n = sum(c.values())
        tot.update(c)
        secs += tally.secs[fam]
        print(f"{fam:34} {n:>6} {c['ok']:>6} {c['clean']:>11} {c['crash']:>8} {c['hang']:>6} {tally.secs[fam]:>8.1f}")
    print(f"{'total':34} {sum(tot.values()):>6} {tot['ok']:>6} {tot['clean']:>11} {tot['crash']:>8} "
          f"{tot['hang']:>6} {secs:>8.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=3000, help="in-process cases in all (default 3000)")
    ap.add_argument("--cli-cases", type=int, default=160, help="CLI processes in all (default 160)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per CLI process (in process: a tenth)")
    ap.add_argument("--workers", type=int, default=2, help="CLI processes at a time (default 2)")
    ap.add_argument("--keep", metavar="DIR", help="save crashing inputs here")
    args = ap.parse_args(argv)
    if args.cases < 0 or args.cli_cases < 0 or args.timeout <= 0 or args.workers < 1:
        ap.error("--cases and --cli-cases must be >= 0, --timeout > 0, --workers >= 1")
    signal.signal(signal.SIGALRM, _alarm)
    keep = Path(args.keep) if args.keep else None
    rng = random.Random(args.seed)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="edgekit-fuzz-") as tmp:
        d = Path(tmp)
        t0 = time.perf_counter()
        seeds = build_seeds(d)
        print(f"seed artifacts: .tflite {len(seeds['tflite'])} B, .pte {len(seeds['pte'])} B, .pt2 "
              f"{len(seeds['pt2'])} B ({time.perf_counter() - t0:.1f} s)")
        if args.cases:
            run_in_process(d, seeds, args.cases, rng, tally, args.timeout / 10, keep)
        in_proc = list(tally.rows)
        if args.cli_cases:
            run_cli(d, seeds, args.cli_cases, rng, tally, args.timeout, keep, args.workers)
    if in_proc:
        print_table(tally, f"in process (seed {args.seed}): only EdgekitError may escape", in_proc)
    cli = [f for f in tally.rows if f not in in_proc]
    if cli:
        print_table(tally, f"through the CLI (seed {args.seed}, {args.workers} at a time): "
                    "exit 0/1, or 2 with one line", sorted(cli))
    if tally.by_mutation:
        print_table(tally, "the byte-level mutations above, by mutation family", sorted(tally.by_mutation),
                    rows=tally.by_mutation)
    if tally.examples:
        print("\nfirst crashes and hangs:")
        for fam, detail, kept in tally.examples:
            print(f"  {fam}: {detail}" + (f"  [{kept}]" if kept else ""))
    bad = sum(c["crash"] + c["hang"] for c in tally.rows.values())
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
