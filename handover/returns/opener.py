"""Open one return file: prove it is the agency's, decrypt it, check every row.

The order leaves nothing to trust before it is proven: the three files must be regular files of
the returns folder (never a link); the manifest must carry the agency's SSHSIG signature
(namespace `handover-return`) by the key pinned in `[agencies.NAME.returns] signing_key`; the
signed manifest must name this agency and this return id; the payload must have the size and
SHA-256 it states; its age header must pass the strict check (`handover.crypto.agecheck`, as the
agency's tool checks drops) before it is decrypted with the shop's returns identity; and every
row must keep `schemas/agency_return_v1.json`, with as many rows as the manifest counts.

Everything is read into memory (bounded by `contract.MAX_PAYLOAD_BYTES`): the plaintext never
touches a disk, and a file changed while it is read cannot pass one check and fail another.
Each refusal is a `ReturnRefused` naming the return file and the check, never a cell's value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

from pyrage import x25519

from handover.agency.inbox import MISSING, REGULAR, Inbox, not_regular
from handover.crypto import agecheck
from handover.crypto.sshsig import MAX_SIGNATURE_BYTES, verify
from handover.errors import AgeFileError, DropRefused, ReturnRefused, SignatureError
from handover.returns import contract
from handover.returns.contract import ReturnEvent


@dataclass(frozen=True)
class OpenedReturn:
    """A return file that passed every check of its own (the ledger's checks come next)."""

    agency: str
    return_id: str
    manifest_sha256: str
    events: tuple[ReturnEvent, ...]

    @property
    def what(self) -> str:
        """How messages name it."""
        return describe(self.agency, self.return_id)


def describe(agency: str, return_id: str) -> str:
    """`return file <id> of agency <name>`: how every message names a return file."""
    return f"return file {return_id} of agency {agency}"


def open_return(
    inbox: Inbox,
    return_id: str,
    names: Sequence[str],
    *,
    agency: str,
    signing_key: str,
    identities: Sequence[x25519.Identity],
    today: dt.date,
) -> OpenedReturn:
    """Check and decrypt the return file `return_id` in `inbox` (whose listing is `names`).

    Raises ReturnRefused; nothing of the file is used unless every check passed.
    """
    what = describe(agency, return_id)
    payload, manifest, signature = contract.file_names(return_id)
    if manifest not in names:
        raise ReturnRefused("file", f"{what}: the signature is there but {manifest} is not")
    for name in (payload, manifest, signature):
        kind = inbox.kind(name)
        if kind not in (REGULAR, MISSING):
            raise ReturnRefused("file", f"{what}: {not_regular(name, kind)}")
    signed = _read(inbox, signature, MAX_SIGNATURE_BYTES, what)
    manifest_bytes = _read(inbox, manifest, contract.MAX_MANIFEST_BYTES, what)
    try:
        verify(manifest_bytes, signed, signing_key, contract.NAMESPACE)
    except SignatureError as exc:
        raise ReturnRefused(
            "signature",
            f"{what}: {signature} does not prove the manifest is the agency's (the key pinned "
            f"in [agencies.{agency}.returns] signing_key): {exc}",
        ) from None
    stated = contract.parse_manifest(manifest_bytes, return_id, what)
    if stated.agency != agency:
        raise ReturnRefused(
            "agency",
            f"{what}: its signed manifest names agency {stated.agency}, not {agency}; ask the "
            "agency to send it under the name this shop knows it by",
        )
    if payload not in names:
        raise ReturnRefused("file", f"{what}: its payload {payload} is missing")
    if stated.payload_bytes > contract.MAX_PAYLOAD_BYTES:
        raise ReturnRefused(
            "file",
            f"{what}: its payload is over {contract.MAX_PAYLOAD_BYTES} bytes; ask the agency to "
            "split it into several return files",
        )
    ciphertext = _read(inbox, payload, contract.MAX_PAYLOAD_BYTES, what)
    found = hashlib.sha256(ciphertext).hexdigest()
    if len(ciphertext) != stated.payload_bytes or found != stated.payload_sha256:
        raise ReturnRefused(
            "checksum",
            f"{what}: {payload} does not match the signed manifest (expected "
            f"{stated.payload_bytes} bytes, sha256 {stated.payload_sha256}; found "
            f"{len(ciphertext)} bytes, sha256 {found}): altered or truncated",
        )
    events = contract.parse_events(_decrypt(ciphertext, identities, what, payload), what)
    if len(events) != stated.event_count:
        raise ReturnRefused(
            "rows",
            f"{what}: the payload has {len(events)} events but the signed manifest says "
            f"event_count {stated.event_count}",
        )
    contract.check_not_future(events, today, what)
    return OpenedReturn(
        agency=agency,
        return_id=return_id,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        events=tuple(events),
    )


def _read(inbox: Inbox, name: str, limit: int, what: str) -> bytes:
    try:
        return inbox.read_small(name, limit)
    except DropRefused as exc:  # not a regular file, replaced while read, too large
        raise ReturnRefused("file", f"{what}: {exc}") from None


def _decrypt(
    ciphertext: bytes, identities: Sequence[x25519.Identity], what: str, name: str
) -> bytes:
    sink = io.BytesIO()
    try:
        agecheck.decrypt(io.BytesIO(ciphertext), sink, identities)
    except AgeFileError as exc:
        hint = (
            "; it was not encrypted to the shop's returns recipient (`handover keys show`)"
            if exc.failure == "no match"
            else ""
        )
        raise ReturnRefused("decrypt", f"{what}: {name}: {exc}{hint}") from None
    except DropRefused as exc:
        raise ReturnRefused("decrypt", f"{what}: {name}: {exc}") from None
    return sink.getvalue()
