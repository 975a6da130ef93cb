"""Each eligibility rule, at its boundaries, through the real SQLite extraction."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from handover.config import Route, Rules
from handover.errors import EligibilityError
from handover.run.decide import REASON_CODES, RULES, check_as_of, today_berlin
from tests.support.shopbuilder import AGENCY, AS_OF, Shop, reasons


@pytest.fixture
def shop(tmp_path):
    return Shop(tmp_path / "shop.db").customer()


def test_the_default_case_is_eligible_with_its_facts(shop):
    decision = shop.invoice().payment("I1", 1000).decide()
    assert reasons(decision) == set()
    case = decision.eligible.loc["I1"]
    assert (case.principal_cents, case.paid_cents, case.open_cents) == (5000, 1000, 4000)
    assert case.default_date.date() == dt.date(2026, 4, 10)
    # The default-causing Mahnung is not chargeable; the later final notice is.
    assert case.dunning_fees_cents == 500
    assert case.last_dunning_date.date() == dt.date(2026, 5, 1)
    assert case.handover_notice_date.date() == dt.date(2026, 5, 1)


def test_every_rule_has_a_code_and_a_demand():
    assert [rule.number for rule in RULES] == list(range(1, 18))
    assert len(set(REASON_CODES)) == 17


def test_only_open_overdue_invoices_are_cases(shop):
    shop.invoice("I2", status="paid").invoice("I3", due_date="2026-06-15")
    decision = shop.invoice().decide()
    assert list(decision.cases.index) == ["I1"]


# Rule 1 and 2: open amount


def test_rule1_fully_paid_is_not_open(shop):
    assert "not_open" in reasons(shop.invoice().payment("I1", 5000).decide())


def test_rule1_refunds_reopen_the_claim(shop):
    decision = shop.invoice().payment("I1", 5000).payment("I1", -2000).decide()
    assert reasons(decision) == set()
    assert decision.cases.loc["I1", "open_cents"] == 2000


def test_rule1_payment_after_as_of_still_counts(shop):
    # State fact: a back-dated run must not hand over a claim paid since.
    shop.invoice().payment("I1", 5000, paid_at="2026-11-01 10:00:00")
    assert "not_open" in reasons(shop.decide())


def test_rule2_below_minimum(shop):
    shop.invoice().payment("I1", 4001)
    assert reasons(shop.decide()) == {"below_minimum"}
    assert reasons(shop.decide(rules=Rules(minimum_open_cents=999))) == set()


def test_rule2_at_minimum_passes(shop):
    assert reasons(shop.invoice().payment("I1", 4000).decide()) == set()


# Rule 3: overdue long enough


def test_rule3_overdue_boundary(shop):
    shop.invoice(due_date="2026-05-16", dunned=False)
    shop.event("I1", "reminder", "2026-05-17 08:00:00", announces=False)
    shop.event("I1", "dunning", "2026-05-18 08:00:00")
    assert "overdue_too_short" in reasons(shop.decide(dt.date(2026, 6, 14)))
    assert reasons(shop.decide(dt.date(2026, 6, 15))) == set()


# Rule 4: dunning done and announced


def test_rule4_needs_a_reminder(shop):
    shop.invoice(dunned=False).event("I1", "dunning", "2026-04-10 08:00:00")
    assert reasons(shop.decide()) == {"dunning_incomplete"}


def test_rule4_needs_an_announcing_notice(shop):
    shop.invoice(dunned=False)
    shop.event("I1", "reminder", "2026-03-25 08:00:00", announces=False)
    shop.event("I1", "dunning", "2026-04-10 08:00:00", announces=False)
    assert reasons(shop.decide()) == {"dunning_incomplete"}


def test_rule4_notice_must_follow_the_reminder(shop):
    shop.invoice(dunned=False)
    shop.event("I1", "dunning", "2026-03-25 08:00:00")
    shop.event("I1", "reminder", "2026-04-10 08:00:00", announces=False)
    assert reasons(shop.decide()) == {"dunning_incomplete"}


def test_rule4_events_before_the_due_date_do_not_count(shop):
    shop.invoice(dunned=False)
    shop.event("I1", "reminder", "2026-03-10 08:00:00", announces=False)
    shop.event("I1", "final_notice", "2026-04-10 08:00:00")
    assert reasons(shop.decide()) == {"dunning_incomplete"}


def test_rule4_notice_needs_fourteen_days(shop):
    shop.invoice(dunned=False)
    shop.event("I1", "reminder", "2026-03-25 08:00:00", announces=False)
    shop.event("I1", "final_notice", "2026-06-02 08:00:00")
    assert reasons(shop.decide(dt.date(2026, 6, 15))) == {"dunning_incomplete"}
    assert reasons(shop.decide(dt.date(2026, 6, 16))) == set()


def test_rule4_counts_the_berlin_date(shop):
    # 22:30 UTC on 1 June is 00:30 on 2 June in Berlin (CEST): one day too recent.
    shop.invoice(dunned=False)
    shop.event("I1", "reminder", "2026-03-25 08:00:00", announces=False)
    shop.event("I1", "final_notice", "2026-06-01 22:30:00")
    assert reasons(shop.decide(dt.date(2026, 6, 15))) == {"dunning_incomplete"}


def test_rule4_notice_days_configurable(shop):
    shop.invoice(dunned=False)
    shop.event("I1", "reminder", "2026-03-25 08:00:00", announces=False)
    shop.event("I1", "final_notice", "2026-06-10 08:00:00")
    assert reasons(shop.decide(rules=Rules(notice_days=5))) == set()


# Rule 5: disputes


@pytest.mark.parametrize(
    ("resolved_at", "outcome", "excluded"),
    [
        (None, None, True),
        ("2026-04-20 09:00:00", "claim_withdrawn", True),
        ("2026-04-20 09:00:00", "partially_upheld", True),
        ("2026-04-20 09:00:00", "claim_upheld", False),
    ],
)
def test_rule5_disputes(shop, resolved_at, outcome, excluded):
    shop.invoice().dispute("I1", resolved_at, outcome)
    assert ("disputed" in reasons(shop.decide())) is excluded


# Rule 6: installment plans


@pytest.mark.parametrize(("status", "excluded"), [("active", True), ("completed", False)])
def test_rule6_installment_plan(shop, status, excluded):
    shop.invoice().plan("I1", status)
    assert ("installment_plan" in reasons(shop.decide())) is excluded


# Rule 7: protected customers


@pytest.mark.parametrize("flag", ["deceased", "insolvency", "hardship"])
def test_rule7_flag_in_force(shop, flag):
    assert reasons(shop.invoice().flag("C1", flag).decide()) == {"protected_customer"}


def test_rule7_cleared_flag_does_not_protect(shop):
    shop.invoice().flag("C1", "hardship", cleared_at="2026-05-01 00:00:00")
    assert reasons(shop.decide()) == set()


# Rule 8: minors


def test_rule8_minor_on_order_date(tmp_path):
    shop = Shop(tmp_path / "s.db").customer(date_of_birth="2008-03-01")
    shop.invoice(order_date="2026-02-28")
    assert reasons(shop.decide()) == {"minor"}


def test_rule8_unknown_birth_date_passes(tmp_path):
    shop = Shop(tmp_path / "s.db").customer(date_of_birth=None).invoice()
    assert reasons(shop.decide()) == set()


@pytest.mark.parametrize(("order_date", "minor"), [("2026-02-28", True), ("2026-03-01", False)])
def test_rule8_born_on_29_february(tmp_path, order_date, minor):
    shop = Shop(tmp_path / "s.db").customer(date_of_birth="2008-02-29")
    shop.invoice(order_date=order_date)
    assert ("minor" in reasons(shop.decide())) is minor


# Rule 9: limitation


@pytest.mark.parametrize(
    ("country", "postal", "due", "as_of", "barred"),
    [
        ("DE", "10115", "2022-05-10", dt.date(2025, 12, 31), False),
        ("DE", "10115", "2022-05-10", dt.date(2026, 1, 1), True),
        ("AT", "1010", "2023-06-14", dt.date(2026, 6, 14), False),
        ("AT", "1010", "2023-06-14", dt.date(2026, 6, 15), True),
    ],
)
def test_rule9_time_barred(tmp_path, country, postal, due, as_of, barred):
    shop = Shop(tmp_path / "s.db").customer(country=country, postal_code=postal)
    shop.invoice(due_date=due, order_date="2022-01-01", issued_at="2022-01-02", dunned=False)
    shop.event("I1", "reminder", f"{due[:4]}-08-01 08:00:00", announces=False)
    shop.event("I1", "dunning", f"{due[:4]}-09-01 08:00:00")
    assert ("time_barred" in reasons(shop.decide(as_of))) is barred


# Rule 10: already handed over


def test_rule10_already_handed_over(shop):
    assert reasons(shop.invoice().decide(handed_over=("I1",))) == {"already_handed_over"}


# Rule 16: a dispute or complaint an agency reported holds the case until `handover release`


def test_rule16_on_review_holds_back_an_otherwise_eligible_case(shop):
    shop.invoice().invoice("I2")
    decision = shop.decide(on_review=("I1",))
    assert reasons(decision) == {"on_review"}
    assert reasons(decision, "I2") == set()
    assert list(decision.reasons()) == ["on_review", ""]
    assert decision.reason_counts()["on_review"] == 1


# Rule 11: completeness


@pytest.mark.parametrize("column", ["street", "postal_code", "city", "last_name"])
def test_rule11_consumer_incomplete(tmp_path, column):
    shop = Shop(tmp_path / "s.db").customer(**{column: "  "}).invoice()
    assert reasons(shop.decide()) == {"incomplete"}


def test_rule11_business_needs_company_name_not_last_name(tmp_path):
    shop = Shop(tmp_path / "s.db")
    shop.customer("C1", kind="business", company_name="Ölmühle GmbH", last_name=None)
    shop.customer("C2", kind="business", company_name=" ", last_name="Huber")
    shop.invoice("I1", "C1").invoice("I2", "C2")
    decision = shop.decide()
    assert reasons(decision, "I1") == set()
    assert reasons(decision, "I2") == {"incomplete"}


# Rule 12: served by the agency


def test_rule12_currency_and_country(tmp_path):
    shop = Shop(tmp_path / "s.db").customer("C1").customer("C2", country="CH", postal_code="8001")
    shop.invoice("I1", "C1", currency="CHF").invoice("I2", "C2")
    decision = shop.decide()
    assert reasons(decision, "I1") == {"not_served"}
    assert reasons(decision, "I2") == {"not_served"}
    swiss = replace(AGENCY, currencies=("EUR", "CHF"), countries=("DE", "AT", "CH"))
    assert shop.decide(agency=swiss).reasons().eq("").all()


# Rule 13: holds


@pytest.mark.parametrize(
    ("on", "expires_at", "held"),
    [
        ("invoice", None, True),
        ("customer", None, True),
        ("invoice", "2026-06-20 00:00:00", True),
        ("invoice", "2026-06-14 21:59:00", False),  # 23:59 Berlin, the day before as_of
        ("customer", "2026-06-01 00:00:00", False),
    ],
)
def test_rule13_holds(shop, on, expires_at, held):
    shop.invoice()
    if on == "invoice":
        shop.hold(invoice_id="I1", expires_at=expires_at)
    else:
        shop.hold(customer_id="C1", expires_at=expires_at)
    assert ("on_hold" in reasons(shop.decide())) is held


# Rule 17: money received and not allocated


@pytest.mark.parametrize(
    ("amount", "received_at", "allocated_at", "held"),
    [
        (2000, "2026-06-01", None, True),
        (2000, "2026-06-01 09:30:00", "2026-06-03 10:00:00", False),  # allocated: it is a payment
        (0, "2026-06-01", None, False),  # nothing received
        (-300, "2026-06-01", None, False),  # money the shop owes back is no payment
        # State fact, like payments: a back-dated run sees money received since its as_of.
        (2000, "2026-11-01", None, True),
    ],
)
def test_rule17_unallocated_money_holds_every_invoice_of_the_customer(
    shop, amount, received_at, allocated_at, held
):
    shop.customer("C2").invoice("I1").invoice("I2").invoice("I3", "C2")
    shop.unallocated("C1", amount, received_at, allocated_at)
    decision = shop.decide()
    for invoice in ("I1", "I2"):
        assert ("unallocated_payment" in reasons(decision, invoice)) is held
    assert reasons(decision, "I3") == set()  # another customer's invoice


def test_rule17_without_the_optional_table_nothing_is_held(shop):
    shop.invoice()
    shop.db.execute("DROP TABLE unallocated_payments")
    decision = shop.decide()
    assert reasons(decision) == set()
    assert not decision.cases["unallocated_payment"].any()


# What a shop need not invent (README, "Less to invent")


def test_a_consumer_with_one_name_field_is_complete(tmp_path):
    shop = Shop(tmp_path / "s.db").customer(first_name=None, last_name="Jürgen Müller").invoice()
    assert reasons(shop.decide()) == set()


def test_a_dispute_that_is_only_an_open_flag_holds_the_case_back(shop):
    assert "disputed" in reasons(shop.invoice().dispute("I1", None, None).decide())


@pytest.mark.parametrize(
    ("held_until", "held"),
    [("2026-06-15", True), ("2026-06-14", False), ("2026-07-01", True)],  # as_of 2026-06-15
)
def test_rule13_a_hold_ends_after_its_inclusive_last_day(shop, held_until, held):
    shop.invoice().hold(invoice_id="I1", held_until=held_until)
    assert ("on_hold" in reasons(shop.decide())) is held


def test_rule13_a_shop_that_keeps_holds_without_expiry_columns(shop):
    shop.invoice().hold(customer_id="C1")
    shop.db.executescript(
        "ALTER TABLE holds RENAME TO shop_holds;"
        "CREATE VIEW holds AS SELECT hold_id, invoice_id, customer_id FROM shop_holds;"
    )
    assert "on_hold" in reasons(shop.decide())


def test_all_failing_reasons_are_reported(shop):
    shop.invoice(dunned=False).payment("I1", 4500).plan("I1", "active").flag("C1", "insolvency")
    assert reasons(shop.decide()) == {
        "below_minimum",
        "dunning_incomplete",
        "installment_plan",
        "protected_customer",
    }


def test_reason_counts_include_eligible(tmp_path):
    shop = Shop(tmp_path / "s.db").customer().invoice("I1").invoice("I2").plan("I2", "active")
    counts = shop.decide().reason_counts()
    assert counts["eligible"] == 1
    assert counts["installment_plan"] == 1
    assert counts["minor"] == 0


def test_future_as_of_is_refused():
    with pytest.raises(EligibilityError, match="in the future"):
        check_as_of(today_berlin() + dt.timedelta(days=1))
    assert check_as_of(AS_OF) == AS_OF


# Routing: global rules, then routing, then the agency's own thresholds


def two_agencies():
    consumers_de = replace(
        AGENCY,
        name="nord",
        route=Route(countries=("DE",), debtor_kinds=("consumer",)),
        rules=Rules(minimum_open_cents=3000),
    )
    rest = replace(
        AGENCY,
        name="sued",
        route=Route(countries=("DE", "AT"), debtor_kinds=("business",)),
    )
    return consumers_de, rest


@pytest.fixture
def routed_shop(tmp_path):
    shop = Shop(tmp_path / "s.db")
    shop.customer("C1")  # consumer DE -> nord
    shop.customer("C2", kind="business", company_name="Ölmühle GmbH")  # business DE -> sued
    shop.customer("C3", country="AT", postal_code="1010")  # consumer AT -> nobody
    for n in (1, 2, 3):
        shop.invoice(f"I{n}", f"C{n}")
    return shop


def test_each_case_goes_to_the_one_agency_whose_route_matches(routed_shop):
    decision = routed_shop.decide(agencies=two_agencies())
    assert decision.cases["agency"].to_dict() == {"I1": "nord", "I2": "sued", "I3": None}
    assert list(decision.eligible_for("nord").index) == ["I1"]
    assert list(decision.eligible_for("sued").index) == ["I2"]
    assert reasons(decision, "I3") == {"no_agency"}


def test_a_case_two_routes_match_is_ambiguous(routed_shop):
    nord, sued = two_agencies()
    greedy = replace(sued, route=Route(countries=("DE", "AT")))
    decision = routed_shop.decide(agencies=(nord, greedy))
    assert reasons(decision, "I1") == {"ambiguous_route"}
    assert decision.cases.loc["I1", "agency"] is None
    assert decision.cases.loc["I3", "agency"] == "sued"


def test_open_amount_band_routes(routed_shop):
    small = replace(AGENCY, name="small", route=Route(max_open_cents=4999))
    large = replace(AGENCY, name="large", route=Route(min_open_cents=5000))
    routed_shop.payment("I2", 2000)
    decision = routed_shop.decide(agencies=(small, large))
    assert decision.cases["agency"].to_dict() == {"I1": "large", "I2": "small", "I3": "large"}


def test_the_chosen_agencys_own_thresholds_apply_after_routing(routed_shop):
    routed_shop.payment("I1", 2500).payment("I2", 2500)  # 25.00 open on both
    decision = routed_shop.decide(agencies=two_agencies())
    assert reasons(decision, "I1") == {"below_minimum"}  # nord demands 30.00
    assert reasons(decision, "I2") == set()  # sued keeps the global 10.00


def test_the_chosen_agencys_notice_period_decides_rule4(routed_shop):
    nord, sued = two_agencies()
    # The final notice (1 May) is 45 days old, the Mahnung (10 April) 66 days.
    decision = routed_shop.decide(agencies=(replace(nord, rules=Rules(notice_days=60)), sued))
    assert reasons(decision, "I1") == set()
    assert decision.cases.loc["I1", "handover_notice_date"].date() == dt.date(2026, 4, 10)
    assert decision.cases.loc["I2", "handover_notice_date"].date() == dt.date(2026, 5, 1)
    decision = routed_shop.decide(agencies=(replace(nord, rules=Rules(notice_days=70)), sued))
    assert reasons(decision, "I1") == {"dunning_incomplete"}
    assert reasons(decision, "I2") == set()
