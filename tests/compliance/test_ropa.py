"""The Art. 30 record is written from the config: categories, recipients, retention, safeguards."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from handover.cli.main import main
from handover.compliance.ropa import CATEGORIES, ropa_markdown
from handover.config import Compliance, load_compliance, load_config
from handover.contract import COLUMNS
from handover.errors import ConfigError
from handover.run.decide import RULES
from tests.support.paths import EXAMPLE_CONFIG
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
    # sued lists no columns: the default allow-list withholds contact data and birth date.
    assert "Date of birth" not in sued and "Contact data" not in sued
    assert "Never sent to this agency: email, phone, date_of_birth" in sued
    assert "Sent only with consent in force: none" in sued
    assert "Sent only with consent in force: email, phone" in nord
    assert "sftp.sued.example" in sued
    assert ws.config.policy_hash(ws.config.agency("sued")) in sued
    for safeguard in ("Encryption", "Pseudonymisation", "Host-key pinning", "Consent gating"):
        assert f"**{safeguard}**" in text


def test_cli_writes_the_record(ws, tmp_path):
    out = tmp_path / "ropa.md"
    assert main(["ropa", "--config", str(ws.config_path), "-o", str(out)]) == 0
    assert out.read_text().startswith("# Record of processing activities (Art. 30 GDPR)")


def test_compliance_defaults_and_limits(tmp_path):
    assert load_compliance(EXAMPLE_CONFIG) == Compliance()
    config = tmp_path / "c.toml"
    config.write_text(
        EXAMPLE_CONFIG.read_text().replace("identifier_years = 7", "identifier_years = 2")
    )
    with pytest.raises(ConfigError, match=r"c\.toml: retention\.identifier_years: must be ≥ 3"):
        load_compliance(config)


def retention_section(text: str) -> str:
    return text[text.index("## Retention periods") : text.index("## Technical")]


def test_periods_and_their_legal_reasons_follow_the_config(tmp_path):
    config = tmp_path / "handover.toml"
    config.write_text(EXAMPLE_CONFIG.read_text())
    default = retention_section(_ropa(config))
    assert "7 years after the end of the year of handover" in default
    assert "At least 3 years, the regular limitation period (§§ 195, 199 BGB)" in default
    assert "7 years: as long as the archived drops they point to" in default
    assert "2557 days from sealing" in default and "§ 257 (1) Nr. 3, (4) HGB" in default
    # The limitation period is three years: never the reason given for seven.
    assert "7 years after the end of the year of handover\n  (the regular" not in default

    config.write_text(
        EXAMPLE_CONFIG.read_text()
        .replace("identifier_years = 7", "identifier_years = 11")
        .replace("retention_days = 2557", "retention_days = 4000")
    )
    changed = retention_section(_ropa(config))
    assert "11 years after the end of the year of handover" in changed
    assert "4000 days from sealing (about 11.0 years" in changed
    assert "a period the shop set; the default, 2557 days" in changed
    assert "7 years" not in changed and "2557 days from" not in changed


def test_the_rule_count_is_the_number_of_rules(tmp_path):
    text = _ropa(EXAMPLE_CONFIG)
    (count,) = re.findall(r"(\d+) eligibility rules", text)
    assert int(count) == len(RULES)


def _ropa(config) -> str:
    return ropa_markdown(
        load_config(config),
        load_compliance(config),
        archive_retention_days=load_config(config).key_settings.archive_retention_days,
        today=dt.date(2026, 7, 1),
    )


def test_an_agency_that_sends_returns_is_recorded_as_such(tmp_path):
    config = tmp_path / "handover.toml"
    config.write_text(
        EXAMPLE_CONFIG.read_text()
        + "\n[agencies.inkasso-nord.returns]\nsigning_key = "
        + '"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"\n'
    )
    text = ropa_markdown(
        load_config(config), Compliance(), archive_retention_days=2557, today=dt.date(2026, 1, 1)
    )
    assert "- Returns from the agency: ids, event codes, dates and amounts" in text
    plain = ropa_markdown(
        load_config(EXAMPLE_CONFIG),
        Compliance(),
        archive_retention_days=2557,
        today=dt.date(2026, 1, 1),
    )
    assert "Returns from the agency" not in plain
