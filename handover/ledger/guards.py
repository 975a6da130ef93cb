"""Database triggers that make the audit tables append-only.

SQLite gets BEFORE UPDATE/DELETE triggers that `RAISE(ABORT)`; PostgreSQL gets a trigger function
per table plus a TRUNCATE trigger. Other databases get none (the hash chain still detects
tampering). Identifier columns may only be erased (set to NULL), which is the sanctioned path of
`handover retention run`; every other change is refused.

Triggers stop mistakes and casual edits, not an attacker who can drop them: that is what the
hash chain, signed checkpoints and manifest witnesses are for.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from handover.ledger import audit, consent_log


@dataclass(frozen=True)
class Guard:
    """How one table may change: never (no `erasable`), or only by erasing `erasable` columns."""

    table: sa.Table
    erasable: tuple[str, ...] = ()
    marker: str | None = None  # set once from NULL when erasing (e.g. erased_at)

    @property
    def name(self) -> str:
        return self.table.name


GUARDS: tuple[Guard, ...] = (
    Guard(audit.audit_log),
    Guard(audit.audit_checkpoints),
    Guard(
        audit.audit_identifiers,
        erasable=("salt", "identifiers", "invoice_id", "customer_id"),
        marker="erased_at",
    ),
    Guard(consent_log.consent_log, erasable=("invoice_id", "customer_id")),
)


def install(conn: sa.Connection) -> list[str]:
    """Create the missing triggers for the connection's dialect; returns the names created."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return _install_sqlite(conn)
    if dialect == "postgresql":
        return _install_postgresql(conn)
    return []


def installed(conn: sa.Connection) -> set[str]:
    """Names of the guard triggers present in the database."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    elif conn.dialect.name == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        return set()
    return {name for name in conn.execute(sa.text(query)).scalars() if name.startswith("guard_")}


def _allowed_update(guard: Guard, new: str, old: str, same: str) -> str:
    """SQL condition under which an UPDATE is an erasure."""
    if not guard.erasable:
        return "1 = 0"
    terms = [f"{new}.{c} IS NULL" for c in guard.erasable]
    if guard.marker:
        terms += [f"{old}.{guard.marker} IS NULL", f"{new}.{guard.marker} IS NOT NULL"]
    fixed = [c.name for c in guard.table.columns if c.name not in (*guard.erasable, guard.marker)]
    terms += [f"{new}.{c} {same} {old}.{c}" for c in fixed]
    return " AND ".join(terms)


def _message(guard: Guard, operation: str) -> str:
    if guard.erasable:
        return f"{guard.name} refuses {operation}: rows are erased only by `handover retention run`"
    return f"{guard.name} is append-only: {operation} refused"


def _install_sqlite(conn: sa.Connection) -> list[str]:
    present = installed(conn)
    created = []
    for guard in GUARDS:
        update, delete = f"guard_{guard.name}_update", f"guard_{guard.name}_delete"
        if update not in present:
            condition = _allowed_update(guard, "NEW", "OLD", "IS")
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {update} BEFORE UPDATE ON {guard.name} "
                f"WHEN NOT ({condition}) "
                f"BEGIN SELECT RAISE(ABORT, '{_message(guard, 'UPDATE')}'); END"
            )
            created.append(update)
        if delete not in present:
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {delete} BEFORE DELETE ON {guard.name} "
                f"BEGIN SELECT RAISE(ABORT, '{_message(guard, 'DELETE')}'); END"
            )
            created.append(delete)
    return created


def _install_postgresql(conn: sa.Connection) -> list[str]:
    present = installed(conn)
    created = []
    for guard in GUARDS:
        function = f"guard_{guard.name}_fn"
        row, truncate = f"guard_{guard.name}_row", f"guard_{guard.name}_truncate"
        if row in present and truncate in present:
            continue
        condition = _allowed_update(guard, "NEW", "OLD", "IS NOT DISTINCT FROM")
        # Dollar quoting keeps the backticks and quotes of the message literal.
        conn.exec_driver_sql(
            f"""
            CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $guard$
            BEGIN
              IF TG_OP = 'UPDATE' THEN
                IF ({condition}) THEN
                  RETURN NEW;
                END IF;
              END IF;
              RAISE EXCEPTION USING MESSAGE =
                '{guard.name} refuses ' || TG_OP || ': ' || {_pg_literal(_reason(guard))};
            END
            $guard$
            """
        )
        if row not in present:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {row} BEFORE UPDATE OR DELETE ON {guard.name} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
            created.append(row)
        if truncate not in present:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {truncate} BEFORE TRUNCATE ON {guard.name} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
            created.append(truncate)
    return created


def _reason(guard: Guard) -> str:
    if guard.erasable:
        return "rows are erased only by `handover retention run`"
    return "the table is append-only"


def _pg_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
