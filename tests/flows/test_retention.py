"""The identifier-retention flow runs `handover retention run` on the deployment's config."""

from __future__ import annotations

import inspect

import sqlalchemy as sa

from flows.retention import identifier_retention
from handover.ledger import audit
from tests.support.recorded_runs import workspace
from tests.support.shopbuilder import AS_OF


def test_identifier_retention_runs_on_the_config_and_audits(prefect, monkeypatch, tmp_path):
    ws = workspace(tmp_path / "home")
    ws.shop.customer("C1").invoice("I1", "C1")
    ws.run(AS_OF)
    monkeypatch.setenv("HANDOVER_HOME", str(ws.root))
    assert list(inspect.signature(identifier_retention.fn).parameters) == ["config_path", "dry_run"]

    preview = identifier_retention(config_path="handover.toml", dry_run=True)
    # Made this year: within the period, nothing to erase.
    assert preview == dict.fromkeys(
        [
            "identifiers_erased",
            "consent_rows_erased",
            "handovers_removed",
            "decisions_removed",
            "quarantine_removed",
            "return_events_removed",
            "reviews_removed",
            "recall_cases_removed",
        ],
        0,
    )
    with ws.store.engine.connect() as conn:
        before = [e["event"] for e in audit.entries(conn)]

    assert identifier_retention(config_path=str(ws.config_path)) == preview
    with ws.store.engine.connect() as conn:
        entries = list(audit.entries(conn))
        handed_over = conn.execute(sa.text("SELECT count(*) FROM handovers")).scalar_one()
    added = entries[len(before) :]
    assert [e["event"] for e in added] == ["retention_run", "audit_checkpoint"]
    assert added[0]["data"]["identifier_years"] == ws.config.compliance.identifier_years
    assert handed_over == 1
    ws.verify()  # the checkpoint is signed with the shop's key
