"""Shared helpers for the profile tests (imported by tests/test_profile*.py).

* ``artifacts()``: a tiny CNN converted once per test process to .tflite (litert-torch) and
  .pte (ExecuTorch + XNNPACK); cached in a module global so that several test files share it.
* ``sshd()``: a real OpenSSH server on 127.0.0.1, started once per test process:
  ``/usr/sbin/sshd -D -f <tmp config> -p <free port>`` with a throwaway host key, a throwaway
  user key in a tmp AuthorizedKeysFile, PermitRootLogin prohibit-password (the tests run as
  root here), StrictModes no; plus a known_hosts file holding its host key and a second,
  unauthorized user key. Stopped at exit. ``None`` when /usr/sbin/sshd is missing (callers
  skip: CI installs openssh-server).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
_cache: dict = {}


def _rmtree_at_exit(d: str) -> None:
    atexit.register(shutil.rmtree, d, True)


def artifacts() -> dict:
    """{"tflite": Path, "pte": Path, "module": nn.Module, "shape": tuple}; built once."""
    if "artifacts" not in _cache:
        import torch
        from torch import nn

        from edgekit.export.executorch import export_pte
        from edgekit.export.tflite import convert_fp32

        torch.manual_seed(0)
        m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
        x = torch.randn(1, 3, 32, 32)
        d = Path(tempfile.mkdtemp(prefix="edgekit-test-art-"))
        _rmtree_at_exit(str(d))
        (d / "tiny.tflite").write_bytes(convert_fp32(m, x))
        (d / "tiny.pte").write_bytes(export_pte(m, x)["bytes"])
        _cache["artifacts"] = {"tflite": d / "tiny.tflite", "pte": d / "tiny.pte", "module": m,
                               "shape": (1, 3, 32, 32), "dir": d}
    return _cache["artifacts"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sshd:
    port: int
    user: str
    identity: str  # authorized private key
    wrong_identity: str  # a key the server does not accept
    known_hosts: str  # holds the server's host key
    host_pub: str
    dir: Path
    log: Path

    @property
    def destination(self) -> str:
        return f"{self.user}@127.0.0.1"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgekit-test", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True)


def sshd() -> Sshd | None:
    if "sshd" in _cache:
        return _cache["sshd"]
    if not os.path.exists(SSHD) or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        _cache["sshd"] = None
        return None
    d = Path(tempfile.mkdtemp(prefix="edgekit-sshd-"))
    _rmtree_at_exit(str(d))
    for name in ("host_key", "user_key", "wrong_key"):
        _keygen(d / name)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    port = free_port()
    cfg = d / "sshd_config"
    cfg.write_text("\n".join([
        "ListenAddress 127.0.0.1",
        f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}",
        f"PidFile {d / 'sshd.pid'}",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "",
    ]))
    os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory (absent in containers)
    log = d / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-f", str(cfg), "-p", str(port), "-E", str(log)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {proc.stderr.read().decode()[-500:]} "
                               f"{log.read_text()[-500:] if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("sshd did not start listening within 15 s")

    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()

    atexit.register(stop)
    host_pub = (d / "host_key.pub").read_text().split()
    kh = d / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    import getpass

    _cache["sshd"] = Sshd(port=port, user=getpass.getuser(), identity=str(d / "user_key"),
                          wrong_identity=str(d / "wrong_key"), known_hosts=str(kh), host_pub=" ".join(host_pub[:2]),
                          dir=d, log=log)
    return _cache["sshd"]
