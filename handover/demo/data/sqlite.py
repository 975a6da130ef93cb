"""Writing the tables to SQLite: the contract's DDL (`schemas/shop_source.sql`), values sqlite3
can bind, and a chunked bulk load into a partial file that is renamed when complete."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from handover.demo.data.columns import Table

DDL_PATH = Path(__file__).resolve().parents[3] / "schemas" / "shop_source.sql"
CHUNK_ROWS = 200_000


def _ddl_statements() -> tuple[list[str], list[str]]:
    """The contract's DDL split on ';' into (tables, indexes).

    Comments go first: several contain ';'. Indexes are created after the bulk load (faster).
    """
    text = re.sub(r"--[^\n]*", "", DDL_PATH.read_text(encoding="utf-8"))
    statements = [s.strip() for s in text.split(";") if s.strip()]
    indexes = [s for s in statements if s.upper().startswith("CREATE INDEX")]
    return [s for s in statements if s not in indexes], indexes


def _sql_values(values: np.ndarray) -> list[object]:
    """A column as Python values sqlite3 can bind; float columns are nullable integers."""
    if not len(values):
        return []
    if values.dtype.kind == "M":
        unit = "D" if np.datetime_data(values.dtype)[0] == "D" else "s"
        text = np.datetime_as_string(values, unit=unit)
        if unit == "s":
            text = np.strings.replace(text, "T", " ")
        out = text.astype(object)
        out[np.isnat(values)] = None
        return out.tolist()
    if values.dtype.kind == "f":
        return [None if v != v else int(v) for v in values.tolist()]
    if values.dtype.kind == "b":
        return values.astype(np.int64).tolist()
    return values.tolist()


def write(out: Path, tables: Mapping[str, Table], report: Callable[[str], None]) -> None:
    """Bulk-load into `<out>.partial` without journal, index, then rename over `out`."""
    creates, indexes = _ddl_statements()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    con = sqlite3.connect(partial, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-262144"):
            con.execute(f"PRAGMA {pragma}")
        for statement in creates:
            con.execute(statement)
        con.execute("BEGIN")
        for name, table in tables.items():
            columns = list(table)
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"
            total = len(table[columns[0]])
            # In chunks: Python values for a whole table would double the peak memory.
            for start in range(0, total, CHUNK_ROWS):
                chunk = (_sql_values(table[c][start : start + CHUNK_ROWS]) for c in columns)
                con.executemany(sql, zip(*chunk, strict=True))
            report(f"{name}: {total}")
        con.execute("COMMIT")
        for statement in indexes:
            con.execute(statement)
        report(f"indexes: {len(indexes)}")
    except BaseException:
        con.close()
        partial.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(partial, out)
