"""Our own state store: runs, per-case decisions, drops and the cases in them.

It lives in the same SQL database as the audit log (`[state] url`). A drop is `prepared` once
sealed and `delivered` once every file reached the agency; only cases in a delivered drop count as
handed over (rule 10). A prepared drop that was not delivered is retried before any new drop is
built, so a case is never lost between two runs and never sent twice.
Nothing here holds personal data: invoice ids, reason codes, pseudonyms and counts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from handover.errors import ConfigError
from handover.ledger import audit, guards

metadata = audit.metadata
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("started_at", sa.Text, nullable=False),
    sa.Column("as_of", sa.Text, nullable=False),
    sa.Column("agency", sa.Text, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # running | succeeded | failed
    sa.Column("finished_at", sa.Text),
    sa.Column("counts", sa.Text),
)
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("reasons", sa.Text, nullable=False),  # comma-separated codes; '' = eligible
    sa.Column("agency", sa.Text),  # the agency the case was routed to; NULL = none
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
    sa.Column("status", sa.Text, nullable=False),  # prepared | delivered
    sa.Column("prepared_at", sa.Text, nullable=False),
    sa.Column("delivered_at", sa.Text),
    # The policy the drop was made under; it goes into every audit entry about the drop.
    sa.Column("policy_version", sa.Text),
    sa.Column("policy_sha256", sa.Text),
)
handovers = sa.Table(
    "handovers",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("drop_id", sa.Text, sa.ForeignKey("drops.drop_id"), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("case_ref", sa.Text, nullable=False),
    sa.Column("columns", sa.Text, nullable=False),  # the columns sent non-empty
)
sa.Index("handovers_invoice", handovers.c.invoice_id)
# Cases held back by a suite's row-level checks (handover.run.quarantine): ids and codes, no values.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("suite", sa.Text, primary_key=True),
    sa.Column("reasons", sa.Text, nullable=False),  # comma-separated quarantine reason codes
)


def now() -> str:
    """UTC now as ISO text, the time format of the state store."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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


@dataclass(frozen=True)
class PreparedDrop:
    """A sealed drop waiting for delivery."""

    drop_id: str
    run_id: str
    agency: str
    directory: Path
    files: tuple[Path, ...]
    case_count: int


class StateStore:
    """Access to the state database; every write is one transaction."""

    def __init__(self, url: str) -> None:
        try:
            self.engine = sa.create_engine(url)
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
        try:
            metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                _add_missing_columns(conn)
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
        """A connection inside one transaction, committed on success."""
        with self.engine.begin() as conn:
            yield conn

    def start_run(
        self, run_id: str, *, as_of: dt.date, agency: str, dry_run: bool, data: Mapping[str, Any]
    ) -> None:
        """Register a run and write its first audit entry."""
        with self.transaction() as conn:
            conn.execute(
                runs.insert().values(
                    run_id=run_id,
                    started_at=now(),
                    as_of=as_of.isoformat(),
                    agency=agency,
                    dry_run=dry_run,
                    status="running",
                )
            )
            audit.append(conn, [audit.Entry(run_id, "run_started", data)])

    def record_decisions(
        self, run_id: str, reasons: pd.Series, agency: pd.Series, counts: Mapping[str, int]
    ) -> None:
        """Keep every case's reason codes and routed agency; audit the counts per reason."""
        rows = (
            pd.DataFrame({"reasons": reasons, "agency": agency.astype(object)})
            .rename_axis("invoice_id")
            .reset_index()
            .assign(run_id=run_id)
        )
        rows = rows.astype(object).where(rows.notna(), None).to_dict("records")
        with self.transaction() as conn:
            if rows:
                conn.execute(decisions.insert(), rows)
            audit.append(conn, [audit.Entry(run_id, "cases_decided", {"counts": dict(counts)})])

    def handed_over(self) -> set[str]:
        """Invoice ids in delivered drops (rule 10)."""
        query = (
            sa.select(handovers.c.invoice_id)
            .join(drops, drops.c.drop_id == handovers.c.drop_id)
            .where(drops.c.status == "delivered")
        )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def prepare_drop(
        self, drop: PreparedDrop, cases: pd.DataFrame, data: Mapping[str, Any]
    ) -> None:
        """Record a sealed drop and its cases (invoice_id index; customer_id, case_ref, columns)."""
        with self.transaction() as conn:
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
                )
            )
            rows = cases[["customer_id", "case_ref", "columns"]].rename_axis("invoice_id")
            conn.execute(
                handovers.insert(),
                rows.reset_index().assign(drop_id=drop.drop_id).to_dict("records"),
            )
            audit.append(conn, [audit.Entry(drop.run_id, "drop_sealed", data)])

    def announce_drop(self, run_id: str, data: Mapping[str, Any]) -> audit.Head:
        """Audit `drop_prepared` before sealing; the head returned goes into the manifest."""
        with self.transaction() as conn:
            return audit.append_one(conn, audit.Entry(run_id, "drop_prepared", data))

    def checkpoint(self, sign: audit.Signer, *, key_id: str) -> audit.Head | None:
        """Sign the audit head with the shop's key (at the end of every run)."""
        with self.transaction() as conn:
            return audit.sign_head(conn, sign, key_id=key_id)

    def pending_drops(self, agency: str) -> list[PreparedDrop]:
        """Sealed drops for `agency` that were not delivered yet, oldest first."""
        query = (
            sa.select(drops)
            .where(drops.c.status == "prepared", drops.c.agency == agency)
            .order_by(drops.c.prepared_at)
        )
        with self.engine.connect() as conn:
            return [
                PreparedDrop(
                    drop_id=row.drop_id,
                    run_id=row.run_id,
                    agency=row.agency,
                    directory=Path(row.directory),
                    files=tuple(Path(row.directory) / name for name in json.loads(row.files)),
                    case_count=row.case_count,
                )
                for row in conn.execute(query)
            ]

    def commit_drop(self, run_id: str, drop_id: str, receipt: Mapping[str, Any]) -> int:
        """Mark a drop delivered and audit each of its cases; returns the number of cases."""
        with self.transaction() as conn:
            drop = conn.execute(sa.select(drops).where(drops.c.drop_id == drop_id)).one()
            conn.execute(
                drops.update()
                .where(drops.c.drop_id == drop_id)
                .values(status="delivered", delivered_at=now())
            )
            cases = conn.execute(sa.select(handovers).where(handovers.c.drop_id == drop_id)).all()
            policy = {"policy_version": drop.policy_version, "policy_sha256": drop.policy_sha256}
            audit.append(
                conn,
                [audit.Entry(run_id, "drop_delivered", {"drop_id": drop_id, **receipt, **policy})]
                + [
                    audit.Entry(
                        run_id,
                        "case_handed_over",
                        {
                            "case_ref": case.case_ref,
                            "agency": drop.agency,
                            "drop_id": drop_id,
                            "columns": case.columns.split(","),
                            **policy,
                        },
                        # In the side table, so retention can erase them without breaking the chain.
                        identifiers={
                            "invoice_id": case.invoice_id,
                            "customer_id": case.customer_id,
                        },
                    )
                    for case in cases
                ],
            )
            return len(cases)

    def finish_run(
        self, run_id: str, *, status: str, counts: Mapping[str, Any], event: str
    ) -> None:
        """Close a run with its final counts and audit how it ended."""
        with self.transaction() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(status=status, finished_at=now(), counts=json.dumps(dict(counts)))
            )
            audit.append(conn, [audit.Entry(run_id, event, dict(counts))])

    def decision_history(self, invoice_id: str) -> list[dict[str, Any]]:
        """Every run's decision for one invoice, newest first, with the run's as_of and agency."""
        query = (
            sa.select(
                runs.c.run_id,
                runs.c.as_of,
                runs.c.agency,
                runs.c.dry_run,
                runs.c.started_at,
                decisions.c.reasons,
                decisions.c.agency.label("routed_to"),
            )
            .join(decisions, decisions.c.run_id == runs.c.run_id)
            .where(decisions.c.invoice_id == invoice_id)
            .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        )
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(query)]

    def drops_of(self, invoice_id: str) -> list[dict[str, Any]]:
        """The drops an invoice was put in, with their status."""
        query = (
            sa.select(drops.c.drop_id, drops.c.agency, drops.c.status, drops.c.delivered_at)
            .join(handovers, handovers.c.drop_id == drops.c.drop_id)
            .where(handovers.c.invoice_id == invoice_id)
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
