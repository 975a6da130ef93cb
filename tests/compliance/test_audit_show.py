"""`handover audit show` filters, and `audit verify --manifests` on a workspace's drops."""

from __future__ import annotations

import json

import pytest

from handover.cli.main import main
from handover.ledger import audit
from tests.support.attacker import drop_guards, sql
from tests.support.recorded_runs import SUED_TOML, workspace
from tests.support.shopbuilder import AS_OF


@pytest.fixture
def ws(tmp_path):
    ws = workspace(
        tmp_path / "ws", extra_toml=SUED_TOML, nord_toml='[agencies.nord.route]\ncountries = ["DE"]'
    )
    ws.shop.customer("C1").customer("C2", country="AT")
    ws.shop.invoice("I1", "C1").invoice("I2", "C2")
    ws.run(AS_OF, agency="nord")
    ws.run(AS_OF, agency="sued")
    return ws


def show(ws, capsys, *args):
    assert main(["audit", "show", "--config", str(ws.config_path), *args]) == 0
    return capsys.readouterr().out


def test_filters_by_event_agency_and_run(ws, capsys):
    entries = json.loads(show(ws, capsys, "--format", "json", "--event", "case_handed_over"))
    assert [(e["agency"], e["identifiers"]["invoice_id"]) for e in entries] == [
        ("nord", "I1"),
        ("sued", "I2"),
    ]
    sued = json.loads(show(ws, capsys, "--format", "json", "--agency", "sued"))
    assert {e["agency"] for e in sued} == {"sued"}
    assert "drop_prepared" in {e["event"] for e in sued}
    run_id = sued[0]["run_id"]
    one_run = json.loads(show(ws, capsys, "--format", "json", "--run", run_id))
    assert {e["run_id"] for e in one_run} == {run_id} and len(one_run) >= 5
    assert json.loads(show(ws, capsys, "--format", "json", "--to", "2000-01-01")) == []


def test_table_shows_identifiers_and_counts(ws, capsys):
    table = show(ws, capsys, "--event", "case_handed_over")
    lines = table.splitlines()
    assert lines[0].split() == ["seq", "at", "(UTC)", "run", "event", "agency", "data"]
    assert "invoice_id=I1" in lines[1] and "customer_id=C1" in lines[1]
    assert lines[-1] == "2 entries"


def test_verify_checks_the_manifests_of_the_outbox(ws, capsys):
    argv = ["audit", "verify", "--config", str(ws.config_path)]
    outbox = str(ws.config.outbox)
    assert main([*argv, "--manifests", outbox]) == 0
    assert "2 witnessed heads match the log; 0 manifests carry none" in capsys.readouterr().out

    # Cut the log back to the checkpoint before the second run: consistent in itself, so only
    # the manifests can tell.
    store = ws.store
    drop_guards(store.engine)
    with store.engine.connect() as conn:
        entries = audit.entries(conn)
    prepared = [e for e in entries if e["event"] == "drop_prepared"][-1]
    cut = max(
        e["seq"] for e in entries if e["event"] == "audit_checkpoint" and e["seq"] < prepared["seq"]
    )
    sql(store.engine, "DELETE FROM audit_identifiers WHERE seq > :s", s=cut)
    sql(store.engine, "DELETE FROM audit_log WHERE seq > :s", s=cut)
    sql(store.engine, "DELETE FROM consent_log WHERE agency = 'sued'")
    assert main(argv) == 0
    assert main([*argv, "--manifests", outbox]) == 1
    err = capsys.readouterr().err
    assert f"witnessed audit entry {prepared['seq']}, but the log ends at entry" in err
