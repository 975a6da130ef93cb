"""A tiny shop database for tests: one good case by default, changed one fact at a time.

It writes a real SQLite file with the DDL of `schemas/shop_source.sql`, so tests go through the
real extraction as well as the rules.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from handover.config import Agency, Rules, SftpEndpoint
from handover.run import extract as source
from handover.run.decide import Decision, decide
from tests.support.paths import SHOP_DDL

DDL = SHOP_DDL.read_text()

AS_OF = dt.date(2026, 6, 15)
AGENCY = Agency(
    name="test-agency",
    recipients=("age1test",),
    sftp=SftpEndpoint("127.0.0.1", 22, "shop", "inbox", Path("known_hosts")),
    columns=(),
)


class Shop:
    """Rows are added with defaults that make invoice I1 of customer C1 eligible on AS_OF."""

    def __init__(self, path: Path, *, first_id: int = 1) -> None:
        """A new shop at `path`, or (when it exists) more rows for it, ids from `first_id`."""
        self.path = path
        self.url = f"sqlite:///{path}"
        exists = path.exists()
        self.db = sqlite3.connect(path)
        if not exists:
            self.db.executescript(DDL)
        self._ids = itertools.count(first_id)

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
        self.db.commit()

    def customer(self, customer_id: str = "C1", **fields: Any) -> Shop:
        row = {
            "customer_id": customer_id,
            "kind": "consumer",
            "first_name": "Jürgen",
            "last_name": "Müller-Lüdenscheidt",
            "company_name": None,
            "date_of_birth": "1980-05-17",
            "email": "j.mueller@example.de",
            "phone": "030 1234567",
            "street": "Hauptstraße 1",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
            "language": "de",
            "created_at": "2024-01-01 10:00:00",
        }
        self._insert("customers", {**row, **fields})
        return self

    def invoice(
        self, invoice_id: str = "I1", customer_id: str = "C1", *, dunned: bool = True, **fields: Any
    ) -> Shop:
        """An open invoice due 2026-03-15 over 50.00 EUR; `dunned` adds a complete dunning."""
        row = {
            "invoice_id": invoice_id,
            "invoice_number": f"RE-{invoice_id}",
            "customer_id": customer_id,
            "order_id": f"O-{invoice_id}",
            "order_date": "2026-02-28",
            "issued_at": "2026-03-01",
            "due_date": "2026-03-15",
            "amount_cents": 5000,
            "currency": "EUR",
            "status": "open",
        }
        self._insert("invoices", {**row, **fields})
        if dunned:
            self.event(invoice_id, "reminder", "2026-03-25 08:00:00", announces=False, fee=None)
            self.event(invoice_id, "dunning", "2026-04-10 08:00:00", fee=500)
            self.event(invoice_id, "final_notice", "2026-05-01 08:00:00", fee=500)
        return self

    def event(
        self,
        invoice_id: str,
        kind: str,
        sent_at: str,
        *,
        announces: bool = True,
        fee: int | None = None,
        instalment: str | None = None,
    ) -> Shop:
        self._insert(
            "dunning_events",
            {
                "instalment_id": instalment,
                "event_id": f"E{next(self._ids)}",
                "invoice_id": invoice_id,
                "kind": kind,
                "sent_at": sent_at,
                "channel": "letter",
                "fee_cents": fee,
                "announces_handover": announces,
            },
        )
        return self

    def payment(
        self,
        invoice_id: str,
        amount: int,
        paid_at: str = "2026-03-20 12:00:00",
        *,
        instalment: str | None = None,
    ) -> Shop:
        self._insert(
            "payments",
            {
                "instalment_id": instalment,
                "payment_id": f"P{next(self._ids)}",
                "invoice_id": invoice_id,
                "paid_at": paid_at,
                "amount_cents": amount,
                "method": "sepa_debit",
                "iban": "DE89370400440532013000",
            },
        )
        return self

    def dispute(self, invoice_id: str, resolved_at: str | None, outcome: str | None) -> Shop:
        self._insert(
            "disputes",
            {
                "dispute_id": f"D{next(self._ids)}",
                "invoice_id": invoice_id,
                "opened_at": "2026-04-01 09:00:00",
                "resolved_at": resolved_at,
                "outcome": outcome,
            },
        )
        return self

    def plan(self, invoice_id: str, status: str) -> Shop:
        self._insert(
            "installment_plans",
            {
                "plan_id": f"IP{next(self._ids)}",
                "invoice_id": invoice_id,
                "agreed_at": "2026-04-02 09:00:00",
                "status": status,
            },
        )
        return self

    def flag(self, customer_id: str, flag: str, cleared_at: str | None = None) -> Shop:
        self._insert(
            "customer_flags",
            {
                "customer_id": customer_id,
                "flag": flag,
                "set_at": "2026-04-03 09:00:00",
                "cleared_at": cleared_at,
            },
        )
        return self

    def hold(
        self,
        *,
        invoice_id: str | None = None,
        customer_id: str | None = None,
        expires_at: str | None = None,
        held_until: str | None = None,
    ) -> Shop:
        self._insert(
            "holds",
            {
                "hold_id": f"H{next(self._ids)}",
                "invoice_id": invoice_id,
                "customer_id": customer_id,
                "reason": "Ratenzahlung telefonisch zugesagt",
                "set_by": "support",
                "set_at": "2026-04-04 09:00:00",
                "expires_at": expires_at,
                "held_until": held_until,
            },
        )
        return self

    def unallocated(
        self,
        customer_id: str,
        amount: int,
        received_at: str = "2026-06-01",
        allocated_at: str | None = None,
    ) -> Shop:
        self._insert(
            "unallocated_payments",
            {
                "payment_id": f"U{next(self._ids)}",
                "customer_id": customer_id,
                "amount_cents": amount,
                "received_at": received_at,
                "allocated_at": allocated_at,
            },
        )
        return self

    def instalment(self, invoice_id: str, instalment_id: str, due_date: str, amount: int) -> Shop:
        self._insert(
            "invoice_instalments",
            {
                "instalment_id": instalment_id,
                "invoice_id": invoice_id,
                "due_date": due_date,
                "amount_cents": amount,
            },
        )
        return self

    def consent(
        self, customer_id: str, purpose: str, granted: bool, recorded_at: str, source: str = "web"
    ) -> Shop:
        self._insert(
            "consents",
            {
                "customer_id": customer_id,
                "purpose": purpose,
                "granted": granted,
                "recorded_at": recorded_at,
                "source": source,
            },
        )
        return self

    def frames(self, as_of: dt.date = AS_OF) -> dict:
        return source.extract(self.url, as_of)

    def decide(
        self,
        as_of: dt.date = AS_OF,
        *,
        handed_over: tuple[str, ...] = (),
        on_review: tuple[str, ...] = (),
        rules: Rules = Rules(),
        agency: Agency = AGENCY,
        agencies: tuple[Agency, ...] | None = None,
    ) -> Decision:
        return decide(
            self.frames(as_of),
            as_of=as_of,
            rules=rules,
            # As config.py does: an agency's thresholds start from the global ones.
            agencies=agencies or (replace(agency, rules=rules),),
            handed_over=handed_over,
            on_review=on_review,
        )


def reasons(decision: Decision, invoice_id: str = "I1") -> set[str]:
    """The failing reason codes of one case."""
    return set(filter(None, decision.reasons()[invoice_id].split(",")))
