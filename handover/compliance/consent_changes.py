"""`handover consent changes`: consents withdrawn after the customer's case went to an agency.

The agency still holds the e-mail address or phone number sent with the case; a withdrawal after
delivery means telling the agency to stop using it (GDPR Art. 7(3), 19). Reads only customer ids,
purposes, grants, dates and sources from the shop's `consents` table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from handover.errors import SourceError
from handover.ledger.consent_log import consent_log
from handover.ledger.store import drops
from handover.run import extract as source
from redaction.rows.policy import CONSENTED_COLUMNS


@dataclass(frozen=True)
class ConsentChange:
    """A consent withdrawn after the customer's case went to an agency."""

    customer_id: str
    purpose: str
    withdrawn_at: str
    source: str
    drop_id: str
    agency: str
    delivered_at: str
    channel_sent: bool


def changes(
    state: sa.Engine, source_url: str, *, since: dt.date | None = None
) -> list[ConsentChange]:
    """Consents for e-mail or phone withdrawn after the customer's case was delivered.

    The withdrawal is the customer's latest record for the purpose (so a later re-grant hides
    it); `since` limits to withdrawals recorded on or after that date (UTC).
    """
    query = (
        sa.select(
            consent_log.c.customer_id,
            consent_log.c.channel,
            consent_log.c.sent,
            consent_log.c.drop_id,
            consent_log.c.agency,
            drops.c.delivered_at,
        )
        .join(drops, drops.c.drop_id == consent_log.c.drop_id)
        .where(
            drops.c.status == "delivered",
            consent_log.c.customer_id.is_not(None),
            consent_log.c.channel.in_(list(CONSENTED_COLUMNS)),
        )
    )
    with state.connect() as conn:
        handed = pd.DataFrame(
            conn.execute(query).all(), columns=list(query.selected_columns.keys())
        )
    if handed.empty:
        return []
    current = current_consents(source_url, sorted(set(handed["customer_id"])))
    handed["purpose"] = handed["channel"].map(CONSENTED_COLUMNS)
    merged = handed.merge(current, on=["customer_id", "purpose"], how="inner")
    delivered = pd.to_datetime(merged["delivered_at"], utc=True).dt.tz_localize(None)
    withdrawn = ~merged["granted"] & (merged["recorded_at"] > delivered)
    if since is not None:
        withdrawn &= merged["recorded_at"] >= pd.Timestamp(since)
    found = merged[withdrawn].sort_values(["recorded_at", "customer_id", "purpose"])
    return [
        ConsentChange(
            customer_id=str(row.customer_id),
            purpose=str(row.purpose),
            withdrawn_at=row.recorded_at.isoformat(sep=" "),
            source=str(row.source),
            drop_id=str(row.drop_id),
            agency=str(row.agency),
            delivered_at=str(row.delivered_at),
            channel_sent=bool(row.sent),
        )
        for row in found.itertuples()
    ]


def current_consents(source_url: str, customer_ids: list[str]) -> pd.DataFrame:
    """The latest consent record per customer and purpose, from the shop database."""
    query = sa.text(
        "SELECT customer_id, purpose, granted, recorded_at, source FROM consents "
        "WHERE customer_id IN :ids"
    ).bindparams(sa.bindparam("ids", expanding=True))
    engine = source.create_engine(source_url)
    frames = []
    try:
        with engine.connect() as conn:
            for start in range(0, len(customer_ids), 500):
                chunk = customer_ids[start : start + 500]
                frames.append(pd.read_sql(query, conn, params={"ids": chunk}))
    except (sa.exc.DBAPIError, pd.errors.DatabaseError) as exc:
        # pandas wraps the driver's error in its own; neither message is shown (may quote rows).
        cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc.__cause__
        raise SourceError(
            f"cannot read table 'consents' of the shop database ({type(cause).__name__}); "
            "check source.url, and the table with `handover source check`"
        ) from None
    finally:
        engine.dispose()
    frame = pd.concat(frames, ignore_index=True)
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["granted"] = _flags(frame["granted"])
    recorded = pd.to_datetime(frame["recorded_at"], format="ISO8601")
    if isinstance(recorded.dtype, pd.DatetimeTZDtype):
        recorded = recorded.dt.tz_convert("UTC").dt.tz_localize(None)
    frame["recorded_at"] = recorded
    frame = frame.sort_values("recorded_at", kind="stable")
    return frame.drop_duplicates(["customer_id", "purpose"], keep="last")


def _flags(values: pd.Series) -> pd.Series:
    """`consents.granted` as booleans; text such as 'false' would read as granted: refused."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values
    numbers = pd.to_numeric(values, errors="coerce")
    if not numbers.isin([0, 1]).all():
        raise SourceError(
            f"consents.granted holds {int((~numbers.isin([0, 1])).sum())} value(s) that are not "
            "true/false (or 0/1); fix the view (`handover source check` names what to deliver)"
        )
    return numbers.astype(bool)
