"""The device catalogue: every built-in target loads, carries sourced parameters, and bad files
fail with a TargetError that names the file and the key."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.errors import EdgekitError
from edgekit.targets import (
    DTYPES,
    KINDS,
    SPLITS,
    Target,
    TargetError,
    list_targets,
    load_target,
    target_from_dict,
    target_ids,
    targets_dir,
)

TARGET_FILES = sorted(targets_dir().glob("*.toml"))


def _parse(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- the catalogue


def test_targets_dir_is_the_repo_folder():
    assert targets_dir() == Path(__file__).resolve().parent.parent / "targets"
    assert TARGET_FILES, "no targets/*.toml"


@pytest.mark.parametrize("path", TARGET_FILES, ids=lambda p: p.stem)
def test_every_builtin_target_loads_by_id_and_by_path(path):
    by_id = load_target(path.stem)
    assert isinstance(by_id, Target)
    assert by_id.id == path.stem
    assert by_id.kind in KINDS
    assert load_target(path) == by_id
    assert load_target(str(path)) == by_id


def test_list_targets_returns_every_file_once_ordered_by_kind():
    ts = list_targets()
    assert sorted(t.id for t in ts) == sorted(p.stem for p in TARGET_FILES) == target_ids()
    kinds = [KINDS.index(t.kind) for t in ts]
    assert kinds == sorted(kinds)


def test_required_devices_exist():
    ts = {t.id: t for t in list_targets()}
    mcus = [t for t in ts.values() if t.kind == "mcu"]
    assert len(mcus) >= 3
    assert {"cortex-m4", "cortex-m7"} <= {t.cpu.core for t in mcus}
    for tid in ("nrf52840-dk", "nucleo-l4r5zi", "nucleo-h743zi", "raspberry-pi-4b", "raspberry-pi-5",
                "raspberry-pi-zero-2w", "host"):
        assert tid in ts, tid
    pis = [t for t in ts.values() if t.kind == "sbc" and t.id.startswith("raspberry-pi")]
    assert len(pis) >= 3
    assert len([t for t in ts.values() if t.kind == "phone"]) >= 2
    assert ts["host"].kind == "host"


def test_datasheet_values_of_the_reference_boards():
    nrf = load_target("nrf52840-dk")
    assert (nrf.cpu.core, nrf.cpu.freq_mhz) == ("cortex-m4", 64)
    assert nrf.sram_bytes == 256 * 1024 and nrf.flash_bytes == 1024 * 1024

    l4 = load_target("nucleo-l4r5zi")
    assert (l4.cpu.core, l4.cpu.freq_mhz) == ("cortex-m4", 120)
    assert l4.total_sram_bytes == 640 * 1024 and l4.flash_bytes == 2 * 1024 * 1024

    h7 = load_target("nucleo-h743zi")
    assert (h7.cpu.core, h7.cpu.freq_mhz) == ("cortex-m7", 480)
    assert h7.total_sram_bytes == 1024 * 1024
    assert h7.sram_bytes == 512 * 1024  # the arena budget: largest contiguous AXI SRAM
    assert h7.flash_bytes == 2 * 1024 * 1024
    assert h7.memory_budget_bytes == h7.sram_bytes


def test_kind_specific_memory_and_latency_models():
    for t in list_targets():
        if t.is_mcu:
            assert t.sram_bytes and t.flash_bytes and t.ram_bytes is None
            assert t.latency.model == "mcu-cycles"
            cpm = t.latency.cycles_per_mac
            assert cpm["conv2d"] <= cpm["depthwise_conv2d"]
            assert t.runtime.profile == "emulated" and t.runtime.default == "tflite-micro"
            with pytest.raises(TargetError):
                t.latency.peak_gmacs("fp32")
        else:
            assert t.sram_bytes is None and t.flash_bytes is None
            assert t.ram_bytes and t.memory_budget_bytes == t.ram_bytes
            assert t.latency.model == "roofline"
            for dtype in DTYPES:
                assert t.latency.peak_gmacs(dtype) > 0
            assert t.latency.peak_gmacs("int8") >= t.latency.peak_gmacs("fp32") * 0.9


def test_targets_are_frozen_and_serialisable():
    t = load_target("raspberry-pi-5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "x"  # type: ignore[misc]
    d = dataclasses.asdict(t)
    assert d["cpu"]["freq_mhz"] == 2400
    json.dumps(t.to_dict())  # no Path or other non-JSON values inside


# ----------------------------------------------------------------------------- sources and published data


_SECTION_RE = re.compile(r"^\s*\[([A-Za-z0-9_.\-]+)\]\s*(#.*)?$")
_ASSIGN_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


@pytest.mark.parametrize("path", TARGET_FILES, ids=lambda p: p.stem)
def test_every_hardware_and_latency_parameter_cites_a_source(path):
    """Each key in [cpu], [memory], [latency] and [latency.cycles_per_mac] has a comment on its line."""
    text = path.read_text(encoding="utf-8")
    assert "Sources:" in text.split("\n[", 1)[0], f"{path.name}: header must list its sources"
    section = ""
    checked = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _SECTION_RE.match(line)
        if m:
            section = m.group(1)
            continue
        if line.lstrip().startswith("[["):
            section = "published"
            continue
        if section in ("cpu", "memory", "latency", "latency.cycles_per_mac") and _ASSIGN_RE.match(line):
            assert "#" in line.split("=", 1)[1], \
                f"{path.name}:{lineno}: [{section}] {line.strip()!r} has no source comment"
            comment = line.split("#", 1)[1].strip()
            assert len(comment) >= 6, f"{path.name}:{lineno}: source comment too short: {comment!r}"
            checked += 1
    assert checked >= 10


def test_published_measurements_are_complete_and_split():
    rows = [(t, p) for t in list_targets() for p in t.published]
    assert len(rows) >= 40
    for _t, p in rows:
        assert p.split in SPLITS and p.dtype in DTYPES
        assert p.latency_ms > 0 and p.source.strip() and p.model.strip()
    by_split = {s: [(t, p) for t, p in rows if p.split == s] for s in SPLITS}
    assert len(by_split["calibration"]) >= 15 and len(by_split["validation"]) >= 15
    for kind in ("mcu", "sbc", "phone"):
        for split in ("calibration", "validation"):
            assert any(t.kind == kind for t, _ in by_split[split]), (kind, split)


def test_no_measurement_is_in_both_calibration_and_validation():
    for t in list_targets():
        def key(p):
            return (p.model, p.dtype, p.threads, p.runtime, p.input_shape)

        cal = {key(p) for p in t.calibration}
        val = {key(p) for p in t.validation}
        assert not cal & val, f"{t.id}: {cal & val}"


def test_parameters_never_promise_more_than_the_published_numbers():
    """Compute time alone (MACs at the dense-conv rate) must not exceed the measured latency, nor
    be absurdly below it: the parameters are consistent with the data they cite."""
    checked = 0
    for t in list_targets():
        for p in t.calibration + t.validation:
            if p.macs is None:
                continue
            if t.is_mcu:
                compute_ms = p.macs * t.latency.cycles_per_mac.conv2d / t.clock_hz * 1e3
            elif p.threads in (None, t.latency.threads):
                compute_ms = p.macs / (t.latency.peak_gmacs(p.dtype) * 1e9) * 1e3
            else:
                continue
            ratio = compute_ms / p.latency_ms
            assert 0.15 <= ratio <= 1.1, f"{t.id} {p.model} {p.dtype}: compute {compute_ms:.2f} ms vs {p.latency_ms} ms"
            checked += 1
    assert checked >= 20


def test_targets_module_needs_no_torch_or_numpy():
    code = ("import sys, edgekit.targets as t; t.list_targets(); "
            "bad = [m for m in ('torch', 'numpy') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


# ----------------------------------------------------------------------------- user files and names

GOOD_MCU = """\
# Sources: my own board
name = "My board"
kind = "mcu"

[cpu]
core = "cortex-m4"   # datasheet
arch = "armv7e-m"    # datasheet
freq_mhz = 80        # datasheet
num_cores = 1        # datasheet
features = ["dsp", "fpu-sp"]  # datasheet

[memory]
sram_kib = 128       # datasheet
flash_kib = 512      # datasheet

[runtime]
default = "tflite-micro"
dtype = "int8"
profile = "emulated"

[latency]
op_overhead_cycles = 2000  # assumed

[latency.cycles_per_mac]
conv2d = 3.0            # assumed
depthwise_conv2d = 9.0  # assumed
linear = 3.0            # assumed
elementwise = 4.0       # assumed
pool = 2.0              # assumed

[[published]]
model = "mobilenet_v2:width=0.35,resolution=96"
dtype = "int8"
latency_ms = 120.5
source = "my bench"
split = "validation"
"""

GOOD_SBC = """\
name = "My Pi"
kind = "sbc"
[cpu]
core = "cortex-a72"
arch = "armv8-a"
freq_mhz = 1800
num_cores = 4
[memory]
ram_mib = 8192
[runtime]
default = "litert"
dtype = "int8"
profile = "ssh"
[latency]
peak_gmacs_fp32 = 9.0
peak_gmacs_int8 = 25.0
mem_bandwidth_gbps = 12.8
op_overhead_us = 20
"""


def _write(tmp_path: Path, text: str, name: str = "my-board.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_user_file_loads_by_path(tmp_path):
    path = _write(tmp_path, GOOD_MCU)
    t = load_target(str(path))
    assert t.id == "my-board" and t.kind == "mcu" and t.path == str(path)
    assert t.sram_bytes == 128 * 1024 and t.flash_bytes == 512 * 1024
    assert t.latency.cycles_per_mac["depthwise_conv2d"] == 9.0
    assert t.published[0].latency_ms == 120.5 and t.validation == t.published
    assert load_target(path) == t

    pi = load_target(_write(tmp_path, GOOD_SBC, "my-pi.toml"))
    assert pi.ram_bytes == 8 * 1024**3 and pi.latency.peak_gmacs("fp16") == 9.0 and pi.latency.threads is None


def test_a_user_file_may_state_its_id(tmp_path):
    t = load_target(_write(tmp_path, 'id = "my-board"\n' + GOOD_MCU))
    assert t.id == "my-board"


def test_an_edited_file_is_reloaded(tmp_path):
    path = _write(tmp_path, GOOD_SBC, "pi.toml")
    assert load_target(path).cpu.freq_mhz == 1800
    path.write_text(GOOD_SBC.replace("freq_mhz = 1800", "freq_mhz = 1500"), encoding="utf-8")
    assert load_target(path).cpu.freq_mhz == 1500


def test_a_target_passes_through():
    t = load_target("host")
    assert load_target(t) is t


def test_names_are_case_insensitive():
    assert load_target("Nucleo-H743ZI").id == "nucleo-h743zi"
    assert load_target("  host ").id == "host"


@pytest.mark.parametrize("name, suggestion", [
    ("nucleo-h743", "nucleo-h743zi"),
    ("raspberry-pi4b", "raspberry-pi-4b"),
    ("pixel-8pro", "pixel-8-pro"),
])
def test_unknown_name_lists_known_ids_and_suggests(name, suggestion):
    with pytest.raises(TargetError) as err:
        load_target(name)
    msg = str(err.value)
    assert repr(name) in msg and f"Did you mean {suggestion}" in msg
    for tid in target_ids():
        assert tid in msg
    assert isinstance(err.value, EdgekitError)


@pytest.mark.parametrize("bad", ["", "   ", 42, None, 3.5, ["host"]])
def test_bad_name_types(bad):
    with pytest.raises(TargetError):
        load_target(bad)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TargetError, match="no such target file"):
        load_target(str(tmp_path / "nope.toml"))
    with pytest.raises(TargetError, match="not a file"):
        load_target(tmp_path)
    with pytest.raises(TargetError, match="did you mean the built-in target 'host'"):
        load_target(str(tmp_path / "host.toml"))


# ----------------------------------------------------------------------------- bad files

BAD_FILES = [
    # (description, transform of GOOD_MCU, key named in the error, words in the message)
    ("unknown top-level key", lambda s: 'colour = "red"\n' + s, "colour", "unknown key"),
    ("unknown memory key with suggestion", lambda s: s.replace("sram_kib = 128", "sram_kb = 128"),
     "memory.sram_kb", "did you mean 'sram_kib'"),
    ("missing flash", lambda s: s.replace("flash_kib = 512      # datasheet\n", ""), "memory.flash_kib", "missing"),
    ("missing name", lambda s: s.replace('name = "My board"\n', ""), "name", "missing"),
    ("missing runtime table",
     lambda s: s.replace('[runtime]\ndefault = "tflite-micro"\ndtype = "int8"\nprofile = "emulated"\n', ""),
     "runtime", "missing table"),
    ("negative sram", lambda s: s.replace("sram_kib = 128", "sram_kib = -128"), "memory.sram_kib", "greater than 0"),
    ("zero frequency", lambda s: s.replace("freq_mhz = 80", "freq_mhz = 0"), "cpu.freq_mhz", "greater than 0"),
    ("infinite frequency", lambda s: s.replace("freq_mhz = 80", "freq_mhz = inf"), "cpu.freq_mhz", "finite"),
    ("string frequency", lambda s: s.replace("freq_mhz = 80", 'freq_mhz = "fast"'), "cpu.freq_mhz", "must be a number"),
    ("boolean sram", lambda s: s.replace("sram_kib = 128", "sram_kib = true"), "memory.sram_kib", "must be a number"),
    ("fractional cores", lambda s: s.replace("num_cores = 1", "num_cores = 1.5"), "cpu.num_cores", "integer"),
    ("bad kind", lambda s: s.replace('kind = "mcu"', 'kind = "laptop"'), "kind", "unknown value"),
    ("bad runtime", lambda s: s.replace('default = "tflite-micro"', 'default = "tensorrt"'),
     "runtime.default", "unknown value"),
    ("runtime for another kind", lambda s: s.replace('default = "tflite-micro"', 'default = "litert"'),
     "runtime.default", "does not run on a mcu"),
    ("bad dtype", lambda s: s.replace('dtype = "int8"\nprofile', 'dtype = "int4"\nprofile'),
     "runtime.dtype", "unknown value"),
    ("bad profile", lambda s: s.replace('profile = "emulated"', 'profile = "jtag"'),
     "runtime.profile", "unknown value"),
    ("adb on an mcu", lambda s: s.replace('profile = "emulated"', 'profile = "adb"'),
     "runtime.profile", "does not apply"),
    ("id mismatch", lambda s: 'id = "other-board"\n' + s, "id", "must equal the file name stem"),
    ("arena larger than sram", lambda s: s.replace("sram_kib = 128", "sram_kib = 128\narena_budget_kib = 256"),
     "memory.arena_budget_kib", "exceeds"),
    ("unknown feature", lambda s: s.replace('["dsp", "fpu-sp"]', '["dsp", "nein"]'),
     "cpu.features[1]", "unknown value"),
    ("ram on an mcu", lambda s: s.replace("flash_kib = 512", "flash_kib = 512\nram_mib = 8"),
     "memory.ram_mib", "unknown key"),
    ("roofline key on an mcu",
     lambda s: s.replace("op_overhead_cycles = 2000", "op_overhead_cycles = 2000\npeak_gmacs_fp32 = 1"),
     "latency.peak_gmacs_fp32", "unknown key"),
    ("missing op kind", lambda s: s.replace("pool = 2.0              # assumed\n", ""),
     "latency.cycles_per_mac.pool", "missing"),
    ("negative overhead", lambda s: s.replace("op_overhead_cycles = 2000", "op_overhead_cycles = -1"),
     "latency.op_overhead_cycles", "negative"),
    ("bad split", lambda s: s.replace('split = "validation"', 'split = "training"'),
     "published[0].split", "unknown value"),
    ("negative published latency", lambda s: s.replace("latency_ms = 120.5", "latency_ms = -3"),
     "published[0].latency_ms", "greater than 0"),
    ("published not an array of tables", lambda s: "published = 3\n" + s.split("[[published]]")[0],
     "published", "array"),
    ("bad input shape", lambda s: s.replace('split = "validation"', 'split = "validation"\ninput_shape = [1, 0, 3]'),
     "published[0].input_shape", "positive integers"),
    ("memory is not a table",
     lambda s: s.replace("[memory]\nsram_kib = 128       # datasheet\nflash_kib = 512      # datasheet\n", "")
     .replace('kind = "mcu"\n', 'kind = "mcu"\nmemory = 5\n'), "memory", "must be a table"),
]


@pytest.mark.parametrize("desc, transform, key, words", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_names_file_and_key(tmp_path, desc, transform, key, words):
    text = transform(GOOD_MCU)
    assert text != GOOD_MCU, f"transform for {desc!r} changed nothing"
    path = _write(tmp_path, text)
    with pytest.raises(TargetError) as err:
        load_target(str(path))
    msg = str(err.value)
    assert str(path) in msg, msg
    assert f" {key}:" in msg, msg
    assert words in msg, msg
    assert err.value.key == key and err.value.path == str(path)


def test_sbc_rejects_mcu_memory_keys(tmp_path):
    path = _write(tmp_path, GOOD_SBC.replace("ram_mib = 8192", "ram_mib = 8192\nsram_kib = 512"), "pi.toml")
    with pytest.raises(TargetError, match=r"memory\.sram_kib: unknown key"):
        load_target(path)
    path = _write(tmp_path, GOOD_SBC.replace("op_overhead_us = 20\n", ""), "pi2.toml")
    with pytest.raises(TargetError, match=r"latency\.op_overhead_us: missing"):
        load_target(path)


def test_syntax_error_names_file_and_line(tmp_path):
    path = _write(tmp_path, GOOD_MCU.replace("freq_mhz = 80", "freq_mhz = = 80"))
    with pytest.raises(TargetError) as err:
        load_target(path)
    msg = str(err.value)
    line = GOOD_MCU.splitlines().index("freq_mhz = 80        # datasheet") + 1
    assert str(path) in msg and "syntax error" in msg and f"line {line}" in msg


def test_binary_file_is_a_target_error(tmp_path):
    path = tmp_path / "blob.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TargetError, match="not UTF-8"):
        load_target(path)


def test_invalid_stem_is_named(tmp_path):
    with pytest.raises(TargetError, match="rename the file"):
        load_target(_write(tmp_path, GOOD_MCU, "my board!.toml"))


# ----------------------------------------------------------------------------- property tests

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
_BASE_DOCS = [_parse(p) for p in TARGET_FILES[:: max(1, len(TARGET_FILES) // 5)]] + [tomllib.loads(GOOD_MCU),
                                                                                      tomllib.loads(GOOD_SBC)]


def _paths(doc, prefix=()):
    """All (container path, key/index) locations in a nested dict/list document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _assert_only_target_errors(fn):
    try:
        result = fn()
    except TargetError as exc:
        assert str(exc)
    else:
        assert isinstance(result, Target)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_documents_raise_only_target_error(data):
    doc = copy.deepcopy(data.draw(st.sampled_from(_BASE_DOCS)))
    for _ in range(data.draw(st.integers(1, 3))):
        locations = list(_paths(doc))
        if not locations:
            break
        loc = data.draw(st.sampled_from(locations))
        parent = doc
        for step in loc[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[loc[-1]] = data.draw(toml_values)
        elif action == "delete":
            del parent[loc[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=12))] = data.draw(toml_values)
    stem = data.draw(st.one_of(st.none(), st.sampled_from(["my-board", "x", "bad name"])))
    _assert_only_target_errors(lambda: target_from_dict(doc, source="<hypothesis>", stem=stem))


@settings(max_examples=100, deadline=None)
@given(doc=toml_values)
def test_random_documents_raise_only_target_error(doc):
    _assert_only_target_errors(lambda: target_from_dict(doc, source="<hypothesis>", stem="x"))


_RAW_TEXTS = [p.read_text(encoding="utf-8") for p in TARGET_FILES[:3]] + [GOOD_MCU, GOOD_SBC]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_toml_text_raises_only_target_error(data):
    lines = data.draw(st.sampled_from(_RAW_TEXTS)).splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i] = data.draw(st.one_of(
            st.just(""),
            st.text(max_size=30),
            st.sampled_from(["[cpu]", "[[published]]", "x = [[[[[[", 'kind = "phone"', "freq_mhz = 1e400",
                             "id = 3", "= 1", "[latency.cycles_per_mac]", "sram_kib = 0x10"]),
        ))
    text = "\n".join(lines)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.toml"
        path.write_bytes(text.encode("utf-8", errors="replace"))  # hypothesis text may hold lone surrogates
        _assert_only_target_errors(lambda: load_target(path))
