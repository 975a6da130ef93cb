"""The state store on PostgreSQL: the same records as on SQLite, a concurrent writer waits instead
of forking the audit chain, and an unusable `state.url` is one clear ConfigError."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from handover.errors import ConfigError
from handover.ledger import audit
from handover.ledger.store import StateStore
from tests.conftest import free_port
from tests.ledger.test_store import store_with_runs


def test_quarantine_and_decisions_read_back_as_on_sqlite(postgres_server, tmp_path):
    stores = [
        store_with_runs(f"sqlite:///{tmp_path / 'state.db'}"),
        store_with_runs(postgres_server.create_database()),
    ]
    read = []
    for store in stores:
        with store.engine.connect() as conn:
            # A checkpoint's data is a signature over hashes that cover the time of each entry.
            events = [
                (e["seq"], e["event"], e["data"] if e["event"] != "audit_checkpoint" else None)
                for e in audit.entries(conn)
            ]
            runs = conn.execute(sa.text("SELECT run_id, dry_run FROM runs ORDER BY run_id")).all()
        read.append((store.quarantined(), store.quarantined("run-2"), events, runs))
        store.engine.dispose()
    lite, pg = read
    assert pg == lite
    assert len(pg[0]) == 3 and pg[3] == [("run-1", False), ("run-2", False)]


def test_a_concurrent_writer_waits_instead_of_forking_the_chain(postgres_server):
    store = StateStore(postgres_server.create_database())
    with store.transaction() as conn:
        audit.append(conn, [audit.Entry("run-1", "first", {})])
    failures: list[Exception] = []

    def second_writer() -> None:
        try:
            with store.transaction() as conn:
                audit.append(conn, [audit.Entry("run-3", "concurrent", {})])
        except sa.exc.SQLAlchemyError as exc:
            failures.append(exc)

    with store.transaction() as conn:
        audit.append(conn, [audit.Entry("run-2", "winner", {})])
        # The second writer waits for the append lock, then reads the head this one leaves.
        other = threading.Thread(target=second_writer)
        other.start()
        other.join(timeout=0.5)
        assert other.is_alive(), "the second writer should wait for the first transaction"
    other.join(timeout=10)
    assert failures == []
    with store.engine.connect() as conn:
        status = audit.verify(conn, running=lambda run_id: True)
        assert [e["event"] for e in audit.entries(conn)] == ["first", "winner", "concurrent"]
    assert status.entries == 3
    store.engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+pg8000://shop@127.0.0.1/state", r"No module named 'pg8000'\); install"),
        (
            "nosuchdb://state",
            r"state\.url is not a usable SQLAlchemy URL \(unknown form or dialect",
        ),
    ],
)
def test_unusable_state_url_names_the_key(url, message):
    with pytest.raises(ConfigError, match=message):
        StateStore(url)


def test_unreachable_postgresql_names_the_key_on_one_line():
    url = f"postgresql+psycopg://shop:s3cret-pw@127.0.0.1:{free_port()}/state"
    with pytest.raises(ConfigError, match=r"cannot open the state database \(state\.url\)") as exc:
        StateStore(url)
    assert "\n" not in str(exc.value) and "s3cret-pw" not in str(exc.value)
