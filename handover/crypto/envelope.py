"""Seal a drop: the age-encrypted CSV payload, its plain-JSON manifest, and their signature.

A drop is the directory `<out_dir>/<drop_id>/` holding, in upload order, `<drop_id>.csv.age`,
`<drop_id>.manifest.json` and `<drop_id>.manifest.json.sig` (SSHSIG, namespace
`handover-manifest`): the signature arrives last and marks the drop complete. The payload is
encrypted to the agency's recipients and the shop's archive recipient, so the shop can later
prove what it sent. The CSV plaintext only ever exists in memory; the manifest travels
unencrypted, so it must carry aggregates and ids only, never personal data.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyrage
from pyrage import x25519

from handover.crypto.sshsig import MANIFEST_NAMESPACE, Signer
from handover.errors import EnvelopeError
from handover.faults import crash_point

PAYLOAD_SUFFIX = ".csv.age"
MANIFEST_SUFFIX = ".manifest.json"
SIGNATURE_SUFFIX = ".manifest.json.sig"
# What else the shop and the agency's tool leave in the agency's inbox, one convention for both
# sides: the signed audit head the shop sends after a drop, the receipt the tool leaves once it
# opened a drop, and the folder it moves opened drops into.
HEAD_SUFFIX = ".audit-head.json"
RECEIPT_SUFFIX = ".received"
PROCESSED = "processed"
PAYLOAD_FORMAT = "age-v1"
FILE_MODE = 0o640
DIR_MODE = 0o750

# A drop id becomes a file name locally and in the agency's inbox: no separators, no dot-files.
_DROP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Drop:
    """A sealed drop on disk, ready for delivery."""

    drop_id: str
    directory: Path
    payload: Path
    manifest: Path
    signature: Path
    payload_sha256: str
    case_count: int

    @property
    def files(self) -> tuple[Path, Path, Path]:
        """The files in delivery order: the signature last, as it marks the drop complete."""
        return (self.payload, self.manifest, self.signature)


def seal(
    csv: bytes | BinaryIO,
    *,
    recipients: Sequence[str],
    archive_recipient: str,
    signer: Signer,
    out_dir: Path,
    manifest: Mapping[str, Any],
    drop_id: str,
) -> Drop:
    """Encrypt `csv` to the agency's recipients and the archive, write and sign the drop.

    `csv` is the plaintext, as bytes or a readable binary stream (read in chunks, never
    copied whole). `manifest` is written as given plus a `payload` entry (file, sha256, bytes,
    format); callers may add fields (an audit head, for instance). A drop is sealed once: an
    existing file is never overwritten, and a failed seal leaves no file of its own behind.
    """
    _check_drop_id(drop_id)
    parsed = _parse_recipients(recipients)
    archive = _parse_archive_recipient(archive_recipient, recipients)
    case_count = _check_manifest(manifest, drop_id)

    directory = Path(out_dir) / drop_id
    payload = directory / f"{drop_id}{PAYLOAD_SUFFIX}"
    manifest_path = directory / f"{drop_id}{MANIFEST_SUFFIX}"
    signature_path = directory / f"{drop_id}{SIGNATURE_SUFFIX}"
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise _outbox_full(directory, exc) from None
        raise EnvelopeError(
            f"cannot create drop directory {directory}: {exc.strerror}; "
            "check paths.outbox and its permissions"
        ) from None
    for path in (payload, manifest_path, signature_path):
        if path.exists():
            raise EnvelopeError(
                f"{path} already exists: a drop is sealed once and never rewritten "
                "(its ciphertext may already be delivered); use a new drop id"
            )

    source = io.BytesIO(csv) if isinstance(csv, bytes | bytearray | memoryview) else csv
    digest = _write_signed(
        source,
        [*parsed, archive],
        signer,
        MANIFEST_NAMESPACE,
        manifest,
        (payload, manifest_path, signature_path),
    )
    return Drop(
        drop_id=drop_id,
        directory=directory,
        payload=payload,
        manifest=manifest_path,
        signature=signature_path,
        payload_sha256=digest.hexdigest,
        case_count=case_count,
    )


@dataclass(frozen=True)
class SignedFiles:
    """An encrypted payload, its manifest and the signature over it, complete on disk."""

    payload: Path
    manifest: Path
    signature: Path
    payload_sha256: str

    @property
    def files(self) -> tuple[Path, Path, Path]:
        """The files in the order they were written: the signature last."""
        return (self.payload, self.manifest, self.signature)


def seal_signed(
    csv: bytes,
    *,
    recipients: Sequence[str],
    signer: Signer,
    namespace: str,
    out_dir: Path,
    name: str,
    manifest: Mapping[str, Any],
) -> SignedFiles:
    """Write `<name>.csv.age` (`csv` encrypted to `recipients`), `<name>.manifest.json`
    (`manifest` plus its `payload` entry) and its signature in `namespace`, into `out_dir`.

    The drop's layout for other senders (an agency's return file): each file appears complete
    under its name or not at all, the signature last, and no existing file is ever replaced.
    """
    _check_drop_id(name)
    parsed = _parse_recipients(recipients)
    if "payload" in manifest:
        raise EnvelopeError(f"{name}: manifest must not set 'payload'; it is added here")
    directory = Path(out_dir)
    paths = (
        directory / f"{name}{PAYLOAD_SUFFIX}",
        directory / f"{name}{MANIFEST_SUFFIX}",
        directory / f"{name}{SIGNATURE_SUFFIX}",
    )
    if not directory.is_dir():
        raise EnvelopeError(f"{directory} is not a folder; create it or choose another")
    for path in paths:
        if path.exists() or path.is_symlink():
            raise EnvelopeError(f"{path} already exists: it is never replaced; use a new name")
    digest = _write_signed(io.BytesIO(csv), parsed, signer, namespace, manifest, paths)
    return SignedFiles(*paths, payload_sha256=digest.hexdigest)


def _write_signed(
    source: BinaryIO,
    recipients: list[x25519.Recipient],
    signer: Signer,
    namespace: str,
    manifest: Mapping[str, Any],
    paths: tuple[Path, Path, Path],
) -> _Digest:
    """Encrypt, write the manifest with its payload entry, sign it: all files or none."""
    payload, manifest_path, signature_path = paths
    written: list[Path] = []
    try:
        digest = _write_atomic(payload, lambda sink: _encrypt(source, sink, recipients))
        written.append(payload)
        crash_point("payload_sealed")
        document = dict(manifest)
        document["payload"] = {
            "file": payload.name,
            "sha256": digest.hexdigest,
            "bytes": digest.size,
            "format": PAYLOAD_FORMAT,
        }
        manifest_bytes = _manifest_json(document)
        _write_atomic(manifest_path, lambda sink: sink.write(manifest_bytes))
        written.append(manifest_path)
        signature = signer.sign(manifest_bytes, namespace)
        _write_atomic(signature_path, lambda sink: sink.write(signature))
        written.append(signature_path)
    except BaseException:
        # Nothing was delivered yet: a half-sealed drop must not look like a sealed one.
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    _fsync_dir(payload.parent)
    return digest


def _encrypt(source: BinaryIO, sink: _HashingFile, recipients: list[x25519.Recipient]) -> None:
    try:
        pyrage.encrypt_io(source, sink, recipients)
    except pyrage.EncryptError as exc:
        # pyrage wraps an OSError of the sink (a full disk, say) into EncryptError; the sink
        # kept the original, so `_write_atomic` can name the real cause.
        if sink.error is not None:
            raise sink.error from None
        raise EnvelopeError(
            f"age encryption failed ({type(exc).__name__}); check the recipients and seal again"
        ) from None


def _check_drop_id(drop_id: str) -> None:
    if not isinstance(drop_id, str) or not _DROP_ID.fullmatch(drop_id):
        raise EnvelopeError(
            f"drop id {drop_id!r} is not usable as a file name: use 1-128 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )


def _parse_recipients(recipients: Sequence[str]) -> list[x25519.Recipient]:
    if isinstance(recipients, str) or not recipients:
        raise EnvelopeError(
            "recipients must be a non-empty list of age X25519 recipients ('age1…'); "
            "ask the agency for its public key"
        )
    parsed = []
    for index, recipient in enumerate(recipients):
        try:
            parsed.append(x25519.Recipient.from_str(recipient))
        except (pyrage.RecipientError, TypeError, ValueError):
            # Name the position only: the string itself may be a secret pasted by mistake.
            raise EnvelopeError(
                f"recipients[{index}] is not an age X25519 recipient (expected 'age1…' as "
                "printed by `age-keygen -y`); check the agency's public key in the configuration"
            ) from None
    return parsed


def _parse_archive_recipient(archive: str, recipients: Sequence[str]) -> x25519.Recipient:
    try:
        parsed = x25519.Recipient.from_str(archive)
    except (pyrage.RecipientError, TypeError, ValueError):
        raise EnvelopeError(
            "the archive recipient is not an age X25519 recipient ('age1…'); derive it from "
            "the key directory's archive.age (`handover keys show`)"
        ) from None
    if archive in recipients:
        raise EnvelopeError(
            "the archive recipient is also one of the agency's recipients: the archive key "
            "must be the shop's own; check the agency's recipients"
        )
    return parsed


def _check_manifest(manifest: Mapping[str, Any], drop_id: str) -> int:
    if not isinstance(manifest, Mapping):
        raise EnvelopeError(f"drop {drop_id}: manifest must be a mapping")
    if "payload" in manifest:
        raise EnvelopeError(
            f"drop {drop_id}: manifest must not set 'payload'; seal() adds it from the ciphertext"
        )
    if "drop_id" in manifest and manifest["drop_id"] != drop_id:
        raise EnvelopeError(
            f"drop {drop_id}: manifest 'drop_id' is {manifest['drop_id']!r}; it must equal the "
            "drop id"
        )
    case_count = manifest.get("case_count")
    if isinstance(case_count, bool) or not isinstance(case_count, int) or case_count < 0:
        raise EnvelopeError(f"drop {drop_id}: manifest 'case_count' must be an integer ≥ 0")
    bad = next((k for k, v in manifest.items() if not _is_json(v)), None)
    if bad is not None:
        raise EnvelopeError(
            f"drop {drop_id}: manifest key '{bad}' is not JSON data (strings, numbers, bools, "
            "lists, objects); convert dates to ISO strings and amounts to integer cents"
        )
    return case_count


def _manifest_json(document: Mapping[str, Any]) -> bytes:
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return text.encode("utf-8")


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):
        return False
    return True


@dataclass
class _Digest:
    """SHA-256 and size of what passed through a `_HashingFile`."""

    hexdigest: str = ""
    size: int = 0


class _HashingFile:
    """A write-only file over a descriptor that hashes and counts what it writes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.hash = hashlib.sha256()
        self.size = 0
        self.error: OSError | None = None  # the first write failure, kept for `_encrypt`

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self.hash.update(view)
        self.size += len(view)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            if self.error is None:
                self.error = exc
            raise
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered: every write goes straight to the descriptor."""


def _write_atomic(path: Path, fill: Callable[[_HashingFile], object]) -> _Digest:
    """Write via `fill` to a hidden temporary name, then rename: `path` is complete or absent."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            sink = _HashingFile(fd)
            fill(sink)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno in _DISK_FULL:
            raise _outbox_full(path, exc) from None
        raise EnvelopeError(
            f"cannot write {path}: {exc.strerror}; check free space and permissions of "
            f"{path.parent}"
        ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return _Digest(hexdigest=sink.hash.hexdigest(), size=sink.size)


# Out of space or over quota: the outbox must be given room, the drop itself is fine.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def _outbox_full(path: Path, exc: OSError) -> EnvelopeError:
    mount, fstype = _mount_of(path.parent)
    kind = f"{fstype} file system" if fstype else "file system"
    return EnvelopeError(
        f"the outbox is full: writing {path} failed ({exc.strerror}); free space on {mount} "
        f"(the {kind} holding {path.parent}) and run again"
    )


def _mount_of(directory: Path) -> tuple[Path, str]:
    """The mount point holding `directory`, and its file system type when Linux says so."""
    here = Path(os.path.abspath(directory))
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    fstype = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            # Octal escapes (\040 for a space) as in fstab; the last match is the one on top.
            if len(fields) > 2 and _unescape_mount(fields[1]) == str(here):
                fstype = fields[2]
    return here, fstype


def _unescape_mount(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _fsync_dir(directory: Path) -> None:
    # Makes the renames durable; not every platform or filesystem supports it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
