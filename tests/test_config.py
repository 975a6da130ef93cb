"""The TOML configuration: the documented example loads, mistakes name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.config import Rules, load_config
from handover.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "handover.example.toml"


def test_the_example_loads_with_paths_relative_to_it():
    config = load_config(EXAMPLE)
    assert config.rules == Rules()
    agency = config.agency(None)
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
    assert base.policy_hash(base.agency(None)) != narrower.policy_hash(narrower.agency(None))


def test_unknown_agency_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no agency 'nope'"):
        load_config(EXAMPLE).agency("nope")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
