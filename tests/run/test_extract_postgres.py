"""The shop source on a real PostgreSQL: the contract's DDL loads verbatim, and a demo shop copied
from SQLite extracts to equal frames, passes the source suite and gets the same decisions."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from handover.config import Route, Rules
from handover.demo import data
from handover.errors import SourceError
from handover.run import extract
from handover.run.decide import decide
from handover.run.quarantine import quarantine
from tests.conftest import free_port
from tests.support.pgserver import PostgresServer
from tests.support.pgshop import postgres_shop
from tests.support.shopbuilder import AGENCY

AGENCIES = (
    replace(AGENCY, name="consumers", route=Route(debtor_kinds=("consumer",))),
    replace(AGENCY, name="firms", route=Route(debtor_kinds=("business",))),
)


@dataclass(frozen=True)
class Shops:
    """The same demo shop in SQLite and in PostgreSQL."""

    sqlite_url: str
    pg_url: str
    as_of: dt.date
    rows: dict[str, int]


@pytest.fixture(scope="module")
def shops(postgres_server: PostgresServer, tmp_path_factory) -> Shops:
    path = tmp_path_factory.mktemp("pg-source") / "shop.db"
    summary = data.generate(path, customers=300, seed=7)
    _add_unallocated_money(path)
    _add_instalments(path)
    url = postgres_server.create_database()
    rows = postgres_shop(path, url)
    return Shops(f"sqlite:///{path}", url, summary.today, rows)


def _add_unallocated_money(path: Path) -> None:
    """The demo shop has none: money on three case customers' accounts, one allocated since."""
    with sqlite3.connect(path) as db:
        customers = [
            row[0]
            for row in db.execute(
                "SELECT DISTINCT customer_id FROM invoices WHERE status = 'open' "
                "ORDER BY customer_id LIMIT 3"
            )
        ]
        db.executemany(
            "INSERT INTO unallocated_payments VALUES (?, ?, ?, ?, ?)",
            [
                ("U1", customers[0], 2500, "2026-01-10 09:00:00", None),
                ("U2", customers[1], 990, "2026-01-11", None),
                ("U3", customers[2], 4000, "2026-01-12 09:00:00", "2026-01-13 10:30:00"),
            ],
        )
    db.close()


def _add_instalments(path: Path) -> None:
    """The demo shop has none: two open invoices in two instalments each, a payment and a
    dunning event that name one."""
    with sqlite3.connect(path) as db:
        invoices = db.execute(
            "SELECT invoice_id, due_date, amount_cents FROM invoices WHERE status = 'open' "
            "ORDER BY invoice_id LIMIT 2"
        ).fetchall()
        for n, (invoice_id, due, amount) in enumerate(invoices):
            db.executemany(
                "INSERT INTO invoice_instalments VALUES (?, ?, ?, ?)",
                [
                    (f"T{n}a", invoice_id, due, amount // 2),
                    (f"T{n}b", invoice_id, "2026-12-31", amount - amount // 2),
                ],
            )
        first = invoices[0][0]
        db.execute("UPDATE payments SET instalment_id = 'T0a' WHERE invoice_id = ?", (first,))
        db.execute("UPDATE dunning_events SET instalment_id = 'T0b' WHERE invoice_id = ?", (first,))
    db.close()


def test_contract_ddl_creates_native_types_on_postgresql(shops):
    engine = sa.create_engine(shops.pg_url)
    with engine.connect() as conn:
        types = dict(
            conn.execute(
                sa.text(
                    "SELECT table_name || '.' || column_name, data_type "
                    "FROM information_schema.columns WHERE table_schema = 'public'"
                )
            ).all()
        )
    engine.dispose()
    assert types["consents.granted"] == "boolean"
    assert types["dunning_events.announces_handover"] == "boolean"
    assert types["invoices.due_date"] == "date"
    assert types["dunning_events.sent_at"] == "timestamp without time zone"
    assert types["invoices.amount_cents"] == "integer"
    assert shops.rows["invoices"] > 300 and shops.rows["dunning_events"] > 0


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_extract_from_postgresql_equals_extract_from_sqlite(shops):
    lite = extract.extract(shops.sqlite_url, shops.as_of)
    pg = extract.extract(shops.pg_url, shops.as_of)
    assert list(pg) == list(lite)
    for table in lite:
        assert len(lite[table]) > 0, table  # every table takes part in the comparison
        pd.testing.assert_frame_equal(sorted_frame(pg[table]), sorted_frame(lite[table]), obj=table)


def test_source_suite_passes_on_both(shops):
    results = [
        quarantine(extract.extract(url, shops.as_of), "source")
        for url in (shops.sqlite_url, shops.pg_url)
    ]
    lite, pg = results
    assert lite.report.success and pg.report.success
    pd.testing.assert_frame_equal(pg.quarantined, lite.quarantined)


def test_decisions_are_the_same_on_both(shops):
    reasons = []
    for url in (shops.sqlite_url, shops.pg_url):
        decision = decide(
            extract.extract(url, shops.as_of), as_of=shops.as_of, rules=Rules(), agencies=AGENCIES
        )
        reasons.append(
            pd.DataFrame(
                {"reasons": decision.reasons(), "agency": decision.cases["agency"]}
            ).sort_index()
        )
    lite, pg = reasons
    pd.testing.assert_frame_equal(pg, lite)
    codes = {c for r in lite["reasons"] for c in r.split(",") if c}
    # The demo shop holds a case for every rule, so the comparison covers each of them.
    assert {"dunning_incomplete", "minor", "time_barred", "disputed", "on_hold"} <= codes
    assert (lite["reasons"] == "").sum() > 0


def test_zoned_timestamps_and_whole_numeric_amounts_extract_alike(shops, postgres_server):
    """A shop whose columns are timestamptz and numeric(14, 0), read in a Berlin session."""
    url = postgres_server.create_database()
    postgres_shop(Path(shops.sqlite_url.removeprefix("sqlite:///")), url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table, column in TIMESTAMP_COLUMNS:
            conn.exec_driver_sql(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE timestamptz "
                f"USING {column} AT TIME ZONE 'UTC'"
            )
        for table, column in AMOUNT_COLUMNS:
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE numeric(14, 0)")
        conn.exec_driver_sql(f"ALTER DATABASE {engine.url.database} SET timezone = 'Europe/Berlin'")
    engine.dispose()
    engine = sa.create_engine(url)  # a new session, in the database's new time zone
    with engine.connect() as conn:
        sent_at, amount = conn.execute(
            sa.text(
                "SELECT d.sent_at, i.amount_cents FROM dunning_events d "
                "JOIN invoices i USING (invoice_id) LIMIT 1"
            )
        ).one()
    # What the driver hands pandas: zoned times (never UTC in Berlin) and Decimals.
    assert sent_at.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
    assert isinstance(amount, Decimal)
    lite = extract.extract(shops.sqlite_url, shops.as_of)
    pg = extract.extract(url, shops.as_of)
    assert quarantine(pg, "source").report.success
    for table in lite:
        pd.testing.assert_frame_equal(sorted_frame(pg[table]), sorted_frame(lite[table]), obj=table)

    # A type with decimal places is refused by name, whatever its values: euros in a numeric
    # column would otherwise pass as cents.
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE payments ALTER COLUMN amount_cents TYPE numeric(14, 2)")
    engine.dispose()
    with pytest.raises(
        SourceError, match=r"^table 'payments', column 'amount_cents': numeric\(14, 2\); amounts"
    ):
        extract.extract(url, shops.as_of)


TIMESTAMP_COLUMNS = (
    ("dunning_events", "sent_at"),
    ("disputes", "resolved_at"),
    ("customer_flags", "cleared_at"),
    ("consents", "recorded_at"),
    ("holds", "expires_at"),
)
AMOUNT_COLUMNS = (
    ("invoices", "amount_cents"),
    ("payments", "amount_cents"),
    ("dunning_events", "fee_cents"),
)


def test_unreachable_postgresql_source_is_one_line_naming_the_database():
    url = f"postgresql+psycopg://shop:s3cret-pw@127.0.0.1:{free_port()}/shop"
    with pytest.raises(SourceError, match=r"cannot read the shop database: .*127\.0\.0\.1") as exc:
        extract.extract(url, dt.date(2026, 6, 15))
    assert "\n" not in str(exc.value) and "s3cret-pw" not in str(exc.value)


def test_the_facts_of_given_invoices_are_the_same_on_both(shops):
    """The comparison's extraction (recalls): any status, one bound list of ids on each."""
    engine = sa.create_engine(shops.sqlite_url)
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                sa.text(
                    "SELECT invoice_id FROM invoices WHERE invoice_id IN (SELECT invoice_id "
                    "FROM payments) ORDER BY invoice_id LIMIT 400"
                )
            ).scalars()
        )
        statuses = set(conn.execute(sa.text("SELECT DISTINCT status FROM invoices")).scalars())
    engine.dispose()
    lite = extract.extract_invoices(shops.sqlite_url, [*ids, "no-such-invoice"], shops.as_of)
    pg = extract.extract_invoices(shops.pg_url, [*ids, "no-such-invoice"], shops.as_of)
    assert sorted(lite["invoices"]["invoice_id"]) == sorted(ids)  # whatever their status
    assert set(lite["invoices"]["status"]) > {"open"} and len(statuses) > 1
    assert "paid_at" in lite["payments"] and "set_at" in lite["holds"]
    for table in lite:
        pd.testing.assert_frame_equal(sorted_frame(pg[table]), sorted_frame(lite[table]), obj=table)
