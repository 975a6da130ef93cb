"""Delivery to a real OpenSSH sshd: atomic, ordered, pinned, never twice."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from handover.config import SftpEndpoint
from handover.errors import DeliveryError, HostKeyMismatch, TransientDeliveryError
from handover.run.deliver import deliver
from tests.conftest import Sshd, free_port, ssh_keygen

LARGE = 20 * 1024 * 1024


def _drop(directory: Path, payload_size: int = 4096, drop_id: str = "drop-1") -> list[Path]:
    """A stand-in drop (payload, manifest) in delivery order; contents are random."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = directory / f"{drop_id}.csv.age"
    manifest = directory / f"{drop_id}.manifest.json"
    payload.write_bytes(os.urandom(payload_size))
    manifest.write_text(json.dumps({"payload": {"file": payload.name}}) + "\n")
    return [payload, manifest]


def _fingerprint(public_key: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(public_key)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


def test_files_land_under_final_names(sshd: Sshd, sftp_target, tmp_path: Path):
    endpoint, inbox = sftp_target
    files = _drop(tmp_path / "drop")
    receipt = deliver(files, endpoint, sshd.client_key, timeout=10)

    assert sorted(os.listdir(inbox)) == ["drop-1.csv.age", "drop-1.manifest.json"]
    for path in files:
        assert (inbox / path.name).read_bytes() == path.read_bytes()
    assert receipt.files == ("drop-1.csv.age", "drop-1.manifest.json")
    assert receipt.skipped == ()
    assert (receipt.host, receipt.port, receipt.inbox) == (sshd.host, sshd.port, str(inbox))
    assert receipt.host_key_fingerprint == _fingerprint(sshd.host_public_key)
    assert receipt.host_key_fingerprint.startswith("SHA256:")


def test_agency_never_sees_partial_file_and_payload_precedes_manifest(
    sshd: Sshd, sftp_target, sftp_connect, tmp_path: Path
):
    endpoint, inbox = sftp_target
    files = _drop(tmp_path / "drop", payload_size=LARGE)
    sizes = {p.name: p.stat().st_size for p in files}
    payload, manifest = (p.name for p in files)
    watcher = sftp_connect(endpoint, sshd.client_key)  # the agency looking at its inbox
    snapshots: list[dict[str, int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            snapshots.append({a.filename: a.st_size for a in watcher.listdir_attr(str(inbox))})
        snapshots.append({a.filename: a.st_size for a in watcher.listdir_attr(str(inbox))})

    thread = threading.Thread(target=watch)
    thread.start()
    started = time.monotonic()
    try:
        deliver(files, endpoint, sshd.client_key, timeout=10)
    finally:
        elapsed = time.monotonic() - started
        done.set()
        thread.join(10)

    for seen in snapshots:
        for name, size in seen.items():
            if not name.endswith(".part"):
                assert size == sizes[name], f"{name} visible with {size} of {sizes[name]} bytes"
        if manifest in seen:
            assert seen.get(payload) == sizes[payload], "manifest visible before the payload"
    assert snapshots[-1] == sizes
    # The watcher must have caught the upload in flight, or the checks above proved nothing.
    partial = [s[f".{payload}.part"] for s in snapshots if f".{payload}.part" in s]
    assert any(0 < size < LARGE for size in partial), f"{len(snapshots)} snapshots, no partial"
    assert (inbox / payload).stat().st_mtime_ns <= (inbox / manifest).stat().st_mtime_ns
    assert elapsed < 5, f"{LARGE >> 20} MiB took {elapsed:.1f}s: pipelining is off?"


def test_second_delivery_sends_nothing_twice(sshd: Sshd, sftp_target, tmp_path: Path):
    endpoint, inbox = sftp_target
    files = _drop(tmp_path / "drop")
    deliver(files, endpoint, sshd.client_key, timeout=10)
    before = {p.name: os.stat(inbox / p.name) for p in files}

    receipt = deliver(files, endpoint, sshd.client_key, timeout=10)

    assert receipt.files == ()
    assert receipt.skipped == ("drop-1.csv.age", "drop-1.manifest.json")
    for path in files:
        after = os.stat(inbox / path.name)
        assert (after.st_ino, after.st_mtime_ns) == (
            before[path.name].st_ino,
            before[path.name].st_mtime_ns,
        )


def test_resume_overwrites_leftover_part_and_skips_delivered(
    sshd: Sshd, sftp_target, tmp_path: Path
):
    """An attempt that died after the payload and mid-manifest is completed, not repeated."""
    endpoint, inbox = sftp_target
    payload, manifest = _drop(tmp_path / "drop")
    (inbox / payload.name).write_bytes(payload.read_bytes())
    (inbox / f".{manifest.name}.part").write_bytes(b"x" * 100_000)  # longer than the real one

    receipt = deliver([payload, manifest], endpoint, sshd.client_key, timeout=10)

    assert receipt.files == (manifest.name,)
    assert receipt.skipped == (payload.name,)
    assert (inbox / manifest.name).read_bytes() == manifest.read_bytes()
    assert sorted(os.listdir(inbox)) == [payload.name, manifest.name]


def test_same_name_with_other_size_is_terminal_and_sends_nothing(
    sshd: Sshd, sftp_target, tmp_path: Path
):
    endpoint, inbox = sftp_target
    payload, manifest = _drop(tmp_path / "drop")
    (inbox / manifest.name).write_text("{}\n")  # someone else's drop under our name

    with pytest.raises(DeliveryError, match=manifest.name) as raised:
        deliver([payload, manifest], endpoint, sshd.client_key, timeout=10)

    assert not isinstance(raised.value, TransientDeliveryError)
    assert os.listdir(inbox) == [manifest.name]  # the payload was not sent either


@pytest.mark.parametrize("pinned_type", ["ed25519", "rsa"])
def test_changed_host_key_is_refused(sshd: Sshd, sftp_target, tmp_path: Path, pinned_type: str):
    endpoint, inbox = sftp_target
    impostor = ssh_keygen(tmp_path / "impostor", pinned_type)
    sshd.write_known_hosts(endpoint.known_hosts, impostor.with_suffix(".pub"))

    with pytest.raises(HostKeyMismatch) as raised:
        deliver(_drop(tmp_path / "drop"), endpoint, sshd.client_key, timeout=10)

    message = str(raised.value)
    assert "CHANGED" in message
    assert f"127.0.0.1:{sshd.port}" in message
    assert str(endpoint.known_hosts) in message
    assert _fingerprint(sshd.host_public_key) in message  # what the server presented
    assert _fingerprint(impostor.with_suffix(".pub")) in message  # what was pinned
    assert "out of band" in message
    assert os.listdir(inbox) == []


@pytest.mark.parametrize("known_hosts", ["empty", "missing"])
def test_unknown_host_is_refused(sshd: Sshd, sftp_target, tmp_path: Path, known_hosts: str):
    endpoint, inbox = sftp_target
    if known_hosts == "empty":
        endpoint.known_hosts.write_text("")
    else:
        endpoint = replace(endpoint, known_hosts=tmp_path / "nowhere" / "known_hosts")

    with pytest.raises(HostKeyMismatch) as raised:
        deliver(_drop(tmp_path / "drop"), endpoint, sshd.client_key, timeout=10)

    message = str(raised.value)
    assert "UNKNOWN" in message
    assert f"[127.0.0.1]:{sshd.port}" in message and str(endpoint.known_hosts) in message
    assert _fingerprint(sshd.host_public_key) in message
    assert os.listdir(inbox) == []


def test_nothing_listening_is_transient(sshd: Sshd, sftp_target, tmp_path: Path):
    endpoint, _ = sftp_target
    closed = SftpEndpoint(
        host="127.0.0.1",
        port=free_port(),
        user=endpoint.user,
        inbox=endpoint.inbox,
        known_hosts=endpoint.known_hosts,
    )
    with pytest.raises(TransientDeliveryError, match=f"127.0.0.1:{closed.port}"):
        deliver(_drop(tmp_path / "drop"), closed, sshd.client_key, timeout=5)


def test_unauthorised_client_key_is_terminal(sshd: Sshd, sftp_target, tmp_path: Path):
    endpoint, inbox = sftp_target
    stranger = ssh_keygen(tmp_path / "stranger")

    with pytest.raises(DeliveryError) as raised:
        deliver(_drop(tmp_path / "drop"), endpoint, stranger, timeout=10)

    assert type(raised.value) is DeliveryError
    assert f"'{sshd.user}'" in str(raised.value) and str(stranger) in str(raised.value)
    assert os.listdir(inbox) == []


def test_missing_inbox_is_terminal(sshd: Sshd, sftp_target, tmp_path: Path):
    endpoint, inbox = sftp_target
    absent = replace(endpoint, inbox=str(inbox / "absent"))
    with pytest.raises(DeliveryError, match="does not exist") as raised:
        deliver(_drop(tmp_path / "drop"), absent, sshd.client_key, timeout=10)
    assert type(raised.value) is DeliveryError


def test_inbox_files_are_plain_files(sshd: Sshd, sftp_target, tmp_path: Path):
    endpoint, inbox = sftp_target
    deliver(_drop(tmp_path / "drop"), endpoint, sshd.client_key, timeout=10)
    assert all(stat.S_ISREG(os.lstat(p).st_mode) for p in inbox.iterdir())
