"""Delivery to a real OpenSSH sshd: atomic, ordered, pinned, never twice."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest

from handover.config import SftpEndpoint
from handover.errors import DeliveryError, HostKeyMismatch, TransientDeliveryError
from handover.run.deliver import WINDOW_SIZE, deliver
from tests.conftest import Sshd, free_port, remount, ssh_keygen

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


# --------------------------------------------------------------------------- the real cause
# Real faults: a tmpfs that fills up or turns read-only under the sshd's inbox, and a TCP
# proxy (tests/support/proxy.py) that cuts or stalls the connection.


def _sealed(directory: Path, payload_size: int = 4096, drop_id: str = "drop-1") -> list[Path]:
    """A stand-in for a sealed drop: payload, manifest, signature (random bytes) in order."""
    payload, manifest = _drop(directory, payload_size, drop_id)
    signature = directory / f"{drop_id}.manifest.json.sig"
    signature.write_bytes(b"-----BEGIN SSH SIGNATURE-----\n" + os.urandom(200).hex().encode())
    return [payload, manifest, signature]


def _terminal(raised: pytest.ExceptionInfo[DeliveryError]) -> str:
    assert type(raised.value) is DeliveryError and not raised.value.transient
    message = str(raised.value)
    assert "will retry" not in message
    return message


def _transient(raised: pytest.ExceptionInfo[DeliveryError]) -> str:
    assert isinstance(raised.value, TransientDeliveryError) and raised.value.transient
    message = str(raised.value)
    assert "will retry" not in message
    assert "a retry may cure it" in message
    return message


def test_full_inbox_is_the_servers_refusal_and_terminal_then_delivers_once_room_is_made(
    sshd: Sshd, mount_tmpfs, tmp_path: Path
):
    inbox = mount_tmpfs(sshd.new_inbox(), size="256k")
    endpoint = sshd.endpoint(inbox, sshd.write_known_hosts(tmp_path / "known_hosts"))
    files = _sealed(tmp_path / "drop", payload_size=1024 * 1024)

    with pytest.raises(DeliveryError) as raised:
        deliver(files, endpoint, sshd.client_key, timeout=10)

    message = _terminal(raised)
    assert "refused to write" in message and "full" in message, message
    assert f"127.0.0.1:{sshd.port}" in message and f"{inbox}/.drop-1.csv.age.part" in message
    assert "bytes after upload" not in message
    assert "next run" in message
    assert os.listdir(inbox) == []  # nothing under a final name, and the partial upload removed

    remount(inbox, "size=8m")
    receipt = deliver(files, endpoint, sshd.client_key, timeout=10)

    assert receipt.files == tuple(p.name for p in files)
    assert sorted(os.listdir(inbox)) == sorted(p.name for p in files)
    for path in files:
        assert (inbox / path.name).read_bytes() == path.read_bytes()


def test_read_only_inbox_is_terminal_and_names_the_cause(sshd: Sshd, mount_tmpfs, tmp_path):
    inbox = mount_tmpfs(sshd.new_inbox(), size="1m")
    remount(inbox, "ro")
    endpoint = sshd.endpoint(inbox, sshd.write_known_hosts(tmp_path / "known_hosts"))

    with pytest.raises(DeliveryError) as raised:
        deliver(_sealed(tmp_path / "drop"), endpoint, sshd.client_key, timeout=10)

    message = _terminal(raised)
    assert "refused to write" in message and "read-only" in message, message
    assert f"{inbox}/.drop-1.csv.age.part" in message
    assert os.listdir(inbox) == []


# --------------------------------------------------------------------------- already taken


def _agency_opens(inbox: Path, files: list[Path]) -> None:
    """What the agency's tool does with an opened drop: move its files into processed/."""
    (inbox / "processed").mkdir(exist_ok=True)
    for path in files:
        os.rename(inbox / path.name, inbox / "processed" / path.name)


def _receipt(manifest: Path, sha256: str | None = None) -> str:
    import hashlib

    digest = sha256 or hashlib.sha256(manifest.read_bytes()).hexdigest()
    return json.dumps({"drop_id": "drop-1", "manifest_sha256": digest}) + "\n"


def test_a_drop_the_agency_already_opened_is_not_sent_again(
    sshd: Sshd, sftp_target, tmp_path: Path
):
    endpoint, inbox = sftp_target
    files = _sealed(tmp_path / "drop")
    deliver(files, endpoint, sshd.client_key, timeout=10)
    _agency_opens(inbox, files)

    receipt = deliver(files, endpoint, sshd.client_key, timeout=10)

    assert receipt.found_at_agency == "processed"
    assert receipt.files == () and receipt.skipped == tuple(p.name for p in files)
    assert os.listdir(inbox) == ["processed"]  # no new file, not even a partial one


@pytest.mark.parametrize("folder", [".", "processed"])
def test_a_matching_receipt_means_received(sshd: Sshd, sftp_target, tmp_path: Path, folder):
    endpoint, inbox = sftp_target
    files = _sealed(tmp_path / "drop")
    (inbox / folder).mkdir(exist_ok=True)
    (inbox / folder / "drop-1.received").write_text(_receipt(files[1]))
    before = sorted(p.relative_to(inbox) for p in inbox.rglob("*"))

    receipt = deliver(files, endpoint, sshd.client_key, timeout=10)

    assert receipt.found_at_agency == "receipt"
    assert receipt.files == ()
    assert sorted(p.relative_to(inbox) for p in inbox.rglob("*")) == before


def test_a_mismatching_receipt_is_terminal_and_sends_nothing(
    sshd: Sshd, sftp_target, tmp_path: Path
):
    endpoint, inbox = sftp_target
    files = _sealed(tmp_path / "drop")
    (inbox / "drop-1.received").write_text(_receipt(files[1], sha256="ab" * 32))

    with pytest.raises(DeliveryError) as raised:
        deliver(files, endpoint, sshd.client_key, timeout=10)

    message = _terminal(raised)
    assert "a different drop under the same id drop-1" in message
    assert f"{inbox}/drop-1.received" in message and "ask the agency" in message
    assert os.listdir(inbox) == ["drop-1.received"]


def test_another_signature_in_processed_is_terminal_and_sends_nothing(
    sshd: Sshd, sftp_target, tmp_path: Path
):
    endpoint, inbox = sftp_target
    theirs = _sealed(tmp_path / "theirs")
    deliver(theirs, endpoint, sshd.client_key, timeout=10)
    _agency_opens(inbox, theirs)
    ours = _sealed(tmp_path / "ours")  # same id, other content

    with pytest.raises(DeliveryError) as raised:
        deliver(ours, endpoint, sshd.client_key, timeout=10)

    message = _terminal(raised)
    assert "a different drop under the same id drop-1" in message
    assert f"{inbox}/processed/drop-1.manifest.json.sig" in message
    assert os.listdir(inbox) == ["processed"]


def test_a_complete_drop_in_the_inbox_is_found_there(sshd: Sshd, sftp_target, tmp_path: Path):
    endpoint, _inbox = sftp_target
    files = _sealed(tmp_path / "drop")
    deliver(files, endpoint, sshd.client_key, timeout=10)

    receipt = deliver(files, endpoint, sshd.client_key, timeout=10)

    assert receipt.found_at_agency == "inbox"
    assert receipt.files == ()


def test_a_signature_of_the_same_size_but_other_bytes_is_terminal(
    sshd: Sshd, sftp_target, tmp_path: Path
):
    endpoint, inbox = sftp_target
    files = _sealed(tmp_path / "drop")
    for path in files:
        (inbox / path.name).write_bytes(path.read_bytes())
    signature = files[2].read_bytes()
    (inbox / files[2].name).write_bytes(signature[:-1] + bytes([signature[-1] ^ 1]))

    with pytest.raises(DeliveryError, match=files[2].name) as raised:
        deliver(files, endpoint, sshd.client_key, timeout=10)
    _terminal(raised)


# --------------------------------------------------------------------------- network faults


def test_cut_mid_upload_is_transient_and_the_next_run_completes_the_drop(
    sshd: Sshd, proxied_sftp_target, tmp_path: Path
):
    endpoint, inbox, proxy = proxied_sftp_target
    files = _sealed(tmp_path / "drop", payload_size=4 * 1024 * 1024)
    proxy.cut_after(1024 * 1024)

    with pytest.raises(TransientDeliveryError) as raised:
        deliver(files, endpoint, sshd.client_key, timeout=10)

    message = _transient(raised)
    assert f"127.0.0.1:{proxy.port}" in message
    assert os.listdir(inbox) in ([], [".drop-1.csv.age.part"])  # no final name yet

    proxy.forward()
    receipt = deliver(files, endpoint, sshd.client_key, timeout=10)

    assert receipt.files == tuple(p.name for p in files)
    assert sorted(os.listdir(inbox)) == sorted(p.name for p in files)  # no .part, no duplicate
    for path in files:
        assert (inbox / path.name).read_bytes() == path.read_bytes()


def _handshake_bytes(sshd: Sshd, endpoint: SftpEndpoint, proxy) -> dict[str, int]:
    """Bytes a client sends through `proxy` until key exchange, authentication and the SFTP
    start are done, as deliver's client does them (the counts are the same every time)."""

    def sent() -> int:  # once the proxy has counted what it forwarded
        while True:
            count = proxy.upstream_bytes
            time.sleep(0.1)
            if proxy.upstream_bytes == count:
                return count - before

    before = proxy.upstream_bytes
    transport = paramiko.Transport(socket.create_connection((endpoint.host, endpoint.port)))
    try:
        transport.start_client(timeout=10)
        kex = sent()
        transport.auth_publickey(endpoint.user, paramiko.PKey.from_path(sshd.client_key))
        auth = sent()
        paramiko.SFTPClient.from_transport(transport, window_size=WINDOW_SIZE)
        return {"kex": kex, "auth": auth, "sftp": sent()}
    finally:
        transport.close()


@pytest.mark.parametrize("phase", ["kex", "auth", "sftp"])
def test_a_cut_while_connecting_is_transient(
    sshd: Sshd, proxied_sftp_target, tmp_path: Path, phase: str
):
    """paramiko reports a connection lost during authentication as AuthenticationException:
    it must not read as the agency refusing our key."""
    endpoint, inbox, proxy = proxied_sftp_target
    counts = [0, *_handshake_bytes(sshd, endpoint, proxy).values()]
    index = ["kex", "auth", "sftp"].index(phase)
    proxy.cut_after((counts[index] + counts[index + 1]) // 2)  # in the middle of the phase

    with pytest.raises(TransientDeliveryError) as raised:
        deliver(_sealed(tmp_path / "drop"), endpoint, sshd.client_key, timeout=5)

    _transient(raised)
    assert os.listdir(inbox) == []


def _deliver_or_hang(files, endpoint, key, timeout: float, proxy) -> tuple[BaseException, float]:
    """Run deliver in a thread; fail (and free it by closing the proxy) if it hangs."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            deliver(files, endpoint, key, timeout=timeout)
            outcome.append(None)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(6 * timeout)
    elapsed = time.monotonic() - started
    if thread.is_alive():
        proxy.close()  # shuts the sockets down, so the thread ends
        thread.join(10)
        pytest.fail(f"deliver hung for {elapsed:.0f}s on a stalled link (timeout={timeout})")
    assert outcome and outcome[0] is not None, "deliver succeeded through a stalled link"
    return outcome[0], elapsed


@pytest.mark.parametrize("stall_at", ["banner", "sftp-version", "mid-upload"])
def test_a_stalled_connection_fails_transient_within_the_timeout(
    sshd: Sshd, proxied_sftp_target, tmp_path: Path, stall_at: str
):
    endpoint, inbox, proxy = proxied_sftp_target
    files = _sealed(tmp_path / "drop", payload_size=16 * 1024 * 1024)
    if stall_at == "banner":  # the server accepts TCP but sends nothing
        proxy.stall_after(0)
    elif stall_at == "sftp-version":  # paramiko waits for the reply to INIT without a timeout
        proxy.stall_after(_handshake_bytes(sshd, endpoint, proxy)["sftp"] - 1)
    else:
        proxy.stall_after(1024 * 1024)
    timeout = 2.0

    error, elapsed = _deliver_or_hang(files, endpoint, sshd.client_key, timeout, proxy)

    assert isinstance(error, TransientDeliveryError), repr(error)
    assert "will retry" not in str(error) and "a retry may cure it" in str(error)
    assert elapsed < 3 * timeout, f"a stall took {elapsed:.1f}s to fail with timeout={timeout}"
    assert not any(name in os.listdir(inbox) for name in (p.name for p in files))


def test_a_refused_connection_is_transient(sshd: Sshd, proxied_sftp_target, tmp_path: Path):
    endpoint, inbox, proxy = proxied_sftp_target
    proxy.refuse()

    with pytest.raises(TransientDeliveryError) as raised:
        deliver(_sealed(tmp_path / "drop"), endpoint, sshd.client_key, timeout=5)

    assert f"127.0.0.1:{proxy.port}" in _transient(raised)
    assert proxy.connections >= 1
    assert os.listdir(inbox) == []


def test_no_message_says_will_retry():
    """The caller's retry policy decides; a message on the last attempt must not promise one."""
    import handover.run.deliver as module

    assert "will retry" not in Path(module.__file__).read_text()


def test_the_fault_proxy_forwards_and_leaves_no_thread_behind(sshd: Sshd, tmp_path: Path):
    from tests.support.proxy import FaultProxy

    def proxy_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("fault-proxy")]

    assert proxy_threads() == []
    with FaultProxy(sshd.port) as proxy:
        assert proxy.mode == "pass"
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            assert client.recv(4).startswith(b"SSH-")  # sshd's banner came through
            client.sendall(b"SSH-2.0-probe\r\n")
            deadline = time.monotonic() + 5
            while proxy.upstream_bytes < 15 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proxy.upstream_bytes == 15 and proxy.connections == 1
            proxy.stall_after(0)  # set while the connection is open
            assert proxy.mode == "stall"
            assert len(proxy_threads()) == 3  # acceptor and the two directions
    assert proxy_threads() == []
