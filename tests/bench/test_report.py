"""bench/report.py: the growth exponent across sizes, and the nights side by side."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from bench.baselines import Baselines
from bench.measure import Measured
from bench.report import Night, Size, growth_report, size_report
from bench.timeline import Span, Timeline


def _night(number: int, extract: float, wall: float) -> Night:
    spans = (Span("extract", 1.0, 1.0 + extract), Span("source GX", 1.0 + extract, 2.0 + extract))
    measured = Measured(0, 0.0, wall, wall, samples=((1.5, 100.0, 120.0), (wall, 90.0, 150.0)))
    found = Timeline("run", spans, (), ("Extracted 1000 cases due before 2026-12-04",))
    counts = {"eligible": 500, "handed_over.inkasso-demo": 400}
    return Night(number, dt.date(2026, 12, 3 + number), measured, found, counts, 10.0 * number)


def _size(label: str, invoices: int, extract: float, nights: int = 1) -> Size:
    runs = [_night(n, extract * n, 10.0 * extract) for n in range(1, nights + 1)]
    return Size(label, invoices, invoices // 2, Path("shop.db"), runs, Baselines())


def test_time_that_grows_with_the_square_of_the_size_has_exponent_two() -> None:
    report = growth_report([_size("100k", 100_000, 1.0), _size("1M", 1_000_000, 100.0)])
    assert re.search(r"^extract s +1\.00 +100\.00 +2\.00$", report, re.M)
    assert re.search(r"^source GX s +1\.00 +1\.00 +0\.00$", report, re.M)
    assert re.search(r"^peak RSS MiB +150 +150 +0\.00$", report, re.M)


def test_the_second_night_is_shown_against_the_first() -> None:
    report = size_report(_size("100k", 100_000, 1.0, nights=2))
    assert re.search(r"^extract s +1\.00 +2\.00 +2\.00$", report, re.M)
    assert re.search(r"^state\.db MiB after +10 +20 +2\.00$", report, re.M)
    assert re.search(r"^extract +1\.00 +1,000 +1,000 +120$", report, re.M)  # peak: HWM rose
