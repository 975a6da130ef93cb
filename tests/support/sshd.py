"""A throwaway OpenSSH `sshd` on loopback, for the tests (conftest's `sshd`) and the benchmark.

No pytest here: `start_sshd` raises `ServerDidNotStart` with sshd's log, and `find_tool` returns
None for a missing program, so each caller decides whether that skips, fails or exits.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from handover.config import SftpEndpoint

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")

_SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowTcpForwarding no
X11Forwarding no
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""


class ServerDidNotStart(RuntimeError):
    """A server process exited or did not listen in time; the message carries its log."""


def find_tool(name: str) -> str | None:
    """Absolute path of program `name` on PATH or in the sbin directories, or None."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_key_pair(keygen: str, path: Path, key_type: str = "ed25519") -> Path:
    """Create an unencrypted key pair at `path` / `path.pub` with `keygen -N ''`; return `path`."""
    subprocess.run(
        [keygen, "-q", "-t", key_type, "-N", "", "-C", "handover-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


@dataclass
class Sshd:
    """A running OpenSSH sshd on loopback that accepts `client_key` for `user`."""

    host: str
    port: int
    user: str
    client_key: Path
    host_public_key: Path
    log: Path
    workdir: Path

    def __post_init__(self) -> None:
        self._serial = count(1)

    @property
    def host_entry(self) -> str:
        """How known_hosts names this server (`[host]:port` for ports other than 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def write_known_hosts(self, path: Path, public_key: Path | None = None) -> Path:
        """Write a known_hosts file pinning `public_key` (default: this server's) for it."""
        key_type, key_data = (public_key or self.host_public_key).read_text().split()[:2]
        path.write_text(f"{self.host_entry} {key_type} {key_data}\n")
        return path

    def authorize(self, public_key: Path) -> None:
        """Let `public_key` (an OpenSSH .pub file) log in too, as an agency registers a shop."""
        with (self.workdir / "authorized_keys").open("a") as keys:
            keys.write(public_key.read_text().strip() + "\n")

    def new_inbox(self) -> Path:
        """A fresh empty directory; its absolute path is also its SFTP path (no chroot)."""
        inbox = self.workdir / "inboxes" / f"inbox-{next(self._serial)}"
        inbox.mkdir(parents=True)
        return inbox

    def endpoint(self, inbox: Path, known_hosts: Path) -> SftpEndpoint:
        """An SftpEndpoint for this server delivering to `inbox`."""
        return SftpEndpoint(
            host=self.host,
            port=self.port,
            user=self.user,
            inbox=str(inbox),
            known_hosts=known_hosts,
        )

    def log_tail(self, lines: int = 20) -> str:
        """The end of sshd's log, to explain a failure."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def start_sshd(workdir: Path, sshd: str, keygen: str) -> Iterator[Sshd]:
    """Run `sshd` (the binary) on a free loopback port with a private config in `workdir`.

    It accepts a fresh client key (`Sshd.client_key`) for the current user and serves SFTP
    without a chroot; it is stopped when the block ends.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = make_key_pair(keygen, workdir / "host_ed25519")
    client_key = make_key_pair(keygen, workdir / "client_ed25519")
    authorized = workdir / "authorized_keys"
    shutil.copyfile(client_key.with_suffix(".pub"), authorized)
    # sshd refuses to start without its privilege-separation directory; if we may not create
    # it (not root), sshd's own log says what is missing.
    with contextlib.suppress(OSError):
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)

    log = workdir / "sshd.log"
    for _attempt in range(3):  # another process may grab the free port before sshd binds it
        port = free_port()
        config = workdir / "sshd_config"
        config.write_text(
            _SSHD_CONFIG.format(
                port=port,
                host_key=host_key,
                pid_file=workdir / "sshd.pid",
                authorized_keys=authorized,
            )
        )
        # -D keeps sshd in the foreground as our child, so it is stopped by its own pid.
        proc = subprocess.Popen([sshd, "-D", "-f", str(config), "-E", str(log)])
        if _wait_listening(port, proc, time.monotonic() + 10):
            break
        proc.kill()
        proc.wait()
    else:
        raise ServerDidNotStart(
            f"sshd did not start; its log ends with:\n{log.read_text(errors='replace')}"
        )
    try:
        yield Sshd(
            host="127.0.0.1",
            port=port,
            user=getpass.getuser(),
            client_key=client_key,
            host_public_key=host_key.with_suffix(".pub"),
            log=log,
            workdir=workdir,
        )
    finally:
        stop(proc, timeout=5)


def stop(proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Terminate a server process we started; kill it if it does not go in time."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False
