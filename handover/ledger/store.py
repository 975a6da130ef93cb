"""The ledger: runs, per-case decisions, drops and their cases, with the audit log beside them.

This module is the only writer of the state and audit tables, and every change commits together
with its audit entries in one transaction. It lives in one SQL database (`[state] url`).

A run holds the lease of the state store (`ledger.lease`) from start to end; a dry run needs
none. A drop moves through recorded states, and only a delivered drop's cases count as handed
over (rule 10; the table `delivered_cases` keys them by invoice, so no invoice is in two
delivered drops):

```
prepared ──sealed──▶ sealed ──delivered──▶ delivered
    │                  │
    └──abandoned◀──────┘  sealing failed, or never finished (a killed run), or the files are lost
```
`prepared` is written in one transaction with the drop's cases, its consent log and its
`drop_prepared` entry, before anything is sealed: no crash leaves one without the others.
A recall/update drop (`kind` 'recall', issue 11) moves through the same states; its delivery
takes recalled cases out of `delivered_cases` and records what the agency now holds of the
others (see the block "recalls and updates").
Nothing here holds personal data: invoice ids, reason codes, pseudonyms, keyed digests, amounts
and counts.

Decisions are kept as what changed (schema version 3), so that a night adds rows for the cases
whose decision changed, not for every case again:
```
decision_runs     seq, run_id, cases       every run that recorded decisions, numbered in the
                                           order they were recorded (a write transaction each)
decision_changes  invoice_id, seq,         the case's decision from run `seq` on, until its next
                  reasons, agency          row; reasons NULL: from `seq` on, not decided (not
                                           extracted, or held back by the source suite)
latest_decisions  invoice_id, reasons,     each case the latest recording run decided: what the
                  agency                   next run compares with, so a night reads and writes
                                           as much as it decides, however long the history
```
A run writes a change row for each case that is new or decided otherwise (reasons or routed
agency) and a NULL row for each case of the previous run it did not decide. A run that decided a
case the same way as the run before writes nothing for it, and it still "decided it": that is
what `decision_runs` says. `decisions()` expands the rows into every run's decision per case
(what the table `decisions` held up to version 2, which `_migrate` converts once); `explain`,
`subject` and `report` read through it. Retention removes runs from `decision_runs` and the rows
that only described them (`_forget_decisions_of_removed_runs`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from handover import case_keys
from handover.config import Config
from handover.crypto.keys import KeyDirectory
from handover.crypto.sshsig import AUDIT_NAMESPACE, Signer
from handover.errors import ConfigError, LedgerConflict, RunLocked
from handover.ledger import audit, consent_log, guards, lease
from handover.ledger.database import (
    create_engine,
    delete_rows,
    insert_rows,
    lock_schema,
    write_transaction,
)
from handover.returns.contract import CLOSING_EVENTS, PAYMENT_EVENTS, REVIEW_EVENTS

if TYPE_CHECKING:  # only a run passes DataFrames: reading the store needs no pandas
    import pandas as pd

metadata = audit.metadata

# What an agency holds of a case, so that a later run can tell what changed (recalls and
# updates): the amounts, and keyed digests of the name, the postal address, the e-mail address
# and the phone number as sent (`redaction.rows.digest`; no value in clear), with the id of the
# digest key. NULL in rows from before recalls existed: the first comparison records them.
BASELINE_COLUMNS: tuple[str, ...] = (
    "principal_cents",
    "paid_cents",
    "open_cents",
    "name_digest",
    "address_digest",
    "email_digest",
    "phone_digest",
    "digest_key",
)


def _baseline_columns() -> list[sa.Column[Any]]:
    """Fresh (nullable) baseline columns for one table."""
    return [
        sa.Column(name, sa.Integer if name.endswith("_cents") else sa.Text)
        for name in BASELINE_COLUMNS
    ]


runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("started_at", sa.Text, nullable=False),
    sa.Column("as_of", sa.Text, nullable=False),
    sa.Column("agency", sa.Text, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # running | succeeded | failed | killed
    sa.Column("finished_at", sa.Text),
    sa.Column("counts", sa.Text),
    sa.Column("host", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("alive_until", sa.Text),  # the heartbeat, for other hosts
)
# Decisions are kept as what changed (schema version 3; see "decisions" below `SCHEMA_VERSION`).
# Every run that records decisions gets the next number of `decision_runs`, in the order they
# were recorded, and how many cases it decided.
decision_runs = sa.Table(
    "decision_runs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id"), nullable=False, unique=True),
    sa.Column("cases", sa.Integer, nullable=False),
)
# A row per case and change: from run number `seq` on, every run that recorded decisions
# decided the case so, until the case's next row. reasons NULL: not decided (not extracted).
decision_changes = sa.Table(
    "decision_changes",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("reasons", sa.Text),  # comma-separated codes; '' = eligible; NULL = not decided
    sa.Column("agency", sa.Text),  # the agency the case was routed to; NULL = none
    sqlite_with_rowid=False,  # one B-tree keyed by (invoice_id, seq): no copy of the key
)
# The decision of every case the latest recording run decided: what the next run compares with.
latest_decisions = sa.Table(
    "latest_decisions",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("agency", sa.Text),
    sqlite_with_rowid=False,
)
drops = sa.Table(
    "drops",
    metadata,
    sa.Column("drop_id", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("agency", sa.Text, nullable=False),
    sa.Column("as_of", sa.Text, nullable=False),
    sa.Column("directory", sa.Text, nullable=False),
    sa.Column("files", sa.Text, nullable=False),  # JSON list, in upload order
    sa.Column("case_count", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # prepared | sealed | delivered | abandoned
    sa.Column("prepared_at", sa.Text, nullable=False),
    sa.Column("delivered_at", sa.Text),
    # The policy the drop was made under; it goes into every audit entry about the drop.
    sa.Column("policy_version", sa.Text),
    sa.Column("policy_sha256", sa.Text),
    sa.Column("sealed_at", sa.Text),
    sa.Column("abandoned_at", sa.Text),
    sa.Column("abandon_reason", sa.Text),
    sa.Column("kind", sa.Text),  # handover (NULL in rows from before recalls) | recall
)
handovers = sa.Table(
    "handovers",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("drop_id", sa.Text, sa.ForeignKey("drops.drop_id"), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("case_ref", sa.Text, nullable=False),
    sa.Column("columns", sa.Text, nullable=False),  # the columns sent non-empty
    *_baseline_columns(),  # what the drop sent, for the comparisons after delivery
    sa.Column("currency", sa.Text),  # of the amounts, for `handover outcomes`; NULL before it
)
sa.Index("handovers_invoice", handovers.c.invoice_id)
sa.Index("handovers_drop", handovers.c.drop_id)
# One row per invoice at an agency now: delivered in a handover drop and not recalled since.
# The primary key is what forbids a second delivery while the case is at an agency; a delivered
# recall deletes the row (the history stays in `handovers` and `recall_cases`), so a recalled
# case can be handed over anew once its facts make it eligible.
delivered_cases = sa.Table(
    "delivered_cases",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("drop_id", sa.Text, sa.ForeignKey("drops.drop_id"), nullable=False),
    *_baseline_columns(),  # what the agency holds now: the handover's, then each update's
    sa.Column("paused", sa.Boolean),  # a pause was sent and no resume since
)
# Cases held back by a suite's row-level checks (handover.run.quarantine): ids and codes, no values.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("suite", sa.Text, primary_key=True),
    sa.Column("reasons", sa.Text, nullable=False),  # comma-separated quarantine reason codes
)
# Returns (agency → shop): the return files ingested and their events, keyed so that the same
# file or the same event twice changes nothing; the cases put on review by a dispute or a
# complaint. Ids, event codes, dates and amounts: no personal data.
return_files = sa.Table(
    "return_files",
    metadata,
    sa.Column("agency", sa.Text, primary_key=True),
    sa.Column("return_id", sa.Text, primary_key=True),
    sa.Column("manifest_sha256", sa.Text, nullable=False),  # of the signed manifest
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("new_events", sa.Integer, nullable=False),  # the rest had been ingested before
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("ingested_at", sa.Text, nullable=False),
)
return_events = sa.Table(
    "return_events",
    metadata,
    sa.Column("agency", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, primary_key=True),  # the agency's id: one event, once
    sa.Column("return_id", sa.Text, nullable=False),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("case_ref", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("event_date", sa.Text, nullable=False),  # ISO date
    sa.Column("amount_cents", sa.BigInteger),  # payment and closed_paid only
    sa.Column("currency", sa.Text),
    sa.Column("ingested_at", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(
        ["agency", "return_id"], ["return_files.agency", "return_files.return_id"]
    ),
    sa.CheckConstraint(
        "event IN ('payment', 'closed_paid', 'closed_uncollectable', 'address_unknown', "
        "'disputed_by_debtor', 'instalment_agreed', 'complaint', 'returned')",
        name="return_events_event",
    ),
    sa.CheckConstraint(
        "(event IN ('payment', 'closed_paid') AND amount_cents IS NOT NULL AND amount_cents >= 0"
        " AND currency IS NOT NULL) OR (event NOT IN ('payment', 'closed_paid') AND "
        "amount_cents IS NULL AND currency IS NULL)",
        name="return_events_amount",
    ),
)
sa.Index("return_events_invoice", return_events.c.invoice_id)
sa.Index("return_events_date", return_events.c.event_date)
# A case on review is never handed over again until `handover release` (rule 16, on_review).
reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),  # on_review | released
    sa.Column("agency", sa.Text, nullable=False),  # who reported it
    sa.Column("event_id", sa.Text, nullable=False),  # the event that put it on review
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("since", sa.Text, nullable=False),
    sa.Column("released_at", sa.Text),
    sa.Column("release_reason", sa.Text),  # a code of handover.returns.review.RELEASE_REASONS
    sa.CheckConstraint("status IN ('on_review', 'released')", name="reviews_status"),
)
# Recall/update drops (issue 11): per case, what the drop tells the agency and what the agency
# holds once it is delivered; per message, its type, reason and effective date. Ids, codes,
# dates, amounts and digests only.
recall_cases = sa.Table(
    "recall_cases",
    metadata,
    sa.Column("drop_id", sa.Text, sa.ForeignKey("drops.drop_id"), primary_key=True),
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("case_ref", sa.Text, nullable=False),
    sa.Column("handover_drop_id", sa.Text, sa.ForeignKey("drops.drop_id"), nullable=False),
    sa.Column("recalled", sa.Boolean, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),  # comma-separated; a recall's: all of them
    *_baseline_columns(),  # what the agency holds after the drop
    sa.Column("paused", sa.Boolean),
)
sa.Index("recall_cases_invoice", recall_cases.c.invoice_id)
recall_messages = sa.Table(
    "recall_messages",
    metadata,
    sa.Column("drop_id", sa.Text, sa.ForeignKey("drops.drop_id"), primary_key=True),
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, primary_key=True),  # erase_channel: email or phone; else ''
    sa.Column("message_type", sa.Text, nullable=False),
    sa.Column("effective_date", sa.Text, nullable=False),
    sa.Column("fields", sa.Text, nullable=False),  # the columns the message sets, ';'-separated
)
ledger_meta = sa.Table(
    "ledger_meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
SCHEMA_VERSION = "3"  # 2: drops have a `sealed` state; delivered_cases. 3: decision_changes

LIVE_DROP_STATES = ("prepared", "sealed")


def now() -> str:
    """UTC now as ISO text, the time format of the state store."""
    return _now().isoformat(timespec="seconds")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class PreparedDrop:
    """A drop the ledger knows: where its files are (or will be), and how many cases it holds."""

    drop_id: str
    run_id: str
    agency: str
    directory: Path
    files: tuple[Path, ...]
    case_count: int
    status: str = "prepared"
    kind: str = "handover"  # or "recall": a recall/update drop


@dataclass(frozen=True)
class CaseAtAgency:
    """A case a delivered drop took to an agency: its invoice, and the drop's as_of."""

    invoice_id: str
    handed_over_on: str  # ISO date


@dataclass(frozen=True)
class ReturnIngested:
    """What recording one return file did; `already` is when it was ingested before."""

    new_events: int
    duplicates: int
    put_on_review: int
    already: str | None = None


# The columns that make two events with the same event_id the same event.
_EVENT_CONTENT = ("invoice_id", "event", "event_date", "amount_cents", "currency")
# What an event's audit entry holds; its invoice id goes into the erasable side table.
_EVENT_AUDITED = ("event_id", "case_ref", "event", "event_date", "amount_cents", "currency")
# Ids per IN (…) list: SQLite allows 32766 bound parameters, PostgreSQL 65535.
_IN_CHUNK = 10_000


class StateStore:
    """Access to the state database; every write is one transaction with its audit entries.

    `signer` signs the checkpoints that close a run or a command's change; a store without one
    (read-only use) refuses such changes.
    """

    def __init__(self, url: str, *, signer: audit.CheckpointSigner | None = None) -> None:
        self.signer = signer
        try:
            self.engine = create_engine(url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            hint = "; install the driver: pip install 'handover[postgresql]'"
            raise ConfigError(
                # An ImportError names a module; an ArgumentError may quote the URL and its
                # password, so only its kind is named.
                "state.url is not a usable SQLAlchemy URL ("
                + (str(exc) if isinstance(exc, ImportError) else "unknown form or dialect")
                + ")"
                + (hint if isinstance(exc, ImportError) else "")
            ) from None
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self._heartbeats: dict[str, _Heartbeat] = {}
        try:
            with self.transaction() as conn:
                lock_schema(conn)
                metadata.create_all(conn)
                _add_missing_columns(conn)
                _migrate(conn)
                lease.ensure_row(conn)
                # Refuse UPDATE/DELETE on the audit tables where the database supports triggers.
                guards.install(conn)
        except sa.exc.OperationalError as exc:
            # The driver's message names the server and database, never a password or row.
            raise ConfigError(
                f"cannot open the state database (state.url): {' '.join(str(exc.orig).split())}"
                "; check the URL and that the database server runs"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection inside one write transaction, committed on success."""
        with write_transaction(self.engine) as conn:
            yield conn

    # ----------------------------------------------------------------------- runs and the lease

    def start_run(
        self,
        run_id: str,
        *,
        as_of: dt.date,
        agency: str,
        dry_run: bool,
        data: Mapping[str, Any],
        lock_wait_seconds: float = 0,
    ) -> None:
        """Register a run and write its first audit entry; a real run first takes the lease.

        Runs whose process died are closed first (`run_killed`, and `lease_taken_over` when the
        dead run held the lease). A live holder is waited for up to `lock_wait_seconds`, then
        `RunLocked` names it.
        """
        deadline = _now() + dt.timedelta(seconds=lock_wait_seconds)
        while True:
            with self.transaction() as conn:
                holder = self._try_start(conn, run_id, as_of, agency, dry_run, data)
                if holder is None:
                    break
                if _now() >= deadline:
                    raise RunLocked(
                        f"the state store is in use by {holder.describe()}; this run did not "
                        f"start. Wait for that run to end (waited {lock_wait_seconds:g} s; "
                        "[run] lock_wait_seconds sets how long)"
                    )
            _sleep_until(min(deadline, _now() + dt.timedelta(seconds=1)))
        self._heartbeats[run_id] = _Heartbeat(self, run_id)

    def _try_start(
        self,
        conn: sa.Connection,
        run_id: str,
        as_of: dt.date,
        agency: str,
        dry_run: bool,
        data: Mapping[str, Any],
    ) -> lease.RunProcess | None:
        """Start the run in `conn`'s transaction; the live lease holder instead, if there is one."""
        moment = _now()
        held_by = lease.holder(conn)
        holder = self._process(conn, held_by) if held_by else None
        holder_death = holder.death(moment) if holder else "its run is not running"
        if not dry_run and holder is not None and holder_death is None:
            return holder
        entries = self._close_dead_runs(conn, run_id, moment)
        if not dry_run:
            if held_by is not None:
                entries.append(
                    audit.Entry(
                        run_id, "lease_taken_over", {"from_run": held_by, "why": holder_death}
                    )
                )
            if not lease.take(conn, run_id, previous=held_by, now=moment):
                raise LedgerConflict("the run lease changed while it was taken; start again")
        conn.execute(
            runs.insert().values(
                run_id=run_id,
                started_at=moment.isoformat(timespec="seconds"),
                as_of=as_of.isoformat(),
                agency=agency,
                dry_run=dry_run,
                status="running",
                host=lease.this_host(),
                pid=os.getpid(),
                alive_until=lease.alive_until(moment),
            )
        )
        if entries:
            # The dead runs' entries are closed at once: the log has no open tail of theirs.
            self._append_closed(conn, run_id, entries)
        audit.append(conn, [audit.Entry(run_id, "run_started", data)])
        return None

    def _close_dead_runs(
        self, conn: sa.Connection, run_id: str, moment: dt.datetime
    ) -> list[audit.Entry]:
        dead = []
        for row in conn.execute(sa.select(runs).where(runs.c.status == "running")):
            process = lease.RunProcess(
                row.run_id, row.host, row.pid, row.started_at, row.alive_until
            )
            why = process.death(moment)
            if why is not None:
                dead.append((row.run_id, why, row.host, row.pid))
        for dead_id, _why, _host, _pid in dead:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == dead_id)
                .values(status="killed", finished_at=moment.isoformat(timespec="seconds"))
            )
        return [
            audit.Entry(run_id, "run_killed", {"run_id": d, "why": why, "host": h, "pid": p})
            for d, why, h, p in dead
        ]

    def _process(self, conn: sa.Connection, run_id: str) -> lease.RunProcess | None:
        return _running_process(conn, run_id)

    def heartbeat(self, run_id: str) -> None:
        """Tell other hosts the run is alive for another `lease.ALIVE_SECONDS`."""
        with self.transaction() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id, runs.c.status == "running")
                .values(alive_until=lease.alive_until(_now()))
            )

    def is_running(self, run_id: str) -> bool:
        """True while run `run_id` is registered as running and its process is alive."""
        with self.engine.connect() as conn:
            process = self._process(conn, run_id)
        return process is not None and process.death(_now()) is None

    def finish_run(
        self, run_id: str, *, status: str, counts: Mapping[str, Any], event: str
    ) -> audit.Checkpoint | None:
        """Close a run: final counts, how it ended, the closing checkpoint, the lease freed."""
        heartbeat = self._heartbeats.pop(run_id, None)
        if heartbeat is not None:
            heartbeat.stop()
        with self.transaction() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(status=status, finished_at=now(), counts=json.dumps(dict(counts)))
            )
            checkpoint = self._append_closed(conn, run_id, [audit.Entry(run_id, event, counts)])
            lease.release(conn, run_id)
        return checkpoint

    def _append_closed(
        self, conn: sa.Connection, run_id: str, entries: Sequence[audit.Entry]
    ) -> audit.Checkpoint | None:
        """Append `entries` and close them with a checkpoint, in the caller's transaction."""
        if self.signer is None:
            # An unclosed change would look like a log cut back: refuse it rather than write it.
            raise LedgerConflict(
                "this change must close the audit log with a checkpoint signed by the shop's key, "
                "but the state store was opened without it; open it with `open_store(config)`"
            )
        audit.append(conn, entries)
        return audit.checkpoint(conn, self.signer, run_id=run_id)

    def _require_lease(self, conn: sa.Connection, run_id: str) -> None:
        held_by = lease.holder(conn)
        if held_by != run_id:
            raise LedgerConflict(
                f"run {run_id} does not hold the lease of the state store (held by "
                f"{held_by or 'nobody'}): it was declared dead and must not change drops; "
                "it stops here"
            )

    # ----------------------------------------------------------------------- decisions

    def record_decisions(
        self, run_id: str, reasons: pd.Series, agency: pd.Series, counts: Mapping[str, int]
    ) -> None:
        """Keep every case's reason codes and routed agency; audit the counts per reason.

        Stored as what changed since the previous recording run (`decision_changes`): only the
        cases whose decision differs, the new ones, and those no longer decided.
        """
        ids = reasons.index.astype(str).tolist()
        codes = reasons.astype(object).where(reasons.notna(), None).tolist()
        routed = agency.reindex(reasons.index).astype(object)
        routed = routed.where(routed.notna(), None).tolist()
        with self.transaction() as conn:
            audit.serialise(conn)  # PostgreSQL: no other run reads `latest_decisions` meanwhile
            seq = (conn.execute(sa.select(sa.func.max(decision_runs.c.seq))).scalar() or 0) + 1
            current = {
                invoice: (before, sent_to)
                for invoice, before, sent_to in conn.execute(
                    sa.select(
                        latest_decisions.c.invoice_id,
                        latest_decisions.c.reasons,
                        latest_decisions.c.agency,
                    )
                )
            }
            changed: list[tuple[Any, ...]] = []
            replaced: list[tuple[str]] = []
            for invoice, codes_now, agency_now in zip(ids, codes, routed, strict=True):
                before = current.pop(invoice, None)
                if before != (codes_now, agency_now):
                    changed.append((invoice, seq, codes_now, agency_now))
                    if before is not None:
                        replaced.append((invoice,))
            # What is left was decided by the previous run and not by this one.
            gone = [(invoice,) for invoice in current]
            insert_rows(conn, decision_runs, ("seq", "run_id", "cases"), [(seq, run_id, len(ids))])
            insert_rows(
                conn,
                decision_changes,
                ("invoice_id", "seq", "reasons", "agency"),
                changed + [(invoice, seq, None, None) for (invoice,) in gone],
            )
            delete_rows(conn, latest_decisions, "invoice_id", replaced + gone)
            insert_rows(
                conn,
                latest_decisions,
                ("invoice_id", "reasons", "agency"),
                [(invoice, codes_now, agency_now) for invoice, _, codes_now, agency_now in changed],
            )
            audit.append(conn, [audit.Entry(run_id, "cases_decided", {"counts": dict(counts)})])

    def handed_over(self) -> set[str]:
        """Invoice ids in delivered drops."""
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(delivered_cases.c.invoice_id)).scalars())

    def in_drops(self) -> set[str]:
        """Invoice ids in a delivered drop or in one still on its way (rule 10)."""
        waiting = (
            sa.select(handovers.c.invoice_id)
            .join(drops, drops.c.drop_id == handovers.c.drop_id)
            .where(drops.c.status.in_(LIVE_DROP_STATES))
        )
        with self.engine.connect() as conn:
            delivered = set(conn.execute(sa.select(delivered_cases.c.invoice_id)).scalars())
            return delivered | set(conn.execute(waiting).scalars())

    # ----------------------------------------------------------------------- drops

    def prepare_drop(
        self,
        drop: PreparedDrop,
        cases: pd.DataFrame,
        consent_records: pd.DataFrame | Sequence[consent_log.ConsentLogRecord],
        data: Mapping[str, Any],
    ) -> audit.Head:
        """Record a drop before it is sealed: row, cases, consent log and `drop_prepared`.

        `cases` is indexed by invoice_id with customer_id, case_ref and columns. Returns the
        audit head after `drop_prepared`, which goes into the manifest.
        """
        with self.transaction() as conn:
            self._require_lease(conn, drop.run_id)
            conn.execute(
                drops.insert().values(
                    drop_id=drop.drop_id,
                    run_id=drop.run_id,
                    agency=drop.agency,
                    as_of=data["as_of"],
                    directory=str(drop.directory),
                    files=json.dumps([p.name for p in drop.files]),
                    case_count=drop.case_count,
                    status="prepared",
                    prepared_at=now(),
                    policy_version=data.get("policy_version"),
                    policy_sha256=data.get("policy_sha256"),
                    kind="handover",
                )
            )
            # The baseline for later comparisons, where the run computed it.
            baseline = [c for c in (*BASELINE_COLUMNS, "currency") if c in cases]
            rows = (
                cases[["customer_id", "case_ref", "columns", *baseline]]
                .rename_axis("invoice_id")
                .reset_index()
                .assign(drop_id=drop.drop_id)
            )
            insert_rows(conn, handovers, list(rows.columns), _tuples(rows))
            consent_log.store(conn, consent_records)
            return audit.append_one(conn, audit.Entry(drop.run_id, "drop_prepared", data))

    def mark_sealed(self, run_id: str, drop_id: str, data: Mapping[str, Any]) -> None:
        """A prepared drop's files are complete on disk: it may now be delivered."""
        with self.transaction() as conn:
            self._require_lease(conn, run_id)
            self._move(conn, drop_id, "prepared", "sealed", sealed_at=now())
            audit.append(conn, [audit.Entry(run_id, "drop_sealed", data)])

    def abandon_drop(self, run_id: str, drop_id: str, reason: str) -> bool:
        """Give up a prepared or sealed drop that never reached the agency; False if it had ended.

        Its cases are free for a new drop. `reason` is a fixed phrase or an error type, never a
        message that could quote data.
        """
        with self.transaction() as conn:
            return self._abandon(conn, run_id, drop_id, reason)

    def abandon_by_operator(self, command_id: str, drop_id: str) -> PreparedDrop:
        """`handover drops abandon`: give up a waiting drop the agency confirmed it does not hold.

        Refused while a run is alive (it may be delivering the drop) and for a drop that is
        unknown, delivered or abandoned already.
        """
        with self.transaction() as conn:
            held_by = lease.holder(conn)
            holder = self._process(conn, held_by) if held_by else None
            if holder is not None and holder.death(_now()) is None:
                raise RunLocked(
                    f"the state store is in use by {holder.describe()}; abandon the drop when "
                    "that run has ended"
                )
            drop = conn.execute(sa.select(drops).where(drops.c.drop_id == drop_id)).first()
            if drop is None:
                raise LedgerConflict(
                    f"no drop {drop_id} in the state store; `handover drops list` shows the "
                    "drops waiting for delivery"
                )
            if not self._abandon(conn, command_id, drop_id, "abandoned by the operator"):
                raise LedgerConflict(
                    f"drop {drop_id} is {drop.status}: it can no longer be abandoned"
                )
            self._append_closed(conn, command_id, [])
        return self._drops(drops.c.drop_id == drop_id)[0]

    def _abandon(self, conn: sa.Connection, run_id: str, drop_id: str, reason: str) -> bool:
        drop = conn.execute(sa.select(drops).where(drops.c.drop_id == drop_id)).one()
        if drop.status not in LIVE_DROP_STATES:
            return False
        conn.execute(
            drops.update()
            .where(drops.c.drop_id == drop_id)
            .values(status="abandoned", abandoned_at=now(), abandon_reason=reason)
        )
        policy = {"policy_version": drop.policy_version, "policy_sha256": drop.policy_sha256}
        audit.append(
            conn,
            [
                audit.Entry(
                    run_id,
                    "drop_abandoned",
                    {
                        "drop_id": drop_id,
                        "agency": drop.agency,
                        "was": drop.status,
                        "reason": reason,
                        **policy,
                    },
                )
            ],
        )
        return True

    def unsealed_drops(self) -> list[PreparedDrop]:
        """Drops recorded as prepared whose sealing never finished (their run was killed)."""
        return self._drops(drops.c.status == "prepared")

    def waiting_drops(self, agency: str, kind: str = "handover") -> list[PreparedDrop]:
        """Sealed drops of `kind` for `agency` that were not delivered yet, oldest first."""
        return self._drops(drops.c.status == "sealed", drops.c.agency == agency, _of_kind(kind))

    def live_drops(self) -> list[PreparedDrop]:
        """Every drop prepared or sealed and not delivered yet, oldest first."""
        return self._drops(drops.c.status.in_(LIVE_DROP_STATES))

    def _drops(self, *where: sa.ColumnElement[bool]) -> list[PreparedDrop]:
        query = sa.select(drops).where(*where).order_by(drops.c.prepared_at, drops.c.drop_id)
        with self.engine.connect() as conn:
            return [
                PreparedDrop(
                    drop_id=row.drop_id,
                    run_id=row.run_id,
                    agency=row.agency,
                    directory=Path(row.directory),
                    files=tuple(Path(row.directory) / name for name in json.loads(row.files)),
                    case_count=row.case_count,
                    status=row.status,
                    kind=row.kind or "handover",
                )
                for row in conn.execute(query)
            ]

    def commit_drop(self, run_id: str, drop_id: str, receipt: Mapping[str, Any]) -> int:
        """Record a sealed drop as delivered and audit each of its cases; returns their number.

        Idempotent: a drop already delivered is left as it is (returns 0). Only a sealed drop
        becomes delivered, and an invoice already in another delivered drop refuses the commit.
        """
        with self.transaction() as conn:
            drop = conn.execute(sa.select(drops).where(drops.c.drop_id == drop_id)).one()
            if drop.status == "delivered":
                return 0
            self._require_lease(conn, run_id)
            if drop.kind == "recall":
                return self._commit_recall(conn, run_id, drop, receipt)
            self._move(conn, drop_id, "sealed", "delivered", delivered_at=now())
            try:
                conn.execute(
                    delivered_cases.insert().from_select(
                        ["invoice_id", "drop_id", *BASELINE_COLUMNS, "paused"],
                        sa.select(
                            handovers.c.invoice_id,
                            handovers.c.drop_id,
                            *(handovers.c[c] for c in BASELINE_COLUMNS),
                            sa.literal(False),  # no hold was in force (rule 13)
                        ).where(handovers.c.drop_id == drop_id),
                    )
                )
            except sa.exc.IntegrityError:
                raise LedgerConflict(
                    f"drop {drop_id} holds a case that is already in another delivered drop; "
                    "nothing was recorded. Run `handover audit show --event drop_delivered` and "
                    "report this: a case must never reach an agency twice"
                ) from None
            cases = conn.execute(
                sa.select(
                    handovers.c.invoice_id,
                    handovers.c.customer_id,
                    handovers.c.case_ref,
                    handovers.c.columns,
                ).where(handovers.c.drop_id == drop_id)
            ).all()
            policy = {"policy_version": drop.policy_version, "policy_sha256": drop.policy_sha256}
            audit.append(
                conn,
                [audit.Entry(run_id, "drop_delivered", {"drop_id": drop_id, **receipt, **policy})],
            )
            invoices, customers, refs, columns = zip(*cases, strict=True) if cases else ([],) * 4
            # One entry per case, written column-wise: what `audit.Entry(run_id,
            # "case_handed_over", {case_ref, agency, drop_id, columns, **policy}, identifiers=
            # {invoice_id, customer_id})` per case would write. The identifiers go to the side
            # table, so retention can erase them without breaking the chain.
            audit.append_columns(
                conn,
                run_id,
                "case_handed_over",
                {"agency": drop.agency, "drop_id": drop_id, **policy},
                {"case_ref": refs, "columns": [text.split(",") for text in columns]},
                identifiers={"invoice_id": invoices, "customer_id": customers},
            )
            return len(cases)

    def _move(
        self, conn: sa.Connection, drop_id: str, before: str, after: str, **values: Any
    ) -> None:
        result = conn.execute(
            drops.update()
            .where(drops.c.drop_id == drop_id, drops.c.status == before)
            .values(status=after, **values)
        )
        if result.rowcount != 1:
            status = conn.execute(
                sa.select(drops.c.status).where(drops.c.drop_id == drop_id)
            ).scalar()
            raise LedgerConflict(
                f"drop {drop_id} is {status or 'unknown'}, not {before}: it cannot become "
                f"{after}; nothing was recorded"
            )

    # ----------------------------------------------------------------------- recalls and updates
    # Issue 11. A recall/update drop is a drop of kind 'recall': prepared, sealed, delivered or
    # abandoned like a handover drop, by the same methods. What is its own: its cases and
    # messages (`recall_cases`, `recall_messages`), the comparison's view of what each agency
    # holds (`open_cases`), and what its delivery changes (`_commit_recall`).

    def open_cases(self, agencies: Sequence[str]) -> pd.DataFrame:
        """The cases at `agencies` now, with what each agency holds of them, by invoice_id.

        Columns: customer_id, case_ref, columns (sent with the handover), agency,
        handover_drop_id, the baseline columns and paused. A case with a message in a recall
        drop not yet delivered is left out: that drop tells the agency first.
        """
        import pandas as pd

        pending = (
            sa.select(recall_cases.c.invoice_id)
            .join(drops, drops.c.drop_id == recall_cases.c.drop_id)
            .where(drops.c.status.in_(LIVE_DROP_STATES))
        )
        query = open_at_agency().where(
            drops.c.agency.in_(list(agencies)), delivered_cases.c.invoice_id.not_in(pending)
        )
        with self.engine.connect() as conn:
            rows = [row._asdict() for row in conn.execute(query)]
        columns = [c.name for c in query.selected_columns]
        frame = pd.DataFrame(rows, columns=columns).set_index("invoice_id")
        return frame.astype(object).where(frame.notna(), None)

    def record_baselines(self, run_id: str, baselines: pd.DataFrame) -> int:
        """Record what the agencies hold of cases handed over before recalls existed.

        `baselines` (indexed by invoice_id) has agency, the baseline columns and paused; only
        cases still without a baseline are written. Audited as counts per agency; returns how
        many were written.
        """
        if baselines.empty:
            return 0
        state = (*BASELINE_COLUMNS, "paused")
        # Bind names apart from the column names: SQLAlchemy reserves those for the SET clause.
        rows = _records(
            baselines[list(state)].rename_axis("invoice_id").reset_index().add_prefix("b_")
        )
        update = (
            delivered_cases.update()
            .where(
                delivered_cases.c.invoice_id == sa.bindparam("b_invoice_id"),
                delivered_cases.c.digest_key.is_(None),
            )
            .values({column: sa.bindparam(f"b_{column}") for column in state})
        )
        per_agency = baselines["agency"].value_counts().sort_index()
        with self.transaction() as conn:
            self._require_lease(conn, run_id)
            # Counted before, not by rowcount: drivers differ in what executemany reports.
            written = conn.execute(
                sa.select(sa.func.count())
                .select_from(delivered_cases)
                .where(
                    delivered_cases.c.invoice_id.in_(list(baselines.index)),
                    delivered_cases.c.digest_key.is_(None),
                )
            ).scalar_one()
            conn.execute(update, rows)
            data = {
                "count": int(written),
                "agencies": {str(name): int(n) for name, n in per_agency.items()},
            }
            audit.append(conn, [audit.Entry(run_id, "change_baselines_recorded", data)])
        return int(written)

    def prepare_recall_drop(
        self,
        drop: PreparedDrop,
        cases: pd.DataFrame,
        messages: pd.DataFrame,
        data: Mapping[str, Any],
    ) -> audit.Head:
        """Record a recall/update drop before it is sealed: row, cases, messages, `drop_prepared`.

        `cases` is indexed by invoice_id with customer_id, case_ref, handover_drop_id, recalled,
        reasons and the state after the drop (baseline columns, paused); `messages` is indexed
        by invoice_id with reason_code, message_type, effective_date and fields. Returns the
        audit head after `drop_prepared`, which goes into the manifest.
        """
        case_rows = cases[
            [
                "customer_id",
                "case_ref",
                "handover_drop_id",
                "recalled",
                "reasons",
                *BASELINE_COLUMNS,
                "paused",
            ]
        ]
        message_rows = messages[
            ["reason_code", "channel", "message_type", "effective_date", "fields"]
        ].fillna({"channel": ""})
        with self.transaction() as conn:
            self._require_lease(conn, drop.run_id)
            conn.execute(
                drops.insert().values(
                    drop_id=drop.drop_id,
                    run_id=drop.run_id,
                    agency=drop.agency,
                    as_of=data["as_of"],
                    directory=str(drop.directory),
                    files=json.dumps([p.name for p in drop.files]),
                    case_count=drop.case_count,
                    status="prepared",
                    prepared_at=now(),
                    policy_version=data.get("policy_version"),
                    policy_sha256=data.get("policy_sha256"),
                    kind="recall",
                )
            )
            conn.execute(
                recall_cases.insert(),
                _records(
                    case_rows.rename_axis("invoice_id").reset_index().assign(drop_id=drop.drop_id)
                ),
            )
            conn.execute(
                recall_messages.insert(),
                _records(
                    message_rows.rename(columns={"reason_code": "reason"})
                    .rename_axis("invoice_id")
                    .reset_index()
                    .assign(drop_id=drop.drop_id)
                ),
            )
            return audit.append_one(conn, audit.Entry(drop.run_id, "drop_prepared", data))

    def _commit_recall(
        self, conn: sa.Connection, run_id: str, drop: sa.Row[Any], receipt: Mapping[str, Any]
    ) -> int:
        """A recall/update drop reached its agency: recalled cases leave `delivered_cases`, the
        others take the state the drop gave them; each case audited. Returns the cases."""
        drop_id = drop.drop_id
        self._move(conn, drop_id, "sealed", "delivered", delivered_at=now())
        mine = recall_cases.alias("mine")

        def of_this_drop(recalled: bool) -> sa.Exists:
            return sa.exists().where(
                mine.c.drop_id == drop_id,
                mine.c.recalled.is_(recalled),
                mine.c.invoice_id == delivered_cases.c.invoice_id,
                mine.c.handover_drop_id == delivered_cases.c.drop_id,
            )

        cases = conn.execute(sa.select(recall_cases).where(recall_cases.c.drop_id == drop_id)).all()
        recalled = sum(1 for case in cases if case.recalled)
        gone = conn.execute(delivered_cases.delete().where(of_this_drop(True))).rowcount
        state = {
            column: sa.select(mine.c[column])
            .where(mine.c.drop_id == drop_id, mine.c.invoice_id == delivered_cases.c.invoice_id)
            .scalar_subquery()
            for column in (*BASELINE_COLUMNS, "paused")
        }
        updated = conn.execute(
            delivered_cases.update().where(of_this_drop(False)).values(state)
        ).rowcount
        if gone != recalled or updated != len(cases) - recalled:
            raise LedgerConflict(
                f"drop {drop_id} names {len(cases)} cases, but only {gone + updated} are at "
                f"agency {drop.agency} in the drops it names; nothing was recorded. Run "
                "`handover audit show --event drop_delivered` and report this"
            )
        messages: dict[str, list[dict[str, Any]]] = {}
        for message in conn.execute(
            sa.select(recall_messages)
            .where(recall_messages.c.drop_id == drop_id)
            .order_by(
                recall_messages.c.invoice_id, recall_messages.c.reason, recall_messages.c.channel
            )
        ):
            messages.setdefault(message.invoice_id, []).append(
                {
                    "type": message.message_type,
                    "reason": message.reason,
                    **({"channel": message.channel} if message.channel else {}),
                    "effective_date": message.effective_date,
                    "fields": [f for f in message.fields.split(";") if f],
                }
            )
        policy = {"policy_version": drop.policy_version, "policy_sha256": drop.policy_sha256}
        audit.append(
            conn,
            [
                audit.Entry(
                    run_id,
                    "drop_delivered",
                    {"drop_id": drop_id, "kind": "recall", **receipt, **policy},
                )
            ]
            + [
                audit.Entry(
                    run_id,
                    "case_recalled" if case.recalled else "case_updated",
                    {
                        "case_ref": case.case_ref,
                        "agency": drop.agency,
                        "drop_id": drop_id,
                        "handover_drop_id": case.handover_drop_id,
                        "reasons": case.reasons.split(","),
                        "messages": messages.get(case.invoice_id, []),
                        **policy,
                    },
                    identifiers={"invoice_id": case.invoice_id, "customer_id": case.customer_id},
                )
                for case in cases
            ],
        )
        return len(cases)

    def recall_messages_of(self, invoice_id: str) -> list[dict[str, Any]]:
        """Every recall/update message about an invoice, oldest drop first, with its drop."""
        query = (
            sa.select(
                recall_messages.c.drop_id,
                drops.c.agency,
                drops.c.status,
                drops.c.delivered_at,
                drops.c.directory,
                recall_cases.c.case_ref,
                recall_cases.c.handover_drop_id,
                recall_messages.c.message_type,
                recall_messages.c.reason,
                recall_messages.c.channel,
                recall_messages.c.effective_date,
                recall_messages.c.fields,
            )
            .join(drops, drops.c.drop_id == recall_messages.c.drop_id)
            .join(
                recall_cases,
                (recall_cases.c.drop_id == recall_messages.c.drop_id)
                & (recall_cases.c.invoice_id == recall_messages.c.invoice_id),
            )
            .where(recall_messages.c.invoice_id == invoice_id)
            .order_by(
                drops.c.prepared_at,
                drops.c.drop_id,
                recall_messages.c.reason,
                recall_messages.c.channel,
            )
        )
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query)]

    def at_agency(self, invoice_id: str) -> dict[str, Any] | None:
        """Where the invoice is now (agency, handover_drop_id), or None: at no agency."""
        query = open_at_agency().where(delivered_cases.c.invoice_id == invoice_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else {"agency": row.agency, "drop_id": row.handover_drop_id}

    # ----------------------------------------------------------------------- one-off commands

    def record_event(
        self,
        run_id: str,
        event: str,
        data: Mapping[str, Any],
        identifiers: Mapping[str, str] | None = None,
    ) -> None:
        """Audit what a command did (a subject request answered, drops deleted), closed."""
        with self.transaction() as conn:
            self._append_closed(conn, run_id, [audit.Entry(run_id, event, data, identifiers)])

    def apply_retention(
        self,
        run_id: str,
        *,
        identifier_seqs: Sequence[int],
        drop_ids: Sequence[str],
        runs_before: str,
        data: Mapping[str, Any],
    ) -> None:
        """Erase what retention found past its period, audited and closed in one transaction."""
        old_runs = sa.select(runs.c.run_id).where(runs.c.as_of < runs_before)
        with self.transaction() as conn:
            audit.erase_identifiers(
                conn, identifier_seqs, run_id=run_id, data={k: data[k] for k in _CUTOFF_KEYS}
            )
            if drop_ids:
                conn.execute(
                    consent_log.consent_log.update()
                    .where(consent_log.consent_log.c.drop_id.in_(drop_ids))
                    .values(invoice_id=None, customer_id=None)
                )
                conn.execute(
                    delivered_cases.delete().where(delivered_cases.c.drop_id.in_(drop_ids))
                )
                conn.execute(handovers.delete().where(handovers.c.drop_id.in_(drop_ids)))
                conn.execute(
                    recall_messages.delete().where(recall_messages.c.drop_id.in_(drop_ids))
                )
                conn.execute(recall_cases.delete().where(recall_cases.c.drop_id.in_(drop_ids)))
            conn.execute(decision_runs.delete().where(decision_runs.c.run_id.in_(old_runs)))
            _forget_decisions_of_removed_runs(conn)
            conn.execute(quarantine.delete().where(quarantine.c.run_id.in_(old_runs)))
            conn.execute(return_events.delete().where(return_events.c.ingested_at < runs_before))
            conn.execute(
                reviews.delete().where(
                    reviews.c.status == "released", reviews.c.released_at < runs_before
                )
            )
            self._append_closed(conn, run_id, [audit.Entry(run_id, "retention_run", data)])

    # ----------------------------------------------------------------------- reading

    def decision_history(self, invoice_id: str) -> list[dict[str, Any]]:
        """Every run's decision for one invoice, newest first, with the run's as_of and agency."""
        decided = decisions(invoice_id=invoice_id).subquery()
        query = (
            sa.select(
                runs.c.run_id,
                runs.c.as_of,
                runs.c.agency,
                runs.c.dry_run,
                runs.c.started_at,
                decided.c.reasons,
                decided.c.agency.label("routed_to"),
            )
            .join(decided, decided.c.run_id == runs.c.run_id)
            .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        )
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query)]

    def knows_invoice(self, invoice_id: str) -> bool:
        """Whether a run decided on, held back or put into a drop the invoice `invoice_id`, or
        an agency reported about it (a review hold outlives the rest, see `retention`)."""
        tables = (decision_changes, quarantine, handovers, recall_cases, return_events, reviews)
        return self._any(*(sa.exists().where(t.c.invoice_id == invoice_id) for t in tables))

    def instalment_cases(self, invoice_id: str) -> list[str]:
        """The case keys of the instalments of `invoice_id` a run decided on
        (`handover.case_keys`), sorted."""
        prefix = invoice_id + case_keys.SEPARATOR
        query = (
            sa.select(decision_changes.c.invoice_id)
            .where(decision_changes.c.invoice_id.startswith(prefix, autoescape=True))
            .distinct()
            .order_by(decision_changes.c.invoice_id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def knows_customer(self, customer_id: str) -> bool:
        """Whether a drop or the consent log holds a case of the customer `customer_id`.

        So a customer the shop has since deleted can still be answered for (Art. 15).
        """
        log = consent_log.consent_log
        return self._any(
            sa.exists().where(handovers.c.customer_id == customer_id),
            sa.exists().where(log.c.customer_id == customer_id),
        )

    def _any(self, *conditions: sa.ColumnElement[bool]) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(sa.select(sa.or_(*conditions))).scalar())

    def drops_of(self, invoice_id: str) -> list[dict[str, Any]]:
        """The drops an invoice was put in, with their status."""
        query = (
            sa.select(drops.c.drop_id, drops.c.agency, drops.c.status, drops.c.delivered_at)
            .join(handovers, handovers.c.drop_id == drops.c.drop_id)
            .where(handovers.c.invoice_id == invoice_id)
            .order_by(drops.c.prepared_at)
        )
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query)]

    def record_quarantine(
        self, run_id: str, suite: str, quarantined: pd.DataFrame, *, agency: str | None = None
    ) -> None:
        """Keep the held-back cases (columns invoice_id, reasons) and audit them, ids only.

        One audit entry per call, also when nothing was held back: the log shows the check ran.
        `agency` (for the outgoing rows of one agency) goes into the audit entry.
        """
        rows = [
            {"run_id": run_id, "invoice_id": str(i), "suite": suite, "reasons": str(r)}
            for i, r in zip(quarantined["invoice_id"], quarantined["reasons"], strict=True)
        ]
        counts: dict[str, int] = {}
        for row in rows:
            for code in row["reasons"].split(","):
                counts[code] = counts.get(code, 0) + 1
        data = {
            "suite": suite,
            **({"agency": agency} if agency else {}),
            "count": len(rows),
            "reasons": dict(sorted(counts.items())),
            "invoice_ids": [row["invoice_id"] for row in rows],
        }
        with self.transaction() as conn:
            if rows:
                conn.execute(quarantine.insert(), rows)
            audit.append(conn, [audit.Entry(run_id, "cases_quarantined", data)])

    def quarantined(
        self, run_id: str | None = None, *, invoice_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Held-back cases (run_id, invoice_id, suite, reasons), oldest run first."""
        query = (
            sa.select(
                quarantine.c.run_id,
                quarantine.c.invoice_id,
                quarantine.c.suite,
                quarantine.c.reasons,
            )
            .join(runs, runs.c.run_id == quarantine.c.run_id)
            .order_by(
                runs.c.started_at,
                quarantine.c.run_id,
                quarantine.c.suite.desc(),  # source before outgoing, the order of a run
                quarantine.c.invoice_id,
            )
        )
        if run_id is not None:
            query = query.where(quarantine.c.run_id == run_id)
        if invoice_id is not None:
            query = query.where(quarantine.c.invoice_id == invoice_id)
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query)]

    def verify(
        self,
        *,
        verify_signature: audit.SignatureVerifier | None = None,
        witnessed: Sequence[audit.Witness] = (),
    ) -> audit.ChainStatus:
        """`audit.verify` with this store's knowledge of which runs are still alive."""
        with self.engine.connect() as conn:
            return audit.verify(
                conn,
                verify_signature=verify_signature,
                witnessed=witnessed,
                running=self.is_running,
            )

    # ----------------------------------------------------------------------- returns

    def cases_at_agency(self, agency: str, case_refs: Iterable[str]) -> dict[str, CaseAtAgency]:
        """The cases among `case_refs` that a delivered drop took to `agency`, by case_ref."""
        refs = sorted(set(case_refs))
        found: dict[str, CaseAtAgency] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(refs), _IN_CHUNK):
                query = (
                    sa.select(handovers.c.case_ref, handovers.c.invoice_id, drops.c.as_of)
                    .join(drops, drops.c.drop_id == handovers.c.drop_id)
                    .join(
                        delivered_cases,
                        (delivered_cases.c.invoice_id == handovers.c.invoice_id)
                        & (delivered_cases.c.drop_id == handovers.c.drop_id),
                    )
                    .where(
                        drops.c.agency == agency,
                        handovers.c.case_ref.in_(refs[start : start + _IN_CHUNK]),
                    )
                )
                for row in conn.execute(query):
                    found[row.case_ref] = CaseAtAgency(row.invoice_id, row.as_of)
        return found

    def return_file(self, agency: str, return_id: str) -> dict[str, Any] | None:
        """What the ledger recorded of an ingested return file, or None."""
        query = sa.select(return_files).where(
            return_files.c.agency == agency, return_files.c.return_id == return_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return row._asdict() if row is not None else None

    def ingest_return(
        self,
        run_id: str,
        *,
        agency: str,
        return_id: str,
        manifest_sha256: str,
        events: Sequence[Mapping[str, Any]],
    ) -> ReturnIngested:
        """Record a return file's events once, each audited, in one transaction.

        `events` are rows of `return_events` without agency, return_id and ingested_at (so:
        event_id, invoice_id, case_ref, event, event_date, amount_cents, currency). The same
        file again (same signed manifest) changes nothing; an event_id ingested before with the
        same content is skipped; one with other content, or a different file under an id
        ingested before, raises LedgerConflict and nothing is recorded. The primary keys keep
        every event, and every file, once even against a concurrent writer. A dispute or a
        complaint puts its case on review (again, if it had been released).
        """
        moment = now()
        what = f"return file {return_id} of agency {agency}"
        with self.transaction() as conn:
            self._require_lease(conn, run_id)
            before = conn.execute(
                sa.select(return_files).where(
                    return_files.c.agency == agency, return_files.c.return_id == return_id
                )
            ).first()
            if before is not None:
                if before.manifest_sha256 != manifest_sha256:
                    raise LedgerConflict(
                        f"{what}: a different return file under an id ingested on "
                        f"{before.ingested_at}; nothing of it was ingested: ask the agency to "
                        "send it under a new return id"
                    )
                return ReturnIngested(0, len(events), 0, before.ingested_at)
            ids = [e["event_id"] for e in events]
            known: dict[str, Any] = {}
            for start in range(0, len(ids), _IN_CHUNK):
                query = sa.select(return_events).where(
                    return_events.c.agency == agency,
                    return_events.c.event_id.in_(ids[start : start + _IN_CHUNK]),
                )
                known |= {row.event_id: row for row in conn.execute(query)}
            clashes = [
                number
                for number, e in enumerate(events, 1)
                if e["event_id"] in known
                and any(getattr(known[e["event_id"]], k) != e[k] for k in _EVENT_CONTENT)
            ]
            if clashes:
                rows = ", ".join(map(str, clashes[:10])) + (" …" if len(clashes) > 10 else "")
                raise LedgerConflict(
                    f"{what}: row(s) {rows} reuse an event_id ingested before for a different "
                    "event; nothing of the file was ingested: an event_id names one event"
                )
            new = [dict(e) for e in events if e["event_id"] not in known]
            conn.execute(
                return_files.insert().values(
                    agency=agency,
                    return_id=return_id,
                    manifest_sha256=manifest_sha256,
                    event_count=len(events),
                    new_events=len(new),
                    run_id=run_id,
                    ingested_at=moment,
                )
            )
            try:
                if new:
                    conn.execute(
                        return_events.insert(),
                        [
                            {**e, "agency": agency, "return_id": return_id, "ingested_at": moment}
                            for e in new
                        ],
                    )
            except sa.exc.IntegrityError:
                raise LedgerConflict(
                    f"{what}: an event of it was recorded meanwhile by another writer; nothing "
                    "was ingested, the next run takes the file again"
                ) from None
            on_review = self._put_on_review(conn, agency, new, moment)
            entries = [
                audit.Entry(
                    run_id,
                    "return_ingested",
                    {
                        "agency": agency,
                        "return_id": return_id,
                        "manifest_sha256": manifest_sha256,
                        "events": len(events),
                        "new_events": len(new),
                        "duplicates": len(events) - len(new),
                    },
                )
            ]
            entries += [
                audit.Entry(
                    run_id,
                    "return_event",
                    {
                        "agency": agency,
                        "return_id": return_id,
                        **{k: e[k] for k in _EVENT_AUDITED},
                    },
                    identifiers={"invoice_id": e["invoice_id"]},
                )
                for e in new
            ]
            entries += [
                audit.Entry(
                    run_id,
                    "case_on_review",
                    {"agency": agency, "event_id": e["event_id"], "event": e["event"]},
                    identifiers={"invoice_id": e["invoice_id"]},
                )
                for e in on_review
            ]
            audit.append(conn, entries)
        return ReturnIngested(len(new), len(events) - len(new), len(on_review), None)

    def _put_on_review(
        self, conn: sa.Connection, agency: str, events: list[dict[str, Any]], moment: str
    ) -> list[dict[str, Any]]:
        """Put the cases of dispute and complaint events on review; the events that did so."""
        latest = {e["invoice_id"]: e for e in events if e["event"] in REVIEW_EVENTS}
        if not latest:
            return []
        held = set(
            conn.execute(
                sa.select(reviews.c.invoice_id).where(
                    reviews.c.invoice_id.in_(list(latest)), reviews.c.status == "on_review"
                )
            ).scalars()
        )
        fresh = [e for invoice, e in latest.items() if invoice not in held]
        values = [
            {
                "invoice_id": e["invoice_id"],
                "status": "on_review",
                "agency": agency,
                "event_id": e["event_id"],
                "event": e["event"],
                "since": moment,
                "released_at": None,
                "release_reason": None,
            }
            for e in fresh
        ]
        if values:
            # A released case disputed again goes back on review: its old row is replaced.
            conn.execute(
                reviews.delete().where(reviews.c.invoice_id.in_([v["invoice_id"] for v in values]))
            )
            conn.execute(reviews.insert(), values)
        return fresh

    def record_return_refused(self, run_id: str, agency: str, return_id: str, check: str) -> None:
        """Audit that a return file was refused (`check` names which check; no message)."""
        data = {"agency": agency, "return_id": return_id, "check": check}
        with self.transaction() as conn:
            audit.append(conn, [audit.Entry(run_id, "return_refused", data)])

    def on_review(self) -> set[str]:
        """Invoice ids on review (a dispute or complaint reported, not released): rule 16."""
        query = sa.select(reviews.c.invoice_id).where(reviews.c.status == "on_review")
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def release_review(self, command_id: str, invoice_id: str, reason: str) -> dict[str, Any]:
        """`handover release`: take a case off review, audited and closed with a checkpoint.

        `reason` is a code (`handover.returns.review.RELEASE_REASONS`), never free text. Returns
        the review as it was; LedgerConflict for a case that is not on review.
        """
        with self.transaction() as conn:
            row = conn.execute(sa.select(reviews).where(reviews.c.invoice_id == invoice_id)).first()
            if row is None or row.status != "on_review":
                state = "was released on " + str(row.released_at) if row else "never was"
                raise LedgerConflict(
                    f"invoice {invoice_id} is not on review (it {state}); nothing was changed. "
                    "`handover explain` shows why a case is held back"
                )
            conn.execute(
                reviews.update()
                .where(reviews.c.invoice_id == invoice_id, reviews.c.status == "on_review")
                .values(status="released", released_at=now(), release_reason=reason)
            )
            entry = audit.Entry(
                command_id,
                "review_released",
                {
                    "reason": reason,
                    "agency": row.agency,
                    "event_id": row.event_id,
                    "event": row.event,
                    "on_review_since": row.since,
                },
                identifiers={"invoice_id": invoice_id},
            )
            self._append_closed(conn, command_id, [entry])
        return row._asdict()

    def closed_by_agency(self, agency: str | None = None) -> set[str]:
        """Invoice ids whose case an agency closed or returned (`contract.CLOSING_EVENTS`:
        closed_paid, closed_uncollectable, returned), as reported in its return files.

        Such a case is no longer open at the agency, whatever it reports later. `agency` limits
        it to the cases that agency reported closed.
        """
        query = sa.select(return_events.c.invoice_id).where(
            return_events.c.event.in_(CLOSING_EVENTS)
        )
        if agency is not None:
            query = query.where(return_events.c.agency == agency)
        with self.engine.connect() as conn:
            return set(conn.execute(query.distinct()).scalars())

    def agency_payments(
        self, start: dt.date, end: dt.date, agency: str | None = None
    ) -> list[dict[str, Any]]:
        """Payments the agencies reported (payment, closed_paid) with an event date from
        `start` to `end` inclusive, oldest first: ids, dates and amounts."""
        query = (
            sa.select(
                return_events.c.invoice_id,
                return_events.c.agency,
                return_events.c.event,
                return_events.c.event_date,
                return_events.c.amount_cents,
                return_events.c.currency,
                return_events.c.event_id,
                return_events.c.return_id,
            )
            .where(
                return_events.c.event.in_(PAYMENT_EVENTS),
                return_events.c.event_date >= start.isoformat(),
                return_events.c.event_date <= end.isoformat(),
            )
            .order_by(
                return_events.c.event_date,
                return_events.c.agency,
                return_events.c.event_id,
            )
        )
        if agency is not None:
            query = query.where(return_events.c.agency == agency)
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query)]

    def return_events_of(self, invoice_id: str) -> list[dict[str, Any]]:
        """Every event the agencies reported about an invoice, oldest first (`explain`,
        `subject`): agency, return_id, event_id, case_ref, event, event_date, amount_cents,
        currency, ingested_at. Codes, dates and amounts: the contract has no free text."""
        query = (
            sa.select(
                return_events.c.agency,
                return_events.c.return_id,
                return_events.c.event_id,
                return_events.c.case_ref,
                return_events.c.event,
                return_events.c.event_date,
                return_events.c.amount_cents,
                return_events.c.currency,
                return_events.c.ingested_at,
            )
            .where(return_events.c.invoice_id == invoice_id)
            .order_by(
                return_events.c.event_date,
                return_events.c.ingested_at,
                return_events.c.agency,
                return_events.c.event_id,
            )
        )
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query)]

    def review_of(self, invoice_id: str) -> dict[str, Any] | None:
        """The invoice's review hold, or None if none was ever recorded (`explain`, `subject`):
        status (on_review | released), agency, event_id, event, since, released_at and
        release_reason (a code of `handover.returns.reasons.RELEASE_REASONS`)."""
        query = sa.select(reviews).where(reviews.c.invoice_id == invoice_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else row._asdict()


def open_at_agency() -> sa.Select[Any]:
    """The cases at an agency now: delivered in a handover drop, not recalled since, and not
    closed or returned by that agency (a closing event in its return files dated on or after
    the handover).

    The one place that says which cases the shop must keep informed about (recalls and
    updates): a delivered recall deletes its case from `delivered_cases`.
    """
    closed = (
        sa.select(return_events.c.invoice_id)
        .where(
            return_events.c.invoice_id == delivered_cases.c.invoice_id,
            return_events.c.agency == drops.c.agency,
            return_events.c.event.in_(CLOSING_EVENTS),
            return_events.c.event_date >= drops.c.as_of,
        )
        .exists()
    )
    return (
        sa.select(
            delivered_cases.c.invoice_id,
            handovers.c.customer_id,
            handovers.c.case_ref,
            handovers.c.columns,
            drops.c.agency,
            delivered_cases.c.drop_id.label("handover_drop_id"),
            *(delivered_cases.c[c] for c in BASELINE_COLUMNS),
            delivered_cases.c.paused,
        )
        .join(
            handovers,
            (handovers.c.invoice_id == delivered_cases.c.invoice_id)
            & (handovers.c.drop_id == delivered_cases.c.drop_id),
        )
        .join(drops, drops.c.drop_id == delivered_cases.c.drop_id)
        .where(~closed)
    )


def decisions(*, invoice_id: str | None = None) -> sa.Select[Any]:
    """Every recording run's decision per case (`invoice_id`: of that case only), expanded from
    `decision_changes`: the columns run_id, invoice_id, reasons and agency, one row per run and
    case it decided, as the table `decisions` held them before schema version 3.

    A change row covers the recording runs from its `seq` up to the case's next row; a row with
    reasons NULL covers runs that did not decide the case. Each run is found by its primary key.
    """
    spans = sa.select(
        decision_changes.c.invoice_id,
        decision_changes.c.seq,
        decision_changes.c.reasons,
        decision_changes.c.agency,
        sa.func.lead(decision_changes.c.seq)
        .over(partition_by=decision_changes.c.invoice_id, order_by=decision_changes.c.seq)
        .label("until"),
    )
    if invoice_id is not None:
        spans = spans.where(decision_changes.c.invoice_id == invoice_id)
    span = spans.subquery("spans")
    return (
        sa.select(decision_runs.c.run_id, span.c.invoice_id, span.c.reasons, span.c.agency)
        .select_from(span)
        .join(
            decision_runs,
            (decision_runs.c.seq >= span.c.seq)
            & (span.c.until.is_(None) | (decision_runs.c.seq < span.c.until)),
        )
        .where(span.c.reasons.is_not(None))
    )


def _of_kind(kind: str) -> sa.ColumnElement[bool]:
    """Drops of `kind`; a drop recorded before recalls existed is a handover drop."""
    return sa.func.coalesce(drops.c.kind, "handover") == kind


def handover_drops() -> sa.ColumnElement[bool]:
    """The condition on `drops` that keeps handover drops (not recall/update drops)."""
    return _of_kind("handover")


def _tuples(frame: pd.DataFrame) -> list[list[Any]]:
    """Rows of `frame` for `insert_rows`: Python values, None for missing ones."""
    values = frame.astype(object)
    return values.where(frame.notna(), None).to_numpy(dtype=object).tolist()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for an insert: Python values, None for missing ones (drivers refuse numpy's)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


_CUTOFF_KEYS = ("cutoff", "identifier_years")


def open_store(config: Config, *, signing: bool = True) -> StateStore:
    """The state store of `config`; with `signing`, one that closes its changes with a
    checkpoint signed by the shop's key (a missing key is an error, not an unsigned log)."""
    signer = None
    if signing:
        shop = Signer.from_key_file(KeyDirectory(config.key_dir).signing_key())
        signer = audit.CheckpointSigner(shop.for_namespace(AUDIT_NAMESPACE), shop.fingerprint)
    return StateStore(config.state_url, signer=signer)


def recorded_policies(url: str) -> dict[str, tuple[str | None, str]]:
    """Per agency, the policy version and hash the latest run for it recorded (`run_started`).

    Read-only: a state store not made yet is not created, and yields {}.
    """
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {}
    try:
        return _recorded_policies(create_engine(url))
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        # Only the kind: a driver's message may quote the URL and its password.
        raise ConfigError(
            f"cannot read the state database (state.url): {type(exc).__name__}; check the URL "
            "and that the database server runs"
        ) from None


def _recorded_policies(engine: sa.Engine) -> dict[str, tuple[str | None, str]]:
    try:
        if not sa.inspect(engine).has_table(audit.audit_log.name):
            return {}
        query = (
            sa.select(audit.audit_log.c.data)
            .where(audit.audit_log.c.event == "run_started")
            .order_by(audit.audit_log.c.seq.desc())
        )
        latest: dict[str, tuple[str | None, str]] = {}
        with engine.connect() as conn:
            for (text,) in conn.execute(query):
                data = json.loads(text)
                for agency, sha in (data.get("policy_sha256") or {}).items():
                    latest.setdefault(agency, (data.get("policy_version"), sha))
        return latest
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Snapshot:
    """What `handover status` shows of a state store: recent runs, the lease, waiting drops.

    Rows are dicts of the tables' columns (ids, dates, counts; no personal data). `lease_holder`
    is the process of the run that holds the lease while that run is registered as running.
    """

    runs: tuple[dict[str, Any], ...]  # latest first
    lease_run_id: str | None  # None: the lease is free
    lease_since: str | None
    lease_holder: lease.RunProcess | None  # None: free, or its run is no longer running
    drops: tuple[dict[str, Any], ...]  # prepared or sealed, oldest first


def read_snapshot(url: str, *, runs_limit: int) -> Snapshot | None:
    """The latest `runs_limit` runs, the lease and the live drops; None before the first run.

    Read-only, like `recorded_policies`: a state store not made yet is not created.
    """
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    try:
        engine = create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"state.url is not a usable SQLAlchemy URL ({type(exc).__name__}); check its form"
        ) from None
    try:
        if not sa.inspect(engine).has_table(lease.run_lease.name):
            return None
        with engine.connect() as conn:
            latest = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
            recent = tuple(row._asdict() for row in conn.execute(latest.limit(runs_limit)))
            held = conn.execute(
                sa.select(lease.run_lease).where(lease.run_lease.c.name == lease.LEASE_NAME)
            ).first()
            holder_id = held.run_id if held is not None else None
            live = sa.select(drops).where(drops.c.status.in_(LIVE_DROP_STATES))
            waiting = tuple(
                row._asdict()
                for row in conn.execute(live.order_by(drops.c.prepared_at, drops.c.drop_id))
            )
            holder = _running_process(conn, holder_id) if holder_id else None
        return Snapshot(recent, holder_id, held.since if holder_id else None, holder, waiting)
    except sa.exc.SQLAlchemyError as exc:
        # Only the kind: a driver's message may quote the URL and its password.
        raise ConfigError(
            f"cannot read the state database (state.url): {type(exc).__name__}; check the URL "
            "and that the database server runs"
        ) from None
    finally:
        engine.dispose()


def _running_process(conn: sa.Connection, run_id: str) -> lease.RunProcess | None:
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
    if row is None or row.status != "running":
        return None
    return lease.RunProcess(row.run_id, row.host, row.pid, row.started_at, row.alive_until)


class _Heartbeat:
    """A daemon thread that renews a run's `alive_until` until the run ends."""

    def __init__(self, store: StateStore, run_id: str) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(store, run_id), name=f"heartbeat {run_id}", daemon=True
        )
        self._thread.start()

    def _beat(self, store: StateStore, run_id: str) -> None:
        while not self._stopped.wait(lease.ALIVE_SECONDS / 4):
            # A missed beat only shortens what other hosts believe; the next one catches up.
            try:
                store.heartbeat(run_id)
            except sa.exc.SQLAlchemyError:
                continue

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


def _sleep_until(moment: dt.datetime) -> None:
    remaining = (moment - _now()).total_seconds()
    if remaining > 0:
        threading.Event().wait(remaining)


def _add_missing_columns(conn: sa.Connection) -> None:
    """Bring a state database made by an older version up to date: add its missing columns.

    Only nullable columns are ever added to existing tables, so old rows stay valid (NULL).
    """
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:
                raise ConfigError(
                    f"the state database's table {table.name} lacks column {column.name}, "
                    "which cannot be added to existing rows; move the old state database "
                    "aside and start a new one"
                )
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))


def _migrate(conn: sa.Connection) -> None:
    """Move data written by an older schema version into the current tables (once)."""
    version = conn.execute(
        sa.select(ledger_meta.c.value).where(ledger_meta.c.key == "schema")
    ).scalar()
    if version == SCHEMA_VERSION:
        return
    if version not in (None, "2"):
        raise ConfigError(
            f"the state database has schema version {version}, this handover knows "
            f"{SCHEMA_VERSION}; upgrade handover"
        )
    if version is None:
        # Version 1 called a sealed drop waiting for delivery `prepared`.
        conn.execute(
            drops.update()
            .where(drops.c.status == "prepared")
            .values(status="sealed", sealed_at=drops.c.prepared_at)
        )
        first = (
            sa.select(handovers.c.invoice_id, sa.func.min(handovers.c.drop_id))
            .join(drops, drops.c.drop_id == handovers.c.drop_id)
            .where(drops.c.status == "delivered")
            .group_by(handovers.c.invoice_id)
        )
        conn.execute(delivered_cases.insert().from_select(["invoice_id", "drop_id"], first))
    _decisions_as_changes(conn)
    conn.execute(ledger_meta.delete().where(ledger_meta.c.key == "schema"))
    conn.execute(ledger_meta.insert().values(key="schema", value=SCHEMA_VERSION))


def _decisions_as_changes(conn: sa.Connection) -> None:
    """Version 2 → 3: the table `decisions` (every case of every run) becomes `decision_runs`
    and `decision_changes`, then goes. The runs are numbered in the order they started."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("decisions"):
        return
    have = {c["name"] for c in inspector.get_columns("decisions")}
    old = sa.table("decisions", *(sa.column(name) for name in have))
    recorded = conn.execute(
        sa.select(old.c.run_id, sa.func.count(), sa.func.min(runs.c.started_at))
        .select_from(old.outerjoin(runs, runs.c.run_id == old.c.run_id))
        .group_by(old.c.run_id)
        .order_by(sa.func.min(runs.c.started_at), old.c.run_id)
    ).all()
    numbers = {run_id: seq for seq, (run_id, _, _) in enumerate(recorded, 1)}
    insert_rows(
        conn,
        decision_runs,
        ("seq", "run_id", "cases"),
        [(numbers[run_id], run_id, cases) for run_id, cases, _ in recorded],
    )
    last = len(recorded)
    agency = old.c.agency if "agency" in have else sa.null()  # before routing: none
    rows = conn.execute(
        sa.select(old.c.invoice_id, old.c.run_id, old.c.reasons, agency).order_by(old.c.invoice_id)
    )
    changes: list[tuple[Any, ...]] = []
    latest: list[tuple[Any, ...]] = []
    for invoice, group in itertools.groupby(rows, key=lambda row: row[0]):
        state, previous = None, 0
        for seq, codes, routed in sorted((numbers[r[1]], r[2], r[3]) for r in group):
            if state is not None and seq > previous + 1:  # runs in between did not decide it
                changes.append((invoice, previous + 1, None, None))
                state = None
            if state != (codes, routed):
                changes.append((invoice, seq, codes, routed))
                state = (codes, routed)
            previous = seq
        if previous < last:
            changes.append((invoice, previous + 1, None, None))
        else:
            latest.append((invoice, *state))  # type: ignore[misc]
        if len(changes) >= _MIGRATION_BATCH:
            insert_rows(conn, decision_changes, _CHANGE_COLUMNS, changes)
            changes = []
    insert_rows(conn, decision_changes, _CHANGE_COLUMNS, changes)
    insert_rows(conn, latest_decisions, ("invoice_id", "reasons", "agency"), latest)
    conn.execute(sa.text("DROP TABLE decisions"))


_CHANGE_COLUMNS = ("invoice_id", "seq", "reasons", "agency")
_MIGRATION_BATCH = 100_000


def _forget_decisions_of_removed_runs(conn: sa.Connection) -> None:
    """After retention removed runs from `decision_runs`: drop the change rows that only
    described removed runs, move the others to the first remaining run they describe (so no
    row tells when a removed run decided), drop a leading "not decided" row (it would tell the
    case was known), and rebuild `latest_decisions` from each case's last row."""
    c, later, kept = (
        decision_changes,
        decision_changes.alias("later"),
        decision_runs.alias("kept"),
    )
    until = (
        sa.select(sa.func.min(later.c.seq))
        .where(later.c.invoice_id == c.c.invoice_id, later.c.seq > c.c.seq)
        .correlate(c)  # to the row of the DELETE, two levels up
        .scalar_subquery()
    )
    in_span = sa.exists().where(kept.c.seq >= c.c.seq, until.is_(None) | (kept.c.seq < until))
    conn.execute(c.delete().where(~in_span))
    first_kept = sa.select(sa.func.min(kept.c.seq)).where(kept.c.seq >= c.c.seq).scalar_subquery()
    conn.execute(c.update().values(seq=first_kept))
    earlier = sa.exists().where(later.c.invoice_id == c.c.invoice_id, later.c.seq < c.c.seq)
    conn.execute(c.delete().where(c.c.reasons.is_(None), ~earlier))
    conn.execute(latest_decisions.delete())
    last = sa.select(sa.func.max(later.c.seq)).where(later.c.invoice_id == c.c.invoice_id)
    conn.execute(
        latest_decisions.insert().from_select(
            ["invoice_id", "reasons", "agency"],
            sa.select(c.c.invoice_id, c.c.reasons, c.c.agency).where(
                c.c.reasons.is_not(None), c.c.seq == last.scalar_subquery()
            ),
        )
    )
