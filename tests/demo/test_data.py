"""Tests of the demo shop generator: contract, determinism, realism, every rule firing.

The rule checks do not use `handover.run.decide`: each rule is evaluated here with plain SQL and
pandas over the generated file, as the rule is worded, so the demo data is checked on its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from handover.demo.data import DDL_PATH, DemoSummary, generate
from handover.errors import HandoverError
from handover.run.source_rules import OPTIONAL_TABLES

TODAY = dt.date(2026, 6, 15)
TABLES = (
    "customers",
    "customer_flags",
    "invoices",
    "invoice_lines",
    "payments",
    "dunning_events",
    "disputes",
    "installment_plans",
    "consents",
    "support_notes",
    "holds",
)
# Rule 10 (already handed over) lives in handover's own state store: nothing to generate.
REASONS = (
    "not_open",
    "below_minimum",
    "overdue_too_short",
    "dunning_incomplete",
    "disputed",
    "installment_plan",
    "protected_customer",
    "minor",
    "time_barred",
    "incomplete",
    "not_served",
    "on_hold",
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    path = tmp_path_factory.mktemp("demo") / "shop.db"
    return path, generate(path, 2000, seed=7, today=TODAY)


@pytest.fixture(scope="module")
def small_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    path = tmp_path_factory.mktemp("demo-small") / "shop.db"
    return path, generate(path, 300, seed=3, today=TODAY)


@pytest.fixture(scope="module")
def db(shop: tuple[Path, DemoSummary]) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(shop[0])) as con:
        yield con


@pytest.fixture(scope="module")
def cases(shop: tuple[Path, DemoSummary]) -> pd.DataFrame:
    return evaluate(shop[0], TODAY)


def rows(con: sqlite3.Connection, sql: str, *params: object) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def scalar(con: sqlite3.Connection, sql: str, *params: object) -> object:
    return con.execute(sql, params).fetchone()[0]


# --------------------------------------------------------------------------- rules, on their own

_CASES_SQL = """
SELECT i.invoice_id, i.customer_id, i.order_date, i.due_date, c.date_of_birth, c.country,
       i.amount_cents - COALESCE(
           (SELECT SUM(p.amount_cents) FROM payments p WHERE p.invoice_id = i.invoice_id), 0
       ) AS open_cents,
       EXISTS (SELECT 1 FROM disputes d WHERE d.invoice_id = i.invoice_id
               AND (d.resolved_at IS NULL
                    OR d.outcome IN ('claim_withdrawn', 'partially_upheld'))) AS disputed,
       EXISTS (SELECT 1 FROM installment_plans ip WHERE ip.invoice_id = i.invoice_id
               AND ip.status = 'active') AS installment_plan,
       EXISTS (SELECT 1 FROM customer_flags f WHERE f.customer_id = i.customer_id
               AND f.cleared_at IS NULL) AS protected_customer,
       EXISTS (SELECT 1 FROM holds h
               WHERE (h.invoice_id = i.invoice_id
                      OR (h.invoice_id IS NULL AND h.customer_id = i.customer_id))
               AND (h.expires_at IS NULL OR h.expires_at > :as_of)) AS on_hold,
       (TRIM(COALESCE(c.street, ''), :ws) = '' OR TRIM(COALESCE(c.postal_code, ''), :ws) = ''
        OR TRIM(COALESCE(c.city, ''), :ws) = '' OR TRIM(COALESCE(c.country, ''), :ws) = ''
        OR TRIM(COALESCE(CASE c.kind WHEN 'business' THEN c.company_name ELSE c.last_name END,
                         ''), :ws) = '') AS incomplete,
       (i.currency <> 'EUR' OR c.country NOT IN ('DE', 'AT')) AS not_served
FROM invoices i JOIN customers c USING (customer_id)
WHERE i.status = 'open' AND i.due_date < :as_of
"""


def evaluate(path: Path, as_of: dt.date) -> pd.DataFrame:
    """Every case (open, due before `as_of`) with one column per reason: True = rule fails."""
    with closing(sqlite3.connect(path)) as con:
        params = {"as_of": as_of.isoformat(), "ws": " \t\r\n"}
        cases = pd.read_sql_query(_CASES_SQL, con, params=params).set_index("invoice_id")
        announced = _announced(con, as_of)
    for column in ("disputed", "installment_plan", "protected_customer", "on_hold"):
        cases[column] = cases[column].astype(bool)
    cases["incomplete"] = cases["incomplete"].astype(bool)
    cases["not_served"] = cases["not_served"].astype(bool)
    cases["not_open"] = cases["open_cents"] <= 0
    # Rule 2 judges an amount that is open at all; rule 1 covers the rest.
    cases["below_minimum"] = (cases["open_cents"] > 0) & (cases["open_cents"] < 1000)
    due = pd.to_datetime(cases["due_date"]).dt.date
    cases["overdue_too_short"] = [as_of < d + dt.timedelta(days=30) for d in due]
    cases["dunning_incomplete"] = ~cases.index.isin(announced)
    cases["minor"] = [
        isinstance(born, str) and dt.date.fromisoformat(order) < _coming_of_age(born)
        for born, order in zip(cases["date_of_birth"], cases["order_date"], strict=True)
    ]
    cases["time_barred"] = [
        _barred(d, country, as_of) for d, country in zip(due, cases["country"], strict=True)
    ]
    cases["failures"] = cases[list(REASONS)].sum(axis=1)
    return cases


def _announced(con: sqlite3.Connection, as_of: dt.date) -> set[str]:
    """Invoices with a reminder after the due date, then a strictly later announcing notice
    whose Europe/Berlin date is at least 14 days before `as_of`."""
    events = pd.read_sql_query(
        "SELECT e.invoice_id, e.kind, e.sent_at, e.announces_handover, i.due_date "
        "FROM dunning_events e JOIN invoices i USING (invoice_id) WHERE i.status = 'open'",
        con,
    )
    utc = pd.to_datetime(events["sent_at"]).dt.tz_localize("UTC")
    events["day"] = utc.dt.tz_convert("Europe/Berlin").dt.strftime("%Y-%m-%d")
    events = events[(events["day"] > events["due_date"]) & (events["day"] <= as_of.isoformat())]
    first_reminder = events[events["kind"] == "reminder"].groupby("invoice_id")["sent_at"].min()
    cutoff = (as_of - dt.timedelta(days=14)).isoformat()
    notices = events[
        events["kind"].isin(["dunning", "final_notice"])
        & (events["announces_handover"] == 1)
        & (events["day"] <= cutoff)
    ]
    reminded_at = notices["invoice_id"].map(first_reminder).fillna("9999")
    return set(notices.loc[notices["sent_at"] > reminded_at, "invoice_id"])


def _coming_of_age(born: str) -> dt.date:
    day = dt.date.fromisoformat(born)
    try:
        return day.replace(year=day.year + 18)
    except ValueError:  # born on 29 February: of age on 1 March in a common year
        return dt.date(day.year + 18, 3, 1)


def _barred(due: dt.date, country: str, as_of: dt.date) -> bool:
    if country == "DE":  # end of the year of the due date + 3 years
        return as_of > dt.date(due.year + 3, 12, 31)
    if country == "AT":  # due date + 3 years
        try:
            end = due.replace(year=due.year + 3)
        except ValueError:
            end = dt.date(due.year + 3, 2, 28)
        return as_of > end
    return False


# --------------------------------------------------------------------------- the contract


def test_all_contract_tables_with_the_ddls_columns(
    db: sqlite3.Connection, shop: tuple[Path, DemoSummary]
) -> None:
    with closing(sqlite3.connect(":memory:")) as reference:
        reference.executescript(DDL_PATH.read_text(encoding="utf-8"))
        for table in TABLES:
            expected = rows(reference, f"PRAGMA table_info({table})")
            assert rows(db, f"PRAGMA table_info({table})") == expected, table
        indexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        assert sorted(rows(db, indexes)) == sorted(rows(reference, indexes))
    names = rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    # The optional tables are there, empty: the demo shop has no unallocated money.
    assert sorted(name for (name,) in names) == sorted(TABLES + tuple(OPTIONAL_TABLES))
    for table in OPTIONAL_TABLES:
        assert scalar(db, f"SELECT COUNT(*) FROM {table}") == 0, table
    summary = shop[1]
    for table in TABLES:
        assert scalar(db, f"SELECT COUNT(*) FROM {table}") == getattr(summary, table) > 0, table
    assert summary.today == TODAY
    assert scalar(db, "PRAGMA integrity_check") == "ok"


def test_foreign_keys_hold(db: sqlite3.Connection) -> None:
    assert rows(db, "PRAGMA foreign_key_check") == []
    orphans = {
        "invoices": "SELECT COUNT(*) FROM invoices WHERE customer_id NOT IN "
        "(SELECT customer_id FROM customers)",
        "payments": "SELECT COUNT(*) FROM payments WHERE invoice_id NOT IN "
        "(SELECT invoice_id FROM invoices)",
        "dunning_events": "SELECT COUNT(*) FROM dunning_events WHERE invoice_id NOT IN "
        "(SELECT invoice_id FROM invoices)",
        "holds": "SELECT COUNT(*) FROM holds WHERE invoice_id NOT IN "
        "(SELECT invoice_id FROM invoices) "
        "OR customer_id NOT IN (SELECT customer_id FROM customers)",
    }
    for table, sql in orphans.items():
        assert scalar(db, sql) == 0, table


def test_values_have_the_documented_formats(db: sqlite3.Connection) -> None:
    patterns = {
        ("customers", "customer_id"): r"C\d{6}",
        ("invoices", "invoice_id"): r"I\d{7}",
        ("invoices", "invoice_number"): r"RE-20\d\d-\d{6}",
        ("invoices", "order_id"): r"O\d{7}",
        ("payments", "payment_id"): r"P\d{7}",
        ("dunning_events", "event_id"): r"E\d{7}",
        ("disputes", "dispute_id"): r"D\d{6}",
        ("installment_plans", "plan_id"): r"IP\d{6}",
        ("holds", "hold_id"): r"H\d{6}",
        ("support_notes", "note_id"): r"N\d{7}",
        ("invoices", "due_date"): r"\d{4}-\d\d-\d\d",
        ("customers", "date_of_birth"): r"\d{4}-\d\d-\d\d",
        ("customers", "created_at"): r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
        ("payments", "paid_at"): r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
        ("dunning_events", "sent_at"): r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
        ("holds", "expires_at"): r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
        ("customers", "language"): r"[a-z]{2}",
        ("invoices", "currency"): r"[A-Z]{3}",
    }
    for (table, column), pattern in patterns.items():
        values = [v for (v,) in rows(db, f"SELECT {column} FROM {table}") if v is not None]
        assert values, (table, column)
        bad = [v for v in values if not re.fullmatch(pattern, v)]
        assert not bad, (table, column, bad[:3])
    # Postal codes of complete addresses: DE five digits, AT four.
    for country, digits in (("DE", 5), ("AT", 4)):
        codes = rows(db, "SELECT postal_code FROM customers WHERE country = ?", country)
        codes = [c for (c,) in codes if c and c.strip()]
        assert codes and all(re.fullmatch(rf"\d{{{digits}}}", c) for c in codes), country
    assert scalar(db, "SELECT COUNT(*) FROM invoices WHERE issued_at < order_date") == 0
    assert scalar(db, "SELECT COUNT(*) FROM invoices WHERE due_date < issued_at") == 0
    assert scalar(db, "SELECT COUNT(*) FROM invoices WHERE amount_cents < 0") == 0
    # Nothing happened after the reference date except holds that expire later.
    for table, column in (
        ("payments", "paid_at"),
        ("dunning_events", "sent_at"),
        ("consents", "recorded_at"),
        ("customers", "created_at"),
    ):
        latest = scalar(db, f"SELECT MAX({column}) FROM {table}")
        assert latest < TODAY.isoformat(), table
    amounts = rows(
        db,
        "SELECT i.amount_cents, SUM(l.quantity * l.unit_price_cents) FROM invoices i "
        "JOIN invoice_lines l USING (invoice_id) GROUP BY i.invoice_id",
    )
    assert all(a == b for a, b in amounts)


def test_same_seed_same_content_other_seed_other_content(tmp_path: Path) -> None:
    first = generate(tmp_path / "a.db", 300, seed=11, today=TODAY).path
    again = generate(tmp_path / "b.db", 300, seed=11, today=TODAY).path
    other = generate(tmp_path / "c.db", 300, seed=12, today=TODAY).path
    assert content_hash(first) == content_hash(again)
    assert content_hash(first) != content_hash(other)


def test_same_seed_same_content_in_every_process(tmp_path: Path) -> None:
    # String hashing differs between processes; nothing in the shop may depend on it.
    code = (
        "import sys, datetime as dt; from pathlib import Path; "
        "from handover.demo.data import generate; "
        "generate(Path(sys.argv[1]), 2000, seed=7, today=dt.date(2026, 6, 15))"
    )
    for hash_seed, name in (("1", "a.db"), ("2", "b.db")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], env=env, check=True)
    assert content_hash(tmp_path / "a.db") == content_hash(tmp_path / "b.db")


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with closing(sqlite3.connect(path)) as con:
        for table in TABLES:
            for row in con.execute(f"SELECT * FROM {table} ORDER BY rowid"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def test_an_existing_file_is_replaced_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    path.write_text("not a database")
    with pytest.raises(HandoverError, match="exists"):
        generate(path, 20, seed=1, today=TODAY)
    assert path.read_text() == "not a database"
    summary = generate(path, 20, seed=1, today=TODAY, overwrite=True)
    assert summary.customers == 20
    with closing(sqlite3.connect(path)) as con:
        assert scalar(con, "SELECT COUNT(*) FROM customers") == 20
    assert list(tmp_path.iterdir()) == [path]  # no partial file left behind


def test_nonsense_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(HandoverError):
        generate(tmp_path / "a.db", 0, seed=1)
    with pytest.raises(HandoverError):
        generate(tmp_path / "b.db", 10, seed=1, invoices_per_customer=0)


def test_progress_lines_are_short_and_carry_counts_only(tmp_path: Path) -> None:
    lines: list[str] = []
    generate(tmp_path / "shop.db", 50, seed=2, today=TODAY, progress=lines.append)
    assert "customers: 50" in lines
    assert {line.split(":")[0] for line in lines} >= set(TABLES)
    assert all(re.fullmatch(r"[a-z_]+: \d+", line) for line in lines)


# --------------------------------------------------------------------------- realism


def test_customers_look_like_a_german_speaking_shops(db: sqlite3.Connection) -> None:
    total = scalar(db, "SELECT COUNT(*) FROM customers")
    share = dict(rows(db, "SELECT country, COUNT(*) * 1.0 / ? FROM customers GROUP BY 1", total))
    assert 0.75 < share["DE"] < 0.93 and 0.07 < share["AT"] < 0.18
    assert set(share) - {"DE", "AT"}, "a few customers abroad"
    umlauts = (
        "SELECT COUNT(*) FROM customers WHERE last_name || first_name || street || city GLOB ?"
    )
    assert scalar(db, umlauts, "*[äöüÄÖÜß]*") > 50
    business = rows(
        db,
        "SELECT company_name, first_name, last_name FROM customers WHERE kind = 'business'",
    )
    assert 0.05 * total < len(business) < 0.15 * total
    assert all(company for company, _, _ in business if company and company.strip())
    assert any(first and last for _, first, last in business), "contact persons"
    assert scalar(db, "SELECT COUNT(*) FROM customers WHERE LENGTH(last_name) > 40") >= 2
    assert scalar(db, "SELECT COUNT(*) FROM customers WHERE date_of_birth LIKE '%-02-29'") >= 1
    with_dob = scalar(
        db, "SELECT AVG(date_of_birth IS NOT NULL) FROM customers WHERE kind = 'consumer'"
    )
    assert 0.3 < with_dob < 0.5
    assert scalar(db, "SELECT AVG(email IS NOT NULL) FROM customers") > 0.8
    phones = [p for (p,) in rows(db, "SELECT phone FROM customers WHERE phone IS NOT NULL")]
    assert len(phones) > 0.4 * total
    assert sum(not re.fullmatch(r"\+\d+", p) for p in phones) > 0.9 * len(phones)
    assert scalar(db, "SELECT COUNT(DISTINCT language) FROM customers") >= 3


def test_invoices_payments_and_letters_are_varied(db: sqlite3.Connection) -> None:
    statuses = dict(rows(db, "SELECT status, COUNT(*) FROM invoices GROUP BY status"))
    assert set(statuses) == {"open", "paid", "cancelled", "written_off"}
    assert statuses["paid"] > statuses["open"] > statuses["cancelled"] > 0
    assert (
        scalar(
            db,
            "SELECT COUNT(*) FROM invoices WHERE status = 'open' AND due_date >= ?",
            TODAY.isoformat(),
        )
        > 0
    ), "open, not yet due"
    lines_per_invoice = dict(
        rows(
            db,
            "SELECT n, COUNT(*) FROM (SELECT COUNT(*) n FROM invoice_lines "
            "WHERE sku <> 'VERSAND' GROUP BY invoice_id) GROUP BY n",
        )
    )
    assert set(lines_per_invoice) == {1, 2, 3, 4}
    descriptions = {d for (d,) in rows(db, "SELECT DISTINCT description FROM invoice_lines")}
    assert {
        "Schwangerschaftstest (2 Stück)",
        "Inkontinenzeinlagen extra (30 Stück)",
    } <= descriptions
    assert any(d.startswith("Blutdruckmessgerät") for d in descriptions)

    partial = """SELECT COUNT(*) FROM invoices i JOIN (SELECT invoice_id, SUM(amount_cents) paid
                 FROM payments GROUP BY invoice_id) p USING (invoice_id)
                 WHERE i.status = 'open' AND p.paid > 0 AND p.paid < i.amount_cents"""
    assert scalar(db, partial) > 10
    assert scalar(db, "SELECT COUNT(*) FROM payments WHERE amount_cents < 0") > 10
    methods = dict(rows(db, "SELECT method, AVG(iban IS NOT NULL) FROM payments GROUP BY method"))
    assert set(methods) == {"sepa_debit", "card", "paypal", "invoice_transfer"}
    assert methods["sepa_debit"] == 1 and methods["card"] == 0 and methods["paypal"] == 0
    assert 0 < methods["invoice_transfer"] < 1
    fees = dict(
        rows(
            db,
            "SELECT kind, GROUP_CONCAT(DISTINCT COALESCE(fee_cents, -1)) "
            "FROM dunning_events GROUP BY kind",
        )
    )
    assert set(fees["reminder"].split(",")) == {"-1", "0"}
    assert {"250", "500"} <= set(fees["dunning"].split(","))
    assert {c for (c,) in rows(db, "SELECT DISTINCT channel FROM dunning_events")} == {
        "email",
        "letter",
    }


def test_consent_histories_and_support_notes(db: sqlite3.Connection) -> None:
    histories = """SELECT COUNT(*) FROM (SELECT customer_id, purpose FROM consents
                   GROUP BY customer_id, purpose HAVING COUNT(*) > 1)"""
    assert scalar(db, histories) > 50
    duplicates = """SELECT COUNT(*) FROM (SELECT 1 FROM consents
                    GROUP BY customer_id, purpose, recorded_at HAVING COUNT(*) > 1)"""
    assert scalar(db, duplicates) == 0, "the latest record must be unambiguous"
    withdrawn = """SELECT COUNT(*) FROM consents c WHERE granted = 0 AND recorded_at = (
                     SELECT MAX(recorded_at) FROM consents l
                     WHERE l.customer_id = c.customer_id AND l.purpose = c.purpose)
                   AND EXISTS (SELECT 1 FROM consents e WHERE e.customer_id = c.customer_id
                     AND e.purpose = c.purpose AND e.granted = 1)"""
    assert scalar(db, withdrawn) > 0, "granted once, withdrawn since"
    assert {s for (s,) in rows(db, "SELECT DISTINCT source FROM consents")} >= {
        "checkout",
        "account",
        "letter",
        "phone",
    }

    customers = scalar(db, "SELECT COUNT(*) FROM customers")
    with_notes = scalar(db, "SELECT COUNT(DISTINCT customer_id) FROM support_notes")
    assert 0.15 * customers < with_notes < 0.25 * customers
    bodies = [b for (b,) in rows(db, "SELECT body FROM support_notes")]
    assert any("@" in b for b in bodies)
    assert any(re.search(r"\+?\d[\d ()/-]{6,}\d", b) for b in bodies), "phone numbers"
    assert any("Krankenhaus" in b for b in bodies) and any("Diagnose" in b for b in bodies)
    ibans = [m for b in bodies for m in re.findall(r"DE\d\d(?: ?\d{4}){4} ?\d\d", b)]
    assert ibans, "German IBANs, compact or in groups of four"
    assert all(_iban_valid(iban.replace(" ", "")) for iban in ibans)
    payer_ibans = [i for (i,) in rows(db, "SELECT iban FROM payments WHERE iban IS NOT NULL")]
    assert all(_iban_valid(i) for i in payer_ibans if i[:2] in ("DE", "AT"))


def _iban_valid(iban: str) -> bool:
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


# --------------------------------------------------------------------------- every rule fires


@pytest.mark.parametrize(("fixture", "eligible"), [("shop", 50), ("small_shop", 10)])
def test_every_rule_fails_some_case_and_only_that_rule(
    fixture: str, eligible: int, request: pytest.FixtureRequest
) -> None:
    path, _summary = request.getfixturevalue(fixture)
    cases = evaluate(path, TODAY)
    alone = cases[cases["failures"] == 1]
    for reason in REASONS:
        assert cases[reason].any(), f"no case fails {reason}"
        assert alone[reason].any(), f"no case fails {reason} alone"
    assert (cases["failures"] == 0).sum() >= eligible


def test_boundary_cases_on_the_right_side(db: sqlite3.Connection, cases: pd.DataFrame) -> None:
    ok = cases.index[cases["failures"] == 0]
    only = {r: cases.index[(cases["failures"] == 1) & cases[r]] for r in REASONS}

    def some(sql: str, among: pd.Index, *params: object) -> bool:
        found = {i for (i,) in rows(db, sql, *params)}
        return bool(found & set(among))

    cutoff = (TODAY - dt.timedelta(days=14)).isoformat()
    day_before = (TODAY - dt.timedelta(days=15)).isoformat()
    late_notice = """SELECT invoice_id FROM dunning_events WHERE kind <> 'reminder'
                     AND announces_handover = 1 AND date(sent_at) = ?
                     AND time(sent_at) >= '23:00'"""
    # 23:xx UTC is the next day in Berlin: too recent on the cutoff, just in time the day before.
    assert some(late_notice, only["dunning_incomplete"], cutoff)
    assert some(late_notice, ok, day_before)
    daytime_notice = """SELECT invoice_id FROM dunning_events WHERE kind <> 'reminder'
                        AND announces_handover = 1 AND date(sent_at) = ?
                        AND time(sent_at) < '20:00'"""
    assert some(daytime_notice, ok, cutoff)
    late_reminder = """SELECT invoice_id FROM dunning_events JOIN invoices USING (invoice_id)
                       WHERE kind = 'reminder' AND date(sent_at) = due_date
                       AND time(sent_at) >= '23:00'"""
    assert some(late_reminder, ok)
    same_time = """SELECT r.invoice_id FROM dunning_events r JOIN dunning_events n
                   ON n.invoice_id = r.invoice_id AND n.sent_at = r.sent_at
                   WHERE r.kind = 'reminder' AND n.kind <> 'reminder'"""
    assert some(same_time, only["dunning_incomplete"])
    notice_first = """SELECT n.invoice_id FROM dunning_events n JOIN dunning_events r
                      ON r.invoice_id = n.invoice_id AND r.kind = 'reminder'
                      WHERE n.kind <> 'reminder' AND n.announces_handover = 1
                      GROUP BY n.invoice_id HAVING MIN(n.sent_at) < MIN(r.sent_at)"""
    assert some(notice_first, only["dunning_incomplete"])
    not_announcing = """SELECT invoice_id FROM dunning_events GROUP BY invoice_id
                        HAVING SUM(kind = 'reminder') > 0 AND SUM(kind <> 'reminder') > 0
                        AND MAX(announces_handover) = 0"""
    assert some(not_announcing, only["dunning_incomplete"])
    reminder_only = """SELECT invoice_id FROM dunning_events GROUP BY invoice_id
                       HAVING MIN(kind) = 'reminder' AND MAX(kind) = 'reminder'"""
    assert some(reminder_only, only["dunning_incomplete"])
    assert set(only["dunning_incomplete"]) - {
        i for (i,) in rows(db, "SELECT invoice_id FROM dunning_events")
    }, "never dunned"

    thirty = (TODAY - dt.timedelta(days=30)).isoformat()
    assert some("SELECT invoice_id FROM invoices WHERE due_date = ?", ok, thirty)
    assert (cases.loc[ok, "open_cents"] == 1000).any()
    assert (cases.loc[only["below_minimum"], "open_cents"] == 999).any()
    assert (cases.loc[only["not_open"], "open_cents"] < 0).any(), "overpaid"
    assert (cases.loc[only["not_open"], "open_cents"] == 0).any(), "paid exactly"

    # Records that look excluding but are not: the rules must read them correctly.
    upheld = "SELECT invoice_id FROM disputes WHERE outcome = 'claim_upheld'"
    assert some(upheld, ok)
    assert some("SELECT invoice_id FROM installment_plans WHERE status = 'defaulted'", ok)
    assert some("SELECT invoice_id FROM holds WHERE expires_at < ?", ok, TODAY.isoformat())
    refunded = "SELECT invoice_id FROM payments WHERE amount_cents < 0"
    assert some(refunded, ok)
    cleared = "SELECT i.invoice_id FROM invoices i JOIN customer_flags f USING (customer_id) "
    assert some(cleared + "WHERE f.cleared_at IS NOT NULL", ok)
    expired = "SELECT i.invoice_id FROM invoices i JOIN holds h ON h.customer_id = i.customer_id "
    assert some(expired + "WHERE h.expires_at < ?", ok, TODAY.isoformat())
    assert some(expired + "WHERE h.expires_at IS NULL", only["on_hold"])
    outcomes = "SELECT invoice_id FROM disputes WHERE outcome = ?"
    assert some(outcomes, only["disputed"], "claim_withdrawn")
    assert some(outcomes, only["disputed"], "partially_upheld")
    assert some("SELECT invoice_id FROM disputes WHERE resolved_at IS NULL", only["disputed"])

    # Age: exactly 18 on the order date is of age; born on 29 February, of age on 1 March.
    born = cases[cases["date_of_birth"].notna()]
    eighteen = [
        dt.date.fromisoformat(o) == _coming_of_age(b)
        for b, o in zip(born["date_of_birth"], born["order_date"], strict=True)
    ]
    assert born.loc[eighteen].index.isin(ok).any()
    leap = born[born["date_of_birth"].str.endswith("-02-29")]
    assert leap.index.isin(only["minor"]).any() and leap.index.isin(ok).any()

    # Old claims: a DE case over three years old that is not barred yet.
    three_years = dt.date(TODAY.year - 3, TODAY.month, TODAY.day).isoformat()
    old = cases[(cases["due_date"] < three_years) & (cases["country"] == "DE")]
    assert old.index.isin(ok).any()
    assert (cases.loc[only["time_barred"], "due_date"] < three_years).all()
    blank = """SELECT i.invoice_id FROM invoices i JOIN customers c USING (customer_id)
               WHERE c.street = '' OR c.street GLOB '[ \t]*' OR c.city GLOB '[ \t]*'
               OR c.postal_code IS NULL OR c.last_name = '' OR c.company_name GLOB '[ \t]*'"""
    assert some(blank, only["incomplete"])
    foreign_money = "SELECT invoice_id FROM invoices WHERE currency IN ('CHF', 'USD', 'GBP')"
    assert some(foreign_money, only["not_served"])
