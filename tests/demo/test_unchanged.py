"""The demo shop's decisions and agency files stay what they were before issue 13.

Instalments, companies, unallocated money and dunning levels are optional: a shop without them
(the demo shop) must get exactly the decisions, hold-backs and agency files it got before. The
digest below was computed by the code of 2abc85e, the last commit before issue 13, with this
module's own steps (extract, source suite, rules, minimisation under a fixed pseudonym key).
A change that alters it on purpose says so, and records the new digest here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from handover import contract
from handover.config import load_config
from handover.demo import data
from handover.demo.workspace import DEMO_CONFIG
from handover.run import extract
from handover.run.decide import decide
from handover.run.quarantine import quarantine
from redaction.rows.policy import minimise

AS_OF = dt.date(2026, 11, 16)
RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
BEFORE_ISSUE_13 = "0c86b8c148d24895b26a26bafcadbbf94ffe5e1491ff4389e615d53ad425cedf"


def test_the_demo_shop_gets_the_same_decisions_and_agency_files(tmp_path: Path) -> None:
    data.generate(tmp_path / "shop.db", customers=2000, seed=1, today=AS_OF)
    config_text = DEMO_CONFIG.format(
        port=2222, consumer_recipient=RECIPIENT, business_recipient=RECIPIENT
    )
    (tmp_path / "demo.toml").write_text(config_text, encoding="utf-8")
    (tmp_path / "known_hosts").touch()
    config = load_config(tmp_path / "demo.toml")

    frames = extract.extract(f"sqlite:///{tmp_path / 'shop.db'}", AS_OF)
    checked = quarantine(frames, "source", max_share=None)
    decision = decide(dict(checked.kept), as_of=AS_OF, rules=config.rules, agencies=config.agencies)
    digest = hashlib.sha256()
    digest.update(decision.reasons().sort_index().to_csv().encode())
    digest.update(checked.quarantined.to_csv().encode())
    sent = 0
    for agency in config.agencies:
        cases = decision.eligible_for(agency.name)
        rows = minimise(cases, checked.kept["consents"], agency, b"k" * 32)
        assert contract.version_of(rows) == contract.SCHEMA_VERSION  # v1: no instalments
        digest.update(contract.to_csv_bytes(rows.sort_index()[list(contract.COLUMNS)]))
        sent += len(rows)
    assert sent == 294  # as the demo handed over before, to both agencies
    assert digest.hexdigest() == BEFORE_ISSUE_13
