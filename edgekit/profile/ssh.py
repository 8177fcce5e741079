"""Profile on a Linux device (a Raspberry Pi) over ssh, with the same runner as the host.

Steps, each a separate ``ssh``/``scp`` call with an argument list (no local shell):

1. ``mktemp -d`` on the device: a private temporary directory;
2. ``scp`` the artifact (always renamed ``model.tflite``/``model.pte``: the user's file name
   never reaches the device) plus ``runner.py`` and ``protocol.py`` into it;
3. run ``<remote python> runner.py model.tflite --runs ...`` there; the result is the same
   JSON as on the host;
4. ``rm -rf`` the directory, in a ``finally``: also after a failure or Ctrl-C.

Every part of a remote command that a user can influence (the temporary directory name, the
remote python) goes through ``shlex.quote``. Host keys are checked: ``StrictHostKeyChecking=yes``
unless ``accept_new_host_key`` (``accept-new``: trust on first use, still refuse a *changed*
key); ``known_hosts`` sets ``UserKnownHostsFile``. ``BatchMode=yes``: never a password prompt.
Failures become one-line EdgekitErrors that say what to do.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError, RuntimeFailure, UsageError
from edgekit.profile import _proc
from edgekit.profile.host import check_artifact, runner_args

HERE = Path(__file__).resolve().parent
_DEST_RE = re.compile(r"^(?:[A-Za-z0-9._][A-Za-z0-9._-]*@)?(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.%a-z]+\])$")


class SshError(EdgekitError):
    """ssh could not connect, authenticate or verify the host."""


@dataclass
class SshOptions:
    destination: str  # [user@]host
    port: int = 22
    identity: str | None = None
    accept_new_host_key: bool = False
    known_hosts: str | None = None
    remote_python: str = "python3"
    connect_timeout_s: int = 10

    def validate(self) -> None:
        if not self.destination or self.destination.startswith("-") or not _DEST_RE.match(self.destination):
            raise UsageError(f"bad --ssh destination {self.destination!r}: expected USER@HOST or HOST")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise UsageError(f"bad --port {self.port!r}: expected 1-65535")
        if self.identity is not None and not Path(self.identity).is_file():
            raise UsageError(f"--identity {self.identity}: no such file")
        if self.known_hosts is not None and not Path(self.known_hosts).exists():
            raise UsageError(f"--known-hosts {self.known_hosts}: no such file")
        if not self.remote_python or self.remote_python.startswith("-"):
            raise UsageError(f"bad --remote-python {self.remote_python!r}")

    @property
    def host(self) -> str:
        return self.destination.rpartition("@")[2].strip("[]")

    def common(self) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(self.connect_timeout_s)}",
                "-o", f"StrictHostKeyChecking={'accept-new' if self.accept_new_host_key else 'yes'}",
                "-o", "LogLevel=ERROR"]
        if self.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={Path(self.known_hosts).resolve()}"]
        if self.identity:
            opts += ["-i", str(Path(self.identity).resolve()), "-o", "IdentitiesOnly=yes"]
        return opts

    def ssh_argv(self, remote_command: str) -> list[str]:
        return ["ssh", "-p", str(self.port), *self.common(), "--", self.destination, remote_command]

    def scp_argv(self, local_files: list[str], remote_dir: str) -> list[str]:
        # local paths are absolute (so a ':' in a name is not read as host:path); the remote dir
        # comes from mktemp on the device and is checked by _check_remote_dir
        return ["scp", "-q", "-P", str(self.port), *self.common(), "--",
                *[str(Path(f).resolve()) for f in local_files], f"{self.destination}:{remote_dir}/"]


def _classify(stderr: str, opts: SshOptions) -> str | None:
    """A one-line explanation of an ssh failure (exit 255), or None if it is not one."""
    s = stderr
    where = f"{opts.destination} (port {opts.port})"
    kh = f" ({opts.known_hosts})" if opts.known_hosts else ""
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in s or "Host key for" in s and "has changed" in s:
        return (f"the host key of {where} has CHANGED since it was recorded in known_hosts{kh}: refusing to "
                "connect (this can be a man-in-the-middle attack); if the device was re-installed, remove the "
                f"old key with ssh-keygen -R {opts.host}")
    if "Host key verification failed" in s or "No ED25519 host key is known" in s or "host key is known" in s:
        return (f"the host key of {where} is not in known_hosts{kh}: add it after checking its fingerprint "
                f"(ssh-keyscan -p {opts.port} {opts.host} >> ~/.ssh/known_hosts, or pass --known-hosts FILE), or "
                "pass --accept-new-host-key to trust it on first use")
    if "Permission denied" in s or "Too many authentication failures" in s:
        key = f"the key {opts.identity}" if opts.identity else "your ssh keys"
        return (f"ssh authentication to {where} failed with {key}: check the user name, --identity, and that the "
                "public key is in the device's ~/.ssh/authorized_keys (password login is not used)")
    for needle, why in (("Connection refused", "connection refused (is sshd running, is the port right?)"),
                        ("timed out", "connection timed out"), ("No route to host", "no route to host"),
                        ("Could not resolve hostname", "unknown host name"),
                        ("Name or service not known", "unknown host name"),
                        ("Network is unreachable", "network unreachable"),
                        ("Connection closed", "the device closed the connection"),
                        ("Connection reset", "the device reset the connection")):
        if needle in s:
            return f"cannot reach {where}: {why}"
    return None


def _ssh(opts: SshOptions, remote_command: str, *, timeout_s: float, progress: bool = False) -> _proc.Completed:
    try:
        done = _proc.run(opts.ssh_argv(remote_command), progress=progress, timeout_s=timeout_s)
    except FileNotFoundError:
        raise SshError("the ssh client is not installed: apt-get install openssh-client") from None
    if done.timed_out:
        raise SshError(f"ssh to {opts.destination} timed out after {timeout_s:g} s")
    if done.returncode == 255:
        raise SshError(_classify(done.stderr, opts) or
                       f"ssh to {opts.destination} (port {opts.port}) failed: {_proc.last_line(done.stderr)}")
    return done


def _check_remote_dir(text: str) -> str:
    d = text.strip()
    if not d.startswith("/") or "\n" in d or len(d) > 200 or not re.fullmatch(r"[A-Za-z0-9._/+-]+", d):
        raise RuntimeFailure(f"unexpected answer from mktemp -d on the device: {d[:80]!r}")
    return d


def profile_ssh(artifact, opts: SshOptions, *, runs: int, warmup: int, threads=None, batch: int = 1,
                xnnpack: bool = True, ops: bool = False, progress: bool = False, input_shape=None,
                timeout_s: float = 1800.0) -> dict:
    """Copy, run, clean up; return the runner's result dict (plus ``remote_dir``, ``destination``)."""
    opts.validate()
    local = Path(check_artifact(artifact))
    remote_name = "model" + local.suffix.lower()
    short = min(60.0, timeout_s)
    made = _ssh(opts, 'mktemp -d "${TMPDIR:-/tmp}/edgekit-profile.XXXXXXXX"', timeout_s=short)
    if made.returncode != 0:
        raise RuntimeFailure(f"could not create a temporary directory on {opts.destination}: "
                             f"{_proc.last_line(made.stderr)}")
    rdir = _check_remote_dir(made.stdout)
    try:
        # a copy of the artifact with a fixed name: the user's file name never reaches the device
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="edgekit-ssh-") as tmp:
            staged = Path(tmp) / remote_name
            try:
                staged.hardlink_to(local)
            except OSError:
                shutil.copyfile(local, staged)
            files = [str(staged), str(HERE / "runner.py"), str(HERE / "protocol.py")]
            try:
                cp = _proc.run(opts.scp_argv(files, rdir), timeout_s=timeout_s)
            except FileNotFoundError:
                raise SshError("scp is not installed: apt-get install openssh-client") from None
        if cp.timed_out or cp.returncode != 0:
            why = _classify(cp.stderr, opts) or _proc.last_line(cp.stderr)
            raise SshError(f"copying {local.name} to {opts.destination}:{rdir} failed: {why}")
        args = runner_args(remote_name, runs=runs, warmup=warmup, threads=threads, batch=batch, xnnpack=xnnpack,
                           ops=ops, progress=progress, input_shape=input_shape)
        cmd = (f"cd {shlex.quote(rdir)} && exec {shlex.quote(opts.remote_python)} runner.py "
               + " ".join(shlex.quote(a) for a in args))
        done = _ssh(opts, cmd, timeout_s=timeout_s, progress=progress)
        res = _proc.result_from(done.stdout)
        if res is None:
            if done.returncode == 127 or "not found" in done.stderr and opts.remote_python in done.stderr:
                raise RuntimeFailure(f"{opts.remote_python} was not found on {opts.destination}: install Python 3 "
                                     "there (apt-get install python3 python3-numpy) or pass --remote-python PATH")
            raise RuntimeFailure(f"the runner on {opts.destination} exited with {done.returncode} without a result: "
                                 f"{_proc.last_line(done.stderr)}")
        if "error" in res:
            e = res["error"]
            if e.get("kind") == "missing_runtime":
                raise RuntimeFailure(f"{opts.destination}: {e.get('message')}")
            raise RuntimeFailure(f"the runner on {opts.destination} failed on {local.name}: "
                                 f"{e.get('type', 'error')}: {e.get('message', '')}")
        res["remote_dir"] = rdir
        res["destination"] = opts.destination
        return res
    finally:
        try:
            _ssh(opts, f"rm -rf -- {shlex.quote(rdir)}", timeout_s=short)
        except EdgekitError:
            pass  # the connection is gone; mktemp's directory stays in the device's /tmp
