"""The device catalogue: load and validate ``targets/*.toml`` (stdlib only: no torch, no numpy).

A target is one TOML file whose stem is its id (``targets/nucleo-h743zi.toml`` is
``nucleo-h743zi``).  Users can pass their own file by path.  Every key is checked:
an unknown key, a missing key, a wrong type or an impossible value raises
:class:`TargetError` naming the file and the dotted key (``memory.sram_kib``).

Schema (units live in the key names)::

    id = "my-board"                 # optional; must equal the file stem
    name = "My Board"
    kind = "mcu"                    # mcu | sbc | phone | host
    vendor = "..."                  # optional
    notes = "..."                   # optional free text
    [cpu]        core, arch, freq_mhz, num_cores, features = [...]
    [memory]     mcu: sram_kib, flash_kib, arena_budget_kib (optional, <= sram_kib)
                 others: ram_mib, storage_gib (optional)
    [runtime]    default (tflite-micro | litert | executorch), dtype (int8 | fp16 | fp32),
                 profile (host | ssh | adb | emulated), kernels (mcu, optional: reference |
                 cmsis-nn; default cmsis-nn on a Cortex-M core)
    [latency]    mcu: op_overhead_cycles and a [latency.cycles_per_mac] table with
                      conv2d, depthwise_conv2d, linear, elementwise, pool
                 others (roofline): peak_gmacs_fp32, peak_gmacs_int8, peak_gmacs_fp16 (optional),
                      mem_bandwidth_gbps, op_overhead_us, threads (optional)
    [[published]]  model, dtype, latency_ms, source, split (calibration | validation | context),
                   and optionally runtime, threads, input_shape, macs, task, uncertain, note

``split = "context"`` marks a published number measured with a different inference
engine (X-CUBE-AI, microTVM, TFLM reference kernels, ...): worth showing, not for fitting
the target's own latency model.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.errors import ConfigError
from edgekit.tomlcheck import TomlChecker, describe

__all__ = [
    "TargetError",
    "Target",
    "Cpu",
    "Memory",
    "RuntimeDefaults",
    "CyclesPerMac",
    "LatencyParams",
    "Published",
    "load_target",
    "list_targets",
    "target_ids",
    "targets_dir",
    "target_from_dict",
    "KINDS",
    "RUNTIMES",
    "RUNTIMES_BY_KIND",
    "KERNEL_LIBRARIES",
    "DTYPES",
    "PROFILES",
    "SPLITS",
    "OP_KINDS",
    "FEATURES",
]

KINDS = ("mcu", "sbc", "phone", "host")
RUNTIMES = ("tflite-micro", "litert", "executorch")
DTYPES = ("int8", "fp16", "fp32")
# TFLite-Micro kernel libraries: the reference kernels (what the host interpreter runs) and CMSIS-NN
# (what Arm Cortex-M boards run); memory plans and scratch buffers depend on which one a board runs
KERNEL_LIBRARIES = ("reference", "cmsis-nn")
PROFILES = ("host", "ssh", "adb", "emulated")
SPLITS = ("calibration", "validation", "context")
OP_KINDS = ("conv2d", "depthwise_conv2d", "linear", "elementwise", "pool")
# SIMD / DSP / FPU features a cost model may care about; a typo is an error, not a silent no-op.
FEATURES = (
    "dsp", "fpu-sp", "fpu-dp", "helium",  # Cortex-M
    "neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2",  # Cortex-A
    "sse4.2", "avx", "avx2", "fma", "avx512", "avx512-vnni", "avx512-bf16", "avx-vnni", "amx",  # x86
)
RUNTIMES_BY_KIND = {
    "mcu": ("tflite-micro", "executorch"),
    "sbc": ("litert", "executorch"),
    "phone": ("litert", "executorch"),
    "host": ("litert", "executorch"),
}
_PROFILES_BY_KIND = {
    "mcu": ("emulated",),
    "sbc": ("ssh", "host", "emulated"),
    "phone": ("adb", "emulated"),
    "host": ("host", "emulated"),
}
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_KIND_ORDER = {k: i for i, k in enumerate(KINDS)}


class TargetError(ConfigError):
    """A target name that does not exist, or a target file that is not valid."""


# ----------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Cpu:
    core: str
    arch: str
    freq_mhz: float
    num_cores: int
    features: tuple[str, ...] = ()

    @property
    def freq_hz(self) -> float:
        return self.freq_mhz * 1e6


@dataclass(frozen=True)
class Memory:
    """Sizes as written in the file; use the ``Target`` properties for bytes."""

    sram_kib: float | None = None
    arena_budget_kib: float | None = None
    flash_kib: float | None = None
    ram_mib: float | None = None
    storage_gib: float | None = None


@dataclass(frozen=True)
class RuntimeDefaults:
    default: str
    dtype: str
    profile: str
    kernels: str | None = None  # TFLite-Micro kernel library (mcu only); None: see Target.kernels


@dataclass(frozen=True)
class CyclesPerMac:
    """MCU cost per multiply-accumulate (per output element for elementwise ops, per window
    element for pooling), in CPU cycles, for the int8 kernels of the default runtime."""

    conv2d: float
    depthwise_conv2d: float
    linear: float
    elementwise: float
    pool: float

    def __getitem__(self, op_kind: str) -> float:
        if op_kind not in OP_KINDS:
            raise KeyError(f"unknown op kind {op_kind!r}: choose one of {', '.join(OP_KINDS)}")
        return getattr(self, op_kind)

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in OP_KINDS}


@dataclass(frozen=True)
class LatencyParams:
    """Parameters of the emulated latency model.

    ``model == "mcu-cycles"``: latency = sum(macs * cycles_per_mac[op] + op_overhead_cycles) / clock.
    ``model == "roofline"``: per op max(macs / peak_gmacs(dtype), bytes / mem_bandwidth) + op_overhead_us,
    with the peaks measured (or assumed) for ``threads`` threads.
    """

    model: str
    cycles_per_mac: CyclesPerMac | None = None
    op_overhead_cycles: float | None = None
    peak_gmacs_fp32: float | None = None
    peak_gmacs_fp16: float | None = None
    peak_gmacs_int8: float | None = None
    mem_bandwidth_gbps: float | None = None
    op_overhead_us: float | None = None
    threads: int | None = None

    def peak_gmacs(self, dtype: str) -> float:
        """Peak GMAC/s for a dtype (fp16 falls back to fp32 when the file gives no fp16 peak)."""
        if self.model != "roofline":
            raise TargetError("peak_gmacs is defined for roofline (sbc/phone/host) targets only")
        if dtype not in DTYPES:
            raise TargetError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
        if dtype == "int8":
            return self.peak_gmacs_int8
        if dtype == "fp16" and self.peak_gmacs_fp16 is not None:
            return self.peak_gmacs_fp16
        return self.peak_gmacs_fp32


@dataclass(frozen=True)
class Published:
    """One published latency measurement for this device (see docs/targets.md)."""

    model: str
    dtype: str
    latency_ms: float
    source: str
    split: str
    runtime: str | None = None
    threads: int | None = None
    input_shape: tuple[int, ...] | None = None
    macs: int | None = None
    task: str | None = None
    uncertain: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Target:
    id: str
    name: str
    kind: str
    cpu: Cpu
    memory: Memory
    runtime: RuntimeDefaults
    latency: LatencyParams
    published: tuple[Published, ...] = ()
    vendor: str | None = None
    notes: str | None = None
    path: str | None = None

    @property
    def is_mcu(self) -> bool:
        return self.kind == "mcu"

    @property
    def clock_hz(self) -> float:
        return self.cpu.freq_hz

    @property
    def sram_bytes(self) -> int | None:
        """The tensor-arena budget of an MCU (largest usable contiguous region, else all SRAM)."""
        if not self.is_mcu:
            return None
        kib = self.memory.arena_budget_kib if self.memory.arena_budget_kib is not None else self.memory.sram_kib
        return _kib(kib)

    @property
    def total_sram_bytes(self) -> int | None:
        return _kib(self.memory.sram_kib) if self.is_mcu else None

    @property
    def flash_bytes(self) -> int | None:
        return _kib(self.memory.flash_kib) if self.is_mcu else None

    @property
    def ram_bytes(self) -> int | None:
        return None if self.memory.ram_mib is None else int(round(self.memory.ram_mib * 1024 * 1024))

    @property
    def storage_bytes(self) -> int | None:
        return None if self.memory.storage_gib is None else int(round(self.memory.storage_gib * 1024**3))

    @property
    def memory_budget_bytes(self) -> int | None:
        """What the model's working memory must fit in: the arena budget (MCU) or the RAM."""
        return self.sram_bytes if self.is_mcu else self.ram_bytes

    @property
    def kernels(self) -> str:
        """The TFLite-Micro kernel library the board runs: the file's ``runtime.kernels``, else
        CMSIS-NN on an Arm Cortex-M core and the reference kernels elsewhere."""
        if self.runtime.kernels is not None:
            return self.runtime.kernels
        return "cmsis-nn" if self.cpu.core.lower().startswith("cortex-m") else "reference"

    @property
    def calibration(self) -> tuple[Published, ...]:
        return tuple(p for p in self.published if p.split == "calibration")

    @property
    def validation(self) -> tuple[Published, ...]:
        return tuple(p for p in self.published if p.split == "validation")

    def to_dict(self) -> dict:
        return asdict(self)


def _kib(kib: float | None) -> int | None:
    return None if kib is None else int(round(kib * 1024))


# ----------------------------------------------------------------------------- validation


class _Checker(TomlChecker):
    """Reads one parsed TOML document, raising TargetError that names file and dotted key."""

    error = TargetError


_TOP_KEYS = ("id", "name", "kind", "vendor", "notes", "cpu", "memory", "runtime", "latency", "published")
_CPU_KEYS = ("core", "arch", "freq_mhz", "num_cores", "features")
_MCU_MEMORY_KEYS = ("sram_kib", "arena_budget_kib", "flash_kib")
_OTHER_MEMORY_KEYS = ("ram_mib", "storage_gib")
_MCU_LATENCY_KEYS = ("cycles_per_mac", "op_overhead_cycles")
_ROOFLINE_KEYS = ("peak_gmacs_fp32", "peak_gmacs_fp16", "peak_gmacs_int8", "mem_bandwidth_gbps",
                  "op_overhead_us", "threads")
_PUBLISHED_KEYS = ("model", "dtype", "latency_ms", "source", "split", "runtime", "threads", "input_shape",
                   "macs", "task", "uncertain", "note")


def target_from_dict(data, *, source: str = "<target>", stem: str | None = None) -> Target:
    """Validate a parsed TOML document and build a Target.

    ``stem`` is the file stem: the id defaults to it, and an explicit ``id`` must equal it.
    Raises TargetError (naming ``source`` and the dotted key) for anything invalid.
    """
    c = _Checker(source)
    if not isinstance(data, dict):
        c.fail(None, f"a target must be a TOML table, got {describe(data)}")
    c.keys(data, _TOP_KEYS, "")
    tid = _target_id(c, data, stem)
    name = c.string(data, "name", "")
    kind = c.string(data, "kind", "", choices=KINDS)
    vendor = c.string(data, "vendor", "", required=False)
    notes = c.string(data, "notes", "", required=False)
    return Target(id=tid, name=name, kind=kind, cpu=_cpu(c, data), memory=_memory(c, data, kind),
                  runtime=_runtime(c, data, kind), latency=_latency(c, data, kind), published=_published(c, data),
                  vendor=vendor, notes=notes, path=None if source.startswith("<") else source)


def _target_id(c: _Checker, data: dict, stem: str | None) -> str:
    tid = c.string(data, "id", "", required=stem is None)
    rule = "must start with a letter or digit and use only letters, digits, '.', '_', '+', '-'"
    if tid is None:
        tid = stem
        if not _ID_RE.match(tid):
            c.fail("id", f"the file name stem {tid!r} is the target id and {rule}; rename the file")
    if stem is not None and tid != stem:
        c.fail("id", f"id {tid!r} must equal the file name stem {stem!r} (rename the file or fix the id)")
    if not _ID_RE.match(tid):
        c.fail("id", f"id {tid!r} {rule}")
    return tid


def _cpu(c: _Checker, data: dict) -> Cpu:
    cpu_t = c.table(data, "cpu", "")
    c.keys(cpu_t, _CPU_KEYS, "cpu")
    return Cpu(
        core=c.string(cpu_t, "core", "cpu"),
        arch=c.string(cpu_t, "arch", "cpu"),
        freq_mhz=c.number(cpu_t, "freq_mhz", "cpu", maximum=10_000),
        num_cores=c.integer(cpu_t, "num_cores", "cpu", maximum=1024),
        features=c.string_list(cpu_t, "features", "cpu", choices=FEATURES),
    )


def _memory(c: _Checker, data: dict, kind: str) -> Memory:
    mem_t = c.table(data, "memory", "")
    if kind == "mcu":
        c.keys(mem_t, _MCU_MEMORY_KEYS, "memory", hint=" (an mcu has sram_kib/flash_kib, not ram_mib)")
        sram = c.number(mem_t, "sram_kib", "memory", maximum=1024 * 1024)
        arena = c.number(mem_t, "arena_budget_kib", "memory", required=False, maximum=1024 * 1024)
        flash = c.number(mem_t, "flash_kib", "memory", maximum=1024 * 1024)
        if arena is not None and arena > sram:
            c.fail("memory.arena_budget_kib", f"arena budget {arena} KiB exceeds the SRAM ({sram} KiB)")
        return Memory(sram_kib=sram, arena_budget_kib=arena, flash_kib=flash)
    c.keys(mem_t, _OTHER_MEMORY_KEYS, "memory", hint=f" (a {kind} has ram_mib, not sram_kib/flash_kib)")
    return Memory(ram_mib=c.number(mem_t, "ram_mib", "memory", maximum=16 * 1024 * 1024),
                  storage_gib=c.number(mem_t, "storage_gib", "memory", required=False, maximum=1024 * 1024))


def _runtime(c: _Checker, data: dict, kind: str) -> RuntimeDefaults:
    rt_t = c.table(data, "runtime", "")
    c.keys(rt_t, ("default", "dtype", "profile", "kernels"), "runtime")
    runtime = RuntimeDefaults(
        default=c.string(rt_t, "default", "runtime", choices=RUNTIMES),
        dtype=c.string(rt_t, "dtype", "runtime", choices=DTYPES),
        profile=c.string(rt_t, "profile", "runtime", choices=PROFILES),
        kernels=c.string(rt_t, "kernels", "runtime", required=False, choices=KERNEL_LIBRARIES),
    )
    if runtime.kernels is not None and kind != "mcu":
        c.fail("runtime.kernels", "the TFLite-Micro kernel library applies to a microcontroller (kind = \"mcu\")")
    if runtime.default not in RUNTIMES_BY_KIND[kind]:
        c.fail("runtime.default", f"{runtime.default!r} does not run on a {kind}; "
                                  f"choose one of {', '.join(RUNTIMES_BY_KIND[kind])}")
    if runtime.profile not in _PROFILES_BY_KIND[kind]:
        c.fail("runtime.profile", f"profile {runtime.profile!r} does not apply to a {kind}; "
                                  f"choose one of {', '.join(_PROFILES_BY_KIND[kind])}")
    return runtime


def _latency(c: _Checker, data: dict, kind: str) -> LatencyParams:
    lat_t = c.table(data, "latency", "")
    if kind == "mcu":
        c.keys(lat_t, _MCU_LATENCY_KEYS, "latency", hint=" (an mcu uses the cycles model)")
        cpm_t = c.table(lat_t, "cycles_per_mac", "latency")
        c.keys(cpm_t, OP_KINDS, "latency.cycles_per_mac")
        cpm = CyclesPerMac(**{k: c.number(cpm_t, k, "latency.cycles_per_mac", maximum=10_000) for k in OP_KINDS})
        return LatencyParams(
            model="mcu-cycles", cycles_per_mac=cpm,
            op_overhead_cycles=c.number(lat_t, "op_overhead_cycles", "latency", positive=False, maximum=1e9),
        )
    c.keys(lat_t, _ROOFLINE_KEYS, "latency", hint=f" (a {kind} uses the roofline model)")
    return LatencyParams(
        model="roofline",
        peak_gmacs_fp32=c.number(lat_t, "peak_gmacs_fp32", "latency", maximum=1e6),
        peak_gmacs_fp16=c.number(lat_t, "peak_gmacs_fp16", "latency", required=False, maximum=1e6),
        peak_gmacs_int8=c.number(lat_t, "peak_gmacs_int8", "latency", maximum=1e6),
        mem_bandwidth_gbps=c.number(lat_t, "mem_bandwidth_gbps", "latency", maximum=1e5),
        op_overhead_us=c.number(lat_t, "op_overhead_us", "latency", positive=False, maximum=1e6),
        threads=c.integer(lat_t, "threads", "latency", required=False, maximum=1024),
    )


def _published(c: _Checker, data: dict) -> tuple[Published, ...]:
    if "published" not in data:
        return ()
    rows = data["published"]
    if not isinstance(rows, list):
        c.fail("published", f"must be an array of tables ([[published]]), got {describe(rows)}")
    return tuple(_published_row(c, row, f"published[{i}]") for i, row in enumerate(rows))


def _published_row(c: _Checker, row, where: str) -> Published:
    if not isinstance(row, dict):
        c.fail(where, f"must be a table, got {describe(row)}")
    c.keys(row, _PUBLISHED_KEYS, where)
    shape = None
    if "input_shape" in row:
        raw = row["input_shape"]
        if not isinstance(raw, list) or not raw or len(raw) > 6 or any(
                isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in raw):
            c.fail(f"{where}.input_shape", f"must be a list of 1 to 6 positive integers, got {describe(raw)}")
        shape = tuple(raw)
    return Published(
        model=c.string(row, "model", where),
        dtype=c.string(row, "dtype", where, choices=DTYPES),
        latency_ms=c.number(row, "latency_ms", where, maximum=1e9),
        source=c.string(row, "source", where),
        split=c.string(row, "split", where, choices=SPLITS),
        runtime=c.string(row, "runtime", where, required=False),
        threads=c.integer(row, "threads", where, required=False, maximum=1024),
        input_shape=shape,
        macs=c.integer(row, "macs", where, required=False, maximum=10**15),
        task=c.string(row, "task", where, required=False),
        uncertain=c.boolean(row, "uncertain", where),
        note=c.string(row, "note", where, required=False),
    )


# ----------------------------------------------------------------------------- loading


def targets_dir() -> Path:
    """The repository's ``targets/`` folder with the built-in device files."""
    return Path(__file__).resolve().parent.parent / "targets"


def target_ids() -> list[str]:
    """Ids of the built-in targets (file stems), sorted; the files are not parsed."""
    d = targets_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def _read_file(path: Path) -> Target:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise TargetError(f"no such target file: {path}", path=path) from None
    except OSError as exc:
        raise TargetError(f"cannot read target file {path}: {exc.strerror or exc}", path=path) from None
    if not path.is_file():
        raise TargetError(f"{path} is not a file (expected a target .toml file)", path=path)
    return _read_file_cached(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _read_file_cached(path_str: str, _mtime_ns: int, _size: int) -> Target:
    path = Path(path_str)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TargetError(f"cannot read target file {path}: {exc.strerror or exc}", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TargetError(f"{path}: not UTF-8 text (byte {exc.start}); a target file is TOML", path=path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # the message already says "(at line L, column C)"
        raise TargetError(f"{path}: TOML syntax error: {exc}", path=path) from None
    except RecursionError:
        raise TargetError(f"{path}: TOML syntax error: nesting too deep", path=path) from None
    return target_from_dict(data, source=str(path), stem=path.stem)


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(".toml") or "/" in text or os.sep in text or (os.altsep or "/") in text


def load_target(name_or_path) -> Target:
    """A built-in target by id (``"nucleo-h743zi"``), or a user's own TOML file by path.

    A Target passes through unchanged.  Unknown names raise TargetError listing the known
    ids and suggesting close matches.
    """
    if isinstance(name_or_path, Target):
        return name_or_path
    if isinstance(name_or_path, os.PathLike):
        return _read_file(Path(os.fspath(name_or_path)))
    if not isinstance(name_or_path, str):
        raise TargetError(f"a target is a device name or a path to a .toml file, got {describe(name_or_path)}")
    text = name_or_path.strip()
    if not text:
        raise TargetError(f"empty target name; choose one of: {', '.join(target_ids())}")
    if _looks_like_path(text):
        path = Path(text).expanduser()
        try:
            missing = not path.exists()
        except (OSError, ValueError):  # a name the OS refuses: _read_file says why
            missing = False
        if missing and path.stem in target_ids():
            raise TargetError(f"no such target file: {path} (did you mean the built-in target {path.stem!r}?)",
                              path=path)
        return _read_file(path)
    known = target_ids()
    if text in known:
        return _read_file(targets_dir() / f"{text}.toml")
    folded = {k.lower(): k for k in known}
    if text.lower() in folded:
        return _read_file(targets_dir() / f"{folded[text.lower()]}.toml")
    close = difflib.get_close_matches(text.lower(), known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise TargetError(
        f"unknown target {text!r}.{hint} Known targets: {', '.join(known)} "
        f"(or pass the path of your own .toml file; see docs/targets.md)"
    )


def list_targets() -> list[Target]:
    """All built-in targets, ordered by kind (mcu, sbc, phone, host) then id."""
    targets = [_read_file(targets_dir() / f"{tid}.toml") for tid in target_ids()]
    return sorted(targets, key=lambda t: (_KIND_ORDER[t.kind], t.id))
