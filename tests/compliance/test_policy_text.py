"""`handover policy show`: what the text says matches the configured allow-list and route."""

from __future__ import annotations

from dataclasses import replace

from handover.compliance.policy_text import describe_policy
from handover.config import Route, load_config
from handover.contract import COLUMNS
from tests.support.paths import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG


def sections(text: str) -> dict[str, str]:
    parts, title = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            title = line
            parts[title] = ""
        elif title:
            parts[title] += line + "\n"
    return parts


def test_every_column_is_placed_exactly_once():
    config = load_config(EXAMPLE)
    text = sections(describe_policy(config, config.agencies[0]))
    always = text["Fields that always leave with a handed-over case"]
    conditional = text["Fields that leave only under a condition"]
    withheld = text["Fields this policy withholds (always an empty cell)"]
    for column in COLUMNS:
        places = [f"  {column} " in part for part in (always, conditional, withheld)]
        assert sum(places) == 1, column
    assert "  date_of_birth " in withheld
    assert "consent for contact by e-mail" in conditional
    assert "IBAN" in text["Never leaves the shop (not read, or never written)"]


def test_route_and_thresholds_in_words():
    config = load_config(EXAMPLE)
    agency = replace(
        config.agencies[0],
        route=Route(countries=("AT",), debtor_kinds=("business",), max_open_cents=250000),
        columns=COLUMNS,
    )
    text = describe_policy(config, agency)
    assert "Debtors in AT; business only; open amount from 0.00 to 2,500.00." in text
    assert "at least 10.00 open; 30 days overdue" in text
    assert config.policy_hash(agency) in text
    assert "  date_of_birth " in sections(text)["Fields that leave only under a condition"]
