"""Shared fixtures. Sections: external tools, real OpenSSH server, age keys.

Tests use real programs (OpenSSH sshd, age) rather than mocks. A missing program skips the
tests locally and fails them when the environment variable CI is set, so CI cannot go green
by skipping.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from handover.config import SftpEndpoint
from tests.support.sshd import (  # noqa: F401 (tests import these from here)
    ServerDidNotStart,
    Sshd,
    find_tool,
    free_port,
    make_key_pair,
    start_sshd,
    stop,
)

# --------------------------------------------------------------------------- external tools


def require_tool(name: str, package: str) -> str:
    """Absolute path of program `name`; skip the test without it (fail when CI is set)."""
    path = find_tool(name)
    if path:
        return path
    message = f"'{name}' not found: install the '{package}' package (apt-get install {package})"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# --------------------------------------------------------------------------- OpenSSH server
# The server itself lives in tests/support/sshd.py, which the benchmark (bench/e2e.py) shares.


def ssh_keygen(path: Path, key_type: str = "ed25519") -> Path:
    """Create an unencrypted key pair at `path` / `path.pub` (`ssh-keygen -N ''`); return `path`."""
    return make_key_pair(require_tool("ssh-keygen", "openssh-client"), path, key_type)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A real OpenSSH sshd on 127.0.0.1 with a private config, for the whole session."""
    binary = require_tool("sshd", "openssh-server")
    keygen = require_tool("ssh-keygen", "openssh-client")
    try:
        with start_sshd(tmp_path_factory.mktemp("sshd"), binary, keygen) as server:
            yield server
    except ServerDidNotStart as exc:
        pytest.fail(str(exc))


@pytest.fixture
def sftp_target(sshd: Sshd, tmp_path: Path) -> tuple[SftpEndpoint, Path]:
    """A fresh inbox on `sshd` and an endpoint pinning its real host key: (endpoint, inbox)."""
    inbox = sshd.new_inbox()
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    return sshd.endpoint(inbox, known_hosts), inbox


@pytest.fixture
def sftp_connect() -> Iterator[Callable[[SftpEndpoint, Path], paramiko.SFTPClient]]:
    """Open an independent, host-key-pinned SFTP session (as the agency would look in)."""
    clients: list[paramiko.SSHClient] = []

    def connect(endpoint: SftpEndpoint, client_key: Path) -> paramiko.SFTPClient:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.load_host_keys(str(endpoint.known_hosts))
        client.connect(
            endpoint.host,
            port=endpoint.port,
            username=endpoint.user,
            key_filename=str(client_key),
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
        )
        clients.append(client)
        return client.open_sftp()

    yield connect
    for client in clients:
        client.close()


# --------------------------------------------------------------------------- age keys


@dataclass(frozen=True)
class AgeIdentity:
    """An age X25519 key pair made by the stock `age-keygen`."""

    path: Path  # identity file, usable with `age -d -i`
    secret: str  # AGE-SECRET-KEY-1…
    recipient: str  # age1…


@pytest.fixture
def age_identity(tmp_path: Path) -> AgeIdentity:
    """A fresh age identity generated with `age-keygen -o`."""
    return make_age_identity(tmp_path / "identity.txt")


def make_age_identity(path: Path) -> AgeIdentity:
    """Run `age-keygen -o path` and read the key pair back."""
    keygen = require_tool("age-keygen", "age")
    subprocess.run([keygen, "-o", str(path)], check=True, capture_output=True)
    secret = next(
        line for line in path.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-")
    )
    recipient = subprocess.run(
        [keygen, "-y", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return AgeIdentity(path=path, secret=secret, recipient=recipient)


# --------------------------------------------------------------------------- Prefect


@pytest.fixture(scope="session")
def prefect() -> Iterator[None]:
    """One temporary Prefect server and database for every flow test of the session."""
    from handover.cli.main import quiet_analytics

    quiet_analytics()
    from prefect.testing.utilities import prefect_test_harness

    # The local server takes 10–20 s to start on these machines.
    with prefect_test_harness(server_startup_timeout=120):
        yield


# --------------------------------------------------------------------------- PostgreSQL

# The server lives in tests/pgserver.py; registered here once, so every module of the session
# shares one server (a module importing the fixture itself would start its own).
from tests.support.pgserver import postgres_server  # noqa: E402, F401

# --------------------------------------------------------------------------- delivery faults
# Small file systems that fill up (tmpfs) and a TCP proxy that cuts or stalls connections, so
# delivery and sealing meet real ENOSPC/EROFS and real network faults. Mounting needs root
# (the test machines and CI run as root); without it the tests skip, or fail when CI is set.


@pytest.fixture
def mount_tmpfs() -> Iterator[Callable[..., Path]]:
    """`mount_tmpfs(directory, size="256k")` mounts a tmpfs on `directory`; all are unmounted.

    Remount it with `remount(directory, "size=8m")` or `remount(directory, "ro")`.
    """
    mounted: list[Path] = []

    def mount(directory: Path, size: str = "256k") -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            message = f"cannot mount a tmpfs (root needed): {done.stderr.strip()}"
            if os.environ.get("CI"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        mounted.append(directory)
        return directory

    yield mount
    for directory in reversed(mounted):
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def remount(directory: Path, options: str) -> None:
    """`mount -o remount,OPTIONS DIRECTORY`, e.g. "size=8m" or "ro"."""
    subprocess.run(
        ["mount", "-o", f"remount,{options}", str(directory)], check=True, capture_output=True
    )


def write_known_hosts_for(sshd: Sshd, path: Path, port: int) -> Path:
    """A known_hosts file pinning `sshd`'s host key for 127.0.0.1:`port` (a proxy in front)."""
    key_type, key_data = sshd.host_public_key.read_text().split()[:2]
    path.write_text(f"[{sshd.host}]:{port} {key_type} {key_data}\n")
    return path


@pytest.fixture
def proxied_sftp_target(sshd: Sshd, tmp_path: Path):
    """(endpoint, inbox, proxy): a fresh inbox on `sshd` reached through a `FaultProxy`."""
    from tests.support.proxy import FaultProxy

    inbox = sshd.new_inbox()
    with FaultProxy(sshd.port) as proxy:
        known_hosts = write_known_hosts_for(sshd, tmp_path / "known_hosts_proxy", proxy.port)
        endpoint = SftpEndpoint(
            host=sshd.host,
            port=proxy.port,
            user=sshd.user,
            inbox=str(inbox),
            known_hosts=known_hosts,
        )
        yield endpoint, inbox, proxy


# --------------------------------------------------------------------------- Prefect server
# A real `prefect server start` (deployments, workers, automations), one per test session and
# pytest worker; tests/support/prefect_server.py starts it. Flow tests use `prefect` above.


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    from tests.support.prefect_server import prefect_server as start

    with start(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server
