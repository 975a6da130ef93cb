"""A seeded Odoo 16 shop in PostgreSQL, on the real ORM DDL, for the Odoo view pack's tests.

`build_shop(url)` loads `tests/testdata/adapters/odoo16/ddl_postgresql.sql` (plus the two
partner-tag tables the DDL copy does not reproduce), inserts a deterministic set of partners,
invoices (whole and in instalments), payments, credit notes, credit-control letters, consents
and tags as Odoo and OCA write them, then creates the views of
`schemas/adapters/odoo16_credit_control.sql`. It returns the facts it put in (`OdooShop`), so a
test can work out independently what handover must do with them.

All timestamps are naive UTC, as Odoo stores them. Dates are relative to `AS_OF`.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support.paths import PROJECT

AS_OF = dt.date(2026, 11, 16)
SEED = 16_2026
DDL = PROJECT / "tests" / "testdata" / "adapters" / "odoo16" / "ddl_postgresql.sql"
PACK = PROJECT / "schemas" / "adapters" / "odoo16_credit_control.sql"

# The many2many of res.partner.category_id and its comodel, as Odoo 16's ORM creates them
# (odoo/addons/base/models/res_partner.py: PartnerCategory; fields.Many2many relation table with
# a composite primary key). Not in the DDL copy (PROVENANCE.md: "Not reproduced").
TAG_TABLES = """
CREATE TABLE res_partner_category (
    id serial PRIMARY KEY,
    parent_id int4,
    color int4,
    create_uid int4,
    write_uid int4,
    parent_path varchar,
    name jsonb NOT NULL,
    active bool,
    create_date timestamp without time zone,
    write_date timestamp without time zone
);
CREATE TABLE res_partner_res_partner_category_rel (
    category_id int4 NOT NULL,
    partner_id int4 NOT NULL,
    PRIMARY KEY (category_id, partner_id)
);
"""

PROTECTIVE_TAGS = ("insolvency", "deceased", "hardship")
LEVEL_IDS = {1: 1, 2: 2, 3: 3}  # credit_control_policy_level.id by level

_PLACES = {
    "DE": [
        ("10115", "Berlin"),
        ("20095", "Hamburg"),
        ("80331", "München"),
        ("50667", "Köln"),
        ("60311", "Frankfurt am Main"),
        ("04109", "Leipzig"),
    ],
    "AT": [("1010", "Wien"), ("8010", "Graz"), ("4020", "Linz"), ("5020", "Salzburg")],
}
_FIRST = ["Anna", "Lukas", "Marie", "Jonas", "Sophie", "Felix", "Lena", "Paul", "Emma", "Jakob"]
_LAST = ["Müller", "Schmidt", "Huber", "Wagner", "Becker", "Gruber", "Hofmann", "Bauer", "Maier"]
_STREETS = ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Schulgasse", "Am Markt"]
_COMPANIES = ["Bau", "Druck", "Logistik", "Gastro", "Elektro", "Metall", "Design", "Holz"]


@dataclass
class Partner:
    """A res_partner row as the generator made it."""

    id: int
    name: str | None
    is_company: bool
    type: str  # 'contact', 'invoice', ...
    parent_id: int | None
    commercial_id: int
    street: str | None
    zip: str | None
    city: str | None
    country: str | None
    lang: str | None
    email: str | None = None
    tags: set[str] = field(default_factory=set)
    unallocated_cents: int = 0  # money received on a payment entry and not reconciled
    # privacy_consent per activity id (1 e-mail, 2 phone, 3 other): (state, accepted, active)
    consents: dict[int, tuple[str, bool, bool]] = field(default_factory=dict)


@dataclass
class Letter:
    """A credit_control_line: `write_date` is when it was marked sent (or last changed)."""

    id: int
    level: int
    channel: str
    state: str
    run_date: dt.date
    write_date: dt.datetime
    date_sent: dt.date | None = None

    @property
    def sent_at(self) -> dt.datetime:
        """The instant the letter left, as the shop knows it (naive UTC)."""
        if self.date_sent is not None:
            return dt.datetime.combine(self.date_sent, dt.time())
        return self.write_date


@dataclass
class Term:
    """One payment-term (receivable) line of an invoice: an instalment when there are several."""

    line_id: int
    due: dt.date
    amount_cents: int
    paid_cents: int = 0
    blocked: bool = False
    letters: list[Letter] = field(default_factory=list)


@dataclass
class Invoice:
    """An out_invoice as the generator made it, with what happened to it."""

    move_id: int
    number: str
    partner_id: int
    currency: str
    invoice_date: dt.date
    state: str  # 'posted', 'cancel' or 'draft'
    scenario: str
    terms: list[Term]
    in_payment: bool = False  # paid, waiting for the bank statement

    @property
    def amount_cents(self) -> int:
        return sum(t.amount_cents for t in self.terms)

    @property
    def paid_cents(self) -> int:
        return sum(t.paid_cents for t in self.terms)

    @property
    def payment_state(self) -> str:
        if self.state != "posted" or self.paid_cents == 0:
            return "not_paid"
        if self.paid_cents >= self.amount_cents:
            return "in_payment" if self.in_payment else "paid"
        return "partial"


@dataclass
class OdooShop:
    """What the generator put into the database: partners by id and every invoice."""

    url: str
    partners: dict[int, Partner]
    invoices: list[Invoice]


class _Builder:
    """Rows of the Odoo tables, built up as an Odoo database would hold them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.next_id: dict[str, int] = {}
        self.partners: dict[int, Partner] = {}
        self.invoices: list[Invoice] = []
        self.runs: dict[dt.date, int] = {}
        self.sequence: dict[tuple[str, int], int] = {}

    # ------------------------------------------------------------------ plumbing

    def add(self, table: str, **values: Any) -> int:
        """Append a row to `table` with the next id (unless given); return its id."""
        if "id" not in values:
            values["id"] = self.next_id.get(table, 1)
        self.next_id[table] = max(self.next_id.get(table, 1), values["id"] + 1)
        self.rows.setdefault(table, []).append(values)
        return values["id"]

    def stamp(self, day: dt.date, hour_from: int = 7, hour_to: int = 17) -> dt.datetime:
        """A UTC time of day on `day`, in office hours, to the second (letters leave unevenly)."""
        seconds = self.rng.randrange(hour_from * 3600, hour_to * 3600)
        return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds)

    def name(self, prefix: str, day: dt.date) -> str:
        """The next number of a journal's sequence, which Odoo restarts every year."""
        key = (prefix, day.year)
        self.sequence[key] = self.sequence.get(key, 0) + 1
        return f"{prefix}/{day.year}/{self.sequence[key]:05d}"

    # ------------------------------------------------------------------ master data

    def master_data(self) -> None:
        """Currencies, countries, accounts, the credit-control policy, privacy activities, tags
        and the shop's own partner."""
        created = dt.datetime(2021, 1, 4, 9, 0)
        self.add(
            "res_currency", id=1, name="EUR", symbol="€", rounding=Decimal("0.01"),
            decimal_places=2, position="after", active=True, full_name="Euro",
        )  # fmt: skip
        self.add(
            "res_currency", id=2, name="CHF", symbol="CHF", rounding=Decimal("0.01"),
            decimal_places=2, position="after", active=True, full_name="Swiss franc",
        )  # fmt: skip
        for cid, code, name in ((1, "DE", "Germany"), (2, "AT", "Austria")):
            self.add("res_country", id=cid, code=code, name=Jsonb({"en_US": name}), currency_id=1)
        accounts = (
            (1, "1400", "Forderungen aus Lieferungen und Leistungen", "asset_receivable", True),
            (2, "8400", "Erlöse 19 % USt", "income", False),
            (3, "1776", "Umsatzsteuer 19 %", "liability_current", False),
            (4, "1361", "Offene Zahlungseingänge", "asset_current", True),
        )
        for aid, code, name, account_type, reconcile in accounts:
            self.add(
                "account_account", id=aid, company_id=1, code=code, name=name,
                account_type=account_type, reconcile=reconcile, deprecated=False,
                create_date=created, write_date=created,
            )  # fmt: skip
        self.add(
            "credit_control_policy", id=1, name="3 Mahnstufen", active=True, do_nothing=False,
            company_id=1, create_date=created, write_date=created,
        )  # fmt: skip
        levels = ((1, 7, "email", "Zahlungserinnerung"), (2, 21, "letter", "1. Mahnung"))
        levels += ((3, 35, "letter", "Letzte Mahnung: Abgabe an Inkasso"),)
        for level, delay, channel, title in levels:
            self.add(
                "credit_control_policy_level", id=LEVEL_IDS[level], policy_id=1, level=level,
                delay_days=delay, email_template_id=1, computation_mode="net_days",
                channel=channel, name=Jsonb({"en_US": title}),
                custom_text=Jsonb({"en_US": title}), custom_mail_text=Jsonb({"en_US": title}),
                mail_show_invoice_detail=True, create_date=created, write_date=created,
            )  # fmt: skip
        for aid, name in ((1, "contact_email"), (2, "contact_phone"), (3, "newsletter")):
            self.add(
                "privacy_activity", id=aid, controller_id=1, name=Jsonb({"en_US": name}),
                active=True, subject_find=False, default_consent=False,
                consent_required="manual", create_date=created, write_date=created,
            )  # fmt: skip
        # In PROTECTIVE_TAGS order, then a tag that protects nobody; ids 1-4 (see `tag`).
        tags = {"insolvency": "Insolvenz", "deceased": "Verstorben", "hardship": "Härtefall"}
        tags["Stammkunde"] = "Stammkunde"
        for tid, (en, de) in enumerate(tags.items(), start=1):
            self.add(
                "res_partner_category", id=tid, name=Jsonb({"en_US": en, "de_DE": de}),
                active=True, create_date=created, write_date=created,
            )  # fmt: skip
        # The shop itself: controller of the privacy activities, never a debtor.
        self.partner("Beispiel Shop GmbH", company=True, country="DE")

    def partner(
        self,
        name: str | None,
        *,
        company: bool = False,
        country: str | None = "DE",
        parent: Partner | None = None,
        type_: str = "contact",
        street: str | None = "auto",
        street2: str | None = None,
        zip_: str | None = "auto",
        lang: str | None = "auto",
        tags: Iterable[str] = (),
    ) -> Partner:
        """A res_partner; a 'contact' child gets its company's address, as Odoo syncs it."""
        rng = self.rng
        if parent is not None and type_ == "contact":
            country = parent.country
        place = rng.choice(_PLACES[country or "DE"])
        if parent is not None and type_ == "contact":
            street, zip_, city = parent.street, parent.zip, parent.city
        else:
            city = place[1]
            street = f"{rng.choice(_STREETS)} {rng.randint(1, 120)}" if street == "auto" else street
            zip_ = place[0] if zip_ == "auto" else zip_
        if lang == "auto":
            lang = "de_AT" if country == "AT" else "de_DE"
        created = self.stamp(AS_OF - dt.timedelta(days=rng.randint(400, 1500)))
        changed = self.stamp(AS_OF - dt.timedelta(days=rng.randint(20, 300)))
        pid = self.next_id.get("res_partner", 1)
        commercial = pid
        if parent is not None and not company:
            commercial = parent.commercial_id
        email = f"kunde{pid}@example.org"
        self.add(
            "res_partner", id=pid, name=name, display_name=name, is_company=company,
            type=type_, parent_id=parent.id if parent else None, commercial_partner_id=commercial,
            street=street, street2=street2, zip=zip_, city=city,
            country_id={"DE": 1, "AT": 2}.get(country or ""), lang=lang, email=email,
            phone=f"+49 30 {rng.randint(1000000, 9999999)}",
            mobile=f"+49 171 {rng.randint(1000000, 9999999)}" if rng.random() < 0.5 else None,
            active=True, employee=False, partner_share=True, company_id=None,
            create_date=created, write_date=changed,
        )  # fmt: skip
        partner = Partner(
            pid, name, company, type_, parent.id if parent else None, commercial,
            None if street is None else ", ".join(s for s in (street, street2) if s),
            zip_, city, country, lang, email,
        )  # fmt: skip
        self.partners[pid] = partner
        for tag in tags:
            self.tag(partner, tag)
        return partner

    def person(self, **kwargs: Any) -> Partner:
        name = f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"
        return self.partner(name, **kwargs)

    def company(self, **kwargs: Any) -> Partner:
        name = f"{self.rng.choice(_LAST)} {self.rng.choice(_COMPANIES)} GmbH"
        return self.partner(name, company=True, **kwargs)

    def tag(self, partner: Partner, tag: str) -> None:
        """Put the tag named `tag` on `partner` (the relation table has no id)."""
        category = [*PROTECTIVE_TAGS, "Stammkunde"].index(tag) + 1
        rel = {"category_id": category, "partner_id": partner.id}
        self.rows.setdefault("res_partner_res_partner_category_rel", []).append(rel)
        partner.tags.add(tag)

    def consent(
        self, partner: Partner, activity: int, state: str, accepted: bool, active: bool = True
    ) -> None:
        """A privacy_consent of `partner` for activity 1 (e-mail), 2 (phone) or 3 (other)."""
        when = self.stamp(AS_OF - dt.timedelta(days=self.rng.randint(30, 600)))
        self.add(
            "privacy_consent", partner_id=partner.id, activity_id=activity, state=state,
            accepted=accepted, active=active, create_date=when, write_date=when,
        )  # fmt: skip
        partner.consents[activity] = (state, accepted, active)

    # ------------------------------------------------------------------ accounting

    def invoice(
        self,
        partner: Partner,
        terms: Sequence[tuple[int, int]],
        *,
        scenario: str,
        issued: int | None = None,
        currency: str = "EUR",
        state: str = "posted",
    ) -> Invoice:
        """An out_invoice of `partner` with payment-term lines (days from AS_OF to the due date,
        cents); issued `issued` days before AS_OF (default: 14 days before the first due)."""
        first_due = min(d for d, _ in terms)
        issued_on = AS_OF + dt.timedelta(days=first_due - 14 if issued is None else -issued)
        currency_id = 1 if currency == "EUR" else 2
        rate = Decimal("1") if currency == "EUR" else Decimal("1.0500")  # company currency EUR
        total = sum(c for _, c in terms)
        net = round(total / 1.19)
        name = self.name("INV", issued_on) if state != "draft" else "/"
        created = self.stamp(issued_on)
        commercial = self.partners[partner.commercial_id]
        move_id = self.add(
            "account_move", name=name, state=state, move_type="out_invoice", auto_post="no",
            journal_id=1, company_id=1, currency_id=currency_id, partner_id=partner.id,
            commercial_partner_id=commercial.id, date=issued_on, invoice_date=issued_on,
            invoice_date_due=AS_OF + dt.timedelta(days=max(d for d, _ in terms)),
            amount_untaxed=_money(net), amount_tax=_money(total - net),
            amount_total=_money(total), amount_total_signed=_money(total),
            invoice_partner_display_name=partner.name or commercial.name,
            payment_reference=name, posted_before=state != "draft", is_move_sent=True,
            create_date=created, write_date=created,
        )  # fmt: skip
        line = {
            "move_id": move_id, "journal_id": 1, "company_id": 1, "company_currency_id": 1,
            "currency_id": currency_id, "partner_id": commercial.id, "move_name": name,
            "parent_state": state, "date": issued_on, "create_date": created,
            "write_date": created,
        }  # fmt: skip
        for account, amount, kind in ((2, net, "product"), (3, total - net, "tax")):
            self.add(
                "account_move_line", **line, account_id=account, display_type=kind,
                name="Waren" if kind == "product" else "19 % USt", debit=_money(0),
                credit=_money(amount * rate), balance=_money(-amount * rate),
                amount_currency=_money(-amount), amount_residual=_money(0),
                amount_residual_currency=_money(0), reconciled=False, blocked=False,
            )  # fmt: skip
        made = []
        for days, cents in sorted(terms):
            line_id = self.add(
                "account_move_line", **line, account_id=1, display_type="payment_term",
                name=name, date_maturity=AS_OF + dt.timedelta(days=days),
                debit=_money(cents * rate), credit=_money(0), balance=_money(cents * rate),
                amount_currency=_money(cents), amount_residual=_money(cents * rate),
                amount_residual_currency=_money(cents), reconciled=False, blocked=False,
            )  # fmt: skip
            made.append(Term(line_id, AS_OF + dt.timedelta(days=days), cents))
        invoice = Invoice(move_id, name, partner.id, currency, issued_on, state, scenario, made)
        self.invoices.append(invoice)
        return invoice

    def pay(self, invoice: Invoice, term: int, cents: int, on: dt.date, *, refund: bool = False):
        """Reconcile `cents` against term line `term` of `invoice`: a customer payment (an
        entry on the outstanding-receipts account) or a credit note (`refund`)."""
        partner = self.partners[self.partners[invoice.partner_id].commercial_id]
        created = self.stamp(on)
        prefix = "RINV" if refund else "PBNK"
        name = self.name(prefix, on)
        move_id = self.add(
            "account_move", name=name, state="posted",
            move_type="out_refund" if refund else "entry", auto_post="no", journal_id=2,
            company_id=1, currency_id=1, partner_id=partner.id,
            commercial_partner_id=partner.id, date=on, invoice_date=on if refund else None,
            invoice_date_due=on if refund else None, amount_total=_money(cents),
            payment_state="paid" if refund else None, create_date=created, write_date=created,
        )  # fmt: skip
        line = {
            "move_id": move_id, "journal_id": 2, "company_id": 1, "company_currency_id": 1,
            "currency_id": 1, "partner_id": partner.id, "move_name": name,
            "parent_state": "posted", "date": on, "create_date": created, "write_date": created,
        }  # fmt: skip
        self.add(
            "account_move_line", **line, account_id=2 if refund else 4,
            display_type="product",
            name="Gutschrift" if refund else "Zahlungseingang", debit=_money(cents),
            credit=_money(0), balance=_money(cents), amount_currency=_money(cents),
            amount_residual=_money(0), amount_residual_currency=_money(0), reconciled=False,
        )  # fmt: skip
        credit_line = self.add(
            "account_move_line", **line, account_id=1, display_type="payment_term", name=name,
            date_maturity=on, debit=_money(0), credit=_money(cents), balance=_money(-cents),
            amount_currency=_money(-cents), amount_residual=_money(0),
            amount_residual_currency=_money(0), reconciled=True, blocked=False,
        )  # fmt: skip
        target = invoice.terms[term]
        self.add(
            "account_partial_reconcile", debit_move_id=target.line_id,
            credit_move_id=credit_line, debit_currency_id=1, credit_currency_id=1,
            company_id=1, max_date=max(on, invoice.invoice_date), amount=_money(cents),
            debit_amount_currency=_money(cents), credit_amount_currency=_money(cents),
            create_date=created, write_date=created,
        )  # fmt: skip
        target.paid_cents += cents

    def unallocated(self, partner: Partner, cents: int, on: dt.date) -> None:
        """A customer payment posted on the receivable account and reconciled with nothing."""
        created = self.stamp(on)
        name = self.name("PBNK", on)
        move_id = self.add(
            "account_move", name=name, state="posted", move_type="entry", auto_post="no",
            journal_id=2, company_id=1, currency_id=1, partner_id=partner.id,
            commercial_partner_id=partner.id, date=on, amount_total=_money(cents),
            create_date=created, write_date=created,
        )  # fmt: skip
        line = {
            "move_id": move_id, "journal_id": 2, "company_id": 1, "company_currency_id": 1,
            "currency_id": 1, "partner_id": partner.id, "move_name": name,
            "parent_state": "posted", "date": on, "create_date": created, "write_date": created,
            "display_type": "product", "reconciled": False,
        }  # fmt: skip
        self.add(
            "account_move_line", **line, account_id=4, name="Zahlungseingang",
            debit=_money(cents), credit=_money(0), balance=_money(cents),
            amount_currency=_money(cents), amount_residual=_money(0),
            amount_residual_currency=_money(0),
        )  # fmt: skip
        self.add(
            "account_move_line", **line, account_id=1, name="Überweisung ohne Rechnungsnr.",
            debit=_money(0), credit=_money(cents), balance=_money(-cents),
            amount_currency=_money(-cents), amount_residual=_money(-cents),
            amount_residual_currency=_money(-cents),
        )  # fmt: skip
        partner.unallocated_cents += cents

    def block(self, invoice: Invoice, term: int) -> None:
        """Set Odoo's "No Follow-up" (litigation) flag on a receivable line."""
        target = invoice.terms[term]
        target.blocked = True
        for row in self.rows["account_move_line"]:
            if row["id"] == target.line_id:
                row["blocked"] = True
                row["write_date"] = self.stamp(target.due + dt.timedelta(days=5))

    # ------------------------------------------------------------------ credit control

    def letter(
        self,
        invoice: Invoice,
        term: int,
        level: int,
        run_date: dt.date,
        sent: dt.datetime,
        *,
        channel: str | None = None,
        state: str = "sent",
        date_sent: dt.date | None = None,
    ) -> Letter:
        """A credit_control_line made by the run of `run_date`, marked `state` at `sent`."""
        channel = channel or {1: "email", 2: "letter", 3: "letter"}[level]
        if run_date not in self.runs:
            self.runs[run_date] = self.add(
                "credit_control_run", state="done", date=run_date, company_id=1,
                create_date=self.stamp(run_date, 5, 6), write_date=self.stamp(run_date, 6, 7),
            )  # fmt: skip
        target = invoice.terms[term]
        partner = self.partners[invoice.partner_id]
        cents = target.amount_cents - target.paid_cents
        line_id = self.add(
            "credit_control_line", invoice_id=invoice.move_id, partner_id=partner.commercial_id,
            commercial_partner_id=partner.commercial_id, move_line_id=target.line_id,
            account_id=1, currency_id=1 if invoice.currency == "EUR" else 2, company_id=1,
            policy_level_id=LEVEL_IDS[level], policy_id=1, level=level,
            run_id=self.runs[run_date], state=state, channel=channel, date=run_date,
            date_due=target.due, date_entry=invoice.invoice_date, date_sent=date_sent,
            manually_overridden=False, manual_followup=False,
            create_date=self.stamp(run_date, 5, 6), write_date=sent,
            amount_due=target.amount_cents / 100, balance_due=cents / 100,
        )  # fmt: skip
        made = Letter(line_id, level, channel, state, run_date, sent, date_sent)
        target.letters.append(made)
        return made

    def dun(self, invoice: Invoice, term: int = 0, levels: Sequence[int] = (1, 2, 3)) -> None:
        """The policy's letters for one term line: runs 7, 21 and 35 days after the due date
        (each a little later), an e-mail sent on the run's day, letters marked sent by the back
        office one to three days after their run."""
        due = invoice.terms[term].due
        for level in levels:
            run_date = due + dt.timedelta(days={1: 7, 2: 21, 3: 35}[level] + self.rng.randint(0, 3))
            lag = 0 if level == 1 else self.rng.randint(1, 3)
            self.letter(invoice, term, level, run_date, self.stamp(run_date + dt.timedelta(lag)))

    # ------------------------------------------------------------------ output

    def settle(self) -> None:
        """Odoo's stored computes after the story: each invoice's payment_state and residual,
        each term line's residual and reconciled flag."""
        moves = {row["id"]: row for row in self.rows["account_move"]}
        lines = {row["id"]: row for row in self.rows["account_move_line"]}
        for invoice in self.invoices:
            move = moves[invoice.move_id]
            move["payment_state"] = invoice.payment_state
            move["amount_residual"] = _money(invoice.amount_cents - invoice.paid_cents)
            for term in invoice.terms:
                rest = term.amount_cents - term.paid_cents
                line = lines[term.line_id]
                line["amount_residual"] = line["amount_residual_currency"] = _money(rest)
                line["reconciled"] = rest == 0
                if invoice.currency != "EUR":  # residual in the company currency
                    line["amount_residual"] = _money(rest * Decimal("1.0500"))

    def write(self, conn: psycopg.Connection) -> None:
        """Insert every row, table by table in dependency order."""
        order = [
            "res_currency", "res_country", "res_partner_category", "res_partner",
            "res_partner_res_partner_category_rel", "account_account", "account_move",
            "account_move_line", "account_partial_reconcile", "credit_control_policy",
            "credit_control_policy_level", "credit_control_run", "credit_control_line",
            "privacy_activity", "privacy_consent",
        ]  # fmt: skip
        with conn.cursor() as cur:
            for table in order:
                rows = self.rows.get(table, [])
                for columns in dict.fromkeys(tuple(r) for r in rows):
                    batch = [tuple(r[c] for c in columns) for r in rows if tuple(r) == columns]
                    names = ", ".join(columns)
                    marks = ", ".join(["%s"] * len(columns))
                    cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
                if rows and "id" in rows[0]:
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )


def _money(cents: int | Decimal) -> Decimal:
    """Odoo's Monetary: numeric major units, rounded to the currency's 0.01."""
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def _populate(b: _Builder) -> None:
    """The shop's story, scenario by scenario; each invoice names its scenario."""
    rng = b.rng
    b.master_data()

    def amount() -> int:
        return rng.randrange(2500, 90000, 10)

    def overdue() -> int:  # days from AS_OF to a due date long enough ago for full dunning
        return -rng.randint(75, 260)

    # Whole invoices of private persons, fully dunned: eligible.
    for n in range(18):
        person = b.person(country="AT" if n % 4 == 0 else "DE")
        b.consent(person, 1, "answered", accepted=n % 3 != 0)
        b.dun(b.invoice(person, [(overdue(), amount())], scenario="eligible"))
    # A person whose partner has no language (the pack's default 'de') and one writing English.
    b.dun(b.invoice(b.person(lang=None), [(overdue(), amount())], scenario="eligible"))
    b.dun(b.invoice(b.person(lang="en_US"), [(overdue(), amount())], scenario="eligible"))
    # Paid in full (by payment or credit note), or paid and waiting for the bank: no cases.
    for n in range(8):
        inv = b.invoice(b.person(), [(overdue(), amount())], scenario="paid")
        b.dun(inv, levels=(1,))
        cents = inv.amount_cents
        b.pay(inv, 0, cents, inv.terms[0].due + _days(12), refund=n == 0)
    inv = b.invoice(b.person(), [(overdue(), amount())], scenario="paid")
    inv.in_payment = True
    b.pay(inv, 0, inv.amount_cents, inv.terms[0].due + _days(3))
    # Paid in part by a payment or a credit note, the rest dunned: eligible with the rest open.
    for n in range(6):
        inv = b.invoice(b.person(), [(overdue(), amount())], scenario="eligible_partly_paid")
        b.pay(inv, 0, rng.randrange(1000, inv.amount_cents - 1500, 10), inv.terms[0].due + _days(9),
              refund=n % 3 == 0)  # fmt: skip
        b.dun(inv)
    # A rest below the minimum (10.00).
    for _ in range(2):
        inv = b.invoice(b.person(), [(overdue(), amount())], scenario="below_minimum")
        b.pay(inv, 0, inv.amount_cents - 500, inv.terms[0].due + _days(4))
        b.dun(inv)
    # Cancelled and draft invoices: never cases.
    for state in ("cancel", "cancel", "cancel", "draft", "draft"):
        b.invoice(b.person(), [(overdue(), amount())], scenario=state, state=state)
    # Due, but too recently: only the reminder went out.
    for _ in range(3):
        inv = b.invoice(b.person(), [(-rng.randint(15, 25), amount())], scenario="recent")
        b.dun(inv, levels=(1,))
    # Not due yet.
    for _ in range(4):
        b.invoice(b.person(), [(rng.randint(1, 30), amount())], scenario="not_due")
    # Reminder and first Mahnung, no announcing letter yet.
    for _ in range(3):
        b.dun(b.invoice(b.person(), [(overdue(), amount())], scenario="no_notice"), levels=(1, 2))
    # The announcing letter was made by a run 16 days before AS_OF (its `date`, which would be
    # old enough) but left only 12 days before: the notice period has not run out.
    inv = b.invoice(b.person(), [(-90, amount())], scenario="notice_too_recent")
    b.dun(inv, levels=(1, 2))
    b.letter(inv, 0, 3, AS_OF - _days(16), b.stamp(AS_OF - _days(12)))
    inv = b.invoice(b.person(), [(-60, amount())], scenario="notice_too_recent")
    b.dun(inv, levels=(1, 2))
    b.letter(inv, 0, 3, AS_OF - _days(10), b.stamp(AS_OF - _days(9)))
    # Level 3 as a phone call, and level 3 still a draft: no notice.
    inv = b.invoice(b.person(), [(overdue(), amount())], scenario="notice_by_phone")
    b.dun(inv, levels=(1, 2))
    b.letter(inv, 0, 3, inv.terms[0].due + _days(36), b.stamp(inv.terms[0].due + _days(36)),
             channel="phone")  # fmt: skip
    inv = b.invoice(b.person(), [(overdue(), amount())], scenario="notice_draft")
    b.dun(inv, levels=(1, 2))
    b.letter(inv, 0, 3, inv.terms[0].due + _days(36), b.stamp(inv.terms[0].due + _days(36)),
             state="draft")  # fmt: skip
    # The notice period's last day, in Berlin: marked sent at 23:30 UTC on 1 November is
    # 00:30 on 2 November in Berlin (= AS_OF - 14, just in time); 23:30 UTC on 2 November is
    # 3 November in Berlin (too late).
    for day, scenario in ((AS_OF - _days(15), "notice_midnight_in_time"),
                          (AS_OF - _days(14), "notice_midnight_too_late")):  # fmt: skip
        inv = b.invoice(b.person(), [(-80, amount())], scenario=scenario)
        b.dun(inv, levels=(1, 2))
        b.letter(inv, 0, 3, day - _days(2), dt.datetime.combine(day, dt.time(23, 30)))
    # A line whose date_sent a shop's customisation did write, changed again later: date_sent
    # is when it left.
    inv = b.invoice(b.person(), [(-100, amount())], scenario="date_sent")
    b.dun(inv, levels=(1, 2))
    b.letter(inv, 0, 3, AS_OF - _days(40), b.stamp(AS_OF - _days(3)), date_sent=AS_OF - _days(38))
    # Odoo's "No Follow-up" flag: disputed.
    for _ in range(3):
        inv = b.invoice(b.person(), [(overdue(), amount())], scenario="disputed")
        b.dun(inv)
        b.block(inv, 0)
    # Protective flags (tags): a deceased person, a person in hardship.
    b.dun(b.invoice(b.person(tags=["deceased"]), [(overdue(), amount())], scenario="protected"))
    person = b.person(tags=["hardship", "Stammkunde"])
    b.dun(b.invoice(person, [(overdue(), amount())], scenario="protected"))
    b.dun(b.invoice(b.person(tags=["Stammkunde"]), [(overdue(), amount())], scenario="eligible"))
    # Time-barred: DE due in 2022 (barred after 31 Dec 2025), AT due 1 Oct 2023 (+3 years).
    for country, due in (("DE", dt.date(2022, 6, 30)), ("AT", dt.date(2023, 10, 1))):
        inv = b.invoice(b.person(country=country), [((due - AS_OF).days, amount())],
                        scenario="time_barred")  # fmt: skip
        b.dun(inv)
    # An AT invoice due 20 Nov 2023 is not barred until 20 Nov 2026.
    inv = b.invoice(b.person(country="AT"), [((dt.date(2023, 11, 20) - AS_OF).days, amount())],
                    scenario="eligible")  # fmt: skip
    b.dun(inv)
    # No street: incomplete address.
    b.dun(b.invoice(b.person(street=None), [(overdue(), amount())], scenario="incomplete"))
    # Swiss francs: not served.
    b.dun(b.invoice(b.person(), [(overdue(), amount())], scenario="not_served", currency="CHF"))
    # Money received and not allocated: the person's, and a company's (holds its contacts).
    person = b.person()
    b.unallocated(person, 3000, AS_OF - _days(20))
    b.dun(b.invoice(person, [(overdue(), amount())], scenario="unallocated"))
    company = b.company()
    b.unallocated(company, 12000, AS_OF - _days(33))
    contact = b.person(parent=company)
    b.dun(b.invoice(contact, [(overdue(), amount())], scenario="unallocated"))
    # Companies: their own invoices, and their contacts' (the company is the debtor).
    for n in range(4):
        company = b.company(country="AT" if n == 3 else "DE")
        b.dun(b.invoice(company, [(overdue(), amount())], scenario="eligible_company"))
        contact = b.person(parent=company)
        b.consent(contact, 1, "answered", accepted=True)
        b.dun(b.invoice(contact, [(overdue(), amount())], scenario="eligible_contact"))
    # A contact whose own country is empty (the company's counts).
    company = b.company()
    contact = b.person(parent=company)
    b.rows["res_partner"][-1]["country_id"] = None
    contact.country = None
    b.dun(b.invoice(contact, [(overdue(), amount())], scenario="eligible_contact"))
    # A company in insolvency (a tag on the company): its contact's invoice is protected.
    company = b.company(tags=["insolvency"])
    contact = b.person(parent=company)
    b.dun(b.invoice(contact, [(overdue(), amount())], scenario="protected"))
    # A private person's invoice address (an 'invoice' child without a name): the person owes.
    person = b.person()
    address = b.partner(None, parent=person, type_="invoice", street2="c/o Nachbarn")
    b.dun(b.invoice(address, [(overdue(), amount())], scenario="eligible_invoice_address"))

    # Instalments (payment terms with several lines).
    # 3 lines: the first due long ago and fully dunned (eligible), the second only reminded
    # (not yet announced), the third not due yet.
    inv = b.invoice(b.person(), [(-150, 12000), (-45, 12000), (20, 12050)], scenario="instalments")
    b.dun(inv, 0)
    b.dun(inv, 1, levels=(1,))
    # 2 lines: the first paid in full by a payment on it, the second dunned.
    inv = b.invoice(b.person(), [(-200, 15000), (-110, 15000)], scenario="instalments")
    b.pay(inv, 0, 15000, inv.terms[0].due + _days(2))
    b.dun(inv, 1)
    # 2 lines, both overdue and each fully dunned: two cases.
    inv = b.invoice(b.company(), [(-180, 40000), (-120, 35000)], scenario="instalments")
    b.dun(inv, 0)
    b.dun(inv, 1)
    # 3 lines all overdue, only the first dunned.
    inv = b.invoice(b.person(country="AT"), [(-170, 9000), (-140, 9000), (-110, 9000)],
                    scenario="instalments")  # fmt: skip
    b.dun(inv, 0)
    # 2 lines, the first paid but 5.00, the second dunned.
    inv = b.invoice(b.person(), [(-160, 8000), (-100, 8000)], scenario="instalments")
    b.pay(inv, 0, 7500, inv.terms[0].due + _days(5))
    b.dun(inv, 0)
    b.dun(inv, 1)
    # 2 lines, the second paid on its own (Odoo reconciled the payment with that line) while
    # the first, dunned, stays open: the money is the second instalment's, not the oldest's.
    inv = b.invoice(b.person(), [(-150, 11000), (-100, 11000)], scenario="instalments")
    b.pay(inv, 1, 11000, inv.terms[1].due - _days(1))
    b.dun(inv, 0)
    # 2 lines, the second under "No Follow-up": the whole invoice is disputed.
    inv = b.invoice(b.person(), [(-150, 10000), (-90, 10000)], scenario="instalments")
    b.dun(inv, 0)
    b.dun(inv, 1)
    b.block(inv, 1)
    # 2 lines, the first due only 20 days ago.
    inv = b.invoice(b.person(), [(-20, 6000), (10, 6000)], scenario="instalments")
    b.dun(inv, 0, levels=(1,))
    # A contact's invoice in 2 lines, both dunned: business cases with the company's name.
    company = b.company()
    inv = b.invoice(b.person(parent=company), [(-130, 20000), (-100, 20000)],
                    scenario="instalments")  # fmt: skip
    b.dun(inv, 0)
    b.dun(inv, 1)
    # Consents answered, refused, unanswered; and an activity handover does not read.
    # (an accepted but archived record is no consent; a 'sent' one was never answered).
    for n, partner in enumerate(list(b.partners.values())[2::3]):
        b.consent(partner, 2, rng.choice(["answered", "sent", "draft"]), rng.random() < 0.6)
        b.consent(partner, 3, "answered", accepted=True)
        if 1 not in partner.consents:
            state = ["answered", "answered", "sent", "answered"][n % 4]
            b.consent(partner, 1, state, accepted=n % 5 != 1, active=n % 7 != 3)


def build_shop(url: str, *, seed: int = SEED) -> OdooShop:
    """Create the Odoo tables at `url` (a SQLAlchemy URL), fill them, create the pack's views;
    return what was put in."""
    builder = _Builder(seed)
    _populate(builder)
    builder.settle()
    with psycopg.connect(_conninfo(url)) as conn:
        conn.execute(DDL.read_text(encoding="utf-8"))
        conn.execute(TAG_TABLES)
        builder.write(conn)
        conn.execute(PACK.read_text(encoding="utf-8"))
    return OdooShop(url, builder.partners, builder.invoices)


def _conninfo(url: str) -> str:
    """psycopg's connection string for a `postgresql+psycopg://user@host:port/db` URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
