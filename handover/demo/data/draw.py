"""Random dates and timestamps, drawn column-wise with numpy."""

from __future__ import annotations

import datetime as dt

import numpy as np

DAY = np.timedelta64(1, "D")
NAT = np.datetime64("NaT", "s")


def pick_days(rng: np.random.Generator, lo: object, hi: object, n: int) -> np.ndarray:
    """Uniform random dates in [lo, hi], element-wise; an empty range gives `lo`."""
    lo_days = np.broadcast_to(np.asarray(lo, dtype="datetime64[D]"), (n,))
    hi_days = np.broadcast_to(np.asarray(hi, dtype="datetime64[D]"), (n,))
    span = np.maximum((hi_days - lo_days).astype(np.int64), 0)
    return lo_days + (rng.random(n) * (span + 1)).astype(np.int64).astype("timedelta64[D]")


def stamp(
    rng: np.random.Generator, days: np.ndarray, *, slot: int | None = None, late: bool = False
) -> np.ndarray:
    """UTC timestamps on `days`.

    Daytime (06:00-19:59 UTC) keeps the Berlin date equal to the UTC date. `slot` 0/1/2 narrows
    it to 06-10/10-14/14-18 h, so steps on one day stay in order. `late` (23:05-23:55 UTC) is
    already the next day in Berlin, in winter (UTC+1) and summer (UTC+2) alike.
    """
    n = len(days)
    if late:
        seconds = 23 * 3600 + 300 + rng.integers(0, 50 * 60, n)
    elif slot is not None:
        seconds = (6 + 4 * slot) * 3600 + rng.integers(0, 4 * 3600, n)
    else:
        seconds = 6 * 3600 + rng.integers(0, 14 * 3600, n)
    return np.asarray(days, "datetime64[D]").astype("datetime64[s]") + seconds.astype(
        "timedelta64[s]"
    )


def years_before(day: dt.date, years: int) -> dt.date:
    """`day` `years` earlier; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)
