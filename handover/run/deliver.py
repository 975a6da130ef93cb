"""Deliver a sealed drop to the agency's SFTP inbox with a pinned host key.

Before anything is sent, `deliver` looks whether the agency already has the drop: a receipt
`<drop_id>.received` (in the inbox or `processed/`) naming our manifest's SHA-256, our
signature in `processed/` (the agency's tool moves opened drops there), or every file already
in the inbox. Then nothing is sent twice; a different drop under the same id stops delivery.

Each file is uploaded as `.<name>.part` and renamed, so the agency never sees a partial file
under its final name. Writes are pipelined in a bounded window and the server's status for
every one of them is read: paramiko's own pipelined `putfo` drops them, which turned a full
agency disk into a mysterious size mismatch. A watchdog shuts the connection down when
nothing arrives for `timeout` seconds, so a stalled link fails instead of hanging.

Messages promise no retry: the caller's retry policy decides whether to (it reads `transient`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import posixpath
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import paramiko
from paramiko.message import Message
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_HANDLE,
    CMD_OPEN,
    CMD_STATUS,
    CMD_WRITE,
    SFTP_DESC,
    SFTP_FAILURE,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_PERMISSION_DENIED,
    int64,
)

from handover.config import SftpEndpoint
from handover.crypto.envelope import (
    MANIFEST_SUFFIX,
    PAYLOAD_SUFFIX,
    PROCESSED,
    RECEIPT_SUFFIX,
    SIGNATURE_SUFFIX,
)
from handover.errors import DeliveryError, HostKeyMismatch, KeyFileError, TransientDeliveryError
from handover.faults import crash_point

# Paramiko's 2 MiB default window slowed pipelined uploads: 107 vs 146 MiB/s on loopback.
WINDOW_SIZE = 64 * 1024 * 1024
# paramiko's SFTPFile.MAX_REQUEST_SIZE: larger writes choke some servers.
WRITE_SIZE = 32 * 1024
# Writes sent but not yet answered: 64 x 32 KiB = 2 MiB in flight, OpenSSH's channel window.
WRITES_IN_FLIGHT = 64
# The agency's folder for opened drops, and the suffix of the receipts its tool writes.
# Signatures, manifests and receipts are read whole to compare them; they are small.
SMALL_FILE_LIMIT = 1024 * 1024

_RETRY_MAY_CURE = "(a network fault; a retry may cure it)"


@dataclass(frozen=True)
class Receipt:
    """What one `deliver` call did: `files` were uploaded now, `skipped` were already there.

    `found_at_agency` says why nothing was uploaded when the agency already had the drop:
    "receipt" (its `<drop_id>.received` names our manifest), "processed" (our signature is in
    `processed/`), "inbox" (every file is in the inbox); None when anything was uploaded.
    """

    host: str
    port: int
    inbox: str
    files: tuple[str, ...]
    host_key_fingerprint: str
    skipped: tuple[str, ...]
    found_at_agency: str | None = None


class _UnknownHostKey(paramiko.SSHException):
    """Raised by `_PinnedPolicy` so an unknown host is told apart from other SSH faults."""

    def __init__(self, key: paramiko.PKey) -> None:
        super().__init__("host key not in known_hosts")
        self.key = key


class _PinnedPolicy(paramiko.RejectPolicy):
    """RejectPolicy that keeps the presented key, so the error can show its fingerprint."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        raise _UnknownHostKey(key)


def deliver(
    files: Sequence[Path], endpoint: SftpEndpoint, client_key: Path, *, timeout: float = 30.0
) -> Receipt:
    """Upload `files` in order to `endpoint.inbox`, each atomically, never twice.

    Files named `<drop_id>.csv.age`, `<drop_id>.manifest.json` and `<drop_id>.manifest.json.sig`
    are first looked for at the agency (see the module docstring). `timeout` bounds the TCP
    connect, the banner, the authentication, every SFTP reply, and any stretch of time in which
    nothing arrives from the server.

    Raises HostKeyMismatch (unknown or changed host key), TransientDeliveryError (network
    faults a retry may cure), DeliveryError (anything else a human must fix) and KeyFileError
    (unusable client key).
    """
    local = [Path(f) for f in files]
    _check_local(local)
    drop = _DropFiles.of(local)
    pkey = _load_client_key(Path(client_key))
    where = f"{endpoint.host}:{endpoint.port}"
    with _Watchdog(timeout) as watchdog:
        client = _connect(endpoint, pkey, Path(client_key), timeout, watchdog=watchdog)
        try:
            transport = client.get_transport()
            assert transport is not None
            fingerprint = transport.get_remote_server_key().fingerprint
            try:
                sftp = _SFTPClient.from_transport(transport, window_size=WINDOW_SIZE)
                assert sftp is not None
                sftp.get_channel().settimeout(timeout)
                sftp.kick = watchdog.kick
                watchdog.kick()
                uploaded, skipped, found = _deliver_drop(sftp, local, drop, endpoint.inbox, where)
                sftp.close()
            except (DeliveryError, KeyFileError):
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise _classify_remote(exc, transport, where, endpoint.inbox, watchdog) from None
        finally:
            # Closes the socket without sending anything, so a stalled link cannot hold it.
            client.close()
    return Receipt(
        host=endpoint.host,
        port=endpoint.port,
        inbox=endpoint.inbox,
        files=tuple(uploaded),
        host_key_fingerprint=fingerprint,
        skipped=tuple(skipped),
        found_at_agency=found,
    )


@dataclass(frozen=True)
class Probe:
    """What `probe_inbox` found: the server's host key, and an inbox that takes a file."""

    host: str
    port: int
    inbox: str
    host_key_fingerprint: str
    check_file: str  # the hidden file written, renamed and removed again


def probe_inbox(endpoint: SftpEndpoint, client_key: Path, *, timeout: float = 30.0) -> Probe:
    """Log in as delivery does and check the inbox takes a file; send nothing else.

    The check is delivery's own moves on a hidden file: upload `.handover-check-<random>.part`
    (a few bytes, no data), rename it, and remove it again. Raises what `deliver` raises:
    HostKeyMismatch, DeliveryError (login refused, no inbox, inbox not writable, or the check
    file could not be removed, named), TransientDeliveryError, KeyFileError.
    """
    pkey = _load_client_key(Path(client_key))
    where = f"{endpoint.host}:{endpoint.port}"
    name = f".handover-check-{secrets.token_hex(8)}"
    part, final = (posixpath.join(endpoint.inbox, n) for n in (f"{name}.part", name))
    with _Watchdog(timeout) as watchdog:
        client = _connect(endpoint, pkey, Path(client_key), timeout, watchdog=watchdog)
        try:
            transport = client.get_transport()
            assert transport is not None
            fingerprint = transport.get_remote_server_key().fingerprint
            try:
                sftp = _SFTPClient.from_transport(transport)
                assert sftp is not None
                sftp.get_channel().settimeout(timeout)
                sftp.kick = watchdog.kick
                watchdog.kick()
                _require_inbox(sftp, endpoint.inbox, where)
                _write_check_file(sftp, endpoint, part, final, where)
                sftp.close()
            except (DeliveryError, KeyFileError):
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise _classify_remote(exc, transport, where, endpoint.inbox, watchdog) from None
        finally:
            client.close()
    return Probe(endpoint.host, endpoint.port, endpoint.inbox, fingerprint, name)


def _write_check_file(
    sftp: paramiko.SFTPClient, endpoint: SftpEndpoint, part: str, final: str, where: str
) -> None:
    not_writable = (
        f"the inbox {where}:{endpoint.inbox} does not take a file from user '{endpoint.user}'"
    )
    advice = f"ask the agency to let '{endpoint.user}' write, rename and remove files there"
    try:
        _put(sftp, io.BytesIO(b"handover policy check --connect\n"), part)
    except _Refused as refused:
        _remove_quietly(sftp, part)
        raise DeliveryError(
            f"{not_writable} ({refused.status} on {refused.request}): it is read-only, full or "
            f"over quota; {advice}"
        ) from None
    try:
        _rename(sftp, part, final)
    except OSError as exc:
        _remove_quietly(sftp, part)
        raise DeliveryError(
            f"{not_writable}: renaming {part} failed ({_describe(exc)}), and delivery renames "
            f"every file it uploads; {advice}"
        ) from None
    try:
        sftp.remove(final)
    except OSError as exc:
        raise DeliveryError(
            f"the check file {where}:{final} could not be removed ({_describe(exc)}): ask the "
            f"agency to delete it; {advice}"
        ) from None


def _check_local(files: list[Path]) -> None:
    if not files:
        raise DeliveryError("nothing to deliver: the file list is empty")
    names = [f.name for f in files]
    for path in files:
        if not path.is_file():
            raise DeliveryError(f"{path}: not a file; seal the drop again before delivering")
        if path.name.startswith("."):
            raise DeliveryError(f"{path}: hidden names are reserved for partial uploads")
        if names.count(path.name) > 1:
            raise DeliveryError(f"{path.name} is listed twice; every file needs its own name")


def _load_client_key(path: Path) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        raise KeyFileError(
            f"{path}: SFTP client key not found; put it in the key directory"
        ) from None
    except PermissionError:
        raise KeyFileError(f"{path}: SFTP client key is not readable by this user") from None
    except paramiko.PasswordRequiredException:
        raise KeyFileError(
            f"{path}: SFTP client key is passphrase-protected; unattended delivery needs an "
            "unencrypted key (protect it by file permissions instead)"
        ) from None
    except (paramiko.SSHException, ValueError, OSError):
        raise KeyFileError(
            f"{path}: not an OpenSSH private key; create one with `ssh-keygen -t ed25519 -N ''`"
        ) from None


# --------------------------------------------------------------------------- connecting


class _Watchdog:
    """Shuts the watched socket down when nobody called `kick` for `timeout` seconds.

    paramiko retries a send into a full socket buffer forever, and some of its waits have no
    timeout (opening the SFTP subsystem): a link that stops forwarding would hang delivery.
    Shutting the socket down ends every such wait with an error; `fired` tells it apart.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.fired = False
        self._sock: socket.socket | None = None
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deliver-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def watch(self, sock: socket.socket) -> None:
        self._sock = sock
        self.kick()

    def kick(self) -> None:
        """Something arrived: the connection is alive for another `timeout` seconds."""
        self._last = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(min(0.2, self.timeout / 4)):
            if self._sock is not None and time.monotonic() - self._last > self.timeout:
                self.fired = True
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
                return


class _SFTPClient(paramiko.SFTPClient):
    """An SFTP client that tells the watchdog about every reply it reads."""

    @staticmethod
    def kick() -> None:
        """Replaced by the watchdog's `kick` once the session is open."""

    def _read_packet(self) -> tuple[int, bytes]:
        packet = super()._read_packet()
        self.kick()
        return packet


def _connect(
    endpoint: SftpEndpoint,
    pkey: paramiko.PKey,
    key_path: Path,
    timeout: float,
    *,
    watchdog: _Watchdog | None = None,
) -> paramiko.SSHClient:
    where = f"{endpoint.host}:{endpoint.port}"
    known_hosts = Path(endpoint.known_hosts)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(_PinnedPolicy())
    # A missing file pins nothing; connecting anyway lets the error show the fingerprint.
    if known_hosts.exists():
        try:
            client.load_host_keys(str(known_hosts))
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise HostKeyMismatch(
                f"{known_hosts}: cannot read known_hosts ({type(exc).__name__}); it must hold "
                f"one OpenSSH line per host key of {where}"
            ) from None
    try:
        # Our own socket, so the watchdog can shut it down whatever paramiko waits for.
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except OSError as exc:
        client.close()
        raise _classify_connect(exc, endpoint, key_path, client, watchdog) from None
    if watchdog is not None:
        watchdog.watch(sock)
    try:
        client.connect(
            endpoint.host,
            port=endpoint.port,
            username=endpoint.user,
            pkey=pkey,
            allow_agent=False,
            look_for_keys=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            sock=sock,
        )
    except Exception as exc:
        error = _classify_connect(exc, endpoint, key_path, client, watchdog)
        client.close()
        sock.close()
        raise error from None
    return client


def _classify_connect(
    exc: Exception,
    endpoint: SftpEndpoint,
    key_path: Path,
    client: paramiko.SSHClient,
    watchdog: _Watchdog | None,
) -> Exception:
    where = f"{endpoint.host}:{endpoint.port}"
    entry = _host_entry(endpoint)
    advice = (
        "confirm the presented fingerprint out of band with the agency (phone, signed letter), "
        f"then put the agency's host key line for {entry} into {endpoint.known_hosts}"
    )
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyMismatch(
            f"host key of {where} CHANGED: it presented {exc.key.get_name()} "
            f"{exc.key.fingerprint}, but {endpoint.known_hosts} pins "
            f"{exc.expected_key.get_name()} {exc.expected_key.fingerprint}. Nothing was sent. "
            f"This may be an attack; {advice}"
        )
    if isinstance(exc, _UnknownHostKey):
        missing = "" if Path(endpoint.known_hosts).exists() else " (the file does not exist)"
        return HostKeyMismatch(
            f"host key of {where} is UNKNOWN: {endpoint.known_hosts}{missing} has no entry for "
            f"{entry}; the server presented {exc.key.get_name()} {exc.key.fingerprint}. "
            f"Nothing was sent; {advice}"
        )
    stalled = watchdog.timeout if watchdog is not None and watchdog.fired else None
    if isinstance(exc, paramiko.AuthenticationException) and stalled is None:
        # paramiko also reports a connection lost or timed out during authentication as an
        # AuthenticationException; only a live server saying no is a refusal.
        transport = client.get_transport()
        alive = transport is not None and transport.is_active()
        if alive and "timeout" not in str(exc).lower():
            return DeliveryError(
                f"{where} refused user '{endpoint.user}' with client key {key_path}: ask the "
                "agency to authorise the public key (`ssh-keygen -y -f KEY`) for that user"
            )
    if isinstance(exc, socket.gaierror):
        return TransientDeliveryError(
            f"cannot resolve host '{endpoint.host}' ({exc.strerror}); check DNS and "
            "the agency's sftp.host"
        )
    if isinstance(exc, (OSError, EOFError, paramiko.SSHException)):
        reason = _describe(exc) if stalled is None else f"nothing arrived for {stalled:g} s"
        return TransientDeliveryError(
            f"cannot connect to {where}: {reason} {_RETRY_MAY_CURE}. If it persists, check "
            "the network and the agency's sftp.host/sftp.port"
        )
    return DeliveryError(f"connecting to {where} failed: {type(exc).__name__}")


def _host_entry(endpoint: SftpEndpoint) -> str:
    return endpoint.host if endpoint.port == 22 else f"[{endpoint.host}]:{endpoint.port}"


# --------------------------------------------------------------------------- what the agency has


@dataclass(frozen=True)
class _DropFiles:
    """The drop id and our manifest and signature, when `files` follow the drop's names."""

    drop_id: str
    manifest: Path | None
    signature: Path | None

    @classmethod
    def of(cls, files: list[Path]) -> _DropFiles | None:
        payloads = [f for f in files if f.name.endswith(PAYLOAD_SUFFIX)]
        if len(payloads) != 1 or payloads[0].name == PAYLOAD_SUFFIX:
            return None
        drop_id = payloads[0].name[: -len(PAYLOAD_SUFFIX)]
        by_name = {f.name: f for f in files}
        return cls(
            drop_id=drop_id,
            manifest=by_name.get(drop_id + MANIFEST_SUFFIX),
            signature=by_name.get(drop_id + SIGNATURE_SUFFIX),
        )

    @property
    def identity(self) -> Path | None:
        """The file that tells our drop from another under the same id: the signature, else
        the manifest (it pins the payload's SHA-256)."""
        return self.signature or self.manifest


def _deliver_drop(
    sftp: paramiko.SFTPClient,
    files: list[Path],
    drop: _DropFiles | None,
    inbox: str,
    where: str,
) -> tuple[list[str], list[str], str | None]:
    _require_inbox(sftp, inbox, where)
    names = [path.name for path in files]
    found = _received_by_agency(sftp, drop, inbox, where) if drop else None
    if found is not None:
        return [], names, found
    # Decide for every file before sending any, so a conflict leaves the inbox untouched.
    plan = [(path, _in_inbox(sftp, path, inbox, where)) for path in files]
    if all(present for _, present in plan):
        return [], names, "inbox"
    uploaded, skipped = [], []
    for path, present in plan:
        if present:
            skipped.append(path.name)
        else:
            _upload_one(sftp, path, inbox, where)
            uploaded.append(path.name)
            if path.name.endswith(PAYLOAD_SUFFIX):
                crash_point("payload_sent")
    return uploaded, skipped, None


def _require_inbox(sftp: paramiko.SFTPClient, inbox: str, where: str) -> None:
    try:
        sftp.stat(inbox)
    except FileNotFoundError:
        raise DeliveryError(
            f"inbox '{inbox}' does not exist on {where}; check the agency's sftp.inbox"
        ) from None


def _received_by_agency(
    sftp: paramiko.SFTPClient, drop: _DropFiles, inbox: str, where: str
) -> str | None:
    """Where the agency shows it took our drop ("receipt" or "processed"), or None.

    Raises DeliveryError when the agency holds a different drop under our id.
    """
    processed = posixpath.join(inbox, PROCESSED)
    found: str | None = None
    for folder in (inbox, processed):
        remote = posixpath.join(folder, drop.drop_id + RECEIPT_SUFFIX)
        receipt = _read_small(sftp, remote)
        if receipt is None:
            continue
        if drop.manifest is None:
            raise _other_drop(
                drop,
                where,
                remote,
                "exists, and without our manifest in the file list it cannot be compared",
            )
        ours = hashlib.sha256(_read_local(drop.manifest)).hexdigest()
        theirs = _receipt_manifest_sha256(receipt)
        if theirs is None:
            raise _other_drop(drop, where, remote, "is no JSON object with a 'manifest_sha256'")
        if theirs.lower() != ours:
            raise _other_drop(
                drop, where, remote, f"names manifest SHA-256 {theirs[:16]}…, ours is {ours[:16]}…"
            )
        found = found or "receipt"
    identity = drop.identity
    if identity is not None:
        remote = posixpath.join(processed, identity.name)
        theirs_bytes = _read_small(sftp, remote)
        if theirs_bytes is not None:
            if theirs_bytes != _read_local(identity):
                raise _other_drop(drop, where, remote, f"differs from our {identity}")
            found = found or "processed"
    return found


def _in_inbox(sftp: paramiko.SFTPClient, path: Path, inbox: str, where: str) -> bool:
    """True when `path` is already in the inbox (same size, same bytes for small files)."""
    remote = posixpath.join(inbox, path.name)
    remote_size = _remote_size(sftp, remote)
    if remote_size is None:
        return False
    local_size = path.stat().st_size
    if remote_size != local_size:
        raise DeliveryError(
            f"{path.name} already exists in {where}:{inbox} with {remote_size} bytes, "
            f"ours has {local_size}: a different drop under the same name. Nothing was "
            "sent; ask the agency which one they hold before delivering again"
        )
    small = local_size <= SMALL_FILE_LIMIT and path.name.endswith(
        (MANIFEST_SUFFIX, SIGNATURE_SUFFIX)
    )
    if small and _read_small(sftp, remote) != _read_local(path):
        raise DeliveryError(
            f"{path.name} already exists in {where}:{inbox} with other content than ours: "
            "a different drop under the same name. Nothing was sent; ask the agency which "
            "one they hold before delivering again"
        )
    return True


def _other_drop(drop: _DropFiles, where: str, remote: str, reason: str) -> DeliveryError:
    return DeliveryError(
        f"a different drop under the same id {drop.drop_id} is at the agency: {where}:{remote} "
        f"{reason}. Nothing was sent; ask the agency which drop they hold (a drop id is used "
        "once: if theirs is not ours, seal ours again under a new id)"
    )


def _receipt_manifest_sha256(receipt: bytes) -> str | None:
    try:
        document = json.loads(receipt)
    except ValueError:
        return None
    value = document.get("manifest_sha256") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def _read_small(sftp: paramiko.SFTPClient, remote: str) -> bytes | None:
    """A small remote file's content (a larger one is cut after SMALL_FILE_LIMIT + 1 bytes,
    so it never equals ours), or None when it does not exist."""
    try:
        with sftp.open(remote, "rb") as handle:
            data = handle.read(SMALL_FILE_LIMIT + 1)
    except FileNotFoundError:
        return None
    return data


def _read_local(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DeliveryError(f"{path}: cannot read ({exc.strerror})") from None


def _remote_size(sftp: paramiko.SFTPClient, path: str) -> int | None:
    try:
        return sftp.stat(path).st_size
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------- uploading


class _Refused(Exception):
    """The server answered an SFTP request with an error status."""

    def __init__(self, request: str, code: int, text: str) -> None:
        super().__init__(f"{request}: {code} {text}")
        self.request = request
        self.code = code
        self.text = text

    @property
    def status(self) -> str:
        name = SFTP_DESC[self.code] if 0 <= self.code < len(SFTP_DESC) else "unknown"
        text = f": {self.text}" if self.text and self.text != name else ""
        return f'SFTP status {self.code} "{name}"{text}'


class _Replies:
    """Reads the server's reply to every request we send on one SFTP session.

    paramiko hands each reply to the object registered with the request (`_async_response`);
    registering this one instead of paramiko's `NoneType` keeps the statuses of pipelined
    writes, which paramiko would drop. Only one thread may use the session meanwhile.
    """

    def __init__(self, sftp: paramiko.SFTPClient) -> None:
        self.sftp = sftp
        self.writes: dict[int, int] = {}  # request number -> offset, for writes in flight
        self.answers: dict[int, tuple[int, Message]] = {}
        self.waiting: set[int] = set()
        self.refusal: tuple[int, _Refused] | None = None  # the refused write at the lowest offset

    def request(self, t: int, *args: object) -> tuple[int, Message]:
        num = self.sftp._async_request(self, t, *args)
        self.waiting.add(num)
        while num not in self.answers:
            self.sftp._read_response()
        return self.answers.pop(num)

    def write(self, handle: bytes, offset: int, data: bytes) -> None:
        while len(self.writes) >= WRITES_IN_FLIGHT:
            self.sftp._read_response()
        num = self.sftp._async_request(self, CMD_WRITE, handle, int64(offset), data)
        self.writes[num] = offset

    def drain(self) -> None:
        while self.writes:
            self.sftp._read_response()

    def _async_response(self, t: int, msg: Message, num: int) -> None:
        """Called by paramiko's `_read_response` for each reply to our requests."""
        if num in self.waiting:
            self.waiting.discard(num)
            self.answers[num] = (t, msg)
            return
        offset = self.writes.pop(num, None)
        if offset is None:
            return
        refused = _status(t, msg, "write")
        if refused is not None and (self.refusal is None or offset < self.refusal[0]):
            self.refusal = (offset, refused)


def _status(t: int, msg: Message, request: str) -> _Refused | None:
    if t != CMD_STATUS:
        return _Refused(request, -1, f"unexpected reply type {t}")
    code = msg.get_int()
    text = msg.get_text()
    return None if code == SFTP_OK else _Refused(request, code, text)


def _put(sftp: paramiko.SFTPClient, source: BinaryIO, remote: str) -> int:
    """Write `source` to `remote` (created or truncated), confirming every write; returns the
    byte count. Raises _Refused for the first refused request."""
    replies = _Replies(sftp)
    mode = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC
    t, msg = replies.request(CMD_OPEN, sftp._adjust_cwd(remote), mode, paramiko.SFTPAttributes())
    if t != CMD_HANDLE:
        raise _status(t, msg, "open") or _Refused("open", -1, "no handle in the reply")
    handle = msg.get_binary()
    offset = 0
    while replies.refusal is None:
        data = source.read(WRITE_SIZE)
        if not data:
            break
        replies.write(handle, offset, data)
        offset += len(data)
    replies.drain()
    t, msg = replies.request(CMD_CLOSE, handle)
    closed = _status(t, msg, "close")
    if replies.refusal is not None:
        raise replies.refusal[1]
    if closed is not None:
        raise closed
    return offset


def _upload_one(sftp: paramiko.SFTPClient, path: Path, inbox: str, where: str) -> None:
    final = posixpath.join(inbox, path.name)
    part = posixpath.join(inbox, f".{path.name}.part")
    size = path.stat().st_size
    try:
        source = path.open("rb")
    except OSError as exc:
        raise DeliveryError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        with source:
            _put(sftp, source, part)  # truncates a `.part` left by an interrupted attempt
    except _Refused as refused:
        _remove_quietly(sftp, part)
        raise _refusal(refused, where, part, inbox) from None
    remote = sftp.stat(part).st_size
    if remote != size:
        raise TransientDeliveryError(
            f"{where}:{part} has {remote} bytes after upload, expected {size}, though the "
            "server confirmed every write; a retry uploads it again"
        )
    _rename(sftp, part, final)


def _rename(sftp: paramiko.SFTPClient, part: str, final: str) -> None:
    try:
        sftp.posix_rename(part, final)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EACCES):
            raise
        # Server without the posix-rename extension: plain rename refuses to overwrite, fine.
        sftp.rename(part, final)


def _remove_quietly(sftp: paramiko.SFTPClient, remote: str) -> None:
    # A partial upload only takes room on a server that has none to spare.
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        sftp.remove(remote)


def _refusal(refused: _Refused, where: str, remote: str, inbox: str) -> DeliveryError:
    if refused.code == SFTP_PERMISSION_DENIED:
        return DeliveryError(
            f"permission denied writing {where}:{remote} ({refused.status}); ask the agency to "
            f"allow writes and renames in {inbox}"
        )
    if refused.code == SFTP_NO_SUCH_FILE and refused.request == "open":
        return DeliveryError(
            f"{where}:{inbox} vanished while delivering ({refused.status}); check the "
            "agency's sftp.inbox"
        )
    if refused.code == SFTP_FAILURE:
        return DeliveryError(
            f"the agency's server {where} refused to write {remote} ({refused.status} on "
            f"{refused.request}): its disk may be full, over quota or read-only. Ask the agency "
            "to make room (or make the inbox writable again); the drop waits and the next run "
            "delivers it"
        )
    return DeliveryError(
        f"the agency's server {where} refused to {refused.request} {remote} ({refused.status}); "
        "ask the agency what its server reports; the drop waits and the next run delivers it"
    )


def _classify_remote(
    exc: BaseException,
    transport: paramiko.Transport,
    where: str,
    inbox: str,
    watchdog: _Watchdog,
) -> DeliveryError:
    # A dead connection is worth a retry; a live server refusing an operation is not.
    timed_out = isinstance(exc, paramiko.SSHException) and "timeout" in str(exc).lower()
    if watchdog.fired or timed_out or isinstance(exc, TimeoutError):
        return TransientDeliveryError(
            f"connection to {where} stalled: nothing arrived for {watchdog.timeout:g} s "
            f"{_RETRY_MAY_CURE}"
        )
    if isinstance(exc, (ConnectionError, EOFError)) or not transport.is_active():
        return TransientDeliveryError(
            f"connection to {where} lost: {_describe(exc)} {_RETRY_MAY_CURE}"
        )
    if isinstance(exc, PermissionError):
        return DeliveryError(
            f"permission denied in {where}:{inbox}; ask the agency to allow reads, writes and "
            "renames there"
        )
    return DeliveryError(f"SFTP operation in {where}:{inbox} failed: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    # Only the class and the OS/SFTP status text: never data that passed through the channel.
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
