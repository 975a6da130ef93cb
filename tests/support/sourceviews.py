"""Shop databases whose contract tables are views over the shop's own tables, as real shops map
theirs: on SQLite or on PostgreSQL, with one column delivered by a SQL expression of the test's.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class SourceDb:
    """A shop database at `url` on `dialect` ("sqlite" or "postgresql")."""

    url: str
    dialect: str

    def execute(self, *statements: str) -> None:
        """Run SQL statements in one transaction."""
        engine = sa.create_engine(self.url)
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        engine.dispose()

    def view(self, table: str, **columns: str) -> None:
        """Make `table` a view over `raw_<table>` that delivers each named column as the given
        SQL expression (of the raw table's columns) and every other column as it is."""
        engine = sa.create_engine(self.url)
        names = [c["name"] for c in sa.inspect(engine).get_columns(table)]
        engine.dispose()
        unknown = set(columns) - set(names)
        assert not unknown, f"{table} has no column {unknown}"
        selected = ", ".join(f"{columns[n]} AS {n}" if n in columns else n for n in names)
        self.execute(
            f"ALTER TABLE {table} RENAME TO raw_{table}",
            f"CREATE VIEW {table} AS SELECT {selected} FROM raw_{table}",
        )

    def pick(self, *, sqlite: str, postgresql: str) -> str:
        """The SQL expression for this database's dialect."""
        return sqlite if self.dialect == "sqlite" else postgresql
