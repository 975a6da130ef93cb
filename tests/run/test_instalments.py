"""Cases per instalment (`handover.run.instalments`), through the real SQLite extraction, the
source suite and the rules."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from handover.case_keys import invoice_ids
from handover.run import extract as source
from handover.run.instalments import per_instalment
from handover.run.quarantine import quarantine
from tests.support.shopbuilder import AS_OF, Shop, reasons


@pytest.fixture
def shop(tmp_path) -> Shop:
    """Invoice I1 over 60.00 in two instalments of 30.00, due 15 March and 10 May."""
    shop = Shop(tmp_path / "shop.db").customer()
    shop.invoice(dunned=False, amount_cents=6000, due_date="2026-05-10")
    return shop.instalment("I1", "A", "2026-03-15", 3000).instalment("I1", "B", "2026-05-10", 3000)


def dun(shop: Shop, instalment: str | None, *days: str, fee: int = 500) -> Shop:
    """A reminder, a Mahnung and an announcing final notice on `days`, naming `instalment`."""
    reminder, dunning, final = days
    shop.event("I1", "reminder", f"{reminder} 08:00:00", announces=False, instalment=instalment)
    shop.event("I1", "dunning", f"{dunning} 08:00:00", fee=fee, instalment=instalment)
    return shop.event("I1", "final_notice", f"{final} 08:00:00", fee=fee, instalment=instalment)


def test_one_instalment_leaves_the_next_not_yet_announced_stays(shop):
    dun(shop, "A", "2026-03-25", "2026-04-10", "2026-05-01", fee=700)
    shop.event("I1", "reminder", "2026-05-25 08:00:00", announces=False, instalment="B")
    decision = shop.decide()
    assert list(decision.cases.index) == ["I1#A", "I1#B"]
    assert list(decision.eligible.index) == ["I1#A"]
    assert reasons(decision, "I1#B") == {"dunning_incomplete"}
    first = decision.cases.loc["I1#A"]
    assert first.instalment_number == 1 and decision.cases.loc["I1#B", "instalment_number"] == 2
    assert first.invoice_number == "RE-I1"
    assert first.due_date == pd.Timestamp("2026-03-15")
    assert first.default_date == pd.Timestamp("2026-04-10")
    assert first.dunning_fees_cents == 700  # the final notice's; the Mahnung caused the default
    assert (first.principal_cents, first.open_cents) == (3000, 3000)
    assert first.handover_notice_date == pd.Timestamp("2026-05-01")
    # Instalment B's facts are its own: its reminder, no default, no fee.
    second = decision.cases.loc["I1#B"]
    assert pd.isna(second.default_date) and second.dunning_fees_cents == 0


def test_a_whole_invoice_would_have_left_with_the_first_instalments_dates(tmp_path):
    """The wrong handover the issue describes, as it happens without instalments."""
    shop = Shop(tmp_path / "shop.db").customer()
    shop.invoice(dunned=False, amount_cents=6000, due_date="2026-03-15")
    shop.event("I1", "reminder", "2026-03-25 08:00:00", announces=False)
    shop.event("I1", "dunning", "2026-04-10 08:00:00", fee=500)
    shop.event("I1", "final_notice", "2026-05-01 08:00:00", fee=500)
    assert list(shop.decide().eligible.index) == ["I1"]
    shop.instalment("I1", "A", "2026-03-15", 3000).instalment("I1", "B", "2026-05-10", 3000)
    # The same letters on the whole invoice, all sent before B fell due: only A is dunned.
    assert list(shop.decide().eligible.index) == ["I1#A"]


def test_an_instalment_of_an_invoice_at_an_agency_is_not_handed_over_again(shop):
    """The whole invoice left before the shop listed its instalments: until it is recalled,
    none of its instalments leaves."""
    dun(shop, None, "2026-05-21", "2026-05-22", "2026-05-25")
    assert reasons(shop.decide(), "I1#A") == set()
    decision = shop.decide(handed_over=("I1",))
    assert all("already_handed_over" in reasons(decision, c) for c in ("I1#A", "I1#B"))
    assert "already_handed_over" not in reasons(shop.decide(handed_over=("I1#A",)), "I1#B")


def test_money_pays_the_oldest_instalment_first_unless_it_names_one(shop):
    shop.payment("I1", 2000).payment("I1", 1500)  # 35.00: all of A, 5.00 of B
    cases = shop.decide().cases
    assert list(cases["paid_cents"]) == [3000, 500]
    assert list(cases["open_cents"]) == [0, 2500]
    assert "not_open" in reasons(shop.decide(), "I1#A")
    shop.payment("I1", 1000, instalment="B")  # B is paid 10.00 by name: the rest goes to A first
    cases = shop.decide().cases
    assert list(cases["paid_cents"]) == [3000, 1500]


def test_money_beyond_every_instalment_stays_with_the_last(shop):
    shop.payment("I1", 7000)
    assert list(shop.decide().cases["open_cents"]) == [0, -1000]


def test_a_letter_on_the_whole_invoice_counts_for_the_instalments_due_before_it(shop):
    dun(shop, None, "2026-05-21", "2026-05-22", "2026-05-25")
    decision = shop.decide()
    # Sent after both fell due: both are dunned by the same letters; each fee is charged once.
    assert list(decision.cases["handover_notice_date"]) == [pd.Timestamp("2026-05-25")] * 2
    assert list(decision.cases["dunning_fees_cents"]) == [500, 0]
    assert reasons(decision, "I1#A") == set()


def test_an_instalment_not_yet_due_is_no_case(shop):
    decision = shop.decide(dt.date(2026, 5, 1))
    assert list(decision.cases.index) == ["I1#A"]
    assert list(shop.decide(dt.date(2026, 3, 10)).cases.index) == []


def test_an_invoice_due_later_is_a_case_once_its_first_instalment_is_due(tmp_path):
    shop = Shop(tmp_path / "shop.db").customer()
    # The invoice's own due date is the last instalment's (as Odoo keeps it).
    shop.invoice(dunned=False, amount_cents=6000, due_date="2026-09-30")
    shop.instalment("I1", "A", "2026-03-15", 3000).instalment("I1", "B", "2026-09-30", 3000)
    assert list(shop.decide().cases.index) == ["I1#A"]


@pytest.mark.parametrize("fact", ["dispute", "plan", "hold"])
def test_a_dispute_plan_or_hold_on_the_invoice_holds_every_instalment(shop, fact):
    dun(shop, None, "2026-05-21", "2026-05-22", "2026-05-25")
    code = {"dispute": "disputed", "plan": "installment_plan", "hold": "on_hold"}[fact]
    {
        "dispute": lambda: shop.dispute("I1", None, None),
        "plan": lambda: shop.plan("I1", "active"),
        "hold": lambda: shop.hold(invoice_id="I1"),
    }[fact]()
    decision = shop.decide()
    assert all(code in reasons(decision, case) for case in ("I1#A", "I1#B"))


def test_an_invoice_without_instalments_is_untouched(tmp_path):
    shop = Shop(tmp_path / "shop.db").customer().invoice().invoice("I2").payment("I2", 100)
    shop.instalment("I2", "A", "2026-03-15", 2500).instalment("I2", "B", "2026-03-20", 2500)
    frames = shop.frames()
    split = per_instalment(frames, AS_OF)
    whole = split["invoices"].set_index("invoice_id").loc["I1"]
    assert pd.isna(whole.instalment_number) and whole.amount_cents == 5000
    for table in ("payments", "dunning_events"):
        mine = split[table][split[table]["invoice_id"] == "I1"].reset_index(drop=True)
        theirs = frames[table][frames[table]["invoice_id"] == "I1"].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, theirs)


def test_without_instalments_the_frames_are_the_same(tmp_path):
    frames = Shop(tmp_path / "shop.db").customer().invoice().payment("I1", 100).frames()
    split = per_instalment(frames, AS_OF)
    assert all(split[table] is frames[table] for table in frames)
    assert "instalment_number" not in split["invoices"]


def held(shop: Shop) -> dict[str, str]:
    result = quarantine(shop.frames(), "source", max_share=None)
    return dict(zip(result.quarantined["invoice_id"], result.quarantined["reasons"], strict=True))


def test_instalments_that_do_not_add_up_hold_the_invoice_back(shop):
    shop.instalment("I1", "C", "2026-05-30", 1)
    assert held(shop) == {"I1": "invalid_instalment"}


def test_a_letter_or_payment_naming_another_invoices_instalment_holds_it_back(shop):
    shop.invoice("I2", dunned=False).payment("I2", 100, instalment="A")
    assert held(shop) == {"I2": "invalid_instalment"}
    shop.event("I1", "reminder", "2026-03-25 08:00:00", announces=False, instalment="Z")
    assert held(shop) == {"I1": "invalid_instalment", "I2": "invalid_instalment"}


def test_an_invoice_id_with_the_separator_cannot_have_instalments(tmp_path):
    shop = Shop(tmp_path / "shop.db").customer().invoice("I#1", dunned=False)
    assert held(shop) == {}
    shop.instalment("I#1", "A", "2026-03-15", 5000)
    assert held(shop) == {"I#1": "invalid_instalment"}


def test_an_unreadable_instalment_due_date_holds_the_invoice_back(shop):
    shop.db.execute(
        "UPDATE invoice_instalments SET due_date = '2026-02-30' WHERE instalment_id = 'B'"
    )
    shop.db.commit()
    assert held(shop) == {"I1": "invalid_date"}


def test_the_cases_at_an_agency_are_read_by_their_invoice(shop):
    assert invoice_ids(["I1#A", "I2", "X#1#2"]) == ["I1#A", "I2", "X#1#2", "I1", "X"]
    frames = source.extract_invoices(shop.url, invoice_ids=["I1#B"], as_of=AS_OF)
    assert list(frames["invoices"]["invoice_id"]) == ["I1"]
    assert sorted(frames["invoice_instalments"]["instalment_id"]) == ["A", "B"]
