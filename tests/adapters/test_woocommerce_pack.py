"""The WooCommerce HPOS view pack (schemas/adapters/woocommerce_hpos.sql), end to end on SQLite.

A seeded WooCommerce shop (`woocommerce_shop.build`: the real HPOS tables, the pack's own
tables and views) is checked with `handover source check`, then handed over by a real run to an
agency inbox on the `sshd` fixture, and the agency's tool opens the drop. What the agency gets
must equal what this module computes from the generator's WooCommerce facts in plain Python,
from the README's rules and the pack's documented mapping, without the views and without
handover's own decision code.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from handover import recall_contract
from handover.contract import COLUMNS
from tests.adapters.woocommerce_shop import AS_OF, BERLIN, Address, Order, ShopFacts, build
from tests.support.paths import PROJECT
from tests.support.workspaces import CONFIG_HEAD, AgencySide, agency_side

# The pack's mapping, restated: which orders are invoices, and what an invoice's dates are.
ON_ACCOUNT = {"invoice", "german_market_purchase_on_account"}
UNPAID = {"wc-pending", "wc-on-hold"}
REAL_STATUSES = UNPAID | {"wc-processing", "wc-completed", "wc-cancelled", "wc-failed"}
REAL_STATUSES |= {"wc-refunded"}
PAYMENT_TERM = dt.timedelta(days=14)
# handover's defaults (README, "Eligibility") and the agency's: EUR in DE and AT.
OVERDUE_DAYS, NOTICE_DAYS, MINIMUM_OPEN_CENTS = 30, 14, 1000
SERVED_COUNTRIES, SERVED_CURRENCIES = {"DE", "AT"}, {"EUR"}
# The agency may have e-mail (so consent decides), not phone or date of birth.
AGENCY_COLUMNS = [c for c in COLUMNS if c not in {"date_of_birth", "phone"}]
# The columns of a delivered row this module predicts.
CHECKED = (
    "invoice_number", "debtor_kind", "first_name", "last_name", "company_name", "street",
    "postal_code", "city", "country", "language", "email", "phone", "order_date", "invoice_date",
    "due_date", "default_date", "currency", "principal_cents", "paid_cents", "open_cents",
    "dunning_fees_cents", "claim_subject", "last_dunning_date", "handover_notice_date",
)  # fmt: skip


def berlin_day(utc: dt.datetime) -> dt.date:
    return utc.replace(tzinfo=dt.UTC).astimezone(BERLIN).date()


def customer_key(order: Order) -> str:
    return f"user:{order.user_id}" if order.user_id else f"order:{order.order_id}"


@dataclass
class Expected:
    """What a run on AS_OF must do with the shop: its cases, reasons and delivered rows."""

    cases: int
    customers: int
    reasons: collections.Counter[str]
    rows: dict[str, dict[str, str]]  # by invoice number
    codes: dict[int, set[str]]  # per case (order id): its failing codes; empty = eligible


def expect(shop: ShopFacts) -> Expected:
    """The independent calculation, from the generator's facts alone."""
    orders_of: dict[str, list[Order]] = collections.defaultdict(list)
    for order in shop.orders:
        if order.status in REAL_STATUSES:
            orders_of[customer_key(order)].append(order)
    reasons: collections.Counter[str] = collections.Counter()
    rows: dict[str, dict[str, str]] = {}
    codes_of: dict[int, set[str]] = {}
    for order in shop.orders:
        order_day = berlin_day(order.created_gmt)
        due = order_day + PAYMENT_TERM
        if order.payment_method not in ON_ACCOUNT or order.status not in UNPAID or due >= AS_OF:
            continue
        key = customer_key(order)
        person = shop.people[key]
        # The debtor's address is the billing address of the customer's latest order.
        address = max(orders_of[key], key=lambda o: (o.created_gmt, o.order_id)).billing
        # A refund of an unpaid order is a credit: it lowers the claim; nothing was paid.
        principal = order.total_cents - sum(cents for _, cents in order.refunds)
        dunning = _dunning(order, due)
        codes = _failing(order, due, principal, dunning["handover_notice_date"], address)
        codes |= {"on_hold"} if _held(order.holds + person.holds) else set()
        codes |= {"protected_customer"} if any(c is None for *_, c in person.flags) else set()
        codes_of[order.order_id] = codes
        reasons.update(codes or {"eligible"})
        if codes:
            continue
        number = order.order_number or str(order.order_id)
        street = address.address_1.strip()
        if address.address_2.strip():
            street += ", " + address.address_2.strip()
        consents = sorted(
            (when, granted) for purpose, granted, when, _ in person.consents
            if purpose == "contact_email"
        )  # fmt: skip
        rows[number] = {
            "invoice_number": number,
            "debtor_kind": "business" if address.company else "consumer",
            "first_name": address.first_name,
            "last_name": address.last_name,
            "company_name": address.company,
            "street": street,
            "postal_code": address.postcode,
            "city": address.city,
            "country": address.country,
            "language": "de",
            "email": address.email if consents and consents[-1][1] else "",
            "phone": "",
            "order_date": order_day.isoformat(),
            "invoice_date": order_day.isoformat(),
            "due_date": due.isoformat(),
            "currency": order.currency,
            "principal_cents": str(principal),
            "paid_cents": "0",
            "open_cents": str(principal),
            "claim_subject": f"Online-Bestellung {number} vom {order_day:%d.%m.%Y}",
            **dunning,
        }
    customers = {
        customer_key(shop_order) for shop_order in shop.orders if shop_order.order_id in codes_of
    }
    return Expected(len(codes_of), len(customers), reasons, rows, codes_of)


def _dunning(order: Order, due: dt.date) -> dict[str, str]:
    """Default date, fees, last letter and the qualifying notice (README, rule 4 and § 286)."""
    letters = [
        (berlin_day(x.sent_at), x) for x in order.letters if due < berlin_day(x.sent_at) <= AS_OF
    ]
    notices = [(d, x) for d, x in letters if x.kind in ("dunning", "final_notice")]
    reminders = [x.sent_at for d, x in letters if x.kind == "reminder"]
    default = min(notices, key=lambda n: n[1].sent_at) if notices else None
    latest_notice = AS_OF - dt.timedelta(days=NOTICE_DAYS)
    qualifying = [
        d
        for d, x in notices
        if x.announces and reminders and x.sent_at > min(reminders) and d <= latest_notice
    ]
    fees = sum(x.fee_cents or 0 for _, x in letters if default and x.sent_at > default[1].sent_at)
    return {
        "default_date": default[0].isoformat() if default else "",
        "dunning_fees_cents": str(fees),
        "last_dunning_date": max(d for d, _ in letters).isoformat() if letters else "",
        "handover_notice_date": max(qualifying).isoformat() if qualifying else "",
    }


def _failing(
    order: Order, due: dt.date, open_cents: int, notice: str, address: Address
) -> set[str]:
    """Rules 1-5, 9, 11, 12 and the routing (the agency takes DE and AT) for one case."""
    codes = set()
    if open_cents <= 0:
        codes.add("not_open")
    if open_cents < MINIMUM_OPEN_CENTS:
        codes.add("below_minimum")
    if due + dt.timedelta(days=OVERDUE_DAYS) > AS_OF:
        codes.add("overdue_too_short")
    if not notice:
        codes.add("dunning_incomplete")
    if any(
        d.resolved_at is None or d.outcome in ("claim_withdrawn", "partially_upheld")
        for d in order.disputes
    ):
        codes.add("disputed")
    country = address.country
    limitation = {"DE": dt.date(due.year + 3, 12, 31), "AT": due.replace(year=due.year + 3)}
    if country in limitation and limitation[country] < AS_OF:
        codes.add("time_barred")
    name = address.company if address.company else address.last_name
    if not all(s.strip() for s in (address.address_1, address.postcode, address.city, name)):
        codes.add("incomplete")
    if order.currency not in SERVED_CURRENCIES or country not in SERVED_COUNTRIES:
        codes.add("not_served")
    if country not in SERVED_COUNTRIES:
        codes.add("no_agency")
    return codes


def _held(holds: list[dt.date | None]) -> bool:
    """A hold is in force without a last day, or through its last day (inclusive)."""
    return any(last is None or last >= AS_OF for last in holds)


# --------------------------------------------------------------------------- the workspace


@dataclass
class Workspace:
    root: Path
    config: Path
    agency: AgencySide
    shop: ShopFacts


@pytest.fixture
def workspace(tmp_path: Path, sshd) -> Workspace:
    """The WooCommerce shop, the shop's keys and one agency with an inbox on the sshd."""
    shop = build(tmp_path / "shop.db")
    agency = agency_side(tmp_path, sshd, "inkasso")
    config = tmp_path / "handover.toml"
    config.write_text(CONFIG_HEAD + agency.table(sshd, "columns = " + json.dumps(AGENCY_COLUMNS)))
    return Workspace(tmp_path, config, agency, shop)


def test_the_generated_shop_has_eligible_cases_and_cases_excluded_for_many_reasons(
    tmp_path: Path,
) -> None:
    """The generator made what it meant: each case fails for the reason it was built for."""
    shop = build(tmp_path / "shop.db")
    expected = expect(shop)
    for order in shop.orders:
        codes = expected.codes.get(order.order_id)
        if codes is None:
            assert order.intent == "no case", order
        elif order.intent == "eligible":
            assert codes == set(), order
        else:
            assert order.intent in codes, (order, codes)
    assert 60 <= len(shop.orders) <= 150
    assert expected.reasons["eligible"] >= 15
    excluded_for = {code for code in expected.reasons if code != "eligible"}
    assert len(excluded_for) >= 9, expected.reasons
    assert {o.billing.country for o in shop.orders} >= {"DE", "AT"}
    # Both kinds of debtor, both kinds of customer and e-mail both sent and withheld.
    rows = expected.rows.values()
    assert {r["debtor_kind"] for r in rows} == {"consumer", "business"}
    assert {bool(r["email"]) for r in rows} == {True, False}
    eligible = [o for o in shop.orders if not expected.codes.get(o.order_id, {"-"})]
    assert {bool(o.user_id) for o in eligible} == {True, False}
    assert build(tmp_path / "again.db").orders == shop.orders  # seeded: the same every time


def test_source_check_finds_every_view_meets_the_contract(workspace: Workspace) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "handover.cli.main", "source", "check",
         "--config", str(workspace.config), "--as-of", AS_OF.isoformat()],
        cwd=workspace.root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "fix" not in out, out
    statuses = dict(re.findall(r"^  (\w+) +(.+)$", done.stdout, re.MULTILINE))
    optional = {"unallocated_payments", "invoice_instalments"}
    contract = {"invoices", "customers", "payments", "dunning_events", "disputes"}
    contract |= {"installment_plans", "customer_flags", "consents", "holds"}
    assert set(statuses) == contract | optional, out
    for table in optional:
        assert statuses[table].startswith("ABSENT (optional"), out
    for table in contract:
        assert re.fullmatch(r"OK \(\d+ rows\)", statuses[table]), out
    expected = expect(workspace.shop)
    assert statuses["invoices"] == f"OK ({expected.cases} rows)", out
    assert statuses["customers"] == f"OK ({expected.customers} rows)", out


def test_a_run_hands_over_exactly_the_cases_computed_from_the_shop(
    prefect, workspace: Workspace
) -> None:
    from flows.nightly import handover

    expected = expect(workspace.shop)
    counts = handover(config_path=str(workspace.config), as_of=AS_OF.isoformat())

    assert counts["quarantined.source"] == 0, counts
    assert counts["quarantined.outgoing.inkasso"] == 0, counts
    assert counts["handed_over.inkasso"] == len(expected.rows) == expected.reasons["eligible"]
    reasons = {code: n for code, n in counts.items() if "." not in code and n}
    assert reasons == dict(expected.reasons)

    outcomes = workspace.agency.opens()
    assert [o.case_count for o in outcomes if o.subject == "drop"] == [len(expected.rows)]
    delivered: dict[str, dict[str, str]] = {}
    for row in workspace.agency.rows():
        assert row["invoice_number"] not in delivered
        delivered[row["invoice_number"]] = {c: row[c] for c in CHECKED}
    assert sorted(delivered) == sorted(expected.rows)
    for number, row in expected.rows.items():
        assert delivered[number] == row, number


def test_what_woocommerce_records_after_the_handover_reaches_the_agency(
    prefect, workspace: Workspace
) -> None:
    """The next run compares the cases at the agency with the shop as WooCommerce changed it:
    paid (wc-completed with date_paid_gmt: the payments view), credited in part (a refund row
    on the unpaid order: the invoice's amount), credited in full (wc-refunded), and an e-mail
    consent withdrawn."""
    from flows.nightly import handover

    expected = expect(workspace.shop)
    handover(config_path=str(workspace.config), as_of=AS_OF.isoformat())
    order_of = {o.order_number or str(o.order_id): o for o in workspace.shop.orders}
    paid, credited, cancelled = (order_of[n] for n in sorted(expected.rows)[:3])
    changed = {customer_key(o) for o in (paid, credited, cancelled)}
    withdrawn = next(
        key
        for n, row in sorted(expected.rows.items())
        if row["email"] and (key := customer_key(order_of[n])) not in changed
    )
    erased = {n for n, row in expected.rows.items() if customer_key(order_of[n]) == withdrawn}
    net = int(expected.rows[cancelled.order_number or str(cancelled.order_id)]["principal_cents"])
    db = sqlite3.connect(workspace.shop.path)
    with db:
        db.execute("UPDATE wp_wc_orders SET status = 'wc-completed' WHERE id = ?", (paid.order_id,))
        db.execute(
            "UPDATE wp_wc_order_operational_data SET date_paid_gmt = '2026-11-14 23:10:00' "
            "WHERE order_id = ?",
            (paid.order_id,),
        )
        for order, cents in ((credited, 1500), (cancelled, net)):
            db.execute(
                "INSERT INTO wp_wc_orders (id, status, currency, type, total_amount, "
                "customer_id, date_created_gmt, parent_order_id) VALUES "
                "(?, 'wc-completed', 'EUR', 'shop_order_refund', ?, 0, '2026-11-16 07:00:00', ?)",
                (order.order_id + 10_000, f"-{cents // 100}.{cents % 100:02d}", order.order_id),
            )
        db.execute(
            "UPDATE wp_wc_orders SET status = 'wc-refunded' WHERE id = ?", (cancelled.order_id,)
        )
        db.execute(
            "INSERT INTO handover_consents VALUES (?, 'contact_email', 0, ?, 'account')",
            (withdrawn, "2026-11-16 06:00:00"),
        )
    db.close()

    handover(config_path=str(workspace.config), as_of=AS_OF.isoformat())
    workspace.agency.opens()
    messages = workspace.agency.rows(recall_contract.COLUMNS)
    got = {(m["invoice_number"], m["message_type"], m["reason_code"]) for m in messages}
    number = {o.order_id: o.order_number or str(o.order_id) for o in workspace.shop.orders}
    assert got == {
        (number[paid.order_id], "recall", "paid_in_full"),
        (number[credited.order_id], "update", "amount_corrected"),
        (number[cancelled.order_id], "recall", "cancelled"),
    } | {(n, "erase_channel", "consent_withdrawn") for n in erased}
    by_number = {(m["invoice_number"], m["message_type"]): m for m in messages}
    # Paid at 00:10 in Berlin the day before AS_OF: the day of the payment (not the UTC day,
    # nor the run's day, which a recall without a payment date would take).
    assert by_number[number[paid.order_id], "recall"]["effective_date"] == "2026-11-15"
    update = by_number[number[credited.order_id], "update"]
    before = int(expected.rows[number[credited.order_id]]["principal_cents"])
    assert (update["principal_cents"], update["open_cents"], update["paid_cents"]) == (
        str(before - 1500),
        str(before - 1500),
        "0",
    )
