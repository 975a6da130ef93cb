"""`[source.dunning_levels]`: a view that delivers the shop's dunning levels as `kind` decides
as one that delivers the contract's kinds; an unknown level holds its invoice back."""

from __future__ import annotations

import pytest

from handover.config_schema import DunningLevel
from handover.errors import SourceError
from handover.run import extract
from handover.run.decide import decide
from handover.run.quarantine import quarantine
from tests.support.shopbuilder import AGENCY, AS_OF, Shop, reasons

LEVELS = {
    "1": DunningLevel(kind="reminder", announces_handover=False),
    "2": DunningLevel(kind="dunning", announces_handover=True),
    "3": DunningLevel(kind="final_notice", announces_handover=True),
}
AS_LEVELS = "CASE kind WHEN 'reminder' THEN 1 WHEN 'dunning' THEN 2 ELSE 3 END"


@pytest.fixture
def shop(tmp_path) -> Shop:
    """I1 dunned completely (reminder, Mahnung, final notice), I2 with a reminder only."""
    shop = Shop(tmp_path / "shop.db").customer().invoice("I1").invoice("I2", dunned=False)
    return shop.event("I2", "reminder", "2026-03-25 08:00:00", announces=False)


def levelled(shop: Shop, *, announces: bool) -> None:
    """The events as a shop's view delivers them: its integer level as kind, with or without
    the notice flag."""
    flag = ", announces_handover" if announces else ""
    shop.db.executescript(
        "ALTER TABLE dunning_events RENAME TO shop_dunning;"
        f"CREATE VIEW dunning_events AS SELECT event_id, invoice_id, {AS_LEVELS} AS kind, "
        f"sent_at, channel, fee_cents{flag} FROM shop_dunning;"
    )


def decided(shop: Shop, levels=LEVELS):
    frames = quarantine(extract.extract(shop.url, AS_OF, dunning_levels=levels), "source").kept
    return decide(dict(frames), as_of=AS_OF, rules=AGENCY.rules, agencies=(AGENCY,))


@pytest.mark.parametrize("announces", [True, False])
def test_levels_decide_as_the_contracts_kinds(shop, announces):
    before = shop.decide()
    levelled(shop, announces=announces)
    after = decided(shop)
    assert reasons(after, "I1") == reasons(before, "I1") == set()
    assert reasons(after, "I2") == reasons(before, "I2") == {"dunning_incomplete"}
    columns = ["default_date", "dunning_fees_cents", "last_dunning_date", "handover_notice_date"]
    assert after.cases[columns].equals(before.cases[columns])


def test_a_level_that_does_not_announce_leaves_the_dunning_incomplete(shop):
    levelled(shop, announces=False)
    quiet = {**LEVELS, "3": DunningLevel(kind="final_notice", announces_handover=False)}
    quiet["2"] = DunningLevel(kind="dunning", announces_handover=False)
    assert "dunning_incomplete" in reasons(decided(shop, quiet), "I1")


def test_an_unknown_level_holds_its_invoice_back(shop):
    levelled(shop, announces=False)
    known = {k: v for k, v in LEVELS.items() if k != "3"}
    frames = extract.extract(shop.url, AS_OF, dunning_levels=known)
    checked = quarantine(frames, "source", max_share=None)
    assert checked.quarantined.to_dict("records") == [
        {"invoice_id": "I1", "reasons": "invalid_dunning_event"}
    ]
    # `source check` says so before a run, naming the levels the configuration knows.
    report = extract.check_source(shop.url, AS_OF, dunning_levels=known)
    (finding,) = [f for t in report.tables for f in t.findings]
    assert not finding.stops and "1 of 4 values are not one of '1', '2';" in finding.message
    assert extract.check_source(shop.url, AS_OF, dunning_levels=LEVELS).ok


def test_a_level_without_its_notice_needs_the_views_flag(shop):
    levelled(shop, announces=False)
    by_letter = {**LEVELS, "3": DunningLevel(kind="final_notice")}
    with pytest.raises(SourceError, match="lacks column\\(s\\) announces_handover"):
        extract.extract(shop.url, AS_OF, dunning_levels=by_letter)
    report = extract.check_source(shop.url, AS_OF, dunning_levels=LEVELS)
    assert report.ok
