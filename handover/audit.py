"""The append-only, hash-chained audit log.

Every entry stores the SHA-256 of its predecessor, and its own hash covers its sequence number,
time, run, event and data. Editing an entry, deleting an inner one or reordering entries breaks
the chain at the first entry affected; `verify` names it. Truncation at the end is caught later,
by comparing with the heads that agencies received in manifests.

Entries hold internal ids, pseudonyms, counts and column names, never personal data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from handover.errors import AuditIntegrityError

GENESIS = "0" * 64

metadata = sa.MetaData()
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class Entry:
    """One audit entry as the caller describes it."""

    run_id: str
    event: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class ChainStatus:
    """What `verify` found: the number of entries and the head hash."""

    entries: int
    head: str


def entry_hash(seq: int, prev_hash: str, at: str, run_id: str, event: str, data: str) -> str:
    """The hash of one entry, chained to `prev_hash`."""
    material = "\n".join((str(seq), prev_hash, at, run_id, event, data))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def append(conn: sa.Connection, entries: Iterable[Entry]) -> str:
    """Append `entries` in order inside the caller's transaction; returns the new head hash.

    The primary key on `seq` makes a concurrent writer fail instead of forking the chain.
    """
    head = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    rows = []
    for entry in entries:
        seq += 1
        data = _canonical(entry.data)
        digest = entry_hash(seq, prev, at, entry.run_id, entry.event, data)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "run_id": entry.run_id,
                "event": entry.event,
                "data": data,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    if rows:
        conn.execute(audit_log.insert(), rows)
    return prev


def verify(conn: sa.Connection) -> ChainStatus:
    """Check the whole chain; raise `AuditIntegrityError` naming the first broken entry."""
    prev, expected_seq = GENESIS, 1
    result = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq))
    for row in result:
        where = f"audit entry {row.seq} ({row.event}, run {row.run_id})"
        if row.seq != expected_seq:
            raise AuditIntegrityError(
                f"{where} follows entry {expected_seq - 1}: entries are missing or renumbered; "
                "restore the audit database from backup and report the incident"
            )
        if row.prev_hash != prev:
            raise AuditIntegrityError(
                f"{where} does not link to entry {row.seq - 1}: an entry before it was "
                "deleted, reordered or altered; restore the audit database from backup"
            )
        if entry_hash(row.seq, row.prev_hash, row.at, row.run_id, row.event, row.data) != row.hash:
            raise AuditIntegrityError(
                f"{where} was altered after it was written: its hash does not match its "
                "content; restore the audit database from backup"
            )
        prev, expected_seq = row.hash, expected_seq + 1
    return ChainStatus(entries=expected_seq - 1, head=prev)


def entries(conn: sa.Connection, run_id: str | None = None) -> list[dict[str, Any]]:
    """Audit entries in order, optionally of one run, with `data` decoded."""
    query = sa.select(audit_log).order_by(audit_log.c.seq)
    if run_id is not None:
        query = query.where(audit_log.c.run_id == run_id)
    return [{**row._asdict(), "data": json.loads(row.data)} for row in conn.execute(query)]
