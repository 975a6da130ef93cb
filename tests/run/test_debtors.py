"""Contacts of a company (`customers.parent_customer_id`): the company owes, its facts hold back
the contacts' cases, and the agency's row names it, through the real SQLite extraction."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from handover.config import Rules
from handover.contract import COLUMNS, read_csv_rows, to_csv_bytes
from handover.run.decide import decide
from handover.run.quarantine import quarantine
from redaction.rows.policy import minimise
from tests.support.shopbuilder import AGENCY, AS_OF, Shop, reasons

KEY = bytes(range(32))
COMPANY = {
    "kind": "business",
    "first_name": None,
    "last_name": None,
    "company_name": "Beispiel Handels GmbH",
    "date_of_birth": None,
    "email": "buchhaltung@beispiel.example",
    "phone": None,
    "street": "Industriestraße 7",
    "postal_code": "80331",
    "city": "München",
    "country": "DE",
    "language": "de",
}


@pytest.fixture
def shop(tmp_path) -> Shop:
    """Company K1 (no case of its own), its contact C1 with invoice I1, and customer C2 with I2."""
    shop = Shop(tmp_path / "shop.db").customer("K1", **COMPANY)
    return (
        shop.customer("C1", parent_customer_id="K1")
        .customer("C2")
        .invoice("I1")
        .invoice("I2", "C2")
    )


def agency_rows(shop: Shop) -> dict[str, dict[str, str]]:
    """The agency file's rows by invoice number, as a run writes them."""
    checked = quarantine(shop.frames(), "source")
    frames = dict(checked.kept)
    agency = replace(AGENCY, rules=Rules(), columns=COLUMNS)
    decision = decide(frames, as_of=AS_OF, rules=Rules(), agencies=(agency,))
    rows = minimise(decision.eligible_for(agency.name), frames["consents"], agency, KEY)
    return {row["invoice_number"]: row for row in read_csv_rows(to_csv_bytes(rows))}


def test_the_company_is_the_debtor_and_the_contact_its_contact_person(shop):
    shop.consent("C1", "contact_email", True, "2026-01-01 10:00:00")
    row = agency_rows(shop)["RE-I1"]
    assert row["debtor_kind"] == "business"
    assert row["company_name"] == "Beispiel Handels GmbH"
    assert (row["street"], row["postal_code"], row["city"]) == (
        "Industriestraße 7",
        "80331",
        "München",
    )
    # The contact person: their name, and the e-mail address they consented to.
    assert (row["first_name"], row["last_name"]) == ("Jürgen", "Müller-Lüdenscheidt")
    assert row["email"] == "j.mueller@example.de"
    assert row["date_of_birth"] == ""  # the contact's birth date is not the company's


def test_a_customer_without_a_company_owes_itself(shop):
    row = agency_rows(shop)["RE-I2"]
    assert (row["debtor_kind"], row["company_name"], row["street"]) == (
        "consumer",
        "",
        "Hauptstraße 1",
    )


@pytest.mark.parametrize(
    ("fact", "code"),
    [
        (lambda s: s.flag("K1", "insolvency"), "protected_customer"),
        (lambda s: s.hold(customer_id="K1"), "on_hold"),
        (lambda s: s.unallocated("K1", 10_000), "unallocated_payment"),
    ],
)
def test_a_fact_on_the_company_holds_back_its_contacts_cases(shop, fact, code):
    fact(shop)
    decision = shop.decide()
    assert code in reasons(decision, "I1")
    assert reasons(decision, "I2") == set()  # not a contact of the company


def test_an_insolvent_company_is_not_handed_over_through_its_contact(shop):
    shop.flag("K1", "insolvency")
    assert "RE-I1" not in agency_rows(shop)


def test_the_minor_rule_does_not_read_a_contacts_birth_date(tmp_path):
    shop = Shop(tmp_path / "shop.db").customer("K1", **COMPANY)
    shop.customer("C1", parent_customer_id="K1", date_of_birth="2012-01-01").invoice("I1")
    assert reasons(shop.decide()) == set()


@pytest.mark.parametrize(
    "parent",
    [
        {"customer_id": "K1", "kind": "consumer"},  # a person cannot have contacts
        {"customer_id": "K1", "parent_customer_id": "K0"},  # the company is a contact itself
        None,  # the parent id names nobody
    ],
)
def test_an_unclear_company_holds_the_contacts_cases_back(tmp_path, parent):
    shop = Shop(tmp_path / "shop.db")
    if parent is not None:
        if "parent_customer_id" in parent:
            shop.customer("K0", **COMPANY)
        shop.customer(**{**COMPANY, **parent})
    shop.customer("C1", parent_customer_id="K1").customer("C2").invoice("I1").invoice("I2", "C2")
    checked = quarantine(shop.frames(), "source", max_share=None)
    assert checked.quarantined.to_dict("records") == [
        {"invoice_id": "I1", "reasons": "invalid_company"}
    ]


def test_a_bad_row_of_the_company_holds_the_contacts_cases_back(shop):
    shop.db.execute("UPDATE customers SET country = 'Deutschland' WHERE customer_id = 'K1'")
    shop.db.commit()
    checked = quarantine(shop.frames(), "source", max_share=None)
    assert checked.quarantined.to_dict("records") == [
        {"invoice_id": "I1", "reasons": "invalid_country"}
    ]


def test_a_shop_without_the_column_reads_every_customer_as_its_own_debtor(tmp_path):
    shop = Shop(tmp_path / "shop.db").customer().invoice()
    shop.db.executescript(
        "ALTER TABLE customers RENAME TO shop_customers;"
        "CREATE VIEW customers AS SELECT customer_id, kind, first_name, last_name, company_name,"
        " date_of_birth, email, phone, street, postal_code, city, country, language, created_at"
        " FROM shop_customers;"
    )
    frames = shop.frames()
    assert frames["customers"]["parent_customer_id"].isna().all()
    assert reasons(shop.decide()) == set()


def test_facts_of_a_company_without_cases_are_extracted(shop):
    shop.flag("K1", "hardship").flag("C2", "hardship", cleared_at="2026-01-01 00:00:00")
    frames = shop.frames()
    assert set(frames["customers"]["customer_id"]) == {"K1", "C1", "C2"}
    assert sorted(frames["customer_flags"]["customer_id"]) == ["C2", "K1"]
    assert pd.Index(frames["consents"]["customer_id"]).isin(["C1", "C2"]).all()
