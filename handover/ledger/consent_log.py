"""The consent log: for each handed-over case, the legal basis of the transfer and of each channel.

One row per case and optional channel (email, phone, date_of_birth): whether it was sent, and on
which basis (`consent` with the record's time and source, or `policy`), or why it was withheld.
The log holds ids, dates, sources and booleans, never the values themselves. Its digest per drop
goes into the drop's `drop_prepared` audit entry, so `audit verify` can prove it unaltered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from handover.config import Agency
from handover.errors import AuditIntegrityError
from handover.ledger import audit

if TYPE_CHECKING:  # a run writes the log from DataFrames; reading the state store needs no pandas
    import pandas as pd

CHANNELS: tuple[str, ...] = ("email", "phone", "date_of_birth")

# Why a channel was sent or withheld.
SENT_ON_CONSENT = "consent"
SENT_ON_POLICY = "policy"
NOT_ALLOWED = "withheld: not in the agency's allow-list"
NO_CONSENT = "withheld: no consent recorded"
REFUSED = "withheld: consent refused or withdrawn"
NO_VALUE = "withheld: no value on file"

consent_log = sa.Table(
    "consent_log",
    audit.metadata,
    sa.Column("drop_id", sa.Text, primary_key=True),
    sa.Column("case_ref", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, primary_key=True),
    sa.Column("agency", sa.Text, nullable=False),
    sa.Column("invoice_id", sa.Text),  # erased by retention
    sa.Column("customer_id", sa.Text),  # erased by retention
    sa.Column("lawful_basis", sa.Text, nullable=False),
    sa.Column("notice_date", sa.Text),
    sa.Column("sent", sa.Boolean, nullable=False),
    sa.Column("basis", sa.Text, nullable=False),
    sa.Column("consent_recorded_at", sa.Text),
    sa.Column("consent_source", sa.Text),
)
sa.Index("consent_log_customer", consent_log.c.customer_id)
# The ledger's drops table (defined in ledger.store, which imports this module): ids only.
_drops = sa.table("drops", sa.column("drop_id"))


@dataclass(frozen=True)
class ConsentLogRecord:
    """One case and channel of a drop."""

    drop_id: str
    case_ref: str
    channel: str
    agency: str
    invoice_id: str
    customer_id: str
    lawful_basis: str
    notice_date: str | None
    sent: bool
    basis: str
    consent_recorded_at: str | None
    consent_source: str | None


def records(
    rows: pd.DataFrame,
    customer_ids: pd.Series,
    consents: pd.DataFrame,
    agency: Agency,
    *,
    drop_id: str,
    lawful_basis: str,
) -> list[ConsentLogRecord]:
    """The consent-log records of the outgoing `rows` (26 contract columns, invoice_id index).

    `customer_ids` maps invoice_id to customer_id; `consents` is the extracted consents frame.
    """
    import pandas as pd

    from redaction.rows.policy import CONSENTED_COLUMNS

    customers = customer_ids.reindex(rows.index)
    if customers.isna().any():
        raise ValueError("customer_ids must name the customer of every outgoing row")
    latest = {
        purpose: _latest(consents, purpose).set_index("customer_id")
        for purpose in CONSENTED_COLUMNS.values()
    }
    result = []
    for invoice_id, row in rows.iterrows():
        customer = str(customers[invoice_id])
        for channel in CHANNELS:
            value = row[channel]
            sent = value is not None and not pd.isna(value) and value != ""
            basis, at, source = _basis(channel, sent, customer, agency, latest)
            result.append(
                ConsentLogRecord(
                    drop_id=drop_id,
                    case_ref=str(row["case_ref"]),
                    channel=channel,
                    agency=agency.name,
                    invoice_id=str(invoice_id),
                    customer_id=customer,
                    lawful_basis=lawful_basis,
                    notice_date=_text(row["handover_notice_date"]),
                    sent=bool(sent),
                    basis=basis,
                    consent_recorded_at=at,
                    consent_source=source,
                )
            )
    return result


def _basis(
    channel: str,
    sent: bool,
    customer: str,
    agency: Agency,
    latest: dict[str, pd.DataFrame],
) -> tuple[str, str | None, str | None]:
    import pandas as pd

    from redaction.rows.policy import CONSENTED_COLUMNS

    if channel not in agency.columns:
        return NOT_ALLOWED, None, None
    purpose = CONSENTED_COLUMNS.get(channel)
    if purpose is None:
        return (SENT_ON_POLICY if sent else NO_VALUE), None, None
    records = latest[purpose]
    if customer not in records.index:
        return NO_CONSENT, None, None
    record = records.loc[customer]
    at = pd.Timestamp(record["recorded_at"]).isoformat(sep=" ")
    source = str(record["source"])
    if not bool(record["granted"]):
        return REFUSED, at, source
    return (SENT_ON_CONSENT if sent else NO_VALUE), at, source


def _latest(consents: pd.DataFrame, purpose: str) -> pd.DataFrame:
    """The latest record per customer for `purpose`, as `redaction.rows.policy.consent_in_force`."""
    records = consents[consents["purpose"] == purpose].sort_values("recorded_at", kind="stable")
    return records.drop_duplicates("customer_id", keep="last")


def _text(value: object) -> str | None:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def digest(entries: Iterable[ConsentLogRecord | sa.Row]) -> str:
    """SHA-256 over a drop's records without the identifiers (so retention keeps it valid)."""
    keyed = []
    for entry in entries:
        fields = asdict(entry) if isinstance(entry, ConsentLogRecord) else entry._asdict()
        fields.pop("invoice_id", None)
        fields.pop("customer_id", None)
        keyed.append(fields)
    keyed.sort(key=lambda f: (f["case_ref"], f["channel"]))
    return hashlib.sha256(audit.canonical({"records": keyed}).encode("utf-8")).hexdigest()


def store(conn: sa.Connection, entries: Sequence[ConsentLogRecord]) -> int:
    """Insert the records inside the caller's transaction; returns how many."""
    if entries:
        conn.execute(consent_log.insert(), [asdict(e) for e in entries])
    return len(entries)


def verify(conn: sa.Connection) -> int:
    """Check each recorded drop's log against the digest in its `drop_prepared` entry.

    A `drop_prepared` entry without a drop row is a sealing that an older version never finished
    (today both are written in one transaction): there is no log to check. Returns the number
    of drops checked; raises `AuditIntegrityError` naming the drop.
    """
    checked = 0
    prepared = sa.select(audit.audit_log.c.seq, audit.audit_log.c.data).where(
        audit.audit_log.c.event == "drop_prepared"
    )
    recorded = set(conn.execute(sa.select(_drops.c.drop_id)).scalars())
    for seq, data in conn.execute(prepared):
        fields = json.loads(data)
        expected = fields.get("consent_log_sha256")
        if expected is None or fields.get("drop_id") not in recorded:
            continue
        stored = conn.execute(
            sa.select(consent_log).where(consent_log.c.drop_id == fields["drop_id"])
        ).all()
        if digest(stored) != expected:
            raise AuditIntegrityError(
                f"the consent log of drop {fields['drop_id']} does not match the digest in "
                f"audit entry {seq} (drop_prepared): rows were altered, added or deleted; "
                "restore the state database from backup"
            )
        checked += 1
    return checked
