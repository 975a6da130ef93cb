"""The shop-side contract checked before a row is read: one test per view mistake a shop makes
when it maps its schema onto `schemas/shop_source.sql`, each on SQLite and on PostgreSQL.

Each mistake either stops extraction with a message naming the view and the column (never a
value), or is converted by the documented rule, and then the agency file carries the right date.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from handover.config import Rules
from handover.contract import COLUMNS, read_csv_rows, to_csv_bytes
from handover.demo import data
from handover.errors import SourceError, ValidationFailed
from handover.run import extract, source_contract, source_rules
from handover.run.decide import decide
from handover.run.quarantine import quarantine
from redaction.rows.policy import minimise
from tests.support.pgshop import postgres_shop
from tests.support.shopbuilder import AGENCY, AS_OF, Shop
from tests.support.sourceviews import SourceDb

CASES = 12
KEY = bytes(range(32))
ID_TABLES = {
    "invoices": ("invoice_id", "customer_id"),
    "customers": ("customer_id",),
    "payments": ("invoice_id",),
    "dunning_events": ("invoice_id",),
    "disputes": ("invoice_id",),
    "installment_plans": ("invoice_id",),
    "customer_flags": ("customer_id",),
    "consents": ("customer_id",),
    "holds": ("invoice_id", "customer_id"),
}


def twelve_cases(path) -> Shop:
    """Twelve eligible cases due 2026-03-15, each with two 5.00 fees; C1 consented to e-mail."""
    shop = Shop(path)
    for n in range(1, CASES + 1):
        shop.customer(f"C{n}").invoice(f"I{n}", f"C{n}")
    shop.payment("I1", 1000).consent("C1", "contact_email", True, "2025-01-01 10:00:00")
    return shop


@pytest.fixture(params=["sqlite", "postgresql"])
def shop(request, tmp_path) -> SourceDb:
    """The twelve cases on SQLite, or copied into a PostgreSQL database with native types."""
    if request.param == "sqlite":
        return SourceDb(twelve_cases(tmp_path / "shop.db").url, "sqlite")
    return request.getfixturevalue("pg_shop")


@pytest.fixture
def pg_shop(postgres_server, tmp_path) -> SourceDb:
    """The twelve cases on PostgreSQL, for what only a declared type can get wrong."""
    url = postgres_server.create_database()
    postgres_shop(twelve_cases(tmp_path / "shop.db").path, url)
    return SourceDb(url, "postgresql")


def agency_rows(url: str) -> list[dict[str, str]]:
    """The agency file's rows as a run writes them: extract, source suite, rules, minimise."""
    checked = quarantine(extract.extract(url, AS_OF), "source")
    frames = dict(checked.kept)
    agency = replace(AGENCY, rules=Rules(), columns=COLUMNS)  # every column, to see them
    decision = decide(frames, as_of=AS_OF, rules=Rules(), agencies=(agency,))
    rows = minimise(decision.eligible_for(agency.name), frames["consents"], agency, KEY)
    return read_csv_rows(to_csv_bytes(rows))


def refused(url: str) -> str:
    with pytest.raises(SourceError) as caught:
        extract.extract(url, AS_OF)
    message = str(caught.value)
    assert "\n" not in message
    return message


def report(url: str) -> source_contract.ContractReport:
    return extract.check_source(url, AS_OF)


# --------------------------------------------------------------------------- dates


def test_a_zoned_due_date_takes_its_berlin_date(shop):
    """timestamptz (or ISO text with an offset) at Berlin midnight: UTC says the day before."""
    shop.view(
        "invoices",
        due_date=shop.pick(
            sqlite="due_date || 'T00:00:00+01:00'",
            postgresql="CAST(due_date AS timestamp) AT TIME ZONE 'Europe/Berlin'",
        ),
    )
    if shop.dialect == "postgresql":  # the sessions' zone must not matter
        database = sa.make_url(shop.url).database
        shop.execute(f"ALTER DATABASE {database} SET timezone = 'America/New_York'")
    rows = agency_rows(shop.url)
    assert len(rows) == CASES
    assert {r["due_date"] for r in rows} == {"2026-03-15"}
    (invoices,) = [t for t in report(shop.url).tables if t.table == "invoices"]
    assert invoices.ok and "Europe/Berlin date" in invoices.conversions[0]


def test_a_timestamp_at_midnight_is_read_as_its_date(shop):
    shop.view(
        "invoices",
        due_date=shop.pick(
            sqlite="due_date || ' 00:00:00'", postgresql="CAST(due_date AS timestamp)"
        ),
    )
    assert {r["due_date"] for r in agency_rows(shop.url)} == {"2026-03-15"}


def test_a_timestamp_with_a_time_of_day_is_refused(shop):
    shop.view(
        "invoices",
        due_date=shop.pick(
            sqlite="due_date || ' 10:00:00'",
            postgresql="CAST(due_date AS timestamp) + interval '10 hours'",
        ),
    )
    message = refused(shop.url)
    assert message.startswith(
        f"view 'invoices', column 'due_date': {CASES} of {CASES} values carry a time of day "
        "without a zone, which is ambiguous; deliver the calendar date"
    )


@pytest.mark.parametrize("mistake", ["german", "garbage"])
def test_text_dates_are_refused_naming_view_and_column(shop, mistake):
    sqlite = {"german": "strftime('%d.%m.%Y', due_date)", "garbage": "'garbage'"}[mistake]
    postgresql = {"german": "to_char(due_date, 'DD.MM.YYYY')", "garbage": "text 'garbage'"}
    shop.view("invoices", due_date=shop.pick(sqlite=sqlite, postgresql=postgresql[mistake]))
    message = refused(shop.url)
    if shop.dialect == "sqlite":  # SQLite has no column types: the values show the mistake
        assert message.startswith(
            f"view 'invoices', column 'due_date': none of its {CASES} values is a date "
            f"({CASES} not ISO dates 'YYYY-MM-DD' between 1678 and 2261)"
        )
    else:
        assert message.startswith(
            "view 'invoices', column 'due_date': text; dates are read by type: deliver "
            "CAST(due_date AS date)"
        )
    assert "15.03.2026" not in message and "garbage" not in message


def test_a_date_of_birth_as_epoch_seconds_is_refused(shop):
    shop.view(
        "customers",
        date_of_birth=shop.pick(
            sqlite="CAST(strftime('%s', date_of_birth) AS INTEGER)",
            postgresql="CAST(extract(epoch FROM date_of_birth) AS bigint)",
        ),
    )
    message = refused(shop.url)
    expected = {
        "sqlite": f"{CASES} of {CASES} values are integers; dates are ISO text",
        "postgresql": "bigint; dates are read by type",
    }[shop.dialect]
    assert message.startswith(f"view 'customers', column 'date_of_birth': {expected}")


# --------------------------------------------------------------------------- NULL due date


def test_a_null_due_date_is_quarantined_never_dropped(shop):
    shop.view("invoices", due_date="CASE WHEN invoice_id = 'I3' THEN NULL ELSE due_date END")
    frames = extract.extract(shop.url, AS_OF)
    assert "I3" in set(frames["invoices"]["invoice_id"])
    checked = quarantine(frames, "source", max_share=None)
    assert checked.quarantined.to_dict("records") == [
        {"invoice_id": "I3", "reasons": "invalid_date"}
    ]
    # The rules never see it, and the other cases proceed.
    kept = dict(checked.kept)
    decision = decide(kept, as_of=AS_OF, rules=Rules(), agencies=(AGENCY,))
    assert "I3" not in decision.cases.index and len(decision.eligible) == CASES - 1
    # One in twelve is more than max_quarantine_share (5 %): a run stops, failing closed.
    with pytest.raises(ValidationFailed, match=r"1 of 12 cases .*invalid_date 1"):
        checked.enforce_share()
    (finding,) = [f for t in report(shop.url).tables for f in t.findings]
    assert not finding.stops and finding.message.startswith(
        "view 'invoices', column 'due_date': 1 of 12 values are NULL; a run holds their cases "
        "back (invalid_date)"
    )


@pytest.mark.parametrize("bad", ["2026-02-30", "15.03.2026", "0026-03-15"])
def test_an_unreadable_due_date_is_quarantined_on_sqlite(tmp_path, bad):
    shop = twelve_cases(tmp_path / "shop.db")
    shop.db.execute("UPDATE invoices SET due_date = ? WHERE invoice_id = 'I3'", (bad,))
    shop.db.commit()
    frames = extract.extract(shop.url, AS_OF)
    checked = quarantine(frames, "source", max_share=None)
    assert checked.quarantined.to_dict("records") == [
        {"invoice_id": "I3", "reasons": "invalid_date"}
    ]


# --------------------------------------------------------------------------- ids


def test_integer_ids_are_read_as_text(shop):
    number = "CAST(substr({}, 2) AS INTEGER)"
    for table, ids in ID_TABLES.items():
        shop.view(table, **{c: number.format(c) for c in ids})
    frames = extract.extract(shop.url, AS_OF)
    assert sorted(frames["invoices"]["invoice_id"], key=int) == [str(n) for n in range(1, 13)]
    assert set(frames["payments"]["invoice_id"]) == {"1"}
    assert set(frames["consents"]["customer_id"]) == {"1"}
    rows = agency_rows(shop.url)
    assert len(rows) == CASES
    assert [r["email"] for r in rows if r["invoice_number"] == "RE-I1"] == ["j.mueller@example.de"]
    (invoices,) = [t for t in report(shop.url).tables if t.table == "invoices"]
    assert invoices.ok and "read as text" in " ".join(invoices.conversions)


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("table", "column"),
    [("invoices", "amount_cents"), ("payments", "amount_cents"), ("dunning_events", "fee_cents")],
)
def test_float_amounts_are_refused(shop, table, column):
    shop.view(
        table,
        **{column: shop.pick(sqlite=f"{column} * 1.0", postgresql=f"{column} * 1.0::float8")},
    )
    message = refused(shop.url)
    found = {
        "sqlite": r"\d+ of \d+ values are real \(floating-point\) numbers",
        "postgresql": "double precision",
    }
    assert (
        pd.Series([message])
        .str.match(
            rf"view '{table}', column '{column}': {found[shop.dialect]}; amounts are integer minor "
            r"units \(cents\)"
        )
        .all()
    ), message


def test_numeric_amounts_with_decimal_places_are_refused_even_when_whole(pg_shop):
    """PostgreSQL only: SQLite has no numeric(p, s), its values are integers or reals."""
    pg_shop.view("invoices", amount_cents="CAST(amount_cents AS numeric(12, 2))")
    assert refused(pg_shop.url).startswith(
        "view 'invoices', column 'amount_cents': numeric(12, 2); amounts are integer minor "
        "units (cents) by type"
    )


@pytest.mark.parametrize(
    ("table", "column", "floor"),
    [("invoices", "amount_cents", 1000), ("dunning_events", "fee_cents", 100)],
)
def test_amounts_in_euros_stop_the_run(shop, table, column, floor):
    """Whole euros in an integer column would pass as cents, 100 times too small."""
    shop.view(table, **{column: f"{column} / 100"})
    positive = {"invoices": CASES, "dunning_events": 2 * CASES}[table]
    assert refused(shop.url).startswith(
        f"view '{table}', column '{column}': {positive} of {positive} positive amounts are "
        f"below {floor} ({floor / 100:.2f} in major units): they look like euros, not cents. "
    )
    # A shop whose amounts really are that small says so in its configuration.
    confirmed = extract.extract(shop.url, AS_OF, minor_units_confirmed=True)
    assert len(confirmed["invoices"]) == CASES


# --------------------------------------------------------------------------- flags, errors


def test_flags_as_text_are_refused(shop):
    shop.view(
        "consents",
        granted=shop.pick(
            sqlite="CASE WHEN granted THEN 'true' ELSE 'false' END",
            postgresql="CAST(granted AS text)",
        ),
    )
    expected = {"sqlite": "1 of 1 values are text; flags are 0 or 1", "postgresql": "text; flags"}
    assert refused(shop.url).startswith(
        f"view 'consents', column 'granted': {expected[shop.dialect]}"
    )


def test_a_read_that_fails_names_the_view_never_the_driver_message(pg_shop):
    """An error the contract cannot foresee (the view fails on a value) as pandas wraps it.

    On SQLite: tests/run/test_extract.py, text that is not UTF-8.
    """
    pg_shop.view("invoices", invoice_number="CAST(CAST('x' || invoice_number AS integer) AS text)")
    message = refused(pg_shop.url)
    assert message.startswith("cannot read view 'invoices' of the shop database (")
    assert "RE-I" not in message and "the driver's message is withheld" in message


def test_a_missing_view_and_column_are_named_together(shop):
    shop.execute("DROP TABLE holds")
    shop.execute("ALTER TABLE disputes RENAME COLUMN outcome TO result")
    checked = report(shop.url)
    assert not checked.ok
    messages = [f.message for t in checked.tables for f in t.findings]
    assert messages == [
        "table 'disputes' lacks column(s) outcome required by schemas/shop_source.sql; add them "
        "or map them in a view",
        "the shop database has no table or view 'holds'; create it or a view with that name as "
        "described in schemas/shop_source.sql",
    ]
    assert refused(shop.url) == messages[0] + " (and 1 more: see `handover source check`)"


# --------------------------------------------------------------------------- the demo shop

DIVIDED = {
    "invoices": "UPDATE invoices SET amount_cents = amount_cents / 100",
    "payments": "UPDATE payments SET amount_cents = amount_cents / 100",
    "dunning_events": "UPDATE dunning_events SET fee_cents = fee_cents / 100",
}


@pytest.fixture(scope="module")
def demo_shop(tmp_path_factory) -> tuple[Path, dt.date]:
    path = tmp_path_factory.mktemp("demo") / "shop.db"
    return path, data.generate(path, customers=300, seed=7).today


def test_the_demo_shop_meets_the_contract(demo_shop):
    path, today = demo_shop
    checked = extract.check_source(f"sqlite:///{path}", today)
    assert checked.ok
    # The demo shop has every table; the optional ones without rows (no unallocated money).
    assert {t.table: t.kind for t in checked.tables} == dict.fromkeys(source_rules.COLUMNS, "table")
    assert {t.table for t in checked.tables if not t.rows} == source_rules.OPTIONAL_TABLES


@pytest.mark.parametrize(
    ("divided", "named"),
    [
        (("invoices", "payments", "dunning_events"), "table 'invoices', column 'amount_cents'"),
        (("payments",), "table 'payments', column 'amount_cents'"),
        (("dunning_events",), "table 'dunning_events', column 'fee_cents'"),
    ],
)
def test_the_demo_shop_in_euros_stops_the_run(demo_shop, tmp_path, divided, named):
    """The heuristic is tuned so that the demo shop passes and the same shop in euros does not."""
    path, today = demo_shop
    copy = tmp_path / "shop.db"
    shutil.copyfile(path, copy)
    with sqlite3.connect(copy) as db:
        for table in divided:
            db.execute(DIVIDED[table])
    with pytest.raises(SourceError, match=rf"^{named}: \d+ of \d+ positive amounts are below"):
        extract.extract(f"sqlite:///{copy}", today)


def test_tables_that_cannot_be_scoped_are_reported_unchecked(pg_shop):
    """A due date PostgreSQL cannot compare with a date leaves no case filter to count by."""
    pg_shop.view("invoices", due_date="CAST(due_date AS text)")
    checked = report(pg_shop.url)
    assert not checked.ok
    unchecked = [t.table for t in checked.tables if t.rows is None and t.ok]
    assert unchecked == [t for t in source_rules.COLUMNS if t != "invoices"]
    assert [f.column for f in checked.stopping()] == ["due_date"]
