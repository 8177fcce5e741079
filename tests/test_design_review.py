"""The design-review workflow: `edgekit check --baseline` (deltas, regressions, Markdown, exit codes),
`edgekit report` (a self-contained HTML page, opened in headless Chromium), `edgekit.testing.assert_fits`,
and the CI snippets in docs/design-review.md."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import run_cli as run

from edgekit.analysis.api import analyze
from edgekit.errors import UsageError
from edgekit.report.diff import BaselineError, diff_reports, estimate_latency_ms, load_baseline
from edgekit.testing import assert_fits

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.fixture(scope="session")
def mcu_report():
    r = analyze("mcu_mobilenet_v1", target="nrf52840-dk")
    r.check("nrf52840-dk")
    return r


# ---- the diff -----------------------------------------------------------------------------------

def _fake(**kw):
    d = {"model": "m", "dtype": "int8", "runtime": "tflite-micro", "params": 1000, "macs": 10_000,
         "model_bytes": 2000, "peak_activation_bytes": 4000, "arena_bytes": 5000, "layers": []}
    d.update(kw)
    return d


def test_regression_threshold_and_improvements():
    d = diff_reports(_fake(), _fake(params=1005, macs=10_200, model_bytes=1500, arena_bytes=5000), targets=[])
    rows = {r["key"]: r for r in d["rows"]}
    assert not rows["params"]["regression"] and rows["params"]["delta_pct"] == 0.5  # within 1 %
    assert rows["macs"]["regression"] and rows["macs"]["delta"] == 200 and rows["macs"]["delta_pct"] == 2.0
    assert not rows["model_bytes"]["regression"] and rows["model_bytes"]["delta"] == -500  # an improvement
    assert not rows["arena_bytes"]["regression"] and rows["arena_bytes"]["delta"] == 0
    assert d["regressions"] == ["MACs"]
    strict = diff_reports(_fake(), _fake(params=1005), targets=[], threshold_pct=0.0)
    assert strict["regressions"] == ["params"]
    grown_from_zero = diff_reports(_fake(params=0), _fake(params=10), targets=[])
    assert grown_from_zero["rows"][0]["regression"] and grown_from_zero["rows"][0]["delta_pct"] is None


def test_every_metric_of_the_brief_is_compared(mcu_report):
    d = diff_reports(load_baseline("mcu_mobilenet_v1:width=0.125", like=mcu_report, target="nrf52840-dk"),
                     mcu_report)
    keys = [r["key"] for r in d["rows"]]
    assert keys == ["params", "macs", "model_bytes", "peak_activation_bytes", "arena_bytes", "latency_ms:nrf52840-dk"]
    rows = {r["key"]: r for r in d["rows"]}
    # width 0.125 -> 0.25 grows everything: each one is a regression, with consistent deltas
    for k in keys:
        r = rows[k]
        assert r["candidate"] > r["baseline"] and r["regression"], r
        assert r["delta"] == pytest.approx(r["candidate"] - r["baseline"], abs=1e-3)
    assert rows["latency_ms:nrf52840-dk"]["estimate"] and d["candidate_fits"] is True
    # the same model against itself: no regression
    same = diff_reports(load_baseline("mcu_mobilenet_v1", like=mcu_report, target="nrf52840-dk"), mcu_report)
    assert same["regressions"] == [] and all(r["delta"] == 0 for r in same["rows"])


@pytest.mark.parametrize("spec,target", [("mcu_mobilenet_v1", "nrf52840-dk"),
                                         ("mobilenet_v2:width=0.35,resolution=96", "raspberry-pi-4b"),
                                         ("mobilenet_v3_small:width=0.5,resolution=96", "pixel-6a")])
def test_latency_from_the_layer_table_equals_the_emulator_on_the_full_graph(spec, target):
    """The diff estimates latency from the per-layer table (which a saved JSON report also has);
    it must agree with `edgekit profile --emulate`, which estimates the captured graph."""
    from edgekit.profile.emulate import estimate

    r = analyze(spec, target=target)
    ms, why = estimate_latency_ms(load_baseline(json.loads(json.dumps(r.to_dict()))), target)
    assert why is None
    assert ms == pytest.approx(estimate(spec, target=target, dtype=r.dtype).total_ms, rel=1e-9)


def test_saved_json_and_build_report_baselines(tmp_path, mcu_report):
    saved = tmp_path / "base.json"
    saved.write_text(json.dumps(mcu_report.to_dict()))
    b = load_baseline(saved)
    assert b.metrics["arena_bytes"] == mcu_report.arena_bytes and b.source == f"json:{saved}"
    d = diff_reports(b, mcu_report)
    assert d["regressions"] == [] and d["latency_targets"] == ["nrf52840-dk"]
    # a build's report.json: arena_bytes is an object, the measured value wins
    build = {"model": "m", "params": 1, "macs": 2, "model_bytes": 3, "peak_activation_bytes": 4,
             "arena_bytes": {"predicted_pre_export": 100, "measured": 120}, "format": "tflite"}
    assert load_baseline(build).metrics["arena_bytes"] == 120


@pytest.mark.parametrize("content,fragment", [
    ("{not json", "not a JSON report"),
    ("[1, 2]", "expected one JSON object"),
    (json.dumps({"params": 1, "macs": 2, "model_bytes": 3}), "arena_bytes: missing key"),
    (json.dumps({"params": "many", "macs": 2, "model_bytes": 3, "arena_bytes": 4}), "params: must be a number"),
    (json.dumps({"schema": "edgekit.profile/1", "measurements": []}), "`edgekit profile` result"),
])
def test_bad_baseline_files_name_file_and_key(tmp_path, content, fragment):
    p = tmp_path / "old.json"
    p.write_text(content)
    with pytest.raises(BaselineError) as info:
        load_baseline(p)
    assert str(p) in str(info.value) and fragment in str(info.value)


@pytest.mark.slow
def test_cli_baseline_markdown_and_exit_codes(tmp_path):
    base = tmp_path / "base.json"
    p = run("check", "mcu_mobilenet_v1", "--target", "nrf52840-dk", "--json")
    assert p.returncode == 0, p.stderr
    base.write_text(p.stdout)
    # candidate: higher resolution; fits, but MACs and latency regress
    p = run("check", "mcu_mobilenet_v1:resolution=112", "--target", "nrf52840-dk", "--baseline", base, "--markdown")
    assert p.returncode == 0, p.stderr
    md = p.stdout
    assert "| metric | baseline | candidate | delta |" in md
    macs_row = next(ln for ln in md.splitlines() if ln.startswith("| MACs |"))
    assert ":warning:" in macs_row and "(+41.2 %)" in macs_row
    assert any(ln.startswith("| est. latency ms (nrf52840-dk) |") and ":warning:" in ln for ln in md.splitlines())
    assert "**fits**" in md
    # --json carries the diff
    p = run("check", "mcu_mobilenet_v1:resolution=112", "--target", "nrf52840-dk", "--baseline", base, "--json")
    d = json.loads(p.stdout)["baseline"]
    assert "MACs" in d["regressions"] and d["baseline_source"] == f"json:{base}"
    # a broken baseline: one line, exit 2
    (tmp_path / "bad.json").write_text("{}")
    p = run("check", "mcu_mobilenet_v1", "--baseline", tmp_path / "bad.json")
    assert p.returncode == 2 and "bad.json: params: missing key" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow  # ~7-30 s: CLI processes that import torch; `make test` runs it
def test_cli_baseline_over_budget_exits_1(tmp_path):
    """Over budget: exit 1, and the diff is still printed."""
    p = run("check", "mcu_mobilenet_v1:resolution=224", "--target", "nrf52840-dk", "--baseline",
            "mcu_mobilenet_v1", "--markdown")
    assert p.returncode == 1, p.stderr
    assert "**does not fit**" in p.stdout and ":warning:" in p.stdout
    arena = next(ln for ln in p.stdout.splitlines() if ln.startswith("| arena bytes |"))
    assert ":warning:" in arena


# ---- assert_fits ----------------------------------------------------------------------------------

def test_assert_fits_passes_and_returns_the_report():
    r = assert_fits("mcu_mobilenet_v1", target="nrf52840-dk")
    assert r.verdict.fits and r.arena_bytes <= 256 * 1024


@pytest.mark.slow  # ~7-30 s: CLI processes that import torch; `make test` runs it
def test_assert_fits_message_is_readable():
    with pytest.raises(AssertionError) as info:
        assert_fits("mcu_mobilenet_v1", sram="64kB", flash="1MB", dtype="int8")
    msg = str(info.value)
    lines = msg.splitlines()
    assert lines[0].startswith("mcu_mobilenet_v1 (int8, tflite-micro, input (1, 3, 96, 96)) does not fit")
    assert any(ln.strip().startswith("verdict: does not fit: exceeds SRAM by") for ln in lines)
    assert any(ln.strip().startswith("arena:") and "65,536 B SRAM budget" in ln and "over by" in ln for ln in lines)
    assert any(ln.strip().startswith("peak:") and "at layer" in ln for ln in lines)
    i = lines.index("  try:")
    assert lines[i + 1].startswith("    - ") and "fits" in lines[i + 1], msg  # the best suggestion first


@pytest.mark.slow  # ~7-30 s: CLI processes that import torch; `make test` runs it
def test_assert_fits_sram_alone_means_what_check_means():
    """An MCU-sized sram= without dtype analyses int8 for TFLite-Micro, as `edgekit check --sram`
    and `edgekit build --sram` do; the arena agrees with the one `check --json` prints."""
    import json
    import subprocess

    r = assert_fits("mcu_mobilenet_v1", sram="256kB")
    assert (r.dtype, r.runtime) == ("int8", "tflite-micro")
    p = subprocess.run([sys.executable, "-m", "edgekit", "check", "mcu_mobilenet_v1", "--sram", "256kB", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["arena_bytes"] == r.arena_bytes
    big = assert_fits("mcu_mobilenet_v1", sram="8MB")  # a phone/Pi-sized budget keeps the model's dtype
    assert big.dtype == "fp32"


def test_assert_fits_module_and_no_budget():
    import torch
    from torch import nn

    m = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)).eval()
    assert_fits(m, sram="64kB", input_shape=(1, 1, 32, 32), dtype="int8")
    with pytest.raises(AssertionError, match="does not fit"):
        assert_fits(m, sram="1kB", input_shape=(1, 1, 32, 32), dtype="int8")
    with pytest.raises(UsageError, match="needs a budget"):
        assert_fits(m, input_shape=(1, 1, 32, 32))
    del torch


# ---- HTML ----------------------------------------------------------------------------------------

class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.ids, self.external = [], {}, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids[a["id"]] = tag
        for k in ("src", "href"):
            if a.get(k) and not a[k].startswith("#"):
                self.external.append(a[k])


@pytest.fixture(scope="session")
def html_page(tmp_path_factory, mcu_report):
    from edgekit.report.html import write_html

    base = load_baseline("mcu_mobilenet_v1:width=0.125", like=mcu_report, target="nrf52840-dk")
    path = tmp_path_factory.mktemp("html") / "report.html"
    write_html(mcu_report, path, target="nrf52840-dk", diff=diff_reports(base, mcu_report))
    return path


def test_html_is_self_contained_and_complete(html_page, mcu_report):
    text = html_page.read_text()
    p = _Tags()
    p.feed(text)
    assert p.external == [] and "<script" not in text and "http://" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    for i in ("verdict", "summary", "memory-chart", "latency-chart", "latency-top", "layers", "arena", "plans", "diff"):
        assert i in p.ids, i
    bars = [a for t, a in p.tags if t == "rect" and "bar" in a.get("class", "").split()]
    assert len(bars) == len(mcu_report.layers)
    assert sum("peak" in a["class"].split() for a in bars) == 1
    assert any(t == "line" and a.get("class") == "sram-line" for t, a in p.tags)
    assert text.count("<tr") >= len(mcu_report.layers)
    assert f"peak {mcu_report.peak_activation_bytes:,} B" in text
    assert "SRAM budget 262,144 B" in text


def _chromium(args, tmp_path, timeout=120):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); "
                                              "CI installs it")
def test_html_renders_in_headless_chromium(html_page, mcu_report, tmp_path):
    dom = _chromium(["--dump-dom", html_page.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    p = _Tags()
    p.feed(dom.stdout)
    assert p.ids.get("memory-chart") == "svg" and p.ids.get("layers") == "table"
    body_rows = re.search(r'<table id="layers">.*?<tbody>(.*?)</tbody>', dom.stdout, re.S).group(1)
    assert body_rows.count("<tr") == len(mcu_report.layers)
    assert dom.stdout.count('class="bar') == len(mcu_report.layers)
    shot = tmp_path / "shot.png"
    r = _chromium([f"--screenshot={shot}", "--window-size=1200,1600", html_page.as_uri()], tmp_path)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    from PIL import Image

    im = Image.open(shot).convert("RGB")
    assert im.size == (1200, 1600)
    colors = im.getcolors(maxcolors=1 << 20)
    assert len(colors) > 50, "screenshot is blank"
    px = {c for _, c in colors}

    def near(rgb, tol=12):
        return any(all(abs(a - b) <= tol for a, b in zip(rgb, c)) for c in px)

    assert near((0x1a, 0x7f, 0x37)), "the green 'fits' banner is drawn"
    assert near((0x4c, 0x72, 0xb0)) and near((0xc4, 0x4e, 0x52)), "memory bars and the red peak bar are drawn"
    assert near((0xdd, 0x84, 0x52)), "the SRAM line is drawn"


@pytest.mark.slow  # ~7-30 s: CLI processes that import torch; `make test` runs it
def test_cli_report_writes_the_page_and_exits_by_verdict(tmp_path):
    out = tmp_path / "r" / "report.html"
    p = run("report", "mcu_mobilenet_v1", "--target", "nrf52840-dk", "-o", out)
    assert p.returncode == 0, p.stderr
    assert out.exists() and f"wrote {out}: fits" in p.stdout
    assert "est. latency (nrf52840-dk)" in out.read_text()
    over = tmp_path / "over.html"
    p = run("report", "mcu_mobilenet_v1", "--sram", "64kB", "--dtype", "int8", "-o", over)
    assert p.returncode == 1 and over.exists() and 'class="verdict bad"' in over.read_text()
    assert "Changes that would fit" in over.read_text()
    # no target: the latency is estimated on a typical device for the runtime, and the page says so
    assert "est. latency (nrf52840-dk)" in over.read_text() and "no --target given" in over.read_text()
    p = run("report", "mcu_mobilenet_v1", "-o", tmp_path)
    assert p.returncode == 2 and "is a folder" in p.stderr


# ---- the documented CI snippets ----------------------------------------------------------------------

def test_documented_commands_parse():
    """Every `edgekit ...` command in docs/design-review.md is valid for this CLI."""
    from edgekit.cli import build_parser

    doc = (ROOT / "docs" / "design-review.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|yaml)\n(.*?)```", doc, re.S)
    cmds = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            m = re.search(r"(?:^|\s|run: |\|\s*)(edgekit\s+(?:check|report|recipe|build|profile)\b[^#|>]*)", line)
            if m:
                cmds.append(m.group(1).strip())
    assert len(cmds) >= 4, cmds
    parser = build_parser()
    for cmd in cmds:
        argv = [a for a in shlex.split(cmd.replace("${{", "").replace("}}", ""))[1:] if a]
        args = parser.parse_args(argv)
        assert args.command in ("check", "report", "recipe", "build", "profile"), cmd


def test_diff_notes_reach_the_printed_table(capsys):
    """A baseline of another dtype is compared, and the printed table tells the reader so."""
    from edgekit.report import text

    old, new = _fake(dtype="fp32", runtime="litert"), _fake()
    d = diff_reports(old, new, targets=[])
    assert any("fp32" in n and "int8" in n for n in d["notes"]), d["notes"]
    text.print_diff(d)
    printed = capsys.readouterr().out
    assert all(f"note: {n}" in " ".join(printed.split()) for n in d["notes"]), printed
