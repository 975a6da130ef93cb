"""The audit chain: intact logs verify; edits, deletions and reorderings name the entry."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from handover import audit
from handover.errors import AuditIntegrityError
from handover.state import StateStore


@pytest.fixture
def store(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    with store.transaction() as conn:
        audit.append(
            conn,
            [audit.Entry("run-1", f"event_{n}", {"n": n, "case": f"I{n}"}) for n in range(1, 6)],
        )
    return store


def verify(store):
    with store.engine.connect() as conn:
        return audit.verify(conn)


def sql(store, statement, **params):
    with store.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def test_intact_chain_verifies(store):
    status = verify(store)
    assert status.entries == 5
    with store.transaction() as conn:
        head = audit.append(conn, [audit.Entry("run-2", "more", {})])
    assert verify(store) == audit.ChainStatus(6, head)


def test_edited_entry_is_named(store):
    sql(store, "UPDATE audit_log SET data = :d WHERE seq = 3", d='{"n":3,"case":"I99"}')
    with pytest.raises(
        AuditIntegrityError, match=r"audit entry 3 \(event_3, run run-1\) was altered"
    ):
        verify(store)


def test_rehashed_edit_breaks_the_next_link(store):
    row = dict(sql_row(store, 3))
    row["data"] = '{"n":3,"case":"I99"}'
    new_hash = audit.entry_hash(
        3, row["prev_hash"], row["at"], row["run_id"], row["event"], row["data"]
    )
    sql(store, "UPDATE audit_log SET data = :d, hash = :h WHERE seq = 3", d=row["data"], h=new_hash)
    with pytest.raises(AuditIntegrityError, match=r"audit entry 4 .* does not link"):
        verify(store)


def test_deleted_inner_entry_is_named(store):
    sql(store, "DELETE FROM audit_log WHERE seq = 2")
    with pytest.raises(AuditIntegrityError, match=r"audit entry 3 .* follows entry 1"):
        verify(store)


def test_reordered_entries_are_caught(store):
    # Swap the contents of entries 2 and 4, keeping the sequence numbers.
    two, four = dict(sql_row(store, 2)), dict(sql_row(store, 4))
    for seq, row in ((2, four), (4, two)):
        sql(
            store,
            "UPDATE audit_log SET event=:event, data=:data, prev_hash=:prev_hash, hash=:hash, "
            "at=:at, run_id=:run_id WHERE seq=:seq",
            **{**row, "seq": seq},
        )
    with pytest.raises(AuditIntegrityError, match="audit entry 2 "):
        verify(store)


def sql_row(store, seq):
    with store.engine.connect() as conn:
        return (
            conn.execute(sa.text("SELECT * FROM audit_log WHERE seq = :s"), {"s": seq})
            .mappings()
            .one()
        )
