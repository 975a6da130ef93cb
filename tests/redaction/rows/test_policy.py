"""Minimisation: only allowed columns leave, contact data only with consent in force."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from handover.config import default_columns
from handover.contract import COLUMNS, REQUIRED_COLUMNS, columns_sent, read_csv_rows, to_csv_bytes
from redaction.rows.policy import minimise
from tests.support.shopbuilder import AGENCY, Shop

KEY = bytes(range(32))
# The agency most tests use allows contact data, so that consent decides what leaves; the
# default allow-list withholds it altogether (test_the_default_allow_list_withholds_contact_data).
DEFAULT_AGENCY = replace(AGENCY, columns=tuple(c for c in COLUMNS if c != "date_of_birth"))


@pytest.fixture
def shop(tmp_path):
    shop = Shop(tmp_path / "shop.db")
    for customer in ("C1", "C2", "C3", "C4"):
        shop.customer(customer, email=f"{customer.lower()}@example.de", phone="0171 2345678")
        shop.invoice(f"I{customer[1]}", customer)
    # C1 granted both; C2 granted, then withdrew e-mail; C3 refused, then granted phone; C4 none.
    shop.consent("C1", "contact_email", True, "2025-01-01 10:00:00", "checkout")
    shop.consent("C1", "contact_phone", True, "2025-01-01 10:00:00", "checkout")
    shop.consent("C2", "contact_email", True, "2025-01-01 10:00:00")
    shop.consent("C2", "contact_email", False, "2026-02-01 10:00:00")
    shop.consent("C3", "contact_phone", True, "2026-02-01 10:00:00")
    shop.consent("C3", "contact_phone", False, "2025-02-01 10:00:00")
    return shop


def rows_for(shop, agency=DEFAULT_AGENCY):
    frames = shop.frames()
    decision = shop.decide(agency=agency)
    return minimise(decision.eligible, frames["consents"], agency, KEY)


def test_rows_have_exactly_the_contract_columns(shop):
    rows = rows_for(shop)
    assert tuple(rows.columns) == COLUMNS
    assert len(rows) == 4


def test_contact_data_only_with_consent_in_force(shop):
    rows = rows_for(shop)
    assert rows.loc["I1", "email"] == "c1@example.de"
    assert rows.loc["I1", "phone"] == "+491712345678"  # E.164, see test_phone_*
    assert rows.loc["I2", "email"] is None  # withdrawn later
    assert rows.loc["I3", "phone"] == "+491712345678"  # the later grant is in force
    assert rows.loc["I3", "email"] is None
    assert rows.loc["I4", ["email", "phone"]].isna().all()


def test_columns_outside_the_allow_list_are_empty(shop):
    allowed = tuple(c for c in COLUMNS if c not in {"first_name", "email", "phone"})
    rows = rows_for(shop, replace(AGENCY, columns=allowed))
    assert rows[["first_name", "email", "phone"]].isna().all().all()
    sent = set(",".join(columns_sent(rows)).split(","))
    assert sent <= set(allowed)


def test_birth_date_is_off_by_default(shop):
    assert "date_of_birth" not in DEFAULT_AGENCY.columns
    assert rows_for(shop)["date_of_birth"].isna().all()
    with_birth = replace(AGENCY, columns=COLUMNS)
    assert rows_for(shop, with_birth).loc["I1", "date_of_birth"] == "1980-05-17"


def test_values_and_dates(shop):
    row = rows_for(shop).loc["I1"]
    assert row.invoice_number == "RE-I1"
    assert row.debtor_kind == "consumer"
    assert row.last_name == "Müller-Lüdenscheidt"
    assert (row.order_date, row.invoice_date, row.due_date) == (
        "2026-02-28",
        "2026-03-01",
        "2026-03-15",
    )
    assert (row.default_date, row.last_dunning_date, row.handover_notice_date) == (
        "2026-04-10",
        "2026-05-01",
        "2026-05-01",
    )
    assert (row.principal_cents, row.paid_cents, row.open_cents, row.dunning_fees_cents) == (
        5000,
        0,
        5000,
        500,
    )
    assert row.claim_subject == "Online-Bestellung RE-I1 vom 28.02.2026"


def test_claim_subject_template(shop):
    agency = replace(DEFAULT_AGENCY, claim_subject="Rechnung {invoice_number}, fällig {due_date}")
    assert rows_for(shop, agency).loc["I1", "claim_subject"] == "Rechnung RE-I1, fällig 15.03.2026"


def test_internal_ids_never_appear(shop):
    data = to_csv_bytes(rows_for(shop))
    cells = {cell for row in read_csv_rows(data) for cell in row.values()}
    assert not cells & {"C1", "C2", "I1", "I2", "O-I1"}
    for detail in (b"DE89370400440532013000", b"sepa_debit", b"Ratenzahlung"):
        assert detail not in data


def test_csv_is_rfc4180_with_crlf_and_roundtrips(shop):
    rows = rows_for(shop)
    data = to_csv_bytes(rows)
    assert data.startswith(",".join(COLUMNS).encode() + b"\r\n")
    assert data.count(b"\r\n") == len(rows) + 1
    parsed = read_csv_rows(data)
    assert parsed[0]["last_name"] == "Müller-Lüdenscheidt"
    assert parsed[3]["email"] == ""
    assert parsed[0]["open_cents"] == "5000"


def test_required_columns_are_in_the_default_allow_list():
    assert set(REQUIRED_COLUMNS) <= set(default_columns())


def test_the_default_allow_list_withholds_contact_data(shop):
    # C1 consented to e-mail and phone: without `columns` in the file they still do not leave.
    rows = rows_for(shop, replace(AGENCY, columns=tuple(default_columns())))
    assert rows.loc["I1", "first_name"] == "Jürgen"
    assert rows[["email", "phone", "date_of_birth"]].isna().all().all()
    assert set(default_columns()) == set(REQUIRED_COLUMNS) | {"first_name"}


# --- CSV injection and phones (redaction/rows/csv_injection.py, phones.py) ---------------------


def one_customer_shop(tmp_path, **fields):
    shop = Shop(tmp_path / "shop.db")
    shop.customer("C1", **fields).invoice("I1", "C1")
    shop.consent("C1", "contact_phone", True, "2025-01-01 10:00:00")
    return shop


@pytest.mark.parametrize(
    ("column", "value", "sent"),
    [
        ("first_name", '=HYPERLINK("http://x.example";"klick")', "'=HYPERLINK("),
        ("last_name", "-Müller", "'-Müller"),
        ("street", "@SUM(A1:A9) 1", "'@SUM(A1:A9) 1"),
        ("city", "+Berlin", "'+Berlin"),
        ("first_name", "\t=1+1", "'=1+1"),  # stripped first, then still a formula
        ("last_name", "＝cmd|' /C calc'!A0", "'＝cmd"),  # full-width equals sign
    ],
)
def test_formula_cells_are_neutralised(tmp_path, column, value, sent):
    shop = one_customer_shop(tmp_path, **{column: value})
    rows = rows_for(shop)
    assert rows.loc["I1", column].startswith(sent)
    parsed = read_csv_rows(to_csv_bytes(rows))
    assert parsed[0][column].startswith(sent)


def test_an_invoice_number_that_starts_like_a_formula_is_neutralised(tmp_path):
    shop = Shop(tmp_path / "shop.db")
    shop.customer("C1").invoice("I1", "C1", invoice_number="-2024-1")
    rows = rows_for(shop)
    assert rows.loc["I1", "invoice_number"] == "'-2024-1"
    assert read_csv_rows(to_csv_bytes(rows))[0]["invoice_number"] == "'-2024-1"


def test_ordinary_text_is_left_alone(tmp_path):
    shop = one_customer_shop(tmp_path, last_name="Müller-Lüdenscheidt", street="Am Berg 1-3")
    row = rows_for(shop).loc["I1"]
    assert (row.last_name, row.street) == ("Müller-Lüdenscheidt", "Am Berg 1-3")


def test_claim_subject_from_a_formula_template_is_neutralised(tmp_path):
    shop = one_customer_shop(tmp_path)
    agency = replace(DEFAULT_AGENCY, claim_subject="=Rechnung {invoice_number}")
    assert rows_for(shop, agency).loc["I1", "claim_subject"] == "'=Rechnung RE-I1"


@pytest.mark.parametrize(
    ("country", "stored", "e164"),
    [
        ("DE", "030 1234567", "+49301234567"),
        ("DE", "(030) 123 45 67", "+49301234567"),
        ("DE", "+49 (0)171 2345678", "+491712345678"),
        ("AT", "01 234567", "+431234567"),  # Vienna, read with the customer's country
        ("AT", "+49 30 1234567", "+49301234567"),  # an international number keeps its country
    ],
)
def test_phone_is_normalised_to_e164(tmp_path, country, stored, e164):
    postal_code = "1010" if country == "AT" else "10115"
    shop = one_customer_shop(tmp_path, phone=stored, country=country, postal_code=postal_code)
    rows = rows_for(shop)
    assert rows.loc["I1", "phone"] == e164
    assert read_csv_rows(to_csv_bytes(rows))[0]["phone"] == e164  # '+' by design, not quoted


@pytest.mark.parametrize("stored", ["call me", "00025 04707", "12", "+49 0"])
def test_unusable_phone_is_left_out_and_the_case_still_leaves(tmp_path, stored):
    shop = one_customer_shop(tmp_path, phone=stored)
    rows = rows_for(shop)
    assert list(rows.index) == ["I1"]
    assert rows.loc["I1", "phone"] is None
    assert rows.loc["I1", "last_name"] == "Müller-Lüdenscheidt"


def test_phone_without_consent_or_policy_is_not_sent(tmp_path):
    shop = one_customer_shop(tmp_path)
    without_phone = replace(DEFAULT_AGENCY, columns=tuple(c for c in COLUMNS if c != "phone"))
    assert rows_for(shop, without_phone).loc["I1", "phone"] is None
    shop.consent("C1", "contact_phone", False, "2026-01-01 10:00:00")
    assert rows_for(shop).loc["I1", "phone"] is None


def test_phones_are_parsed_once_per_distinct_number(monkeypatch):
    import phonenumbers

    from redaction.rows.phones import to_e164

    calls = []
    real_parse = phonenumbers.parse
    monkeypatch.setattr(phonenumbers, "parse", lambda *a: calls.append(a) or real_parse(*a))
    phones = pd.Series(["030 1234567", None, "030 1234567", "01 234567"], index=list("abcd"))
    countries = pd.Series(["DE", "DE", "DE", "AT"], index=list("abcd"))
    assert to_e164(phones, countries).to_dict() == {
        "a": "+49301234567",
        "b": None,
        "c": "+49301234567",
        "d": "+431234567",
    }
    assert sorted(calls) == [("01 234567", "AT"), ("030 1234567", "DE")]
