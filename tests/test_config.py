"""The TOML configuration: the documented example loads, mistakes name file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handover.config import Rules, load_config
from handover.errors import ConfigError
from tests.support.paths import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG


def test_the_example_loads_with_paths_relative_to_it():
    config = load_config(EXAMPLE)
    assert config.rules == Rules()
    (agency,) = config.in_scope(None)
    assert agency.name == "inkasso-nord"
    assert "date_of_birth" not in agency.columns
    assert config.source_url == f"sqlite:///{EXAMPLE.parent / 'shop.db'}"
    assert agency.sftp.known_hosts == EXAMPLE.parent / "known_hosts"
    assert len(config.policy_hash(agency)) == 64


def edited(tmp_path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "handover.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("minimum_open_cents = 1000", "minimum_open_cents = -5", "rules.minimum_open_cents"),
        ('"case_ref", "invoice_number"', '"case_ref", "iban", "invoice_number"', "iban"),
        ('"case_ref", "invoice_number",', '"invoice_number",', "must allow case_ref"),
        ("vom {order_date}", "vom {items}", "agencies.inkasso-nord.claim_subject"),
        ('recipients = ["age1', 'recipients = ["ssh-ed25519 ', "agencies.inkasso-nord.recipients"),
        ('host = "sftp.inkasso-nord.example"', "", "agencies.inkasso-nord.sftp.host"),
        ("[shop]", "[shopp]", "[shop]"),
    ],
)
def test_mistakes_name_the_key(tmp_path, old, new, message):
    path = edited(tmp_path, old, new)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_policy_hash_changes_with_the_allow_list(tmp_path):
    base = load_config(EXAMPLE)
    narrower = load_config(edited(tmp_path, '"email", "phone",', ""))
    assert base.policy_hash(base.agencies[0]) != narrower.policy_hash(narrower.agencies[0])


def test_unknown_agency_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no agency 'nope'"):
        load_config(EXAMPLE).agency("nope")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


ROUTED = """
[agencies.nord.route]
debtor_kinds = ["consumer"]
max_open_cents = 500000

[agencies.nord.rules]
minimum_open_cents = 2500
overdue_days = 10
"""


def test_agency_route_and_rules(tmp_path):
    path = edited(tmp_path, "[agencies.inkasso-nord.sftp]", "[agencies.inkasso-nord.sftp]")
    text = path.read_text().replace("inkasso-nord", "nord") + ROUTED
    path.write_text(text)
    (agency,) = load_config(path).agencies
    assert agency.route.countries == ("DE", "AT")  # defaults to the served countries
    assert agency.route.debtor_kinds == ("consumer",)
    assert (agency.route.min_open_cents, agency.route.max_open_cents) == (0, 500000)
    # Agency thresholds apply after the global ones: never looser.
    assert agency.rules.minimum_open_cents == 2500
    assert agency.rules.overdue_days == 30


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[agencies.inkasso-nord.route]\ndebtor_kinds = ["person"]\n', "route.debtor_kinds"),
        (
            "[agencies.inkasso-nord.route]\nmin_open_cents = 9\nmax_open_cents = 5\n",
            "max_open_cents is below",
        ),
        ("[agencies.inkasso-nord.rules]\nminimum = 5\n", "unknown setting(s) minimum"),
    ],
)
def test_route_and_rule_mistakes_name_the_key(tmp_path, extra, message):
    path = tmp_path / "handover.toml"
    path.write_text(EXAMPLE.read_text() + "\n" + extra)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)
