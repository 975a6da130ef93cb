"""`handover returns export`: the payments agencies reported, for the shop's accounting.

handover never writes to the shop's database, so the payments the agencies collected
(`payment` and `closed_paid` events of their return files) reach the books as a CSV: one row
per event with an event date in the period (the day the agency received the money), oldest
first. Columns: invoice_number (from the shop database, as printed on the invoice),
invoice_id, agency, event, event_date, amount_cents (integer minor units), currency, event_id
(the agency's id, unique per agency: book each once) and return_id (the return file it came
in). The export is audited (`returns_exported`: the period, the agency, counts and sums per
currency; no ids).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass

import pandas as pd

from handover.config import Config
from handover.errors import HandoverError, UnknownId
from handover.ledger.store import StateStore
from handover.run import lookup
from redaction.rows.csv_injection import neutralise

COLUMNS: tuple[str, ...] = (
    "invoice_number",
    "invoice_id",
    "agency",
    "event",
    "event_date",
    "amount_cents",
    "currency",
    "event_id",
    "return_id",
)
_LISTED = 10


@dataclass(frozen=True)
class PaymentsExport:
    """The CSV, and what it holds."""

    csv: bytes
    rows: int
    sums: dict[str, int]  # per currency, in minor units


def export_payments(
    config: Config, store: StateStore, start: dt.date, end: dt.date, agency: str | None = None
) -> PaymentsExport:
    """The payments reported with an event date from `start` to `end` (inclusive), audited.

    `agency` (checked against the configuration) limits them to one agency. An invoice the
    shop database no longer has is refused (UnknownId) rather than exported without its
    number: the accounting could not book it.
    """
    if end < start:
        raise HandoverError(f"--to {end} is before --from {start}; give the period in order")
    if agency is not None:
        config.agency(agency)  # an unknown name is an error, not an empty export
    payments = pd.DataFrame(store.agency_payments(start, end, agency), columns=list(COLUMNS[1:]))
    ids = sorted(set(payments["invoice_id"]))
    numbers = lookup.invoice_numbers(config.source_url, ids) if ids else {}
    missing = [i for i in ids if i not in numbers]
    if missing:
        more = f" and {len(missing) - _LISTED} more" if len(missing) > _LISTED else ""
        raise UnknownId(
            f"the shop database (source.url) has no invoice {', '.join(missing[:_LISTED])}{more} "
            "in table 'invoices', which agencies reported payments for; nothing was exported. "
            "Restore the invoices, or book these payments by invoice id by hand"
        )
    payments.insert(0, "invoice_number", neutralise(payments["invoice_id"].map(numbers)))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(payments[list(COLUMNS)].itertuples(index=False, name=None))
    sums = {str(c): int(v) for c, v in payments.groupby("currency")["amount_cents"].sum().items()}
    store.record_event(
        f"export-{uuid.uuid4().hex[:12]}",
        "returns_exported",
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "agency": agency,
            "rows": len(payments),
            "sums": sums,
        },
    )
    return PaymentsExport(buffer.getvalue().encode("utf-8"), len(payments), sums)
