"""The Odoo 16 view pack (`schemas/adapters/odoo16_credit_control.sql`), end to end.

On the real Odoo 16 / OCA DDL in a real PostgreSQL, filled by a seeded generator
(`tests/adapters/odoo16_shop.py`): `handover source check` accepts every view, and a real run
(Prefect, age, OpenSSH sshd) delivers exactly the cases a second, independent calculation from
the generator's facts finds eligible, which the agency's own tool opens.

The independent calculation below is plain Python over the generator's facts: it knows the
legal rules (README, "Eligibility") and the pack's documented mapping decisions, and shares no
code with handover's rules or facts.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from handover.contract import COLUMNS
from handover.run import source_rules
from tests.adapters.odoo16_shop import AS_OF, PROTECTIVE_TAGS, OdooShop, build_shop
from tests.support.paths import PROJECT
from tests.support.workspaces import CONFIG_HEAD, AgencySide, agency_side

AGENCY = "inkasso"
# The pack's header: what each credit-control level is.
LEVELS = """
[source.dunning_levels]
"1" = { kind = "reminder", announces_handover = false }
"2" = { kind = "dunning", announces_handover = false }
"3" = { kind = "final_notice", announces_handover = true }
"""
# The defaults, written out: the calculation below uses these numbers.
MINIMUM_OPEN_CENTS, OVERDUE_DAYS, NOTICE_DAYS = 1000, 30, 14
RULES = f"""
[rules]
minimum_open_cents = {MINIMUM_OPEN_CENTS}
overdue_days = {OVERDUE_DAYS}
notice_days = {NOTICE_DAYS}
"""
SERVED_COUNTRIES, SERVED_CURRENCIES = ("DE", "AT"), ("EUR",)
CONTENDED = (
    "invoice_number",
    "instalment_number",
    "open_cents",
    "due_date",
    "default_date",
    "handover_notice_date",
    "debtor_kind",
    "company_name",
    "last_name",
    "postal_code",
    "country",
    "language",
    "email",
)
BERLIN = ZoneInfo("Europe/Berlin")


@dataclass(frozen=True)
class Workspace:
    """The Odoo shop, handover's configuration and keys, and the agency's inbox and key."""

    root: Path
    config: Path
    agency: AgencySide
    shop: OdooShop


@pytest.fixture(scope="module")
def workspace(postgres_server, sshd, tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("odoo16")
    shop = build_shop(postgres_server.create_database())
    agency = agency_side(root, sshd, AGENCY)
    head = CONFIG_HEAD.replace('url = "sqlite:///shop.db"', f'url = "{shop.url}"')
    assert head != CONFIG_HEAD
    # The agency may get e-mail addresses (the default allow-list withholds them): consent
    # decides which leave.
    columns = [c for c in COLUMNS if c not in ("date_of_birth", "phone")]
    table = agency.table(sshd, extra="columns = " + json.dumps(columns))
    config = root / "handover.toml"
    config.write_text(head + LEVELS + RULES + table)
    return Workspace(root, config, agency, shop)


# --------------------------------------------------------------------------- a. source check


def test_source_check_accepts_every_view_of_the_pack(workspace: Workspace) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "handover.cli.main",
            "source",
            "check",
            "--config",
            str(workspace.config),
            "--as-of",
            AS_OF.isoformat(),
        ],
        cwd=workspace.root,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "fix:" not in out and "fix (" not in out, out
    status = {
        line.split()[0]: line.split(None, 1)[1]
        for line in out.splitlines()[1:]
        if line.startswith("  ") and not line.startswith("      ")
    }
    assert set(status) == set(source_rules.COLUMNS), out  # every table a run reads
    assert all(s.startswith("OK (") for s in status.values()), out
    # The optional tables are there and hold rows of the cases; so do the mapped facts.
    for table in (
        "invoice_instalments",
        "unallocated_payments",
        "payments",
        "dunning_events",
        "disputes",
        "customer_flags",
        "consents",
    ):
        assert status[table] != "OK (0 rows)", (table, out)
    assert status["holds"] == status["installment_plans"] == "OK (0 rows)"
    # Odoo keeps no date of birth; the check says so (a warning, never a failure).
    assert any("warn:" in line and "date_of_birth" in line for line in out.splitlines()), out


# --------------------------------------------------------------------------- b. a full run


def berlin_day(utc: dt.datetime) -> dt.date:
    """The Europe/Berlin calendar day of a naive UTC instant."""
    return utc.replace(tzinfo=dt.UTC).astimezone(BERLIN).date()


def limitation_end(due: dt.date, country: str) -> dt.date:
    """DE: 31 Dec of the due year + 3 (§§ 195, 199 BGB); AT: due date + 3 years (§ 1486 ABGB)."""
    if country == "DE":
        return dt.date(due.year + 3, 12, 31)
    try:
        return due.replace(year=due.year + 3)
    except ValueError:  # 29 February
        return dt.date(due.year + 3, 3, 1)


@dataclass(frozen=True)
class Expected:
    """The independent calculation's outcome: the delivered rows and each case's reasons."""

    rows: set[tuple[str, ...]]
    reasons: dict[str, set[str]]  # case label -> failing reason codes (empty = eligible)


def expected(shop: OdooShop) -> Expected:
    """What handover must do with the shop's facts, worked out from the legal rules alone."""
    partners = shop.partners
    rows: set[tuple[str, ...]] = set()
    reasons: dict[str, set[str]] = {}
    for invoice in shop.invoices:
        # Open: posted and not settled (paid, in payment); drafts and cancelled are no claims.
        if invoice.state != "posted" or invoice.payment_state in ("paid", "in_payment"):
            continue
        # An invoice address of a private person is the person's (the pack's decision).
        customer = partners[invoice.partner_id]
        if customer.type != "contact" and not partners[customer.commercial_id].is_company:
            customer = partners[customer.commercial_id]
        debtor = partners[customer.commercial_id]  # the company of a contact, else itself
        split = len(invoice.terms) > 1
        for number, term in enumerate(sorted(invoice.terms, key=lambda t: t.due), start=1):
            if term.due >= AS_OF:
                continue  # not a case yet
            label = f"{invoice.number}#{number}" if split else invoice.number
            open_cents = term.amount_cents - term.paid_cents
            # Letters that left by letter or e-mail, after the due date, by AS_OF (Berlin days).
            sent = sorted(
                (letter.sent_at, letter.level)
                for letter in term.letters
                if letter.state == "sent" and letter.channel in ("letter", "email")
                and term.due < berlin_day(letter.sent_at) <= AS_OF
            )  # fmt: skip
            mahnungen = [at for at, level in sent if level in (2, 3)]
            default_date = berlin_day(mahnungen[0]) if mahnungen else None
            reminders = [at for at, level in sent if level == 1]
            notices = [
                berlin_day(at)
                for at, level in sent
                if level == 3
                and reminders
                and at > reminders[0]
                and berlin_day(at) <= AS_OF - dt.timedelta(days=NOTICE_DAYS)
            ]
            notice_date = max(notices) if notices else None
            protected = {customer.id, debtor.id}
            failed = {
                "not_open": open_cents <= 0,
                "below_minimum": open_cents < MINIMUM_OPEN_CENTS,
                "overdue_too_short": term.due + dt.timedelta(days=OVERDUE_DAYS) > AS_OF,
                "dunning_incomplete": notice_date is None,
                "disputed": any(t.blocked for t in invoice.terms),
                "protected_customer": any(
                    set(partners[p].tags) & set(PROTECTIVE_TAGS) for p in protected
                ),
                "time_barred": limitation_end(term.due, debtor.country or "DE") < AS_OF,
                "incomplete": not (
                    debtor.street
                    and debtor.zip
                    and debtor.city
                    and debtor.country
                    and (debtor.name if debtor.is_company else customer.name)
                ),
                "not_served": invoice.currency not in SERVED_CURRENCIES
                or debtor.country not in SERVED_COUNTRIES,
                "unallocated_payment": any(partners[p].unallocated_cents > 0 for p in protected),
            }
            reasons[label] = {code for code, hit in failed.items() if hit}
            if reasons[label]:
                continue
            rows.add(
                (
                    invoice.number,
                    str(number) if split else "",
                    str(open_cents),
                    term.due.isoformat(),
                    default_date.isoformat() if default_date else "",
                    notice_date.isoformat() if notice_date else "",
                    "business" if debtor.is_company else "consumer",
                    debtor.name if debtor.is_company else "",
                    customer.name if customer.id != debtor.id else (
                        "" if debtor.is_company else customer.name
                    ),
                    debtor.zip or "",
                    debtor.country or "",
                    (debtor.lang or "de_DE")[:2].lower(),
                    # The contact's own address, where the contact (not the company) agreed.
                    customer.email if customer.consents.get(1) == ("answered", True, True)
                    else "",
                )
            )  # fmt: skip
    return Expected(rows, reasons)


def delivered_rows(workspace: Workspace) -> list[dict[str, str]]:
    """The agency's tool opens its inbox; the rows of the handover CSVs it wrote."""
    assert workspace.agency.opens(), "the agency found no drop"
    return workspace.agency.rows()


@pytest.fixture(scope="module")
def first_run(workspace: Workspace, prefect) -> dict[str, int]:
    """One real run of the `handover` flow on AS_OF, in this process (its counts)."""
    from flows.nightly import handover

    return handover(config_path=str(workspace.config), as_of=AS_OF.isoformat())


def test_the_data_has_cases_of_every_kind(workspace: Workspace) -> None:
    """The shop is a real test: eligible cases and cases held back for many reasons, and an
    eligible instalment whose next instalment is not."""
    want = expected(workspace.shop)
    eligible = {label for label, codes in want.reasons.items() if not codes}
    assert len(eligible) >= 30
    codes = collections.Counter(c for codes in want.reasons.values() for c in codes)
    assert set(codes) >= {
        "not_open",
        "below_minimum",
        "overdue_too_short",
        "dunning_incomplete",
        "disputed",
        "protected_customer",
        "time_barred",
        "incomplete",
        "not_served",
        "unallocated_payment",
    }, codes
    assert any(
        f"{label[:-2]}#2" in want.reasons and want.reasons[f"{label[:-2]}#2"]
        for label in eligible
        if label.endswith("#1")
    )


def test_a_run_delivers_exactly_the_independently_calculated_cases(
    workspace: Workspace, first_run: dict[str, int]
) -> None:
    want = expected(workspace.shop)
    counts = first_run
    assert counts.get("quarantined.source", 0) == 0, counts
    assert counts["eligible"] == len(want.rows), counts
    assert counts[f"handed_over.{AGENCY}"] == len(want.rows), counts
    by_reason = collections.Counter(c for codes in want.reasons.values() for c in codes)
    for code, n in by_reason.items():
        assert counts[code] == n, (code, counts)
    for code in ("not_open", "minor", "on_hold", "installment_plan", "no_agency"):
        assert counts.get(code, 0) == by_reason.get(code, 0), (code, counts)

    assert len(list(workspace.agency.inbox.glob("*.csv.age"))) == 1
    # A drop holding instalments is the contract version with instalment_number.
    (manifest,) = workspace.agency.inbox.glob("*.manifest.json")
    assert json.loads(manifest.read_text())["schema_version"] == "agency_case_v1_1"
    rows = delivered_rows(workspace)
    got = {tuple(row[c] for c in CONTENDED) for row in rows}
    assert len(rows) == len(got)  # no case twice
    missing, extra = want.rows - got, got - want.rows
    assert not missing and not extra, (sorted(missing), sorted(extra))
