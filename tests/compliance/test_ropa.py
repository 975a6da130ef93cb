"""The Art. 30 record is written from the config: categories, recipients, retention, safeguards."""

from __future__ import annotations

import datetime as dt

import pytest

from handover.cli.main import main
from handover.compliance.ropa import CATEGORIES, ropa_markdown
from handover.config import Compliance, load_compliance
from handover.contract import COLUMNS
from handover.errors import ConfigError
from tests.support.recorded_runs import workspace

SUED = """
[compliance]
lawful_basis = "Art. 6(1)(b) and (f) GDPR"
dpo_contact = "dpo@shop.example"
[retention]
identifier_years = 5
[agencies.sued]
recipients = ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"]
[agencies.sued.route]
countries = ["AT"]
[agencies.sued.sftp]
host = "sftp.sued.example"
user = "shop"
"""


@pytest.fixture
def ws(tmp_path):
    return workspace(
        tmp_path, extra_toml=SUED, nord_toml='[agencies.nord.route]\ncountries = ["DE"]'
    )


def test_every_contract_column_has_exactly_one_category():
    listed = [c for columns in CATEGORIES.values() for c in columns]
    assert sorted(listed) == sorted(COLUMNS)


def test_record_follows_the_config(ws):
    text = ropa_markdown(
        ws.config,
        load_compliance(ws.config_path),
        archive_retention_days=2557,
        today=dt.date(2026, 7, 1),
    )
    sued = text[text.index("### Agency `sued`") : text.index("### Agency `nord`")]
    nord = text[text.index("### Agency `nord`") : text.index("## Transfers")]
    assert "Lawful basis: Art. 6(1)(b) and (f) GDPR." in text
    assert "Data protection officer: dpo@shop.example" in text
    assert "5 years after the end of the year of handover" in text
    assert "2557 days from sealing" in text
    assert "| Date of birth | date_of_birth |" in nord
    assert "Never sent to this agency: none" in nord
    assert "Date of birth" not in sued and "Never sent to this agency: date_of_birth" in sued
    assert "Sent only with consent in force: email, phone" in sued
    assert "sftp.sued.example" in sued
    assert ws.config.policy_hash(ws.config.agency("sued")) in sued
    for safeguard in ("Encryption", "Pseudonymisation", "Host-key pinning", "Consent gating"):
        assert f"**{safeguard}**" in text


def test_cli_writes_the_record(ws, tmp_path):
    out = tmp_path / "ropa.md"
    assert main(["ropa", "--config", str(ws.config_path), "-o", str(out)]) == 0
    assert out.read_text().startswith("# Record of processing activities (Art. 30 GDPR)")


def test_compliance_defaults_and_limits(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[shop]\nname='x'\n")
    assert load_compliance(config) == Compliance()
    config.write_text("[retention]\nidentifier_years = 2\n")
    with pytest.raises(ConfigError, match=r"c\.toml: retention\.identifier_years must be .* 3"):
        load_compliance(config)
