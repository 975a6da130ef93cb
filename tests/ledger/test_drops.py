"""A drop's states in the ledger: prepared → sealed → delivered, or abandoned; each change with
its audit entries, a second commit a no-op, and no invoice in two delivered drops (a database
constraint, not only a check in Python)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from handover.errors import AuditUnverifiable, LedgerConflict, RunLocked
from handover.ledger import audit, consent_log, witness
from handover.ledger.store import PreparedDrop, delivered_cases, drops
from tests.support.ledger import signed_store

AS_OF = dt.date(2026, 6, 15)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    store = signed_store(url)
    store.start_run("run-1", as_of=AS_OF, agency="*", dry_run=False, data={})
    yield store
    store.engine.dispose()


def prepare(store, drop_id: str, invoices: list[str], tmp_path: Path) -> PreparedDrop:
    drop = PreparedDrop(drop_id, "run-1", "nord", tmp_path / drop_id, (), len(invoices))
    cases = pd.DataFrame(
        {
            "customer_id": [f"C-{i}" for i in invoices],
            "case_ref": [f"ref-{i}" for i in invoices],
            "columns": ["case_ref"] * len(invoices),
        },
        index=pd.Index(invoices, name="invoice_id"),
    )
    records = [
        consent_log.ConsentLogRecord(
            drop_id,
            f"ref-{i}",
            "email",
            "nord",
            i,
            f"C-{i}",
            "basis",
            None,
            False,
            consent_log.NO_CONSENT,
            None,
            None,
        )
        for i in invoices
    ]
    store.prepare_drop(
        drop,
        cases,
        records,
        {
            "drop_id": drop_id,
            "as_of": AS_OF.isoformat(),
            "consent_log_sha256": consent_log.digest(records),
        },
    )
    return drop


def status(store, drop_id: str) -> str:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(drops.c.status).where(drops.c.drop_id == drop_id)).scalar()


def events(store) -> list[str]:
    with store.engine.connect() as conn:
        return [e["event"] for e in audit.entries(conn)]


def test_a_drop_moves_prepared_sealed_delivered_and_a_second_commit_is_a_no_op(store, tmp_path):
    prepare(store, "D1", ["I1", "I2"], tmp_path)
    assert status(store, "D1") == "prepared" and store.in_drops() == {"I1", "I2"}
    assert store.handed_over() == set()
    with pytest.raises(LedgerConflict, match="drop D1 is prepared, not sealed"):
        store.commit_drop("run-1", "D1", {})  # never delivered before its files are complete
    store.mark_sealed("run-1", "D1", {"drop_id": "D1"})
    assert store.commit_drop("run-1", "D1", {"host": "h"}) == 2
    assert store.commit_drop("run-1", "D1", {"host": "h"}) == 0
    assert status(store, "D1") == "delivered" and store.handed_over() == {"I1", "I2"}
    assert events(store).count("drop_delivered") == 1
    assert events(store).count("case_handed_over") == 2


def test_no_invoice_is_in_two_delivered_drops(store, tmp_path):
    prepare(store, "D1", ["I1", "I2"], tmp_path)
    store.mark_sealed("run-1", "D1", {})
    store.commit_drop("run-1", "D1", {})
    prepare(store, "D2", ["I2", "I3"], tmp_path)  # I2 again: a bug upstream
    store.mark_sealed("run-1", "D2", {})
    before = events(store)
    with pytest.raises(LedgerConflict, match="drop D2 holds a case that is already in another"):
        store.commit_drop("run-1", "D2", {})
    assert status(store, "D2") == "sealed" and events(store) == before  # nothing recorded
    # The database itself refuses it, whoever writes.
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        conn.execute(delivered_cases.insert().values(invoice_id="I1", drop_id="D2"))


def test_abandoning_frees_the_cases_and_an_abandoned_drop_is_never_delivered(store, tmp_path):
    prepare(store, "D1", ["I1"], tmp_path)
    assert store.abandon_drop("run-1", "D1", "sealing failed (EnvelopeError)")
    assert not store.abandon_drop("run-1", "D1", "again")
    assert store.in_drops() == set() and status(store, "D1") == "abandoned"
    with pytest.raises(LedgerConflict, match="drop D1 is abandoned, not prepared"):
        store.mark_sealed("run-1", "D1", {})
    with pytest.raises(LedgerConflict, match="drop D1 is abandoned, not sealed"):
        store.commit_drop("run-1", "D1", {})
    store.finish_run("run-1", status="succeeded", counts={}, event="run_finished")
    with store.engine.connect() as conn:
        assert consent_log.verify(conn) == 1  # its consent log is intact, no false alarm
    store.verify()


def test_the_operator_abandons_a_waiting_drop_only_when_no_run_is_alive(store, tmp_path):
    prepare(store, "D1", ["I1"], tmp_path)
    store.mark_sealed("run-1", "D1", {})
    with pytest.raises(RunLocked, match="in use by run run-1"):
        store.abandon_by_operator("cmd-1", "D1")
    store.finish_run("run-1", status="succeeded", counts={}, event="run_finished")
    with pytest.raises(LedgerConflict, match="no drop D9"):
        store.abandon_by_operator("cmd-1", "D9")
    assert store.abandon_by_operator("cmd-1", "D1").status == "abandoned"
    with pytest.raises(LedgerConflict, match="drop D1 is abandoned: it can no longer"):
        store.abandon_by_operator("cmd-1", "D1")
    store.verify()


def test_an_unreadable_witness_is_unverifiable_not_tampering(tmp_path):
    (tmp_path / "D1.manifest.json").write_text("{not json")
    with pytest.raises(AuditUnverifiable, match="not a readable JSON file"):
        witness.manifest_heads(tmp_path)
    with pytest.raises(AuditUnverifiable, match="not a directory of manifests"):
        witness.manifest_heads(tmp_path / "missing")
    with pytest.raises(AuditUnverifiable, match="public signing key is not usable"):
        witness.shop_verifier(tmp_path / "no-keys")
    # A directory others may write to could hold a swapped key: say so, not "restore the key".
    loose = tmp_path / "loose-keys"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    with pytest.raises(AuditUnverifiable, match=r"open to group or others .* `chmod 700 ") as error:
        witness.shop_verifier(loose)
    assert "restore" not in str(error.value)
