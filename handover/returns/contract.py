"""The return contract agency_return_v1 in code: rows, the signed manifest, the files' names.

A return file is three files, named like a drop's: `<return_id>.csv.age` (the events as CSV,
encrypted with age to the shop's returns recipient), `<return_id>.manifest.json` (plain JSON: no
personal data) and `<return_id>.manifest.json.sig` (the agency's SSHSIG signature over the
manifest, namespace `handover-return`), written in that order, the signature last: a return file
is complete when its signature is there.

The manifest is one JSON object with exactly these keys (`created_at` and `generator` optional):

    {"return_id": "2026-11-27-inkasso-nord-return-1a2b3c4d", "agency": "inkasso-nord",
     "schema": "agency_return_v1", "event_count": 3, "created_at": "2026-11-27T08:15:02Z",
     "generator": "handover 0.1.0",
     "payload": {"file": "<return_id>.csv.age", "sha256": "<64 hex>", "bytes": 1234,
                 "format": "age-v1"}}

One row is one event (`schemas/agency_return_v1.json`). Every check here names the row and the
column at fault, never a cell's value: an agency could put anything into a cell.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handover.config_schema import AGENCY_NAME
from handover.errors import ReturnRefused

if TYPE_CHECKING:  # the ledger reads the event codes here; only parsing needs jsonschema
    from jsonschema import Draft202012Validator, ValidationError

SCHEMA_VERSION = "agency_return_v1"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / f"{SCHEMA_VERSION}.json"
NAMESPACE = "handover-return"  # the agency's signature over a return manifest

COLUMNS: tuple[str, ...] = (
    "event_id",
    "case_ref",
    "event",
    "event_date",
    "amount_cents",
    "currency",
)
EVENTS: tuple[str, ...] = (
    "payment",
    "closed_paid",
    "closed_uncollectable",
    "address_unknown",
    "disputed_by_debtor",
    "instalment_agreed",
    "complaint",
    "returned",
)
# Events that carry an amount: the payments the shop's accounting is told of.
PAYMENT_EVENTS: tuple[str, ...] = ("payment", "closed_paid")
# Events that put a case on review: it is never handed over again until `handover release`.
REVIEW_EVENTS: tuple[str, ...] = ("disputed_by_debtor", "complaint")
# Events after which the case is no longer open at the agency (`StateStore.closed_by_agency`).
CLOSING_EVENTS: tuple[str, ...] = ("closed_paid", "closed_uncollectable", "returned")

PAYLOAD_SUFFIX = ".csv.age"
MANIFEST_SUFFIX = ".manifest.json"
SIGNATURE_SUFFIX = ".manifest.json.sig"
PAYLOAD_FORMAT = "age-v1"
MAX_MANIFEST_BYTES = 64 * 1024  # a manifest is ~400 bytes
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024  # ~1 million events; bounds what a hostile folder costs us

RETURN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GENERATOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+-]{0,63}")
_CREATED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_MANIFEST_KEYS = {"return_id", "agency", "schema", "event_count", "payload"}
_OPTIONAL_KEYS = {"created_at", "generator"}
_PAYLOAD_KEYS = {"file", "sha256", "bytes"}


@dataclass(frozen=True)
class ReturnEvent:
    """One row of a return file: ids, an event code, a date and, for payments, an amount."""

    event_id: str
    case_ref: str
    event: str
    event_date: str  # ISO date
    amount_cents: int | None  # payment and closed_paid only
    currency: str | None  # payment and closed_paid only

    def row(self) -> tuple[str, ...]:
        """The CSV cells, in contract order."""
        amount = "" if self.amount_cents is None else str(self.amount_cents)
        return (
            self.event_id,
            self.case_ref,
            self.event,
            self.event_date,
            amount,
            self.currency or "",
        )


@dataclass(frozen=True)
class ReturnManifest:
    """What a signed return manifest states."""

    return_id: str
    agency: str
    event_count: int
    payload_file: str
    payload_sha256: str
    payload_bytes: int


def payload_name(return_id: str) -> str:
    """`<return_id>.csv.age`."""
    return f"{return_id}{PAYLOAD_SUFFIX}"


def manifest_name(return_id: str) -> str:
    """`<return_id>.manifest.json`."""
    return f"{return_id}{MANIFEST_SUFFIX}"


def signature_name(return_id: str) -> str:
    """`<return_id>.manifest.json.sig`."""
    return f"{return_id}{SIGNATURE_SUFFIX}"


def file_names(return_id: str) -> tuple[str, str, str]:
    """The three files of a return file, in the order they are written (the signature last)."""
    return payload_name(return_id), manifest_name(return_id), signature_name(return_id)


@cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema of one row (`schemas/agency_return_v1.json`)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    # The format checker makes "format": "date" refuse impossible dates such as 2026-02-30.
    return Draft202012Validator(json_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def to_csv_bytes(events: Sequence[ReturnEvent]) -> bytes:
    """The payload's plaintext: header and rows, RFC 4180 quoting, CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    writer.writerows(event.row() for event in events)
    return buffer.getvalue().encode("utf-8")


def parse_events(data: bytes, what: str) -> list[ReturnEvent]:
    """Check the CSV `data` row by row against agency_return_v1; the events, in file order.

    `what` names the file in messages ("return file X of agency Y", "events.csv"). Raises
    ReturnRefused("rows", …) naming the row and column at fault, never a value.
    """
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet's byte order mark is no content
    except UnicodeDecodeError:
        raise ReturnRefused("rows", f"{what}: the CSV is not UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    events: list[ReturnEvent] = []
    first_row: dict[str, int] = {}
    try:
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise ReturnRefused(
                "rows",
                f"{what}: the CSV header is not the {SCHEMA_VERSION} header ({','.join(COLUMNS)})",
            )
        for number, cells in enumerate(reader, 1):
            if len(cells) != len(COLUMNS):
                raise ReturnRefused(
                    "rows", f"{what}: row {number} has {len(cells)} cells, expected {len(COLUMNS)}"
                )
            row = dict(zip(COLUMNS, cells, strict=True))
            error = next(iter(_validator().iter_errors(row)), None)
            if error is not None:
                column = str(error.path[0]) if error.path else "(row)"
                raise ReturnRefused(
                    "rows",
                    f"{what}: row {number}, column {column} breaks the rule '{error.validator}' "
                    f"of {SCHEMA_VERSION}{_why(error, column)}",
                )
            earlier = first_row.setdefault(row["event_id"], number)
            if earlier != number:
                raise ReturnRefused(
                    "rows",
                    f"{what}: rows {earlier} and {number} have the same event_id; an event_id "
                    "names one event",
                )
            events.append(_event(row))
    except csv.Error as exc:
        raise ReturnRefused("rows", f"{what}: the CSV is malformed ({exc})") from None
    if not events:
        raise ReturnRefused("rows", f"{what}: the CSV has a header but no events")
    return events


def _event(row: dict[str, str]) -> ReturnEvent:
    paid = row["event"] in PAYMENT_EVENTS
    return ReturnEvent(
        event_id=row["event_id"],
        case_ref=row["case_ref"],
        event=row["event"],
        event_date=row["event_date"],
        amount_cents=int(row["amount_cents"]) if paid else None,
        currency=row["currency"] if paid else None,
    )


def _why(error: ValidationError, column: str) -> str:
    """What a rule demands, in words that quote no cell (the rule's own text may be shown)."""
    if column in ("amount_cents", "currency"):
        return (
            " (payment: amount_cents an integer ≥ 1 in minor units and currency an ISO 4217 "
            "code; closed_paid: amount_cents ≥ 0 and a currency; every other event: both empty)"
        )
    if column == "event":
        return f" (one of: {', '.join(EVENTS)})"
    if column == "event_date":
        return " (an ISO date such as 2026-11-27 that exists)"
    if column == "event_id":
        return " (1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)"
    if column == "case_ref":
        return " (32 lowercase hex digits, as the shop sent it)"
    return ""


def check_not_future(events: Sequence[ReturnEvent], today: dt.date, what: str) -> None:
    """Refuse an event dated after `today` (Europe/Berlin): it cannot have happened yet."""
    for number, event in enumerate(events, 1):
        if event.event_date > today.isoformat():
            raise ReturnRefused(
                "event_date",
                f"{what}: row {number}, column event_date is after today ({today.isoformat()}); "
                "an event is reported once it happened",
            )


def parse_manifest(data: bytes, return_id: str, what: str) -> ReturnManifest:
    """The signed manifest of return file `return_id`; every problem named at once.

    Only the keys above are allowed: a manifest travels unencrypted, so a key nobody reads is
    refused rather than kept (it could carry anything).
    """
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ReturnRefused("manifest", f"{what}: the signed manifest is not JSON") from None
    if not isinstance(document, dict):
        raise ReturnRefused("manifest", f"{what}: the signed manifest is not a JSON object")
    problems = []
    unknown = set(document) - _MANIFEST_KEYS - _OPTIONAL_KEYS
    if unknown:
        problems.append(f"unknown keys {', '.join(sorted(map(str, unknown)))}")
    missing = _MANIFEST_KEYS - set(document)
    if missing:
        problems.append(f"missing keys {', '.join(sorted(missing))}")
    if document.get("return_id") != return_id:
        problems.append(f"its return_id is not {return_id} (a renamed file)")
    if document.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        problems.append(f"schema is not {SCHEMA_VERSION}")
    agency = document.get("agency")
    if not isinstance(agency, str) or not AGENCY_NAME.fullmatch(agency):
        problems.append("agency is not an agency name")
    count = document.get("event_count")
    if not _count(count):
        problems.append("event_count is not an integer ≥ 0")
    if "created_at" in document and not (
        isinstance(document["created_at"], str) and _CREATED_AT.fullmatch(document["created_at"])
    ):
        problems.append("created_at is not a UTC time like 2026-11-27T08:15:02Z")
    if "generator" in document and not (
        isinstance(document["generator"], str) and _GENERATOR.fullmatch(document["generator"])
    ):
        problems.append("generator is not a short name and version")
    entry = document.get("payload")
    if not isinstance(entry, dict):
        problems.append("payload is not an object")
        entry = {}
    else:
        unknown = set(entry) - _PAYLOAD_KEYS - {"format"}
        if unknown:
            problems.append(f"unknown payload keys {', '.join(sorted(map(str, unknown)))}")
        if entry.get("file") != payload_name(return_id):
            problems.append(f"payload.file is not {payload_name(return_id)}")
        if not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"]):
            problems.append("payload.sha256 is not 64 lowercase hex digits")
        if not _count(entry.get("bytes")):
            problems.append("payload.bytes is not an integer ≥ 0")
        if entry.get("format", PAYLOAD_FORMAT) != PAYLOAD_FORMAT:
            problems.append(f"payload.format is not {PAYLOAD_FORMAT}")
    if problems:
        raise ReturnRefused(
            "manifest", f"{what}: the signed manifest is unusable: {'; '.join(problems)}"
        )
    return ReturnManifest(
        return_id=return_id,
        agency=agency,
        event_count=count,
        payload_file=entry["file"],
        payload_sha256=entry["sha256"],
        payload_bytes=entry["bytes"],
    )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
