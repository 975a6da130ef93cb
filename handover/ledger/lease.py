"""One run at a time per state store: the run lease, and whether a run is still alive.

The single row of `run_lease` names the run that may prepare and deliver drops. A run is alive
while its process exists (checked directly when it runs on this host) or, seen from another
host, while its heartbeat keeps `runs.alive_until` in the future.

```
free ──acquire──▶ held by A ──A ends (release)──▶ free
                  held by A, A dead ──B acquires (audited: lease_taken_over)──▶ held by B
```
These functions work inside the caller's transaction; `ledger.store` opens it and writes the
audit entries that go with every change.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

import sqlalchemy as sa

from handover.ledger import audit

LEASE_NAME = "handover"
# How long a heartbeat keeps a run alive in the eyes of other hosts; renewed every quarter.
ALIVE_SECONDS = 120

run_lease = sa.Table(
    "run_lease",
    audit.metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text),  # NULL: free
    sa.Column("since", sa.Text),
)


@dataclass(frozen=True)
class RunProcess:
    """Where a run executes, and until when its last heartbeat vouches for it."""

    run_id: str
    host: str | None
    pid: int | None
    started_at: str
    alive_until: str | None

    def death(self, now: dt.datetime) -> str | None:
        """Why the run is dead (None while it is alive)."""
        if self.host == this_host() and self.pid is not None:
            return None if process_exists(self.pid) else f"process {self.pid} is gone"
        if self.alive_until is None or dt.datetime.fromisoformat(self.alive_until) < now:
            return f"no heartbeat since {self.alive_until or self.started_at}"
        return None

    def describe(self) -> str:
        """The run as a holder, for messages: run id, host, pid, start."""
        return f"run {self.run_id} on {self.host} (pid {self.pid}), started {self.started_at}"


def this_host() -> str:
    """The host name runs record."""
    return socket.gethostname()


def process_exists(pid: int) -> bool:
    """True while process `pid` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but it exists
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True  # no /proc: kill(0) is all we know


def alive_until(now: dt.datetime) -> str:
    """The heartbeat value written at `now`."""
    return (now + dt.timedelta(seconds=ALIVE_SECONDS)).isoformat(timespec="seconds")


def ensure_row(conn: sa.Connection) -> None:
    """Create the lease row (free) if the database has none yet."""
    exists = conn.execute(sa.select(run_lease.c.name).where(run_lease.c.name == LEASE_NAME)).first()
    if exists is None:
        conn.execute(run_lease.insert().values(name=LEASE_NAME, run_id=None, since=None))


def holder(conn: sa.Connection) -> str | None:
    """The run id holding the lease, or None when it is free."""
    return conn.execute(
        sa.select(run_lease.c.run_id).where(run_lease.c.name == LEASE_NAME)
    ).scalar()


def take(conn: sa.Connection, run_id: str, *, previous: str | None, now: dt.datetime) -> bool:
    """Give the lease to `run_id` if `previous` still holds it; False if someone was faster."""
    held_by = run_lease.c.run_id.is_(None) if previous is None else run_lease.c.run_id == previous
    result = conn.execute(
        run_lease.update()
        .where(run_lease.c.name == LEASE_NAME, held_by)
        .values(run_id=run_id, since=now.isoformat(timespec="seconds"))
    )
    return result.rowcount == 1


def release(conn: sa.Connection, run_id: str) -> None:
    """Free the lease if `run_id` holds it."""
    conn.execute(
        run_lease.update()
        .where(run_lease.c.name == LEASE_NAME, run_lease.c.run_id == run_id)
        .values(run_id=None, since=None)
    )
