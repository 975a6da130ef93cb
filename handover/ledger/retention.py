"""`handover retention run`: erase identifiers once their retention period is over (Art. 5(1)(e)).

A record made in year Y is kept until the end of year Y + `identifier_years` (default 7, at
least 3, see `handover.config.DEFAULT_IDENTIFIER_YEARS`), so the cut-off is 1 January of (today's
year − years): everything recorded before it goes. What goes:

- the invoice and customer ids of audit entries (side table `audit_identifiers`; the chain keeps
  their salted digests, and `audit verify` reports them as erased);
- the ids in the consent log of drops delivered before the cut-off;
- the case register: `handovers` rows of those drops, the recall register (`recall_cases`,
  `recall_messages`) of recall/update drops delivered before it, the decisions of runs before
  it (`decision_runs`, and the rows of `decision_changes` that describe no later run; see
  `store._forget_decisions_of_removed_runs`) and their `quarantine` rows;
- the events of the agencies' return files recorded before it, and the review holds released
  before it (a hold still in force stays).

Drops, runs, counts, pseudonyms and the chain itself stay: they hold no identifiers. The sealed
drops in the outbox follow their own period (`[archive] retention_days`, `retention drops`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from handover.ledger import audit
from handover.ledger.consent_log import consent_log
from handover.ledger.store import (
    StateStore,
    decision_runs,
    drops,
    handovers,
    quarantine,
    recall_cases,
    return_events,
    reviews,
    runs,
)


@dataclass(frozen=True)
class RetentionResult:
    """What a retention run erased (or would erase, for a dry run)."""

    cutoff: dt.date
    identifiers_erased: int
    consent_rows_erased: int
    handovers_removed: int
    decisions_removed: int
    quarantine_removed: int
    dry_run: bool
    return_events_removed: int = 0
    reviews_removed: int = 0
    recall_cases_removed: int = 0

    def lines(self) -> list[str]:
        """Console lines."""
        verb = "to erase (dry run)" if self.dry_run else "erased"
        return [
            f"retention cut-off {self.cutoff} (records made before it are past retention)",
            f"  audit entries, identifiers {verb}: {self.identifiers_erased}",
            f"  consent-log rows, identifiers {verb}: {self.consent_rows_erased}",
            f"  case-register rows (handovers) {verb}: {self.handovers_removed}",
            f"  decisions {verb}: {self.decisions_removed}",
            f"  quarantined cases {verb}: {self.quarantine_removed}",
            f"  events of return files {verb}: {self.return_events_removed}",
            f"  released review holds {verb}: {self.reviews_removed}",
            f"  recalled or updated cases (recall register) {verb}: {self.recall_cases_removed}",
        ]


def cutoff(today: dt.date, years: int) -> dt.date:
    """1 January of `today.year - years`: records from before it are past retention."""
    return dt.date(today.year - years, 1, 1)


def run(store: StateStore, *, today: dt.date, years: int, dry_run: bool = False) -> RetentionResult:
    """Erase what is past retention on `today`; every erasure is audited."""
    limit = cutoff(today, years)
    before = limit.isoformat()
    with store.engine.connect() as conn:
        seqs = list(
            conn.execute(
                sa.select(audit.audit_identifiers.c.seq)
                .join(audit.audit_log, audit.audit_log.c.seq == audit.audit_identifiers.c.seq)
                .where(audit.audit_log.c.at < before, audit.audit_identifiers.c.erased_at.is_(None))
            ).scalars()
        )
        drop_ids = list(
            conn.execute(
                sa.select(drops.c.drop_id).where(
                    drops.c.status == "delivered", drops.c.delivered_at < before
                )
            ).scalars()
        )
        old_runs = sa.select(runs.c.run_id).where(runs.c.as_of < before)
        result = RetentionResult(
            cutoff=limit,
            identifiers_erased=len(seqs),
            consent_rows_erased=_count(
                conn,
                consent_log,
                consent_log.c.drop_id.in_(drop_ids),
                consent_log.c.invoice_id.is_not(None),
            ),
            handovers_removed=_count(conn, handovers, handovers.c.drop_id.in_(drop_ids)),
            # Per run and case, as they were kept before only changes were (`decision_runs`).
            decisions_removed=conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(decision_runs.c.cases), 0)).where(
                    decision_runs.c.run_id.in_(old_runs)
                )
            ).scalar_one(),
            quarantine_removed=_count(conn, quarantine, quarantine.c.run_id.in_(old_runs)),
            dry_run=dry_run,
            return_events_removed=_count(conn, return_events, return_events.c.ingested_at < before),
            reviews_removed=_count(
                conn, reviews, reviews.c.status == "released", reviews.c.released_at < before
            ),
            recall_cases_removed=_count(conn, recall_cases, recall_cases.c.drop_id.in_(drop_ids)),
        )
    if dry_run:
        return result
    store.apply_retention(
        f"retention-{uuid.uuid4().hex[:12]}",
        identifier_seqs=seqs,
        drop_ids=drop_ids,
        runs_before=before,
        data={
            "cutoff": before,
            "identifier_years": years,
            "identifiers_erased": result.identifiers_erased,
            "consent_rows_erased": result.consent_rows_erased,
            "handovers_removed": result.handovers_removed,
            "decisions_removed": result.decisions_removed,
            "quarantine_removed": result.quarantine_removed,
            "return_events_removed": result.return_events_removed,
            "reviews_removed": result.reviews_removed,
            "recall_cases_removed": result.recall_cases_removed,
        },
    )
    return result


def _count(conn: sa.Connection, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
