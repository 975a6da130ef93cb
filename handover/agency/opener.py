"""The agency's tool: open complete drops, refusing anything that is not exactly what the shop sent.

A drop is complete when its signature (`<drop_id>.manifest.json.sig`, uploaded last) is there.
For each: check that its files are regular files of the inbox (never a link), verify the SSHSIG
signature over the manifest with the shop's public key, refuse it if the register of opened
drops (`<out>/opened-drops.jsonl`) already names its id, check that the drop is for this agency,
check the payload's size and SHA-256, decrypt it (strict age header check first) into a hidden
temporary file of the output folder, validate every row against the contract the signed
manifest names in `schema_version` (`schemas/agency_case_v1.json` for a handover drop,
`schemas/agency_case_v1_1.json` for one with instalments, `schemas/agency_recall_v1.json` for a
recall/update drop; any other is refused), and only then give it its name `<drop_id>.csv`,
record it in the register, move the drop's three files to `processed/` (never replacing a file
there) and leave the shop a receipt `<drop_id>.received` next to them. A refused drop leaves
nothing behind and stays in the inbox.

An audit head the shop leaves after a drop (`<drop_id>.audit-head.json`) is moved to
`processed/` once its drop is in the register; it is never read. Other files are left alone.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import paramiko
import pyrage
from jsonschema import Draft202012Validator, ValidationError
from pyrage import x25519

from handover import contract, recall_contract
from handover.agency.inbox import MISSING, REGULAR, Inbox, describe, not_regular, open_inbox
from handover.agency.register import Opened, Register, receipt_name, utc_now
from handover.contract import FORMULA_PREFIXES, json_schema
from handover.crypto import agecheck
from handover.crypto.envelope import (
    HEAD_SUFFIX,
    MANIFEST_SUFFIX,
    PAYLOAD_FORMAT,
    PAYLOAD_SUFFIX,
    SIGNATURE_SUFFIX,
)
from handover.crypto.keys import check_private_file
from handover.crypto.sshsig import MANIFEST_NAMESPACE, MAX_SIGNATURE_BYTES, verifier, verify
from handover.errors import AgeFileError, DropRefused, KeyFileError, SignatureError

MAX_MANIFEST_BYTES = 1 << 20  # a manifest is ~1 KiB; bounds what a hostile inbox makes us read
CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Outcome:
    """What happened to one drop: opened into `output`, or refused (`ok` False) and why.

    `subject` is "drop", or "audit-head" for the move of a drop's `<drop_id>.audit-head.json`.
    """

    drop_id: str
    ok: bool
    message: str
    output: Path | None = None
    case_count: int = 0
    subject: str = "drop"


@dataclass(frozen=True)
class Contract:
    """A row contract a signed manifest can name: its columns, and how its rows are checked."""

    name: str  # the manifest's schema_version
    columns: tuple[str, ...]
    count_key: str  # the manifest's count of the payload's rows
    noun: str  # what a row is, for messages
    problem: Callable[[dict[str, str]], str | None]  # what a row breaks, quoting no value


def open_drops(
    source: str,
    *,
    identity: Path,
    shop_key: Path,
    out_dir: Path,
    agency: str | None = None,
    known_hosts: Path | None = None,
    ssh_key: Path | None = None,
    keep: bool = False,
) -> list[Outcome]:
    """Open every complete drop in `source` (a folder or `sftp://user@host:port/path`).

    `identity` is the agency's age identity file, `shop_key` the shop's signing `.pub` file.
    With `agency`, drops whose manifest names another agency are refused. With `keep`, opened
    drops stay where they are instead of moving to `processed/` (and their receipts lie in the
    inbox). `out_dir` holds the CSVs and the register of opened drops, locked for the run; a
    damaged register raises DropRefused before any drop is looked at.
    """
    identities = load_identities(identity)
    shop_key_line = load_shop_key(shop_key)
    out_dir = Path(out_dir)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    register = Register(out_dir)
    try:
        inbox = open_inbox(source, known_hosts=known_hosts, client_key=ssh_key)
        try:
            names = inbox.names()
            signed = {n[: -len(SIGNATURE_SUFFIX)] for n in names if n.endswith(SIGNATURE_SUFFIX)}
            unsigned = {
                n[: -len(MANIFEST_SUFFIX)] for n in names if n.endswith(MANIFEST_SUFFIX)
            } - signed
            outcomes = []
            for drop_id in sorted(signed | unsigned):
                try:
                    if drop_id in unsigned:
                        raise DropRefused(
                            f"drop {drop_id} has no signature ({drop_id}{SIGNATURE_SUFFIX}): "
                            "still uploading, or not signed by the shop; not opened. Try again "
                            "later; if it stays so, ask the shop"
                        )
                    outcomes.append(
                        _open_one(
                            inbox,
                            drop_id,
                            names,
                            identities,
                            shop_key_line,
                            agency,
                            out_dir,
                            keep,
                            register,
                        )
                    )
                except DropRefused as exc:
                    outcomes.append(Outcome(drop_id, False, _about(drop_id, str(exc))))
                except OSError as exc:
                    outcomes.append(Outcome(drop_id, False, f"drop {drop_id}: {describe(exc)}"))
            if not keep:
                outcomes += _move_audit_heads(inbox, names, register)
            return outcomes
        finally:
            inbox.close()
    finally:
        register.close()


def _about(drop_id: str, message: str) -> str:
    """`message`, naming the drop if it does not yet (the inbox names files only)."""
    return message if message.startswith(f"drop {drop_id}") else f"drop {drop_id}: {message}"


def load_identities(path: Path) -> list[x25519.Identity]:
    """The age X25519 identities in an identity file that only its owner can read."""
    file = check_private_file(Path(path))
    lines = [line.strip() for line in file.read_text(encoding="ascii").splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    try:
        if not keys:
            raise ValueError
        return [x25519.Identity.from_str(key) for key in keys]
    except (pyrage.IdentityError, ValueError):
        raise KeyFileError(
            f"{file} is not an age identity file (lines 'AGE-SECRET-KEY-1…', as `age-keygen` "
            "writes them)"
        ) from None


def load_shop_key(path: Path) -> str:
    """The shop's public signing key line from its `.pub` file."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{file}: cannot read the shop's public key ({describe(exc)})") from None
    line = next((x.strip() for x in lines if x.strip() and not x.startswith("#")), "")
    try:
        verifier(line, MANIFEST_NAMESPACE)
    except SignatureError as exc:
        raise KeyFileError(f"{file}: {exc}") from None
    return line


def _open_one(
    inbox: Inbox,
    drop_id: str,
    names: Sequence[str],
    identities: list[x25519.Identity],
    shop_key_line: str,
    agency: str | None,
    out_dir: Path,
    keep: bool,
    register: Register,
) -> Outcome:
    payload_name = f"{drop_id}{PAYLOAD_SUFFIX}"
    manifest_name = f"{drop_id}{MANIFEST_SUFFIX}"
    signature_name = f"{drop_id}{SIGNATURE_SUFFIX}"
    if manifest_name not in names:
        raise DropRefused(f"drop {drop_id}: the signature is there but {manifest_name} is not")
    # Before anything is read: a link could point anywhere, and no message may describe its
    # target. The reads below open regular files only, so a swap after this check is refused.
    for name in (payload_name, manifest_name, signature_name):
        kind = inbox.kind(name)
        if kind not in (REGULAR, MISSING):
            raise DropRefused(f"drop {drop_id}: {not_regular(name, kind)}; not opened")
    signature = inbox.read_small(signature_name, MAX_SIGNATURE_BYTES)
    manifest_bytes = inbox.read_small(manifest_name, MAX_MANIFEST_BYTES)
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    try:
        verify(manifest_bytes, signature, shop_key_line, MANIFEST_NAMESPACE)
    except SignatureError as exc:
        raise DropRefused(
            f"drop {drop_id}: {signature_name} does not prove the manifest is the shop's: {exc}"
        ) from None
    _refuse_if_opened(register, drop_id, manifest_sha256)
    document = _parse_manifest(manifest_bytes, drop_id)
    rows_contract = _contract(document, drop_id)
    if agency is not None and document.get("agency") != agency:
        raise DropRefused(
            f"drop {drop_id} is for agency {str(document.get('agency'))!r}, not {agency!r}: "
            "not opened; tell the shop it was delivered to the wrong inbox"
        )
    entry = document["payload"]
    if payload_name not in names:
        raise DropRefused(f"drop {drop_id}: its payload {payload_name} is missing from the inbox")
    output = out_dir / f"{drop_id}.csv"
    if output.exists():
        raise DropRefused(
            f"drop {drop_id}: {output} already exists (opened before?); move it away to open "
            "the drop again"
        )
    with inbox.payload(payload_name, out_dir) as source:
        _check_checksum(source, entry, drop_id)
        source.seek(0)
        count = _decrypt_to(source, identities, entry, document, rows_contract, output, drop_id)
    opened = Opened(drop_id, manifest_sha256, utc_now(), count, output.name)
    try:
        register.append(opened)
    except OSError as exc:
        # Unrecorded, the CSV could be opened again later: take it back, open nothing.
        with contextlib.suppress(OSError):
            output.unlink()
        raise DropRefused(
            f"drop {drop_id}: could not record it in {register.path} ({describe(exc)}), so its "
            "CSV was removed again and the drop stays in the inbox; check that folder"
        ) from None
    done = f"{count} {rows_contract.noun} into {output}"
    if keep:
        ok, receipt = _receipt(inbox, opened, processed=False)
        return Outcome(drop_id, ok, f"{done}; drop left in place; {receipt}", output, count)
    try:
        where = inbox.move_to_processed([payload_name, manifest_name, signature_name])
    except (OSError, paramiko.SSHException, DropRefused) as exc:
        # The CSV is complete and valid; only the bookkeeping failed, and it must not be lost.
        # The receipt goes where the files stay, so that the shop does not send them again.
        _, receipt = _receipt(inbox, opened, processed=False)
        return Outcome(
            drop_id,
            False,
            f"drop {drop_id}: opened into {output}, but moving it to processed/ failed "
            f"({describe(exc)}); move its three files by hand; {receipt}",
            output,
            count,
        )
    ok, receipt = _receipt(inbox, opened, processed=True)
    return Outcome(drop_id, ok, f"{done}; drop moved to {where}; {receipt}", output, count)


def _refuse_if_opened(register: Register, drop_id: str, manifest_sha256: str) -> None:
    before = register.get(drop_id)
    if before is None:
        return
    if before.manifest_sha256 == manifest_sha256:
        raise DropRefused(
            f"drop {drop_id} was opened before on {before.opened_at}; not opened again (the "
            f"same drop delivered a second time; its files stay in the inbox; see {register.path})"
        )
    raise DropRefused(
        f"drop {drop_id}: a different drop arrived under an id already opened on "
        f"{before.opened_at} (manifest sha256 {manifest_sha256}, the opened one had "
        f"{before.manifest_sha256}); not opened: the shop must explain it"
    )


def _receipt(inbox: Inbox, opened: Opened, *, processed: bool) -> tuple[bool, str]:
    """Leave the shop `<drop_id>.received`; (written?, what to say about it)."""
    name = receipt_name(opened.drop_id)
    try:
        where = inbox.write_receipt(name, opened.receipt(), processed=processed)
    except (OSError, paramiko.SSHException, DropRefused) as exc:
        return False, (
            f"but its receipt {name} was not written ({describe(exc)}): tell the shop that the "
            "drop arrived, or it may send it again"
        )
    return True, f"receipt {where}"


def _move_audit_heads(inbox: Inbox, names: Sequence[str], register: Register) -> list[Outcome]:
    """Move each audit head whose drop was opened to `processed/`; never read one."""
    outcomes = []
    for name in names:
        if not name.endswith(HEAD_SUFFIX):
            continue
        drop_id = name[: -len(HEAD_SUFFIX)]
        opened = register.get(drop_id)
        kind = inbox.kind(name)
        if opened is None or kind == MISSING:
            continue  # its drop is not opened (yet): left alone
        if kind != REGULAR:
            message = f"drop {drop_id}: audit head {not_regular(name, kind)}; left in place"
            outcomes.append(Outcome(drop_id, False, message, subject="audit-head"))
            continue
        try:
            where = inbox.move_to_processed([name])
        except (OSError, paramiko.SSHException, DropRefused) as exc:
            message = f"drop {drop_id}: audit head {name} not moved to processed/ ({describe(exc)})"
            outcomes.append(Outcome(drop_id, False, message, subject="audit-head"))
            continue
        message = f"audit head {name} (drop opened {opened.opened_at}) moved to {where}"
        outcomes.append(Outcome(drop_id, True, message, subject="audit-head"))
    return outcomes


def _parse_manifest(data: bytes, drop_id: str) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DropRefused(f"drop {drop_id}: the signed manifest is not JSON") from None
    entry = document.get("payload") if isinstance(document, dict) else None
    problems = []
    if not isinstance(document, dict) or document.get("drop_id") != drop_id:
        problems.append(f"its drop_id is not {drop_id} (a renamed drop)")
    if not isinstance(entry, dict):
        problems.append("no 'payload' entry")
    else:
        if entry.get("file") != f"{drop_id}{PAYLOAD_SUFFIX}":
            problems.append(f"payload.file is not {drop_id}{PAYLOAD_SUFFIX}")
        if not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"]):
            problems.append("payload.sha256 is not 64 hex digits")
        if not _count(entry.get("bytes")):
            problems.append("payload.bytes is not an integer ≥ 0")
        if entry.get("format", PAYLOAD_FORMAT) != PAYLOAD_FORMAT:
            problems.append(f"payload.format is not {PAYLOAD_FORMAT}")
    if isinstance(document, dict) and not _count(document.get("case_count")):
        problems.append("case_count is not an integer ≥ 0")
    if problems:
        raise DropRefused(f"drop {drop_id}: the signed manifest is unusable: {'; '.join(problems)}")
    return document


def _contract(document: dict[str, Any], drop_id: str) -> Contract:
    """The row contract the signed manifest names; an unknown one is refused."""
    name = document.get("schema_version")
    found = CONTRACTS.get(name) if isinstance(name, str) else None
    if found is None:
        known = ", ".join(CONTRACTS)
        raise DropRefused(
            f"drop {drop_id}: the signed manifest names the contract {name!r}, which this tool "
            f"does not know ({known}); not opened: update the agency tool"
        )
    if not _count(document.get(found.count_key)):
        raise DropRefused(
            f"drop {drop_id}: the signed manifest is unusable: {found.count_key} is not an "
            "integer ≥ 0"
        )
    return found


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_checksum(source: BinaryIO, entry: dict[str, Any], drop_id: str) -> None:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    if size != entry["bytes"] or digest.hexdigest() != entry["sha256"]:
        raise DropRefused(
            f"drop {drop_id}: {entry['file']} does not match the signed manifest (expected "
            f"{entry['bytes']} bytes, sha256 {entry['sha256']}; found {size} bytes, sha256 "
            f"{digest.hexdigest()}): altered or truncated; do not use it, ask the shop to "
            "deliver it again"
        )


def _decrypt_to(
    source: BinaryIO,
    identities: list[x25519.Identity],
    entry: dict[str, Any],
    document: dict[str, Any],
    rows_contract: Contract,
    output: Path,
    drop_id: str,
) -> int:
    """Decrypt and validate into a hidden file, then link it to `output`; returns the row count."""
    tmp = output.with_name(f".{output.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w+b") as sink:
            reader = _HashingReader(source)
            try:
                agecheck.decrypt(reader, sink, identities)
            except AgeFileError as exc:
                raise AgeFileError(exc.failure, f"drop {drop_id}: {entry['file']}: {exc}") from None
            # The checksum pass and this one read the same bytes, or the file changed meanwhile.
            if reader.hash.hexdigest() != entry["sha256"]:
                raise DropRefused(
                    f"drop {drop_id}: {entry['file']} changed while it was being opened; try again"
                )
            sink.flush()
            os.fsync(sink.fileno())
            sink.seek(0)
            count = _validate_rows(sink, drop_id, rows_contract)
        expected = document[rows_contract.count_key]
        if count != expected:
            raise DropRefused(
                f"drop {drop_id}: the payload has {count} rows but the signed manifest says "
                f"{rows_contract.count_key} {expected}; ask the shop to deliver it again"
            )
        try:
            os.link(tmp, output)  # unlike a rename, never replaces a file that appeared meanwhile
        except FileExistsError:
            raise DropRefused(f"drop {drop_id}: {output} appeared meanwhile; kept") from None
        return count
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class _HashingReader:
    """A read-only view of `source` that hashes what is read since the last seek to 0."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hash.update(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self.source.readline(size)
        self.hash.update(data)
        return data

    def tell(self) -> int:
        return self.source.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("only a rewind to the start is supported")
        self.hash = hashlib.sha256()
        return self.source.seek(0)


@cache
def _validator(version: str) -> Draft202012Validator:
    # The format checker makes "format": "date" refuse impossible dates such as 2024-02-30.
    return Draft202012Validator(
        json_schema(version), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _why(error: ValidationError, value: str | None) -> str:
    """What is wrong with a cell, in words that quote none of it ('' when the rule says it)."""
    if error.validator == "maxLength":
        return f" (longer than {error.validator_value} characters)"
    if error.validator == "pattern" and value and value[0] in FORMULA_PREFIXES:
        # A spreadsheet would run it: the shop must send such a cell with a leading quote.
        return " (it starts like a spreadsheet formula, without the leading quote)"
    return ""


def _case_problem(version: str) -> Callable[[dict[str, str]], str | None]:
    """What a row of `version` (v1 or v1.1) breaks, quoting no value."""

    def problem(row: dict[str, str]) -> str | None:
        error = next(iter(_validator(version).iter_errors(row)), None)
        if error is None:
            return None
        column = str(error.path[0]) if error.path else "(row)"
        return (
            f"column {column} breaks the schema rule '{error.validator}' of {version}"
            f"{_why(error, row.get(column))}"
        )

    return problem


def _recall_problem(row: dict[str, str]) -> str | None:
    problem = recall_contract.row_problem(row)
    return None if problem is None else problem.describe()


CONTRACTS: dict[str, Contract] = {
    **{
        version: Contract(version, columns, "case_count", "cases", _case_problem(version))
        for version, columns in contract.VERSIONS.items()
    },
    recall_contract.SCHEMA_VERSION: Contract(
        recall_contract.SCHEMA_VERSION,
        recall_contract.COLUMNS,
        "message_count",
        "messages",
        _recall_problem,
    ),
}


def _validate_rows(sink: BinaryIO, drop_id: str, rows_contract: Contract) -> int:
    """Check the header and every row against the contract; messages name rows and columns."""
    columns = rows_contract.columns
    text = io.TextIOWrapper(sink, encoding="utf-8", newline="")
    try:
        reader = csv.reader(text, strict=True)
        header = next(reader, None)
        if header is None or tuple(header) != columns:
            raise DropRefused(
                f"drop {drop_id}: the CSV header is not the {rows_contract.name} header"
            )
        count = 0
        for count, cells in enumerate(reader, 1):
            if len(cells) != len(columns):
                raise DropRefused(
                    f"drop {drop_id}: row {count} has {len(cells)} cells, expected {len(columns)}"
                )
            problem = rows_contract.problem(dict(zip(columns, cells, strict=True)))
            if problem is not None:
                raise DropRefused(
                    f"drop {drop_id}: row {count}, {problem}; ask the shop to correct the drop"
                )
        return count
    except UnicodeDecodeError:
        raise DropRefused(f"drop {drop_id}: the CSV is not UTF-8") from None
    except csv.Error as exc:
        raise DropRefused(f"drop {drop_id}: the CSV is malformed ({exc})") from None
    finally:
        text.detach()
