"""The state store's quarantine table (handover/ledger/store.py): ids and reason codes, audited."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd

from handover.cli.main import main
from handover.ledger import audit
from handover.ledger.store import StateStore
from tests.support.ledger import signed_store
from tests.support.paths import EXAMPLE_CONFIG
from tests.support.shopbuilder import Shop

EXAMPLE = EXAMPLE_CONFIG


def store_with_runs(url: str) -> StateStore:
    store = signed_store(url)
    held = pd.DataFrame(
        {
            "invoice_id": ["I7", "I3"],
            "reasons": ["invalid_email,invalid_postal_code", "orphan_invoice"],
        }
    )
    for run, day in (("run-1", "2026-06-01"), ("run-2", "2026-06-02")):
        store.start_run(
            run, as_of=dt.date.fromisoformat(day), agency="inkasso", dry_run=False, data={}
        )
        if run == "run-1":
            store.record_quarantine("run-1", "source", held.iloc[[1]])
            store.record_quarantine("run-1", "outgoing", held.iloc[[0]])
        else:
            store.record_quarantine("run-2", "source", held.iloc[0:0])
            store.record_quarantine("run-2", "outgoing", held.iloc[[0]], agency="inkasso")
        store.finish_run(run, status="succeeded", counts={}, event="run_finished")
    return store


def test_quarantine_is_kept_per_run_and_suite(tmp_path):
    store = store_with_runs(f"sqlite:///{tmp_path / 'state.db'}")
    assert store.quarantined("run-1") == [
        {"run_id": "run-1", "invoice_id": "I3", "suite": "source", "reasons": "orphan_invoice"},
        {
            "run_id": "run-1",
            "invoice_id": "I7",
            "suite": "outgoing",
            "reasons": "invalid_email,invalid_postal_code",
        },
    ]
    assert [(r["run_id"], r["invoice_id"]) for r in store.quarantined()] == [
        ("run-1", "I3"),
        ("run-1", "I7"),
        ("run-2", "I7"),
    ]


def test_each_check_is_audited_with_ids_and_counts_only(tmp_path):
    store = store_with_runs(f"sqlite:///{tmp_path / 'state.db'}")
    store.verify()
    with store.engine.connect() as conn:
        held = [e for e in audit.entries(conn) if e["event"] == "cases_quarantined"]
    assert [(e["run_id"], e["data"]) for e in held] == [
        (
            "run-1",
            {
                "suite": "source",
                "count": 1,
                "reasons": {"orphan_invoice": 1},
                "invoice_ids": ["I3"],
            },
        ),
        (
            "run-1",
            {
                "suite": "outgoing",
                "count": 1,
                "reasons": {"invalid_email": 1, "invalid_postal_code": 1},
                "invoice_ids": ["I7"],
            },
        ),
        ("run-2", {"suite": "source", "count": 0, "reasons": {}, "invoice_ids": []}),
        (
            "run-2",
            {
                "suite": "outgoing",
                "agency": "inkasso",
                "count": 1,
                "reasons": {"invalid_email": 1, "invalid_postal_code": 1},
                "invoice_ids": ["I7"],
            },
        ),
    ]


def test_cli_lists_the_quarantine(tmp_path, capsys):
    config = tmp_path / "handover.toml"
    shutil.copyfile(EXAMPLE, config)  # its state database is state.db beside it
    store_with_runs(f"sqlite:///{tmp_path / 'state.db'}")
    assert main(["quarantine", "list", "--config", str(config), "--run", "run-1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "run    invoice  suite     reasons",
        "run-1  I3       source    orphan_invoice",
        "run-1  I7       outgoing  invalid_email,invalid_postal_code",
    ]
    assert main(["quarantine", "list", "--config", str(config), "--run", "run-9"]) == 0
    assert capsys.readouterr().out == "no quarantined cases in run run-9\n"


def test_explain_names_quarantine(tmp_path, capsys):
    config = tmp_path / "handover.toml"
    shutil.copyfile(EXAMPLE, config)
    Shop(tmp_path / "shop.db")  # empty: the invoices are known from the state store only
    store_with_runs(f"sqlite:///{tmp_path / 'state.db'}")
    assert main(["explain", "I3", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Held back by validation in run run-1 (source data): orphan_invoice" in out
    assert main(["explain", "I7", "--config", str(config)]) == 0
    assert capsys.readouterr().out.count("Held back by validation") == 2


def test_an_older_state_database_gains_the_new_columns(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'state.db'}"
    store_with_runs(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as a version before `outcomes` and policy hashes left it
        conn.execute(sa.text("ALTER TABLE handovers DROP COLUMN currency"))
        conn.execute(sa.text("ALTER TABLE drops DROP COLUMN policy_sha256"))
    store = StateStore(url)
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("handovers")}
    assert "currency" in columns
    assert "policy_sha256" in {c["name"] for c in sa.inspect(store.engine).get_columns("drops")}
    assert len(store.quarantined("run-1")) == 2
