"""`handover outcomes`: what became of the cases an agency received, per agency.

The period chooses the cases: those delivered to an agency in a handover drop from `start` to
`end` (a cohort); every figure is about those cases, as far as the state store knows today:
the amounts handed over, what the agency reports recovered, the recalls by reason and how long
a recall took from the shop's fact to its delivery, the disputes and complaints after the
handover per 100 cases, and how the agency closed them. Counts and amounts only: no ids leave
this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from handover.errors import HandoverError, UnknownId
from handover.ledger.store import (
    StateStore,
    drops,
    handover_drops,
    handovers,
    recall_cases,
    recall_messages,
    return_events,
)
from handover.returns.contract import PAYMENT_EVENTS
from handover.run.changes import DATED_RECALLS

BERLIN = "Europe/Berlin"
# What an agency reported about how a case ended or stands (`returned`: handed back unworked).
REPORTED = (
    "closed_paid",
    "closed_uncollectable",
    "returned",
    "address_unknown",
    "instalment_agreed",
)
# ISO 4217 currencies without two decimals, for printing minor units.
_EXPONENT = {c: 0 for c in ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG")} | {
    c: 0 for c in ("RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF")
}
_EXPONENT |= {c: 3 for c in ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")}


@dataclass(frozen=True)
class Latency:
    """Days from the shop's fact (Europe/Berlin) to the recall's delivery, over the recalls
    whose reason the shop dates (`changes.DATED_RECALLS`)."""

    recalls: int
    median_days: float
    p90_days: int
    max_days: int


@dataclass(frozen=True)
class AgencyOutcomes:
    """One agency's figures for the cases it received in the period."""

    agency: str
    cases: int
    handed_over_cents: Mapping[str, int]  # open amount at handover, per currency
    recovered_cents: Mapping[str, int]  # payment and closed_paid events, per currency
    recalls: Mapping[str, int]  # reason code -> cases recalled
    latency: Latency | None
    undated_recalls: int  # recalls whose reason has no date in the shop (cancelled, ...)
    disputes: int  # cases the agency reported disputed_by_debtor
    complaints: int  # cases with a complaint
    reported: Mapping[str, int] = field(default_factory=dict)  # REPORTED code -> cases

    def per_100(self, count: int) -> float:
        """`count` per 100 cases handed over, one decimal."""
        return round(100 * count / self.cases, 1) if self.cases else 0.0

    def recovery_rate(self, currency: str) -> float | None:
        """Recovered as a share of the open amount handed over, in per cent."""
        handed = self.handed_over_cents.get(currency, 0)
        if not handed:
            return None
        return round(100 * self.recovered_cents.get(currency, 0) / handed, 1)


@dataclass(frozen=True)
class Outcomes:
    """The figures of every agency with cases in the period."""

    start: dt.date
    end: dt.date
    agencies: tuple[AgencyOutcomes, ...]


def collect(
    store: StateStore, *, start: dt.date, end: dt.date, agency: str | None = None
) -> Outcomes:
    """Read the outcomes of the cases handed over from `start` to `end` (inclusive)."""
    if end < start:
        raise HandoverError(
            f"--to {end} is before --from {start}; give the period's first day first"
        )
    first, after = start.isoformat(), (end + dt.timedelta(days=1)).isoformat()
    in_period = [
        drops.c.status == "delivered",
        handover_drops(),
        drops.c.delivered_at >= first,
        drops.c.delivered_at < after,
    ]
    if agency is not None:
        in_period.append(drops.c.agency == agency)
    with store.engine.connect() as conn:
        if agency is not None and not _knows(conn, agency):
            raise UnknownId(
                f"no drop for agency '{agency}' in the state store; `handover status` lists "
                "the agencies, `handover policy show` the configured ones"
            )
        cohort = _frame(conn, _cohort(in_period))
        events = _frame(conn, _events(in_period))
        recalled = _frame(conn, _recalls(in_period))
    cohort = cohort.sort_values("delivered_at").drop_duplicates(["agency", "invoice_id"])
    events = events.drop_duplicates(["agency", "event_id"])
    names = sorted(set(cohort["agency"]))
    return Outcomes(
        start, end, tuple(_agency(n, cohort, events, recalled, DATED_RECALLS) for n in names)
    )


def _knows(conn: sa.Connection, agency: str) -> bool:
    query = sa.select(drops.c.drop_id).where(drops.c.agency == agency).limit(1)
    return conn.execute(query).first() is not None


def _cohort(in_period: list[Any]) -> sa.Select[Any]:
    return (
        sa.select(
            handovers.c.invoice_id,
            drops.c.agency,
            drops.c.delivered_at,
            handovers.c.open_cents,
            handovers.c.currency,
        )
        .join(drops, drops.c.drop_id == handovers.c.drop_id)
        .where(*in_period)
    )


def _events(in_period: list[Any]) -> sa.Select[Any]:
    """The events agencies reported about the period's cases, on or after their handover."""
    handed = (
        sa.select(handovers.c.invoice_id)
        .join(drops, drops.c.drop_id == handovers.c.drop_id)
        .where(
            *in_period,
            handovers.c.invoice_id == return_events.c.invoice_id,
            drops.c.agency == return_events.c.agency,
            return_events.c.event_date >= drops.c.as_of,
        )
    )
    return sa.select(
        return_events.c.agency,
        return_events.c.event_id,
        return_events.c.invoice_id,
        return_events.c.event,
        return_events.c.amount_cents,
        return_events.c.currency,
    ).where(handed.exists())


def _recalls(in_period: list[Any]) -> sa.Select[Any]:
    """The delivered recalls of the period's cases: reason, effective date, delivery time."""
    handover_drop = sa.select(drops.c.drop_id).where(*in_period)
    recall_drop = drops.alias("recall_drop")
    return (
        sa.select(
            recall_drop.c.agency,
            recall_messages.c.invoice_id,
            recall_messages.c.reason,
            recall_messages.c.effective_date,
            recall_drop.c.delivered_at,
        )
        .join(
            recall_cases,
            (recall_cases.c.drop_id == recall_messages.c.drop_id)
            & (recall_cases.c.invoice_id == recall_messages.c.invoice_id),
        )
        .join(recall_drop, recall_drop.c.drop_id == recall_messages.c.drop_id)
        .where(
            recall_messages.c.message_type == "recall",
            recall_drop.c.status == "delivered",
            recall_cases.c.handover_drop_id.in_(handover_drop),
        )
    )


def _frame(conn: sa.Connection, query: sa.Select[Any]) -> pd.DataFrame:
    result = conn.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _agency(
    name: str,
    cohort: pd.DataFrame,
    events: pd.DataFrame,
    recalled: pd.DataFrame,
    dated: tuple[str, ...],
) -> AgencyOutcomes:
    cases = cohort[cohort["agency"] == name]
    mine = events[events["agency"] == name]
    recalls = recalled[recalled["agency"] == name].drop_duplicates("invoice_id")
    paid = mine[mine["event"].isin(PAYMENT_EVENTS)]

    def cases_with(event: str) -> int:
        return int(mine.loc[mine["event"] == event, "invoice_id"].nunique())

    with_date = recalls[recalls["reason"].isin(dated)]
    return AgencyOutcomes(
        agency=name,
        cases=len(cases),
        handed_over_cents=_sums(cases, "open_cents"),
        recovered_cents=_sums(paid, "amount_cents"),
        recalls=dict(sorted(recalls["reason"].value_counts().astype(int).items())),
        latency=_latency(with_date),
        undated_recalls=len(recalls) - len(with_date),
        disputes=cases_with("disputed_by_debtor"),
        complaints=cases_with("complaint"),
        reported={code: cases_with(code) for code in REPORTED},
    )


def _sums(frame: pd.DataFrame, column: str) -> dict[str, int]:
    """Per currency; a case registered before currencies were recorded counts as '?'."""
    if frame.empty:
        return {}
    amounts = pd.to_numeric(frame[column]).fillna(0)
    currency = frame["currency"].fillna("?")
    return {str(c): int(v) for c, v in amounts.groupby(currency).sum().sort_index().items()}


def _latency(recalls: pd.DataFrame) -> Latency | None:
    if recalls.empty:
        return None
    delivered = pd.to_datetime(recalls["delivered_at"], utc=True).dt.tz_convert(BERLIN)
    arose = pd.to_datetime(recalls["effective_date"])
    days = (delivered.dt.tz_localize(None).dt.normalize() - arose).dt.days.clip(lower=0)
    ordered = days.sort_values().to_numpy()
    nearest_rank = max(0, -(-9 * len(ordered) // 10) - 1)  # ceil(0.9 n) - 1
    return Latency(
        recalls=len(ordered),
        median_days=float(days.median()),
        p90_days=int(ordered[nearest_rank]),
        max_days=int(ordered[-1]),
    )


# --------------------------------------------------------------------------- rendering


def money(cents: int, currency: str) -> str:
    """Minor units as an amount, e.g. `1,234.50 EUR`."""
    exponent = _EXPONENT.get(currency, 2)
    value = cents / 10**exponent
    return f"{value:,.{exponent}f} {currency}"


def lines(outcomes: Outcomes) -> list[str]:
    """The console text of `handover outcomes`."""
    out = [
        f"Outcomes of the cases handed over {outcomes.start} – {outcomes.end}, "
        "as the agencies reported them up to now"
    ]
    if not outcomes.agencies:
        return [*out, "  no case was handed over in this period"]
    for a in outcomes.agencies:
        out += [
            f"agency {a.agency}",
            f"  cases handed over: {a.cases}",
            "  open amount handed over: " + _amounts(a.handed_over_cents),
            "  recovered (agency's payment reports): " + _recovered(a),
            f"  disputes after handover: {a.disputes} ({a.per_100(a.disputes)} per 100 cases)",
            f"  complaints after handover: {a.complaints} "
            f"({a.per_100(a.complaints)} per 100 cases)",
            "  outcomes the agency reported (cases): "
            + ", ".join(f"{code} {n}" for code, n in a.reported.items()),
            f"  recalls: {sum(a.recalls.values())}"
            + (": " + ", ".join(f"{r} {n}" for r, n in a.recalls.items()) if a.recalls else ""),
            "  recall latency (shop's fact to delivery): " + _latency_text(a),
        ]
    return out


def as_dict(outcomes: Outcomes) -> dict[str, Any]:
    """`--json`: the same figures, amounts in minor units."""
    return {
        "from": outcomes.start.isoformat(),
        "to": outcomes.end.isoformat(),
        "agencies": {
            a.agency: {
                "cases": a.cases,
                "handed_over_cents": dict(a.handed_over_cents),
                "recovered_cents": dict(a.recovered_cents),
                "recovery_rate_percent": {
                    c: a.recovery_rate(c) for c in sorted(a.handed_over_cents)
                },
                "disputes": a.disputes,
                "disputes_per_100": a.per_100(a.disputes),
                "complaints": a.complaints,
                "complaints_per_100": a.per_100(a.complaints),
                "reported": dict(a.reported),
                "recalls": dict(a.recalls),
                "recall_latency_days": None
                if a.latency is None
                else {
                    "recalls": a.latency.recalls,
                    "median": a.latency.median_days,
                    "p90": a.latency.p90_days,
                    "max": a.latency.max_days,
                },
                "undated_recalls": a.undated_recalls,
            }
            for a in outcomes.agencies
        },
    }


def _amounts(cents: Mapping[str, int]) -> str:
    return ", ".join(money(v, c) for c, v in cents.items()) or "none"


def _recovered(a: AgencyOutcomes) -> str:
    if not a.recovered_cents:
        return "none"
    parts = []
    for currency, cents in a.recovered_cents.items():
        rate = a.recovery_rate(currency)
        share = f" ({rate} % of the open amount)" if rate is not None else ""
        parts.append(money(cents, currency) + share)
    return ", ".join(parts)


def _latency_text(a: AgencyOutcomes) -> str:
    undated = (
        f"; {a.undated_recalls} recalls without a date in the shop (not counted)"
        if a.undated_recalls
        else ""
    )
    if a.latency is None:
        return "no dated recall" + undated
    lat = a.latency
    return (
        f"median {lat.median_days:g} days, 90 % within {lat.p90_days}, longest {lat.max_days} "
        f"({lat.recalls} recalls)" + undated
    )
