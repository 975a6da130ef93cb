"""The console script: explain, audit verify and errors as users see them."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest
import sqlalchemy as sa

from handover.cli.main import main
from handover.config import load_config
from handover.crypto.keys import KeyDirectory
from handover.ledger.store import open_store
from tests.support.attacker import drop_guards
from tests.support.paths import EXAMPLE_CONFIG
from tests.support.shopbuilder import Shop

EXAMPLE = EXAMPLE_CONFIG


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "handover.toml"
    shutil.copyfile(EXAMPLE, path)
    KeyDirectory(tmp_path / "keys").init()
    Shop(tmp_path / "shop.db").customer("C1").invoice("I1", "C1").invoice("I2", "C1")
    store = open_store(load_config(path))
    for run, day, reasons in (
        ("run-1", "2026-06-01", {"I1": "dunning_incomplete", "I2": ""}),
        ("run-2", "2026-06-15", {"I1": "", "I2": "already_handed_over,on_hold"}),
    ):
        store.start_run(
            run, as_of=dt.date.fromisoformat(day), agency="inkasso-nord", dry_run=False, data={}
        )
        routed = pd.Series({"I1": "inkasso-nord", "I2": None})
        store.record_decisions(run, pd.Series(reasons), routed, {"eligible": 1})
        store.finish_run(run, status="succeeded", counts={}, event="run_finished")
    store.engine.dispose()
    return path


def test_explain_prints_each_rule(config, capsys):
    assert main(["explain", "I2", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "I2: NOT eligible in the latest run (run run-2, as_of 2026-06-15, routed to no" in out
    assert "FAIL 10. the case is not at an agency, nor on its way to one [already_hand" in out
    assert "FAIL 13. no hold by support in force [on_hold]" in out
    assert "ok    1. something is still owed" in out
    assert out.count("FAIL") == 2
    assert "2026-06-01 (no agency): eligible" in out


def test_explain_unknown_invoice(config, capsys):
    assert main(["explain", "I9", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("handover: error: invoice 'I9' is unknown: no invoice has")
    assert captured.err.count("\n") == 1


def test_audit_verify_exit_codes(config, capsys):
    assert main(["audit", "verify", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "audit log intact: 8 entries" in out  # two runs of 3 entries, each closed
    assert "2 signed checkpoints (signatures valid)" in out
    public_key = config.parent / "keys" / "signing_ed25519.pub"
    public_key.rename(public_key.with_suffix(".away"))
    # A key that cannot be read is "cannot verify" (exit 3), never reported as tampering.
    assert main(["audit", "verify", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("handover: cannot verify: ") and "signing_ed25519.pub" in err
    public_key.with_suffix(".away").rename(public_key)
    engine = sa.create_engine(f"sqlite:///{config.parent / 'state.db'}")
    drop_guards(engine)  # the triggers refuse the edit; an attacker drops them first
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET data = '{}' WHERE seq = 2"))
    assert main(["audit", "verify", "--config", str(config)]) == 1
    assert "audit entry 2 (cases_decided, run run-1) was altered" in capsys.readouterr().err


def test_errors_are_one_line_naming_the_file(tmp_path, capsys):
    assert main(["explain", "I1", "--config", str(tmp_path / "nope.toml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("handover: error: ") and "nope.toml" in err
    assert err.count("\n") == 1


def test_future_as_of_is_refused_before_anything_runs(config, capsys):
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    assert main(["run", "--config", str(config), "--as-of", future]) == 1
    assert "in the future" in capsys.readouterr().err


def test_unexpected_errors_name_type_and_place_but_not_the_message(config, capsys):
    for journal in config.parent.glob("state.db-*"):  # the WAL would still hold the pages
        journal.unlink()
    (config.parent / "state.db").write_bytes(b"Kanarienvogel " * 100)
    assert main(["explain", "I1", "--config", str(config)]) == 70  # a bug: EX_SOFTWARE
    err = capsys.readouterr().err
    assert err.startswith("handover: error: handover explain failed with DatabaseError")
    assert "Kanarienvogel" not in err and "HANDOVER_DEBUG=1" in err
