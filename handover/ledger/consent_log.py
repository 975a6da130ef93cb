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
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from handover.config import Agency
from handover.errors import AuditIntegrityError
from handover.ledger import audit
from handover.ledger.database import insert_rows

if TYPE_CHECKING:  # a run writes the log from DataFrames; reading the state store needs no pandas
    import numpy as np
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


FIELDS: tuple[str, ...] = tuple(c.name for c in consent_log.columns)
# What the digest covers: every field but the identifiers retention erases, in key order.
_DIGESTED = tuple(sorted(f for f in FIELDS if f not in ("invoice_id", "customer_id")))


def frame(
    rows: pd.DataFrame,
    customer_ids: pd.Series,
    consents: pd.DataFrame,
    agency: Agency,
    *,
    drop_id: str,
    lawful_basis: str,
) -> pd.DataFrame:
    """The consent log of the outgoing `rows` (26 contract columns, invoice_id index), built
    column-wise: one row per case and channel, in case order, columns FIELDS, object dtype
    (str, bool, None), ready for `store` and `digest`.

    `customer_ids` maps invoice_id to customer_id; `consents` is the extracted consents frame.
    """
    import pandas as pd

    customers = customer_ids.reindex(rows.index)
    if customers.isna().any():
        raise ValueError("customer_ids must name the customer of every outgoing row")
    customers = customers.astype(str)
    common = {
        "drop_id": drop_id,
        "case_ref": _texts(rows["case_ref"]),
        "agency": agency.name,
        "invoice_id": rows.index.astype(str).to_numpy(dtype=object),
        "customer_id": customers.to_numpy(dtype=object),
        "lawful_basis": lawful_basis,
        "notice_date": _texts(rows["handover_notice_date"]),
    }
    parts = []
    for order, channel in enumerate(CHANNELS):
        values = rows[channel]
        sent = (values.notna() & (values.astype(object) != "")).to_numpy(dtype=bool)
        basis, at, source = _bases(channel, sent, customers, agency, consents)
        part = pd.DataFrame(
            {
                **common,
                "channel": channel,
                "sent": sent.astype(object),
                "basis": basis,
                "consent_recorded_at": at,
                "consent_source": source,
            },
            index=pd.RangeIndex(len(rows)) * len(CHANNELS) + order,
        )
        parts.append(part)
    if not parts or rows.empty:
        return pd.DataFrame({field: pd.Series(dtype=object) for field in FIELDS})
    # Case by case, each with its channels in CHANNELS order (as the log was always written).
    log = pd.concat(parts).sort_index()[list(FIELDS)].reset_index(drop=True).astype(object)
    # pandas stores text columns as strings, whose missing value is NaN: the log's is None.
    return log.where(log.notna(), None)


def records(
    rows: pd.DataFrame,
    customer_ids: pd.Series,
    consents: pd.DataFrame,
    agency: Agency,
    *,
    drop_id: str,
    lawful_basis: str,
) -> list[ConsentLogRecord]:
    """The consent log of `frame` as records, one per case and channel."""
    log = frame(rows, customer_ids, consents, agency, drop_id=drop_id, lawful_basis=lawful_basis)
    return [ConsentLogRecord(*values) for values in log.to_numpy(dtype=object).tolist()]


def _bases(
    channel: str,
    sent: np.ndarray,
    customers: pd.Series,
    agency: Agency,
    consents: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per case: the basis of `channel`, and the consent record's time and source (or None)."""
    import numpy as np

    from redaction.rows.policy import CONSENTED_COLUMNS

    count = len(customers)
    nothing = np.full(count, None, dtype=object)
    if channel not in agency.columns:
        return np.full(count, NOT_ALLOWED, dtype=object), nothing, nothing
    purpose = CONSENTED_COLUMNS.get(channel)
    if purpose is None:
        return np.where(sent, SENT_ON_POLICY, NO_VALUE).astype(object), nothing, nothing
    latest = _latest(consents, purpose).set_index("customer_id")
    record = latest.reindex(customers.to_numpy())
    known = record["granted"].notna().to_numpy(dtype=bool)
    granted = known & record["granted"].fillna(False).astype(bool).to_numpy(dtype=bool)
    basis = np.where(
        ~known, NO_CONSENT, np.where(~granted, REFUSED, np.where(sent, SENT_ON_CONSENT, NO_VALUE))
    ).astype(object)
    at = np.where(known, _iso_times(record["recorded_at"]), None).astype(object)
    source = np.where(known, record["source"].astype(str).to_numpy(), None).astype(object)
    return basis, at, source


def _latest(consents: pd.DataFrame, purpose: str) -> pd.DataFrame:
    """The latest record per customer for `purpose`, as `redaction.rows.policy.consent_in_force`."""
    records = consents[consents["purpose"] == purpose].sort_values("recorded_at", kind="stable")
    return records.drop_duplicates("customer_id", keep="last")


def _iso_times(stamps: pd.Series) -> np.ndarray:
    """`Timestamp.isoformat(sep=" ")` of each value, column-wise: seconds, then the fraction
    only where there is one (6 digits, or 9 with nanoseconds); None for NaT."""
    import numpy as np
    import pandas as pd

    stamps = pd.to_datetime(stamps)
    text = stamps.dt.strftime("%Y-%m-%d %H:%M:%S").astype(object)
    micro, nano = stamps.dt.microsecond.fillna(0), stamps.dt.nanosecond.fillna(0)
    six = "." + micro.astype("int64").astype(str).str.zfill(6)
    nine = "." + (micro * 1000 + nano).astype("int64").astype(str).str.zfill(9)
    fraction = np.where(nano != 0, nine, np.where(micro != 0, six, ""))
    return np.where(stamps.isna(), None, text + fraction).astype(object)


def _texts(values: pd.Series) -> np.ndarray:
    """Each value as text, None where it is missing."""
    import numpy as np

    return np.where(values.isna(), None, values.astype(str)).astype(object)


def digest(entries: pd.DataFrame | Iterable[ConsentLogRecord | sa.Row]) -> str:
    """SHA-256 over a drop's records without the identifiers (so retention keeps it valid).

    The same for a `frame`, its records and the rows read back from the state store (which
    reading needs no pandas): the canonical JSON of the records sorted by case_ref and channel,
    `{"records":[{…},…]}`, each record built column-wise (`audit.canonical_each`).
    """
    values = _values(entries, _DIGESTED)
    values.sort(key=itemgetter(_DIGESTED.index("case_ref"), _DIGESTED.index("channel")))
    if values:
        columns = dict(zip(_DIGESTED, map(list, zip(*values, strict=True)), strict=True))
        records = audit.canonical_each({}, columns)
    else:
        records = []
    text = '{"records":[' + ",".join(records) + "]}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def store(conn: sa.Connection, entries: pd.DataFrame | Sequence[ConsentLogRecord]) -> int:
    """Insert the records inside the caller's transaction, in one executemany of plain tuples;
    returns how many."""
    return insert_rows(conn, consent_log, FIELDS, _values(entries, FIELDS))


def _values(
    entries: pd.DataFrame | Iterable[ConsentLogRecord | sa.Row], fields: tuple[str, ...]
) -> list[list[Any]]:
    """`fields` of every entry, as plain Python values (a frame's None, bool and str)."""
    if hasattr(entries, "to_numpy") and hasattr(entries, "columns"):
        return entries[list(fields)].to_numpy(dtype=object).tolist()
    return [[getattr(entry, field) for field in fields] for entry in entries]


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
