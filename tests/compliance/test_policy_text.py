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


CONTACT = tuple(c for c in COLUMNS if c != "date_of_birth")


def test_every_column_is_placed_exactly_once():
    config = load_config(EXAMPLE)
    agency = replace(config.agencies[0], columns=CONTACT, columns_defaulted=False)
    text = sections(describe_policy(config, agency))
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
        columns_defaulted=False,
    )
    text = describe_policy(config, agency)
    assert "Debtors in AT; business only; open amount from 0.00 to 2,500.00." in text
    assert "at least 10.00 open; 30 days overdue" in text
    assert config.policy_hash(agency) in text
    assert "  date_of_birth " in sections(text)["Fields that leave only under a condition"]


def test_columns_a_default_placed_are_marked():
    config = load_config(EXAMPLE)
    (agency,) = config.agencies
    assert agency.columns_defaulted
    text = describe_policy(config, agency)
    parts = sections(text)
    for column in COLUMNS:
        (line,) = [ln for ln in text.splitlines() if ln.startswith(f"  {column} ")]
        assert line.endswith("(default)"), line
    assert "  first_name " in parts["Fields that leave only under a condition"]
    assert "allowed by the default allow-list" in text
    withheld = parts["Fields this policy withholds (always an empty cell)"]
    assert all(f"  {c} " in withheld for c in ("email", "phone", "date_of_birth"))
    assert (
        "(default) not listed in agencies.inkasso-nord.columns (the configuration sets none); "
        "the default allow-list put it here" in text
    )


def test_listed_columns_are_not_marked():
    config = load_config(EXAMPLE)
    agency = replace(config.agencies[0], columns=CONTACT, columns_defaulted=False)
    assert "(default)" not in describe_policy(config, agency)
