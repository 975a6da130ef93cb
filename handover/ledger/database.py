"""The state database's engine: writers take turns, readers never wait.

Two processes (or two threads of one run) may write the ledger at the same moment: the heartbeat
of a run, a second run waiting for the lease, `handover subject` answering a request. Each write
transaction must see the audit head that the previous one left, or the chain forks.

- SQLite: write transactions begin `IMMEDIATE`, so a second writer waits at `BEGIN` (busy
  timeout) instead of reading a head that is stale by the time it writes. The journal is WAL, so
  readers (`audit verify`, `explain`) are not blocked by a writer.
- PostgreSQL: `audit.append` takes a transaction-scoped advisory lock before it reads the head.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

# A writer waits this long for another writer's transaction (the largest commits a drop of a
# few hundred thousand cases) before SQLite reports the database as locked.
BUSY_TIMEOUT_SECONDS = 300
_WRITE = "handover_write"
_SCHEMA_LOCK = 0x68616E65


def create_engine(url: str) -> sa.Engine:
    """An engine for `url`; for SQLite with the write discipline described above."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url)
    engine = sa.create_engine(
        url,
        # The pool hands a connection to one thread at a time; the threads of one run share it.
        connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )
    in_memory = ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:")

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not open transactions on its own: `_begin` does, in the right mode.
        dbapi_connection.isolation_level = None
        if not in_memory:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def lock_schema(conn: sa.Connection) -> None:
    """Serialise schema set-up between processes opening a new database at the same moment.

    SQLite's IMMEDIATE transaction already does; PostgreSQL needs an advisory lock, or two
    `CREATE TABLE`s of one table race.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a write transaction, committed on success, rolled back on error."""
    with engine.execution_options(**{_WRITE: True}).begin() as conn:
        yield conn


def insert_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """Insert `rows` (tuples of plain Python values, in `columns` order) in one executemany.

    The driver binds the tuples itself: SQLAlchemy's per-row parameter processing is what
    dominated writing a drop of a hundred thousand cases. Returns how many rows.
    """
    if not rows:
        return 0
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(conn.dialect.paramstyle)
    if mark is None:  # a driver with named parameters: let SQLAlchemy bind them
        conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
    else:
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})",
            rows if type(rows) is list and type(rows[0]) is tuple else list(map(tuple, rows)),
        )
    return len(rows)


def delete_rows(conn: sa.Connection, table: sa.Table, key: str, keys: Sequence[tuple[Any]]) -> int:
    """Delete the rows whose `key` is one of `keys` (1-tuples), in one executemany."""
    if not keys:
        return 0
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(conn.dialect.paramstyle)
    if mark is None:
        match = table.c[key] == sa.bindparam("k")
        conn.execute(table.delete().where(match), [{"k": k} for (k,) in keys])
    else:
        conn.exec_driver_sql(f"DELETE FROM {table.name} WHERE {key} = {mark}", list(keys))
    return len(keys)
