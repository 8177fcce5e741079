"""The ssh profiler against a REAL OpenSSH server on 127.0.0.1 (see ssh_server.sshd).

The "device" is this machine: its python is this test's interpreter (the venv, which has
ai_edge_litert), passed as ``remote_python``. Every test passes its own known_hosts file, so
the user's ~/.ssh/known_hosts is never read or written.
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

import pytest
import ssh_server

from edgekit.cli import main
from edgekit.errors import EdgekitError
from edgekit.profile.api import profile

pytestmark = [pytest.mark.skipif(not os.path.exists(ssh_server.SSHD),
                                 reason="/usr/sbin/sshd is missing: apt-get install -y openssh-server "
                                        "(.ci/run installs it) to run the real-ssh tests"),
              pytest.mark.export]  # every test profiles the converted tiny CNN (ssh_server.artifacts)


@pytest.fixture(scope="module")
def server():
    s = ssh_server.sshd()
    if s is None:
        pytest.skip("/usr/sbin/sshd, ssh or ssh-keygen missing: apt-get install -y openssh-server openssh-client")
    return s


@pytest.fixture(scope="module")
def tiny():
    return ssh_server.artifacts()


def _remote_dirs() -> set[str]:
    return set(glob.glob(os.path.join(os.environ.get("TMPDIR", "/tmp"), "edgekit-profile.*")))


def _ssh_kwargs(server, **over):
    kw = dict(ssh=server.destination, port=server.port, identity=server.identity, known_hosts=server.known_hosts,
              remote_python=sys.executable, progress=False)
    kw.update(over)
    return kw


def test_profile_tflite_over_ssh(server, tiny):
    before = _remote_dirs()
    res = profile(str(tiny["tflite"]), runs=25, warmup=3, threads=1, **_ssh_kwargs(server))
    (m,) = res.measurements
    assert m.where == f"ssh:{server.destination}" and not m.estimate
    assert m.runtime == "LiteRT" and m.delegate == "XNNPACK" and m.threads == 1
    assert m.stats["runs"] == 25 and len(m.times_ms) == 25
    for k in ("mean_ms", "std_ms", "min_ms", "median_ms", "p90_ms", "p99_ms", "max_ms", "throughput_per_s"):
        assert m.stats[k] is not None and m.stats[k] >= 0
    assert m.stats["min_ms"] <= m.stats["median_ms"] <= m.stats["p99_ms"] <= m.stats["max_ms"]
    assert m.versions.get("ai-edge-litert")
    assert m.first_run_ms is not None and m.stats["warmup"] == 3
    d = res.to_dict()
    assert d["schema"] == "edgekit.profile/1" and d["measurements"][0]["stats"]["runs"] == 25
    assert _remote_dirs() == before, "the temporary directory on the device was not removed"


def test_pte_and_progress_over_ssh(server, tiny, capfd):
    res = profile(str(tiny["pte"]), runs=5, warmup=1, **_ssh_kwargs(server, progress=True))
    (m,) = res.measurements
    assert m.runtime == "ExecuTorch" and m.stats["runs"] == 5
    assert "timed runs" in capfd.readouterr().err  # the device's progress bar reaches our stderr


def test_unknown_host_key_is_refused_by_default(server, tiny, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(EdgekitError) as ei:
        profile(str(tiny["tflite"]), runs=1, warmup=0, **_ssh_kwargs(server, known_hosts=str(empty)))
    msg = str(ei.value)
    assert "not in known_hosts" in msg and "--accept-new-host-key" in msg
    assert empty.read_text() == ""  # nothing was trusted


def test_accept_new_host_key_trusts_on_first_use(server, tiny, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    res = profile(str(tiny["tflite"]), runs=2, warmup=0,
                  **_ssh_kwargs(server, known_hosts=str(kh), accept_new_host_key=True))
    assert res.measurements[0].stats["runs"] == 2
    assert server.host_pub.split()[1] in kh.read_text()  # recorded for next time


def test_changed_host_key_is_refused_even_with_accept_new(server, tiny, tmp_path):
    other = tmp_path / "k"
    ssh_server._keygen(other)
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{server.port} {' '.join(Path(str(other) + '.pub').read_text().split()[:2])}\n")
    with pytest.raises(EdgekitError, match="CHANGED"):
        profile(str(tiny["tflite"]), runs=1, warmup=0,
                **_ssh_kwargs(server, known_hosts=str(kh), accept_new_host_key=True))


def test_wrong_key_is_a_clear_error(server, tiny):
    with pytest.raises(EdgekitError, match="authentication .* failed"):
        profile(str(tiny["tflite"]), runs=1, warmup=0, **_ssh_kwargs(server, identity=server.wrong_identity))


def test_hostile_file_name_works_and_does_no_harm(server, tiny, tmp_path, monkeypatch):
    name = "a b;rm -rf edgekit-nonexistent;touch edgekit-pwned;$(touch edgekit-pwned2)`touch edgekit-pwned3`'\".tflite"
    hostile = tmp_path / name
    hostile.write_bytes(tiny["tflite"].read_bytes())
    monkeypatch.chdir(tmp_path)
    before = _remote_dirs()
    res = profile(str(hostile), runs=3, warmup=0, **_ssh_kwargs(server))
    assert res.measurements[0].stats["runs"] == 3
    assert hostile.exists()
    for where in (tmp_path, Path.home(), Path("/tmp")):
        assert not list(where.glob("edgekit-pwned*")), f"a command in the file name ran in {where}"
    assert _remote_dirs() == before


def test_missing_runtime_on_device_names_what_to_install(server, tiny, tmp_path):
    """A python that has NumPy but no LiteRT: site-packages off (-S), NumPy alone on its path."""
    import numpy

    only = tmp_path / "site"
    only.mkdir()
    npdir = Path(numpy.__file__).parent
    os.symlink(npdir, only / "numpy")
    libs = npdir.parent / "numpy.libs"
    if libs.exists():
        os.symlink(libs, only / "numpy.libs")
    py = tmp_path / "python-without-litert"
    py.write_text(f"#!/bin/sh\nPYTHONPATH={only} exec {sys.executable} -S \"$@\"\n")
    py.chmod(0o755)
    before = _remote_dirs()
    with pytest.raises(EdgekitError) as ei:
        profile(str(tiny["tflite"]), runs=1, warmup=0, **_ssh_kwargs(server, remote_python=str(py)))
    msg = str(ei.value)
    assert "pip install" in msg and "ai-edge-litert" in msg, msg
    assert _remote_dirs() == before, "the temporary directory was left behind after a failure"


def test_missing_python_on_device(server, tiny):
    with pytest.raises(EdgekitError, match="was not found on"):
        profile(str(tiny["tflite"]), runs=1, warmup=0, **_ssh_kwargs(server, remote_python="/nonexistent/python3"))


def _cli(capsys, *args):
    code = main(["profile", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_unreachable_host_one_line_exit_2(tiny, capsys, tmp_path):
    kh = tmp_path / "kh"
    kh.write_text("")
    port = ssh_server.free_port()  # nothing listens there
    code, out, err = _cli(capsys, str(tiny["tflite"]), "--ssh", "pi@127.0.0.1", "--port", str(port),
                          "--known-hosts", str(kh), "--runs", "1")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "cannot reach" in lines[0] and "refused" in lines[0], err


def test_cli_wrong_credentials_one_line_exit_2(server, tiny, capsys):
    code, out, err = _cli(capsys, str(tiny["tflite"]), "--ssh", server.destination, "--port", str(server.port),
                          "--identity", server.wrong_identity, "--known-hosts", server.known_hosts, "--runs", "1",
                          "--remote-python", sys.executable)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "authentication" in lines[0], err


def test_cli_ssh_json(server, tiny, capsys):
    import json

    code, out, err = _cli(capsys, str(tiny["tflite"]), "--ssh", server.destination, "--port", str(server.port),
                          "--identity", server.identity, "--known-hosts", server.known_hosts, "--runs", "4",
                          "--warmup", "1", "--remote-python", sys.executable, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["measurements"][0]["stats"]["runs"] == 4 and d["measurements"][0]["where"].startswith("ssh:")


def test_bad_destination_is_rejected_before_ssh(tiny):
    with pytest.raises(EdgekitError, match="bad --ssh destination"):
        profile(str(tiny["tflite"]), ssh="-oProxyCommand=touch x", runs=1, progress=False)
