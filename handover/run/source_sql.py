"""How each database describes a contract column: the SQL that reads it, the probes that check it.

PostgreSQL declares a type for every column of a table or view, so its types are read from the
catalog and only what a type cannot tell (a naive timestamp at midnight, an amount's size) is
probed. SQLite types values, not columns (a view's computed column has no declared type), so
every check there counts values over the rows a run reads: `typeof()`, and for dates whether
`date()` gives back the text it was given.

A probe is a SQL condition; the contract counts the rows that meet it, all probes of a table in
one grouped query. Nothing here reads a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

Kind = Literal["id", "date", "timestamp", "amount", "flag"]

BERLIN = "Europe/Berlin"
# The range of pandas' datetime64[ns]; a date outside it is a typo such as 0071 for 1971.
FIRST_DAY, LAST_DAY = "1678-01-01", "2261-12-31"
STORAGE_CLASSES = ("integer", "real", "text", "blob")  # SQLite's typeof() besides 'null'


@dataclass(frozen=True)
class ColumnSql:
    """One contract column as a database delivers it."""

    read: str  # the expression selected in its place, so pandas gets the contract's type
    found: str  # what the catalog says it is ("values" on SQLite), for messages
    probes: dict[str, str] = field(default_factory=dict)  # label -> condition to count
    refused: bool = False  # its declared type cannot deliver the contract's type
    conversion: str | None = None  # how a declared type is converted (PostgreSQL)
    # Cheap conditions, each with the probes that hold (and no other) when it does: what most
    # values meet, so a read that counts probes row by row tests them all only for the others.
    quick: tuple[tuple[str, tuple[str, ...]], ...] = ()


def describe(
    dialect: str, column: str, kind: Kind, type_: sa.types.TypeEngine | None, floor: int
) -> ColumnSql:
    """The read expression and probes of `column` (of `kind`) on `dialect`.

    `type_` is the catalog's type (PostgreSQL; None on SQLite); `floor` is the amount below
    which a positive value is counted as "small" (amounts only).
    """
    if dialect == "sqlite":
        return _sqlite(column, kind, floor)
    if type_ is None:
        raise ValueError(f"{dialect} declares column types: pass the catalog's type")
    return _declared(column, kind, type_, floor)


# --------------------------------------------------------------------------- SQLite


def sqlite_date(x: str) -> str:
    """SQLite: the ISO date a date column's text denotes, or NULL.

    'YYYY-MM-DD' is itself when valid (a modifier makes `date()` roll 30 February over to
    March, so a valid date is one that comes back unchanged); a timestamp with a zone offset
    ('…+01:00', '…Z') gives its Europe/Berlin date; a naive timestamp at midnight its date;
    anything else (a time of day without a zone, text that is no date, a number) NULL.
    """
    day = f"substr({x}, 1, 10)"
    return (
        f"(CASE WHEN typeof({x}) <> 'text' OR date({day}, '+0 days') IS NOT {day} THEN NULL "
        f"WHEN length({x}) = 10 THEN {x} "
        f"WHEN datetime({x}) IS NULL THEN NULL "
        f"WHEN {_zoned(x)} THEN {_berlin_day(f'datetime({x})')} "
        f"WHEN time({x}) = '00:00:00' THEN {day} END)"
    )


def sqlite_due_before(x: str, day: str) -> str:
    """SQLite: `sqlite_date(x) < day OR sqlite_date(x) IS NULL` (a case's due date), cheaply.

    For ISO text of ten characters `sqlite_date` is the text itself or NULL, so the condition
    is the text's comparison with `day` or its not being a date: no `date()` call for a due
    date before `day`, none of the timestamp tests. Other values take the long way. COLLATE
    BINARY: `sqlite_date` compares as BINARY whatever the column's collation.
    """
    read = sqlite_date(x)
    return (
        f"(CASE WHEN typeof({x}) = 'text' AND length({x}) = 10 "
        f"THEN {x} < {day} COLLATE BINARY OR date({x}, '+0 days') IS NOT {x} COLLATE BINARY "
        f"ELSE {read} < {day} OR {read} IS NULL END)"
    )


def _zoned(x: str) -> str:
    return f"({x} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' OR {x} GLOB '*Z')"


def _berlin_day(utc: str) -> str:
    """The Europe/Berlin date of a UTC 'YYYY-MM-DD HH:MM:SS', by the EU rule in force since 1996.

    SQLite has no time zone database; summer time runs from 01:00 UTC on the last Sunday of
    March to 01:00 UTC on the last Sunday of October (the Sunday on or after the 25th).
    """
    year = f"substr({utc}, 1, 4)"
    starts = f"datetime(date({year} || '-03-25', 'weekday 0'), '+1 hours')"
    ends = f"datetime(date({year} || '-10-25', 'weekday 0'), '+1 hours')"
    offset = f"CASE WHEN {utc} >= {starts} AND {utc} < {ends} THEN '+2 hours' ELSE '+1 hours' END"
    return f"date({utc}, {offset})"


def _sqlite(x: str, kind: Kind, floor: int) -> ColumnSql:
    probes = {cls: f"typeof({x}) = '{cls}'" for cls in STORAGE_CLASSES}
    read = x
    if kind == "id":
        read = f"CAST({x} AS TEXT)"  # integer ids compare equal to their text everywhere
    elif kind == "date":
        read = sqlite_date(x)
        # Every term is true or false, never NULL, so NOT works as it reads.
        stamp = (
            f"typeof({x}) = 'text' AND length({x}) > 10 AND datetime({x}) IS NOT NULL "
            f"AND date(substr({x}, 1, 10), '+0 days') IS substr({x}, 1, 10)"
        )
        time_of_day = f"{stamp} AND NOT {_zoned(x)} AND time({x}) IS NOT '00:00:00'"
        probes |= {
            "null": f"{x} IS NULL",
            "zoned": f"{stamp} AND {_zoned(x)}",
            "midnight": f"{stamp} AND NOT {_zoned(x)} AND time({x}) IS '00:00:00'",
            "time_of_day": time_of_day,
            "bad": _sqlite_bad_date(x, read, time_of_day),
        }
    elif kind == "timestamp":
        probes["bad"] = f"typeof({x}) = 'text' AND datetime({x}) IS NULL"
    elif kind == "amount":
        probes |= _amount_probes(x, floor)
    elif kind == "flag":
        probes |= {"null": f"{x} IS NULL", "bad": f"typeof({x}) = 'integer' AND {x} NOT IN (0, 1)"}
    # NULL is of no storage class, and no other probe than `null` counts it.
    quick = [(f"{x} IS NULL", ("null",) if "null" in probes else ())]
    if kind == "date":  # ISO text of a date in range: text, and none of the date's problems
        day = f"{x} COLLATE BINARY"
        quick.append(
            (
                f"typeof({x}) = 'text' AND length({x}) = 10 AND date({x}, '+0 days') IS {day} "
                f"AND NOT {_out_of_range(day)}",
                ("text",),
            )
        )
    return ColumnSql(read=read, found="values", probes=probes, quick=tuple(quick))


def _sqlite_bad_date(x: str, read: str, time_of_day: str) -> str:
    """Text that is no date in range: for ISO text of ten characters, without reading it thrice.

    Ten characters are no timestamp, and `read` is the text when `date()` gives it back, else
    NULL; other values take the long way.
    """
    day = f"{x} COLLATE BINARY"
    return (
        f"(CASE WHEN typeof({x}) = 'text' AND length({x}) = 10 "
        f"THEN date({x}, '+0 days') IS NOT {day} OR {_out_of_range(day)} "
        f"ELSE typeof({x}) = 'text' AND NOT ({time_of_day}) "
        f"AND ({read} IS NULL OR {_out_of_range(read)}) END)"
    )


# --------------------------------------------------------------------------- declared types


def _declared(x: str, kind: Kind, type_: sa.types.TypeEngine, floor: int) -> ColumnSql:
    found = type_name(type_)
    if kind == "id":
        if isinstance(type_, sa.String):
            return ColumnSql(read=x, found=found)
        if isinstance(type_, sa.Integer | sa.Uuid):
            return ColumnSql(read=f"CAST({x} AS text)", found=found, conversion="read as text")
    elif kind == "date":
        probes = {"null": f"{x} IS NULL"}
        if isinstance(type_, sa.DateTime) and getattr(type_, "timezone", False):
            read = f"CAST(({x} AT TIME ZONE '{BERLIN}') AS date)"
            conversion = f"read as its {BERLIN} date"
        elif isinstance(type_, sa.DateTime):
            read, conversion = f"CAST({x} AS date)", None
            probes["midnight"] = f"{x} = CAST({read} AS timestamp)"
            probes["time_of_day"] = f"{x} <> CAST({read} AS timestamp)"
        elif isinstance(type_, sa.Date):
            read, conversion = x, None
        else:
            return ColumnSql(read=x, found=found, refused=True)
        probes["bad"] = _out_of_range(read)
        return ColumnSql(read=read, found=found, probes=probes, conversion=conversion)
    elif kind == "timestamp":
        if isinstance(type_, sa.DateTime | sa.Date):
            return ColumnSql(read=x, found=found)
    elif kind == "amount":
        whole = isinstance(type_, sa.Integer) or (
            isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float) and type_.scale == 0
        )
        if whole:
            return ColumnSql(read=x, found=found, probes=_amount_probes(x, floor))
    elif kind == "flag" and isinstance(type_, sa.Boolean):
        return ColumnSql(read=x, found=found, probes={"null": f"{x} IS NULL"})
    return ColumnSql(read=x, found=found, refused=True)


def type_name(type_: sa.types.TypeEngine) -> str:
    """A declared type as PostgreSQL spells it ("timestamp with time zone", "numeric(14, 2)")."""
    try:
        name = type_.compile(dialect=postgresql.dialect())
    except sa.exc.CompileError:
        name = type(type_).__name__
    return name.lower().replace("without time zone", "").strip()


def _out_of_range(day: str) -> str:
    return f"({day} < '{FIRST_DAY}' OR {day} > '{LAST_DAY}')"


def _amount_probes(x: str, floor: int) -> dict[str, str]:
    return {"null": f"{x} IS NULL", "positive": f"{x} > 0", "small": f"{x} > 0 AND {x} < {floor}"}
