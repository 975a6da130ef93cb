"""Identifier retention: ids past their period are erased everywhere; the chain still verifies."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from handover.cli.main import main
from handover.ledger import audit, retention
from handover.ledger.consent_log import consent_log
from handover.ledger.store import (
    decision_changes,
    decision_runs,
    handovers,
    latest_decisions,
    quarantine,
)
from tests.support.recorded_runs import workspace
from tests.support.shopbuilder import AS_OF


@pytest.fixture
def ws(tmp_path):
    ws = workspace(tmp_path / "ws")
    ws.shop.customer("C1").customer("C2")
    ws.shop.invoice("I1", "C1").invoice("I2", "C2").invoice("I3", "C2")
    ws.shop.plan("I3", "active")
    ws.drop_id = ws.run(AS_OF)
    store = ws.store
    with store.engine.connect() as conn:
        run_id = conn.execute(sa.select(decision_runs.c.run_id).limit(1)).scalar_one()
    store.record_quarantine(
        run_id, "source", pd.DataFrame({"invoice_id": ["I7"], "reasons": ["bad_country"]})
    )
    return ws


def later(years: int) -> dt.date:
    return dt.date(dt.date.today().year + years, 1, 1)


def words(text: str) -> set[str]:
    """The words of `text`, a base64 string (letters, digits, '+', '/', '=') being one word.

    The log holds base64 (checkpoint signatures, the key's fingerprint) in which "I1" or "C1"
    turns up in about one run in fifteen: a plain `"I1" in text` fails at random.
    """
    return set(re.findall(r"[A-Za-z0-9+/=]+", text))


def test_cutoff_is_the_start_of_the_year_after_the_period():
    # Made in 2026, kept through 31 Dec 2029, gone from 1 Jan 2030.
    assert retention.cutoff(dt.date(2029, 12, 31), 3) == dt.date(2026, 1, 1)
    assert retention.cutoff(dt.date(2030, 1, 1), 3) == dt.date(2027, 1, 1)


def test_nothing_is_erased_within_the_period(ws):
    result = retention.run(ws.store, today=later(4) - dt.timedelta(days=1), years=3)
    assert (result.identifiers_erased, result.handovers_removed, result.decisions_removed) == (
        0,
        0,
        0,
    )
    assert ws.store.handed_over() == {"I1", "I2"}


def test_erasure_after_the_period_keeps_the_chain_valid(ws):
    store = ws.store
    preview = retention.run(store, today=later(4), years=3, dry_run=True)
    assert (preview.identifiers_erased, preview.handovers_removed) == (2, 2)
    assert store.handed_over() == {"I1", "I2"}

    result = retention.run(store, today=later(4), years=3)
    assert result == retention.RetentionResult(
        cutoff=dt.date(later(4).year - 3, 1, 1),
        identifiers_erased=2,
        consent_rows_erased=6,
        handovers_removed=2,
        decisions_removed=3,
        quarantine_removed=1,
        dry_run=False,
    )
    status = ws.verify()  # chain, identifiers and signed checkpoints
    assert (status.identifiers, status.erased_identifiers) == (2, 2)
    with store.engine.connect() as conn:
        side = conn.execute(sa.select(audit.audit_identifiers)).all()
        assert all(r.invoice_id is None and r.salt is None for r in side)
        count = sa.select(sa.func.count())
        assert conn.execute(count.where(consent_log.c.customer_id.is_not(None))).scalar_one() == 0
        for table in (handovers, decision_runs, decision_changes, latest_decisions, quarantine):
            assert conn.execute(count.select_from(table)).scalar_one() == 0
        events = [e["event"] for e in audit.entries(conn)]
        log_text = " ".join(conn.execute(sa.select(audit.audit_log.c.data)).scalars())
    assert events[-3:] == ["identifiers_erased", "retention_run", "audit_checkpoint"]
    assert not words(log_text) & {"I1", "I2", "C1", "C2"}
    # The archived drop follows its own period ([archive] retention_days), not this one.
    assert (ws.config.outbox / "nord" / ws.drop_id).is_dir()
    # A second run finds nothing left to erase.
    assert retention.run(store, today=later(4), years=3).identifiers_erased == 0


def test_cli_reports_erased_identifiers(ws, capsys):
    assert main(["retention", "run", "--dry-run", "--config", str(ws.config_path)]) == 0
    assert "audit entries, identifiers to erase (dry run): 0" in capsys.readouterr().out
    retention.run(ws.store, today=later(4), years=3)
    assert main(["audit", "verify", "--config", str(ws.config_path)]) == 0
    out = capsys.readouterr().out
    assert "2 entries with identifiers, 2 of them erased" in out
    assert "consent log intact for 1 drops" in out
