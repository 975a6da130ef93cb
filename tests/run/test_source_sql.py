"""SQLite's date reading: what `sqlite_date` makes of a date column's text, and its Berlin dates
agree with the time zone database around every change of the clocks."""

from __future__ import annotations

import datetime as dt
import sqlite3
from zoneinfo import ZoneInfo

import pytest

from handover.run import source_sql
from handover.run.source_sql import sqlite_date, sqlite_due_before

BERLIN = ZoneInfo("Europe/Berlin")


def read(value: object) -> str | None:
    with sqlite3.connect(":memory:") as db:
        return db.execute(f"SELECT {sqlite_date('x')} FROM (SELECT ? AS x)", (value,)).fetchone()[0]


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2026-03-15", "2026-03-15"),
        ("2026-03-15 00:00:00", "2026-03-15"),  # a naive timestamp at midnight: its date
        ("2026-03-15T00:00:00.000", "2026-03-15"),
        ("2026-03-15T00:30:00+01:00", "2026-03-15"),  # zoned: its Berlin date
        ("2026-03-14T23:30:00Z", "2026-03-15"),
        ("2026-06-14T22:30:00Z", "2026-06-15"),  # summer time: UTC+2
        ("2026-06-14T21:59:00Z", "2026-06-14"),
        ("2026-03-15 10:00:00", None),  # a time of day without a zone is ambiguous
        ("2026-02-30", None),  # date() alone would echo it
        ("2026-3-5", None),
        ("15.03.2026", None),
        ("garbage", None),
        (20260315, None),  # a number is no date, whatever it looks like
        (None, None),
    ],
)
def test_what_a_date_column_holds_is_read_as_a_date_or_null(value, day):
    assert read(value) == day


def test_berlin_dates_agree_with_the_time_zone_database_at_every_change_of_clocks():
    instants = [
        dt.datetime(year, month, day, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)
        for year in range(1996, 2040)
        for month in (3, 10)
        for day in range(24, 32)
        for minutes in range(-90, 180, 15)
    ]
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE t (x TEXT)")
        db.executemany(
            "INSERT INTO t VALUES (?)", [(i.strftime("%Y-%m-%dT%H:%M:%SZ"),) for i in instants]
        )
        got = [day for (day,) in db.execute(f"SELECT {sqlite_date('x')} FROM t ORDER BY rowid")]
    expected = [i.astimezone(BERLIN).date().isoformat() for i in instants]
    assert got == expected


VALUES = [
    "2026-12-04",
    "2026-12-05",
    "2026-12-06",
    "2026-02-30",
    "2027-02-30",
    "0071-07-07",
    "3000-01-01",
    "2026-3-5  ",
    "2026-12-0 ",
    "2026-12-0A",
    "abcdefghij",
    "15.03.2026",
    "2026-03-15 00:00:00",
    "2026-03-15 10:00:00",
    "2026-03-14T23:30:00Z",
    "2027-03-14T23:30:00Z",
    "2026-12-04T23:30:00Z",
    "garbage",
    "",
    20260315,
    20261206.0,
    b"2026-01-01",
    None,
]


@pytest.mark.parametrize("collation", ["BINARY", "NOCASE", "RTRIM"])
def test_the_quick_forms_of_the_case_filter_and_the_bad_date_probe_agree_with_the_long(
    collation,
):
    """`sqlite_due_before` and the `bad` probe have a quick form for ISO text: the same answer
    as the long form for every value and whatever the column's collation."""
    x = "x"
    read = sqlite_date(x)
    due_long = f"({read} < :as_of OR {read} IS NULL)"
    probes = source_sql.describe("sqlite", x, "date", None, 0).probes
    stamp = (
        f"typeof({x}) = 'text' AND length({x}) > 10 AND datetime({x}) IS NOT NULL "
        f"AND date(substr({x}, 1, 10), '+0 days') IS substr({x}, 1, 10)"
    )
    time_of_day = f"{stamp} AND NOT {source_sql._zoned(x)} AND time({x}) IS NOT '00:00:00'"
    bad_long = (
        f"typeof({x}) = 'text' AND NOT ({time_of_day}) "
        f"AND ({read} IS NULL OR ({read} < '{source_sql.FIRST_DAY}' OR {read} > "
        f"'{source_sql.LAST_DAY}'))"
    )
    with sqlite3.connect(":memory:") as db:
        db.execute(f"CREATE TABLE t (x COLLATE {collation})")
        db.executemany("INSERT INTO t VALUES (?)", [(v,) for v in VALUES])
        for as_of in ("2026-12-05", "2027-03-01"):
            got = db.execute(
                f"SELECT ({sqlite_due_before(x, ':as_of')}), ({due_long}), "
                f"({probes['bad']}), ({bad_long}) FROM t ORDER BY rowid",
                {"as_of": as_of},
            ).fetchall()
            assert [(quick, bad) for quick, _, bad, _ in got] == [
                (long, bad_) for _, long, _, bad_ in got
            ]
