"""The comparison of the cases at an agency with the shop's facts (`handover.run.changes`).

A real shop database (`Shop`), extracted as a run extracts it: the batch handed over, what the
agency holds of it as the store keeps it (`changes.baseline` of the agency rows), then one fact
changed at a time in the shop and the same invoices extracted again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pandas as pd
import pytest

from handover.config import Rules
from handover.contract import COLUMNS as CASE_COLUMNS
from handover.crypto.keys import PseudonymKey
from handover.errors import KeyFileError
from handover.recall_contract import COLUMNS, row_problem
from handover.run import changes, decide, extract
from redaction.rows.policy import minimise
from tests.support.shopbuilder import AGENCY, AS_OF, Shop

KEY = PseudonymKey("d1gest00", bytes(range(32)))
FULL = replace(AGENCY, columns=CASE_COLUMNS)  # names, address, e-mail and phone with consent
CUSTOMERS = ("C1", "C2", "C3")


@pytest.fixture
def shop(tmp_path) -> Shop:
    shop = Shop(tmp_path / "shop.db")
    for customer in CUSTOMERS:
        shop.customer(customer).invoice(f"I{customer[1:]}", customer)
        shop.consent(customer, "contact_email", True, "2026-05-01 09:00:00")
        shop.consent(customer, "contact_phone", True, "2026-05-01 09:00:00")
    return Shop(shop.path, first_id=100)


def handed_over(shop: Shop, agency=FULL) -> pd.DataFrame:
    """What the store keeps of a handover of every eligible case to `agency`."""
    frames = extract.extract(shop.url, AS_OF)
    decision = decide.decide(frames, as_of=AS_OF, rules=Rules(), agencies=[agency])
    eligible = decision.eligible_for(agency.name)
    rows = minimise(eligible, frames["consents"], agency, b"p" * 32)
    sent = pd.DataFrame(
        {
            "customer_id": eligible["customer_id"],
            "case_ref": rows["case_ref"],
            "columns": rows.notna().dot(pd.Index(CASE_COLUMNS) + ",").str.rstrip(","),
            "agency": agency.name,
            "handover_drop_id": "D1",
        }
    ).join(changes.baseline(rows, KEY))
    sent["paused"] = False
    return sent.astype(object)


def compare(shop: Shop, sent: pd.DataFrame, agency=FULL, as_of=AS_OF) -> changes.Changes:
    frames = extract.extract_invoices(shop.url, list(sent.index), as_of)
    return changes.compare(
        sent, frames, as_of=as_of, rules=Rules(), agencies={agency.name: agency}, digest_key=KEY
    )


def sql(shop: Shop, statement: str, *params) -> None:
    with sqlite3.connect(shop.path) as db:
        db.execute(statement, params)


def told(found: changes.Changes) -> set[tuple[str, str, str]]:
    return {
        (str(i), m, r)
        for i, m, r in zip(
            found.messages.index,
            found.messages["message_type"],
            found.messages["reason_code"],
            strict=True,
        )
    }


def test_nothing_changed_nothing_to_say(shop):
    sent = handed_over(shop)
    assert len(sent) == 3
    found = compare(shop, sent)
    assert found.messages.empty and found.cases.empty and found.baselines.empty


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("UPDATE invoices SET status = 'cancelled' WHERE invoice_id = 'I1'", "cancelled"),
        ("UPDATE invoices SET status = 'written_off' WHERE invoice_id = 'I1'", "written_off"),
        ("UPDATE invoices SET status = 'paid' WHERE invoice_id = 'I1'", "paid_in_full"),
        ("DELETE FROM invoices WHERE invoice_id = 'I1'", "withdrawn"),
        (
            "INSERT INTO installment_plans VALUES ('P1', 'I1', '2026-06-01 09:00:00', 'active')",
            "installment_plan",
        ),
        (
            "INSERT INTO customer_flags VALUES ('C1', 'deceased', '2026-06-02 09:00:00', NULL)",
            "protected_customer",
        ),
        (
            "INSERT INTO disputes VALUES ('X1', 'I1', '2026-06-03 09:00:00', "
            "'2026-06-04 09:00:00', 'partially_upheld')",
            "disputed",
        ),
    ],
)
def test_each_recall_reason(shop, change, reason):
    sent = handed_over(shop)
    sql(shop, change)
    found = compare(shop, sent)
    assert told(found) == {("I1", "recall", reason)}
    (case,) = found.cases.itertuples()
    assert case.Index == "I1" and case.recalled and case.reasons == reason
    row = found.messages.iloc[0]
    assert row["fields"] == "" and row["invoice_number"] == (
        None if reason == "withdrawn" else "RE-I1"
    )
    days = {"installment_plan": "2026-06-01", "protected_customer": "2026-06-02"}
    assert row["effective_date"] == days.get(
        reason, "2026-06-03" if reason == "disputed" else AS_OF.isoformat()
    )


def test_a_recall_carries_its_first_reason_and_records_them_all_and_nothing_else(shop):
    sent = handed_over(shop)
    shop.dispute("I1", None, None).flag("C1", "hardship").payment("I1", 1000)
    sql(shop, "UPDATE customers SET street = 'Anderswo 1' WHERE customer_id = 'C1'")
    found = compare(shop, sent)
    assert told(found) == {("I1", "recall", "disputed")}  # no update for a recalled case
    assert found.cases.loc["I1", "reasons"] == "disputed,protected_customer"


def test_payments_refunds_and_corrected_amounts(shop):
    sent = handed_over(shop)
    shop.payment("I1", 1500, paid_at="2026-06-10 23:30:00")  # 11 June in Berlin
    shop.payment("I2", 2000, paid_at="2026-06-01 10:00:00").payment(
        "I2", -500, paid_at="2026-06-05 10:00:00"
    )
    sql(shop, "UPDATE invoices SET amount_cents = 4000 WHERE invoice_id = 'I3'")
    found = compare(shop, sent)
    assert told(found) == {
        ("I1", "update", "partial_payment"),
        ("I2", "update", "partial_payment"),
        ("I3", "update", "amount_corrected"),
    }
    rows = found.messages
    assert rows.loc[
        "I1", ["paid_cents", "open_cents", "payment_cents", "payment_date"]
    ].tolist() == [
        "1500",
        "3500",
        "1500",
        "2026-06-11",
    ]
    assert (
        rows.loc["I2", "payment_cents"] == "1500" and rows.loc["I2", "payment_date"] == "2026-06-05"
    )
    assert rows.loc["I3", "fields"] == "principal_cents;paid_cents;open_cents"
    assert rows.loc["I3", ["principal_cents", "open_cents"]].tolist() == ["4000", "4000"]
    assert found.cases.loc["I1", "paid_cents"] == 1500  # what the agency holds afterwards

    # Once told, the same facts say nothing new; a refund afterwards is a negative payment.
    told_state = sent.copy()
    for column in changes.STATE:
        told_state.loc[found.cases.index, column] = found.cases[column]
    assert compare(shop, told_state).messages.empty
    shop.payment("I1", -1500, paid_at="2026-06-12 10:00:00")
    again = compare(shop, told_state).messages
    assert again.loc["I1", ["payment_cents", "paid_cents", "open_cents"]].tolist() == [
        "-1500",
        "0",
        "5000",
    ]


def test_a_new_name_goes_only_as_far_as_the_policy_lets_it(shop):
    no_first_names = replace(FULL, columns=tuple(c for c in CASE_COLUMNS if c != "first_name"))
    sent = handed_over(shop, no_first_names)
    sql(shop, "UPDATE customers SET first_name = 'Erika' WHERE customer_id = 'C1'")
    assert compare(shop, sent, no_first_names).messages.empty  # not sent then, not now
    sql(shop, "UPDATE customers SET last_name = 'Musterfrau' WHERE customer_id = 'C1'")
    row = compare(shop, sent, no_first_names).messages.loc["I1"]
    assert (row["message_type"], row["reason_code"]) == ("update", "name_changed")
    assert row["fields"] == "last_name;company_name"
    assert (row["first_name"], row["last_name"], row["company_name"]) == (None, "Musterfrau", None)
    assert row["street"] is None


def test_channels_the_agency_must_delete(shop):
    sent = handed_over(shop)
    shop.consent("C1", "contact_email", False, "2026-06-12 09:00:00")
    sql(shop, "UPDATE customers SET phone = '030 7654321' WHERE customer_id = 'C2'")
    sql(shop, "UPDATE customers SET email = NULL WHERE customer_id = 'C3'")
    found = compare(shop, sent)
    assert told(found) == {
        ("I1", "erase_channel", "consent_withdrawn"),
        ("I2", "erase_channel", "contact_changed"),
        ("I3", "erase_channel", "contact_removed"),
    }
    rows = found.messages
    assert rows["channel"].to_dict() == {"I1": "email", "I2": "phone", "I3": "email"}
    assert rows.loc["I1", "effective_date"] == "2026-06-12"
    assert found.cases.loc["I1", "email_digest"] is None  # deleted: never again compared
    assert found.cases.loc["I1", "phone_digest"] == sent.loc["I1", "phone_digest"]
    # A new number, or a consent given again, is never sent by an update.
    for row in rows.itertuples():
        assert "030" not in str(row) and "@" not in str(row)

    # A policy that no longer lets phones leave: every number sent must go.
    no_phones = replace(FULL, columns=tuple(c for c in CASE_COLUMNS if c != "phone"))
    rows = compare(shop, sent, no_phones).messages
    assert set(zip(rows.index, rows["channel"], rows["reason_code"], strict=True)) == {
        ("I1", "email", "consent_withdrawn"),
        ("I1", "phone", "no_longer_allowed"),
        ("I2", "phone", "no_longer_allowed"),
        ("I3", "email", "contact_removed"),
        ("I3", "phone", "no_longer_allowed"),
    }


def test_a_hold_pauses_and_its_end_resumes(shop):
    sent = handed_over(shop)
    shop.hold(customer_id="C1", expires_at="2026-06-20 00:00:00")
    found = compare(shop, sent)
    assert told(found) == {("I1", "pause", "hold_set")}
    assert found.messages.loc["I1", "effective_date"] == "2026-04-04"
    assert found.cases.loc["I1", "paused"] is True
    paused = sent.copy()
    paused.loc["I1", "paused"] = True
    assert compare(shop, paused).messages.empty  # paused already
    later = compare(shop, paused, as_of=AS_OF.replace(day=21))  # the hold expired
    assert told(later) == {("I1", "resume", "hold_lifted")}


def test_unallocated_money_pauses_the_case_until_it_is_allocated(shop):
    sent = handed_over(shop)
    shop.unallocated("C2", 5000, received_at="2026-06-10 08:00:00")
    found = compare(shop, sent)
    assert told(found) == {("I2", "pause", "hold_set")}
    assert found.messages.loc["I2", "effective_date"] == "2026-06-10"
    assert found.cases.loc["I2", "paused"] is True
    paused = sent.copy()
    paused.loc["I2", "paused"] = True
    assert compare(shop, paused).messages.empty  # paused already
    # The bookkeeper allocates it to another invoice: the agency goes on.
    sql(shop, "UPDATE unallocated_payments SET allocated_at = '2026-06-12 09:00:00'")
    assert told(compare(shop, paused)) == {("I2", "resume", "hold_lifted")}


def test_a_flag_or_money_on_the_company_dates_its_contacts_recall_and_pause(tmp_path):
    shop = Shop(tmp_path / "shop.db")
    shop.customer("K1", kind="business", company_name="Beispiel GmbH")
    shop.customer("C1", parent_customer_id="K1").invoice("I1", "C1")
    shop.customer("C2", parent_customer_id="K1").invoice("I2", "C2")
    sent = handed_over(shop)
    assert sorted(sent.index) == ["I1", "I2"]
    shop.flag("K1", "insolvency")  # set 2026-04-03
    found = compare(shop, sent)
    assert told(found) == {
        ("I1", "recall", "protected_customer"),
        ("I2", "recall", "protected_customer"),
    }
    assert set(found.messages["effective_date"]) == {"2026-04-03"}  # the company's flag's day
    sql(shop, "DELETE FROM customer_flags")
    shop.unallocated("K1", 5000, received_at="2026-06-11 08:00:00")
    found = compare(shop, sent)
    assert told(found) == {("I1", "pause", "hold_set"), ("I2", "pause", "hold_set")}
    assert set(found.messages["effective_date"]) == {"2026-06-11"}


def test_an_invoice_at_an_agency_that_gets_instalments_is_withdrawn(shop):
    sent = handed_over(shop)
    shop.instalment("I1", "A", "2026-03-15", 2500).instalment("I1", "B", "2026-03-20", 2500)
    assert told(compare(shop, sent)) == {("I1", "recall", "withdrawn")}


def test_cases_from_before_recalls_get_a_baseline_and_only_absolute_messages(shop):
    sent = handed_over(shop)
    for column in changes.STATE:
        sent[column] = None
    sent["columns"] = "case_ref,email"  # the e-mail address was sent
    sql(shop, "UPDATE customers SET street = 'Anderswo 1' WHERE customer_id = 'C1'")
    shop.payment("I2", 1000).consent("C3", "contact_email", False, "2026-06-12 09:00:00")
    found = compare(shop, sent)
    assert told(found) == {("I3", "erase_channel", "consent_withdrawn")}
    assert sorted(found.baselines.index) == ["I1", "I2"]
    assert found.baselines.loc["I2", "paid_cents"] == 1000
    assert found.baselines.loc["I1", "digest_key"] == KEY.key_id
    assert found.baselines.loc["I1", "email_digest"] is not None


def test_a_replaced_digest_key_is_named_not_taken_for_changes(shop):
    sent = handed_over(shop)
    frames = extract.extract_invoices(shop.url, list(sent.index), AS_OF)
    other = PseudonymKey("0therkey", bytes(32))
    with pytest.raises(KeyFileError, match=r"made with the change digest key d1gest00.*0therkey"):
        changes.compare(
            sent, frames, as_of=AS_OF, rules=Rules(), agencies={FULL.name: FULL}, digest_key=other
        )


def test_a_message_that_breaks_the_contract_holds_back_its_case(shop):
    sent = handed_over(shop)
    sql(shop, "UPDATE customers SET postal_code = '1011' WHERE customer_id = 'C1'")  # DE: 5
    sql(shop, "UPDATE customers SET city = ? WHERE customer_id = 'C2'", "B" * 201)
    shop.payment("I1", 100)
    found = compare(shop, sent)
    kept, held = changes.check(found)
    assert sorted(held.itertuples(index=False, name=None)) == [
        ("I1", "invalid_postal_code"),
        ("I2", "too_long"),
    ]
    assert kept.messages.empty and kept.cases.empty  # the payment waits with its case


def test_every_message_row_meets_the_contract(shop):
    sent = handed_over(shop)
    shop.payment("I1", 100).hold(invoice_id="I2").consent(
        "C3", "contact_phone", False, "2026-06-12 09:00:00"
    )
    sql(shop, "UPDATE customers SET street = '=Formelweg 1' WHERE customer_id = 'C3'")
    found = compare(shop, sent)
    assert len(found.messages) == 4
    for row in found.messages[list(COLUMNS)].itertuples(index=False):
        cells = {c: "" if v is None else v for c, v in zip(COLUMNS, row, strict=True)}
        assert row_problem(cells) is None, cells
    assert (
        found.messages.loc[found.messages["reason_code"] == "address_changed", "street"].item()
        == "'=Formelweg 1"
    )
