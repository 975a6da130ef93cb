"""The embedded asyncssh SFTP server: deliver() works against it, and clients stay in root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from handover.config import SftpEndpoint
from handover.demo.sftp_server import EmbeddedSftpServer
from handover.errors import DeliveryError, HostKeyMismatch
from handover.run.deliver import deliver
from tests.conftest import ssh_keygen


@dataclass(frozen=True)
class Agency:
    """A running embedded server and what a client needs to reach it."""

    root: Path
    endpoint: SftpEndpoint
    client_key: Path
    host_public_key: Path


@pytest.fixture
def agency(tmp_path: Path) -> Iterator[Agency]:
    keys = tmp_path / "keys"
    keys.mkdir()
    host_key = ssh_keygen(keys / "host_ed25519")
    client_key = ssh_keygen(keys / "client_ed25519")
    root = tmp_path / "root"
    (root / "inbox").mkdir(parents=True)
    with EmbeddedSftpServer(root, host_key, client_key.with_suffix(".pub")) as server:
        known_hosts = keys / "known_hosts"
        host_line = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        known_hosts.write_text(f"[127.0.0.1]:{server.port} {host_line}\n")
        endpoint = SftpEndpoint(
            host="127.0.0.1",
            port=server.port,
            user="agency",
            inbox="inbox",
            known_hosts=known_hosts,
        )
        yield Agency(root, endpoint, client_key, host_key.with_suffix(".pub"))


def _drop(directory: Path) -> list[Path]:
    directory.mkdir()
    payload = directory / "drop-1.csv.age"
    manifest = directory / "drop-1.manifest.json"
    payload.write_bytes(os.urandom(300_000))
    manifest.write_text('{"case_count": 0}\n')
    return [payload, manifest]


def _sftp(agency: Agency, client_key: Path | None = None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.load_host_keys(str(agency.endpoint.known_hosts))
    client.connect(
        "127.0.0.1",
        port=agency.endpoint.port,
        username="agency",
        key_filename=str(client_key or agency.client_key),
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    return client


def test_deliver_to_embedded_server_with_pinned_key(agency: Agency, tmp_path: Path):
    files = _drop(tmp_path / "drop")
    receipt = deliver(files, agency.endpoint, agency.client_key, timeout=10)

    assert receipt.files == ("drop-1.csv.age", "drop-1.manifest.json")
    assert sorted(os.listdir(agency.root / "inbox")) == [p.name for p in files]
    for path in files:
        assert (agency.root / "inbox" / path.name).read_bytes() == path.read_bytes()
    again = deliver(files, agency.endpoint, agency.client_key, timeout=10)
    assert again.files == () and again.skipped == receipt.files


def test_embedded_server_key_is_checked(agency: Agency, tmp_path: Path):
    impostor = ssh_keygen(tmp_path / "impostor")
    line = " ".join(impostor.with_suffix(".pub").read_text().split()[:2])
    agency.endpoint.known_hosts.write_text(f"[127.0.0.1]:{agency.endpoint.port} {line}\n")
    with pytest.raises(HostKeyMismatch, match="CHANGED"):
        deliver(_drop(tmp_path / "drop"), agency.endpoint, agency.client_key, timeout=10)


def test_only_the_authorized_key_gets_in(agency: Agency, tmp_path: Path):
    stranger = ssh_keygen(tmp_path / "stranger")
    with pytest.raises(DeliveryError, match="refused user 'agency'"):
        deliver(_drop(tmp_path / "drop"), agency.endpoint, stranger, timeout=10)


def test_client_cannot_escape_root(agency: Agency, tmp_path: Path):
    outside = agency.root.parent
    (outside / "secret.txt").write_text("outside the root")
    client = _sftp(agency)
    try:
        sftp = client.open_sftp()
        assert sftp.normalize("..") == "/"
        assert sftp.normalize("/../../..") == "/"
        assert sorted(sftp.listdir("../../..")) == ["inbox"]
        with pytest.raises(FileNotFoundError):
            sftp.stat("../secret.txt")
        with sftp.open("../../escape.txt", "w") as handle:
            handle.write(b"stays inside")
        with pytest.raises(PermissionError):
            sftp.symlink("/", "inbox/link")
    finally:
        client.close()
    assert (agency.root / "escape.txt").read_bytes() == b"stays inside"
    assert not (outside / "escape.txt").exists()
    assert not (agency.root / "inbox" / "link").exists()


def test_no_shell_or_exec(agency: Agency):
    client = _sftp(agency)
    try:
        for request in ("invoke_shell", "exec_command"):
            channel = client.get_transport().open_session()
            with pytest.raises(paramiko.SSHException):
                if request == "invoke_shell":
                    channel.invoke_shell()
                else:
                    channel.exec_command("id")
    finally:
        client.close()
