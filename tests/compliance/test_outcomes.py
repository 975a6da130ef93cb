"""`handover outcomes` on a real ledger (SQLite and PostgreSQL): the period chooses the cases
handed over in it, and every figure is about those cases and their own agency."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from handover.compliance import outcomes
from handover.errors import HandoverError, UnknownId
from handover.ledger.store import PreparedDrop
from tests.support.ledger import signed_store

JUNE = dt.date(2026, 6, 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    store = signed_store(url)
    store.start_run("run-1", as_of=JUNE, agency="*", dry_run=False, data={})
    yield store
    store.engine.dispose()


def handed_over(
    store, tmp_path: Path, drop_id: str, agency: str, cases: dict[str, tuple[int, str | None]],
    delivered: str,
) -> None:  # fmt: skip
    """A handover drop to `agency`, delivered at `delivered`: invoice -> (open_cents, currency)."""
    drop = PreparedDrop(drop_id, "run-1", agency, tmp_path / drop_id, (), len(cases))
    frame = pd.DataFrame(
        {
            "customer_id": [f"C-{i}" for i in cases],
            "case_ref": [f"ref-{i}" for i in cases],
            "columns": "case_ref",
            "open_cents": [amount for amount, _ in cases.values()],
            "currency": [currency for _, currency in cases.values()],
        },
        index=pd.Index(list(cases), name="invoice_id"),
    )
    store.prepare_drop(drop, frame, [], {"drop_id": drop_id, "as_of": delivered[:10]})
    store.mark_sealed("run-1", drop_id, {})
    store.commit_drop("run-1", drop_id, {})
    with store.transaction() as conn:
        conn.execute(
            sa.text("UPDATE drops SET delivered_at = :at WHERE drop_id = :d"),
            {"at": delivered, "d": drop_id},
        )


def reported(store, agency: str, return_id: str, *events: tuple) -> None:
    """Events (event_id, invoice, event, date[, cents]) in one return file of `agency`."""
    store.ingest_return(
        "run-1",
        agency=agency,
        return_id=return_id,
        manifest_sha256=return_id.ljust(64, "0"),
        events=[
            {
                "event_id": event_id,
                "invoice_id": invoice,
                "case_ref": f"ref-{invoice}",
                "event": event,
                "event_date": day,
                "amount_cents": cents[0] if cents else None,
                "currency": "EUR" if cents else None,
            }
            for event_id, invoice, event, day, *cents in events
        ],
    )


def test_the_period_chooses_the_cases_and_each_figure_is_about_them(store, tmp_path):
    handed_over(
        store, tmp_path, "D1", "nord",
        {"I1": (10000, "EUR"), "I2": (5000, "EUR"), "I3": (7000, "CHF"), "I4": (100, None)},
        delivered="2026-06-02T01:00:00+00:00",
    )  # fmt: skip
    handed_over(  # before the period: not counted, nor what became of it
        store, tmp_path, "D0", "nord", {"I9": (99999, "EUR")}, "2026-05-31T23:59:59+00:00"
    )
    handed_over(store, tmp_path, "D2", "sued", {"I5": (3000, "EUR")}, "2026-06-30T12:00:00+00:00")
    reported(
        store, "nord", "R1",
        ("E1", "I1", "payment", "2026-06-10", 2500),
        ("E2", "I1", "closed_paid", "2026-06-20", 7500),
        ("E3", "I2", "complaint", "2026-06-11"),
        ("E4", "I2", "disputed_by_debtor", "2026-06-11"),
        ("E5", "I3", "closed_uncollectable", "2026-06-15"),
        ("E6", "I9", "payment", "2026-06-10", 1000),  # a case of May
        ("E7", "I5", "complaint", "2026-07-01"),  # sued's case, reported by nord: not nord's
        ("E8", "I4", "payment", "2026-05-01", 50),  # before I4's handover: not about this case
    )  # fmt: skip
    reported(store, "sued", "R2", ("S1", "I5", "returned", "2026-07-01"))

    found = outcomes.collect(store, start=JUNE, end=dt.date(2026, 6, 30))
    nord, sued = found.agencies
    assert (nord.agency, nord.cases, sued.agency, sued.cases) == ("nord", 4, "sued", 1)
    assert nord.handed_over_cents == {"?": 100, "CHF": 7000, "EUR": 15000}
    assert nord.recovered_cents == {"EUR": 10000}
    assert (nord.recovery_rate("EUR"), nord.recovery_rate("CHF"), nord.recovery_rate("USD")) == (
        66.7,
        0.0,
        None,
    )
    assert (nord.disputes, nord.complaints, nord.per_100(nord.complaints)) == (1, 1, 25.0)
    assert nord.reported == {
        "closed_paid": 1,
        "closed_uncollectable": 1,
        "returned": 0,
        "address_unknown": 0,
        "instalment_agreed": 0,
    }
    assert (sued.complaints, sued.reported["returned"], sued.recovered_cents) == (0, 1, {})

    only = outcomes.collect(store, start=JUNE, end=dt.date(2026, 6, 1), agency="sued")
    assert only.agencies == ()  # sued's drop was delivered on 30 June
    assert outcomes.lines(only)[-1] == "  no case was handed over in this period"


def test_an_unknown_agency_and_a_reversed_period_are_refused(store, tmp_path):
    handed_over(store, tmp_path, "D1", "nord", {"I1": (100, "EUR")}, "2026-06-02T01:00:00+00:00")
    with pytest.raises(UnknownId, match="no drop for agency 'nordd' in the state store"):
        outcomes.collect(store, start=JUNE, end=JUNE, agency="nordd")
    with pytest.raises(HandoverError, match="--to 2026-05-01 is before --from 2026-06-01"):
        outcomes.collect(store, start=JUNE, end=dt.date(2026, 5, 1))


def test_recall_latency_counts_days_from_the_fact_to_the_berlin_day_of_delivery():
    # Delivered 23:30 UTC on 10 June is 11 June in Berlin (summer time).
    days = [0, 1, 1, 2, 2, 3, 3, 4, 9, 20]
    recalls = pd.DataFrame(
        {
            "delivered_at": "2026-06-10T23:30:00+00:00",
            "effective_date": [
                (dt.date(2026, 6, 11) - dt.timedelta(days=d)).isoformat() for d in days
            ],
        }
    )
    latency = outcomes._latency(recalls)
    assert latency == outcomes.Latency(recalls=10, median_days=2.5, p90_days=9, max_days=20)


def test_amounts_print_in_their_currency_minor_units():
    assert outcomes.money(123450, "EUR") == "1,234.50 EUR"
    assert outcomes.money(1500, "JPY") == "1,500 JPY"
    assert outcomes.money(1500, "KWD") == "1.500 KWD"
