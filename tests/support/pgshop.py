"""A shop on PostgreSQL for tests: the contract's DDL run verbatim, then a SQLite shop copied in.

SQLite keeps booleans as 0/1 and dates and timestamps as ISO text; the copy turns them into the
PostgreSQL column's native type (boolean, date, timestamp), as a real shop database holds them.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from tests.support.paths import SHOP_DDL

DDL_PATH = SHOP_DDL


def ddl_statements() -> list[str]:
    """The contract's statements in file order (comments dropped first: several contain ';')."""
    text = re.sub(r"--[^\n]*", "", DDL_PATH.read_text(encoding="utf-8"))
    return [s.strip() for s in text.split(";") if s.strip()]


def contract_tables() -> list[str]:
    """The contract's tables in DDL order: referenced tables come first."""
    return [
        m.group(1)
        for s in ddl_statements()
        if (m := re.match(r"CREATE TABLE (\w+)", s, flags=re.IGNORECASE))
    ]


def create_contract(url: str) -> None:
    """Run `schemas/shop_source.sql` unchanged on the database at `url`."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in ddl_statements():
            conn.exec_driver_sql(statement)
    engine.dispose()


def copy_shop(sqlite_path: Path, url: str) -> dict[str, int]:
    """Copy every contract table of a SQLite shop into the contract tables at `url`.

    Returns the rows copied per table.
    """
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    copied = {}
    with sqlite3.connect(sqlite_path) as lite, engine.begin() as conn:
        for table in contract_tables():
            frame = pd.read_sql(f"SELECT * FROM {table}", lite)
            for column in inspector.get_columns(table):
                frame[column["name"]] = _native(frame[column["name"]], column["type"])
            frame.to_sql(table, conn, if_exists="append", index=False, chunksize=5000)
            copied[table] = len(frame)
    engine.dispose()
    return copied


def postgres_shop(sqlite_path: Path, url: str) -> dict[str, int]:
    """`create_contract` and `copy_shop` in one."""
    create_contract(url)
    return copy_shop(sqlite_path, url)


def _native(values: pd.Series, type_: sa.types.TypeEngine) -> pd.Series:
    if isinstance(type_, sa.Boolean):
        return values.map({0: False, 1: True}).astype(object)
    if isinstance(type_, sa.DateTime):
        return pd.to_datetime(values, format="ISO8601")
    if isinstance(type_, sa.Date):
        return pd.to_datetime(values, format="ISO8601").dt.date.where(values.notna(), None)
    if isinstance(type_, sa.Integer):
        return values.astype("Int64")  # NULL fees stay NULL, not NaN floats
    return values
