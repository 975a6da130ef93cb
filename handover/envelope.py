"""Seal a drop: the age-encrypted CSV payload plus its plain-JSON manifest.

A drop is the directory `<out_dir>/<drop_id>/` holding `<drop_id>.csv.age` and
`<drop_id>.manifest.json`. The CSV plaintext only ever exists in memory; the manifest travels
unencrypted, so it must carry aggregates and ids only, never personal data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
from pyrage import x25519

from handover.errors import EnvelopeError

PAYLOAD_SUFFIX = ".csv.age"
MANIFEST_SUFFIX = ".manifest.json"
PAYLOAD_FORMAT = "age-v1"
FILE_MODE = 0o640
DIR_MODE = 0o750

# A drop id becomes a file name locally and in the agency's inbox: no separators, no dot-files.
_DROP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Drop:
    """A sealed drop on disk, ready for delivery (payload first, manifest last)."""

    drop_id: str
    directory: Path
    payload: Path
    manifest: Path
    payload_sha256: str
    case_count: int

    @property
    def files(self) -> tuple[Path, Path]:
        """The files in delivery order: the manifest last, as it marks the drop complete."""
        return (self.payload, self.manifest)


def seal(
    csv_bytes: bytes,
    *,
    recipients: Sequence[str],
    out_dir: Path,
    manifest: Mapping[str, Any],
    drop_id: str,
) -> Drop:
    """Encrypt `csv_bytes` to every age recipient and write the drop under `out_dir/drop_id`.

    `manifest` is written as given plus a `payload` entry (file, sha256, bytes, format).
    A drop is sealed once: an existing payload or manifest is never overwritten.
    """
    _check_drop_id(drop_id)
    parsed = _parse_recipients(recipients)
    case_count = _check_manifest(manifest, drop_id)

    try:
        ciphertext = pyrage.encrypt(bytes(csv_bytes), parsed)
    except pyrage.EncryptError as exc:
        raise EnvelopeError(
            f"drop {drop_id}: age encryption failed ({type(exc).__name__}); "
            "check the recipients and retry"
        ) from None
    sha256 = hashlib.sha256(ciphertext).hexdigest()

    directory = Path(out_dir) / drop_id
    payload = directory / f"{drop_id}{PAYLOAD_SUFFIX}"
    manifest_path = directory / f"{drop_id}{MANIFEST_SUFFIX}"
    document = dict(manifest)
    document["payload"] = {
        "file": payload.name,
        "sha256": sha256,
        "bytes": len(ciphertext),
        "format": PAYLOAD_FORMAT,
    }
    manifest_bytes = _manifest_json(document, drop_id)

    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvelopeError(
            f"cannot create drop directory {directory}: {exc.strerror}; "
            "check paths.outbox and its permissions"
        ) from None
    for path in (payload, manifest_path):
        if path.exists():
            raise EnvelopeError(
                f"{path} already exists: a drop is sealed once and never rewritten "
                "(its ciphertext may already be delivered); use a new drop id"
            )
    # Payload first: a manifest on disk means the drop is complete.
    _write_atomic(payload, ciphertext)
    _write_atomic(manifest_path, manifest_bytes)
    _fsync_dir(directory)
    return Drop(
        drop_id=drop_id,
        directory=directory,
        payload=payload,
        manifest=manifest_path,
        payload_sha256=sha256,
        case_count=case_count,
    )


def verify_manifest(manifest_path: Path) -> dict[str, Any]:
    """Check that the payload next to `manifest_path` matches its size and sha256; return it."""
    manifest_path = Path(manifest_path)
    try:
        document = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EnvelopeError(f"{manifest_path}: manifest not found") from None
    except (OSError, ValueError) as exc:
        raise EnvelopeError(
            f"{manifest_path}: not a readable JSON manifest ({type(exc).__name__}); "
            "request the drop again"
        ) from None
    entry = document.get("payload") if isinstance(document, dict) else None
    if not isinstance(entry, dict) or not all(k in entry for k in ("file", "sha256", "bytes")):
        raise EnvelopeError(
            f"{manifest_path}: manifest has no valid 'payload' entry (file, sha256, bytes)"
        )
    name = entry["file"]
    # The name comes from a file that may have been tampered with: never let it leave the drop.
    if not isinstance(name, str) or name != Path(name).name or name.startswith("."):
        raise EnvelopeError(f"{manifest_path}: payload.file must be a plain file name")
    payload = manifest_path.parent / name
    try:
        size, digest = _sha256_file(payload)
    except OSError as exc:
        raise EnvelopeError(f"{payload}: cannot read payload ({exc.strerror})") from None
    if size != entry["bytes"] or digest != entry["sha256"]:
        raise EnvelopeError(
            f"{payload} does not match {manifest_path.name} (expected {entry['bytes']} bytes, "
            f"sha256 {entry['sha256']}; found {size} bytes, sha256 {digest}): the drop was "
            "altered or truncated; do not use it and ask the shop to deliver it again"
        )
    return document


def open_drop(payload: Path, identity: str) -> bytes:
    """Verify `payload` against its manifest and decrypt it with an age X25519 identity.

    `identity` is an `AGE-SECRET-KEY-1…` string or the text of an `age-keygen` identity file.
    This is the agency's side; handover itself never decrypts a drop.
    """
    payload = Path(payload)
    if not payload.name.endswith(PAYLOAD_SUFFIX):
        raise EnvelopeError(f"{payload}: a drop payload is named '<drop_id>{PAYLOAD_SUFFIX}'")
    manifest = payload.with_name(payload.name[: -len(PAYLOAD_SUFFIX)] + MANIFEST_SUFFIX)
    document = verify_manifest(manifest)
    if document["payload"]["file"] != payload.name:
        raise EnvelopeError(f"{manifest} describes {document['payload']['file']}, not {payload}")
    identities = _parse_identities(identity)
    try:
        return pyrage.decrypt(payload.read_bytes(), identities)
    except pyrage.DecryptError:
        raise EnvelopeError(
            f"{payload}: cannot be decrypted with the given identity; "
            "check that its public key is one of the drop's recipients"
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


def _parse_identities(identity: str) -> list[x25519.Identity]:
    lines = [line.strip() for line in str(identity).splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    try:
        if not keys:
            raise ValueError
        return [x25519.Identity.from_str(key) for key in keys]
    except (pyrage.IdentityError, ValueError):
        raise EnvelopeError(
            "identity is not an age X25519 identity ('AGE-SECRET-KEY-1…' or the content of an "
            "`age-keygen` identity file)"
        ) from None


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
    return case_count


def _manifest_json(document: Mapping[str, Any], drop_id: str) -> bytes:
    try:
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        return text.encode("utf-8")
    except (TypeError, ValueError):
        bad = next((k for k, v in document.items() if not _is_json(v)), "?")
        raise EnvelopeError(
            f"drop {drop_id}: manifest key '{bad}' is not JSON data (strings, numbers, bools, "
            "lists, objects); convert dates to ISO strings and amounts to integer cents"
        ) from None


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):
        return False
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    """Write under a hidden temporary name and rename, so `path` is complete or absent."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise EnvelopeError(
            f"cannot write {path}: {exc.strerror}; check free space and permissions of "
            f"{path.parent}"
        ) from None


def _fsync_dir(directory: Path) -> None:
    # Makes the renames durable; not every platform or filesystem supports it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sha256_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
