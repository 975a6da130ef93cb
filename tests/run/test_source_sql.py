"""SQLite's date reading: what `sqlite_date` makes of a date column's text, and its Berlin dates
agree with the time zone database around every change of the clocks."""

from __future__ import annotations

import datetime as dt
import sqlite3
from zoneinfo import ZoneInfo

import pytest

from handover.run.source_sql import sqlite_date

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
