"""The shop-side DDL says of every column whether a run reads it, and says it truly."""

from __future__ import annotations

import re
import sqlite3

from handover.run.source_rules import OPTIONAL_COLUMNS, OPTIONAL_TABLES, RECALL_COLUMNS
from tests.support.paths import SHOP_DDL

NEVER_READ_TABLES = {"invoice_lines", "support_notes"}


def ddl_columns() -> dict[str, dict[str, str]]:
    """Per table, each column's comment (its line from the column name on)."""
    tables: dict[str, dict[str, str]] = {}
    table = None
    for line in SHOP_DDL.read_text().splitlines():
        if found := re.match(r"CREATE TABLE (\w+)", line):
            table = found.group(1)
            tables[table] = {}
        elif line.startswith(");"):
            table = None
        elif table and (
            column := re.match(r"    (\w+)\s+(TEXT|INTEGER|DATE|TIMESTAMP|BOOLEAN)", line)
        ):
            tables[table][column.group(1)] = line
    return tables


def test_every_column_is_read_or_marked_documentation_only():
    tables = ddl_columns()
    assert set(tables) == set(RECALL_COLUMNS) | NEVER_READ_TABLES
    for table, columns in RECALL_COLUMNS.items():
        for column, line in tables[table].items():
            read = column in columns
            assert read != ("[doc]" in line), f"{table}.{column}: read={read}, but {line!r}"
        assert set(columns) <= set(tables[table]), table  # everything read is in the DDL


def test_the_optional_tables_and_columns_say_so():
    text = SHOP_DDL.read_text()
    for table in OPTIONAL_TABLES:
        before = text[: text.index(f"CREATE TABLE {table} ")]
        assert "OPTIONAL" in before[before.rindex(");") :], table  # its comment
    tables = ddl_columns()
    lines = text.splitlines()
    for table, column in OPTIONAL_COLUMNS:
        at = lines.index(tables[table][column])
        comment = [lines[at]]  # its line, and the comment lines just above it
        while lines[at - 1].lstrip().startswith("--"):
            at -= 1
            comment.append(lines[at])
        assert any("OPTIONAL" in line for line in comment), (table, column)


def test_the_ddl_loads():
    sqlite3.connect(":memory:").executescript(SHOP_DDL.read_text())
