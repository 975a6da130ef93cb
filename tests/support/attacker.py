"""What an attacker with write access to the state database does: drop the guards, then edit.

Tests use it to show that the hash chain, not the triggers, is what catches tampering.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from handover.ledger import guards


def drop_guards(engine: sa.Engine) -> None:
    """Remove every guard trigger, as an attacker with DDL rights would."""
    with engine.begin() as conn:
        names = guards.installed(conn)
        for guard in guards.GUARDS:
            for name in names:
                if not name.startswith(f"guard_{guard.name}_"):
                    continue
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql(f"DROP TRIGGER {name}")
                else:
                    conn.exec_driver_sql(f"DROP TRIGGER {name} ON {guard.name}")


def sql(engine: sa.Engine, statement: str, **params: Any) -> None:
    """Run one statement with the guards already dropped."""
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def row(engine: sa.Engine, table: str, seq: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.text(f"SELECT * FROM {table} WHERE seq = :s"), {"s": seq})
            .mappings()
            .one()
        )
