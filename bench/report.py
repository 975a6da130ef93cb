"""What the benchmark prints: per size a night's stages with their baselines, the nights side by
side, and the growth across sizes. Plain text tables, numbers only (no row values exist here).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.baselines import Baselines
from bench.measure import Measured
from bench.timeline import IN_AGENCY_TASKS, Timeline

# Gaps shorter than this are summed into one row.
SMALL_GAP = 0.05
_EXTRACTED = re.compile(r"^Extracted (\d+) cases")


@dataclass(frozen=True)
class Night:
    """One `handover run`: its process, its timeline, its counts and the state store after it."""

    number: int
    as_of: dt.date
    measured: Measured
    timeline: Timeline
    counts: dict[str, int]
    state_mib: float

    @property
    def cases(self) -> int | None:
        """The cases the run extracted (its own log line)."""
        for line in self.timeline.log_lines:
            found = _EXTRACTED.match(line)
            if found:
                return int(found.group(1))
        return None

    @property
    def handed_over(self) -> int:
        return sum(n for code, n in self.counts.items() if code.startswith("handed_over"))

    def rows(self, stage: str) -> int | None:
        """The rows a stage works on: the cases, the eligible ones, or those handed over."""
        if stage in ("extract", "source GX", "rules"):
            return self.cases
        if stage in ("minimise", "outgoing GX"):
            return self.counts.get("eligible")
        if stage in ("seal", "deliver", "record"):
            return self.handed_over
        return None

    def outside(self) -> float:
        return self.measured.wall - self.timeline.inside()


@dataclass(frozen=True)
class Size:
    """One shop size: its label, invoices (nominal), customers, shop file, nights, baselines."""

    label: str
    invoices: int
    customers: int
    shop: Path
    nights: list[Night]
    baselines: Baselines


def size_report(size: Size) -> str:
    """The first night's stage table, with baselines; then the nights side by side."""
    first = size.nights[0]
    lines = [
        f"== {size.label} invoices: {size.customers:,} customers, shop {size.shop} ==",
        _night_line(first),
        "",
        _row("stage", "s", "rows", "rows/s", "peak MiB", "baseline", "base s", "ratio"),
    ]
    timeline = first.timeline
    small = [0.0, 0]
    for kind, name in _order(timeline):
        if kind == "gap":
            seconds = timeline.gap_seconds()[name]
            if seconds < SMALL_GAP:
                small[0] += seconds
                small[1] += 1
                continue
            peak = _peak(first.measured, [g for g in timeline.gaps if g.label == name])
            lines.append(_row(f"  {name}", _s(seconds), "", "", _mib(peak), "(outside tasks)"))
            if name == IN_AGENCY_TASKS:
                lines += _lane_rows(first)
            continue
        seconds, rows = timeline.seconds(name), first.rows(name)
        peak = _peak(first.measured, [s for s in timeline.spans if s.stage == name])
        base = size.baselines.of(name)
        lines.append(
            _row(
                name,
                _s(seconds),
                f"{rows:,}" if rows is not None else "",
                f"{rows / seconds:,.0f}" if rows and seconds > 0 else "",
                _mib(peak),
                base.tool if base else "",
                _s(base.seconds) if base else "",
                f"{seconds / base.seconds:.1f}×" if base and base.seconds > 0 else "",
            )
        )
    if small[1]:
        lines.append(
            _row(f"  other gaps ({small[1]})", _s(small[0]), "", "", "", "(outside tasks)")
        )
    inside, outside = timeline.inside(), first.outside()
    lines += [
        "",
        f"inside tasks {inside:.1f} s, outside tasks {outside:.1f} s "
        f"({outside / first.measured.wall:.0%} of the run)",
    ]
    for base in size.baselines.items:
        note = f" ({base.note})" if base.note else ""
        lines.append(f"baseline {base.stage}: {base.tool} {base.seconds:.3f} s{note}")
    if size.baselines.disagreements:
        lines.append("pandas baseline and GX DISAGREE: " + "; ".join(size.baselines.disagreements))
    else:
        lines.append("pandas baseline and GX agree on every expectation and every held-back case")
    if len(size.nights) > 1:
        lines += ["", *_nights_table(size.nights)]
    return "\n".join(lines)


def growth_report(sizes: list[Size]) -> str:
    """Night 1 of each size side by side, with the exponent k of time ∝ invoices^k."""
    stages: list[str] = []
    for size in sizes:
        stages += [s for s in size.nights[0].timeline.stages() if s not in stages]
    header = ["", *(s.label for s in sizes), "exponent"]
    rows = [
        ("handover run s", [s.nights[0].measured.wall for s in sizes]),
        *((f"{stage} s", [s.nights[0].timeline.seconds(stage) for s in sizes]) for stage in stages),
        ("outside tasks s", [s.nights[0].outside() for s in sizes]),
        ("peak RSS MiB", [s.nights[0].measured.peak_mib or 0.0 for s in sizes]),
    ]
    invoices = [s.invoices for s in sizes]
    lines = ["== growth across sizes (night 1; exponent k: time ∝ invoices^k) ==", _cols(header)]
    for name, values in rows:
        shown = [f"{v:,.0f}" if name.endswith("MiB") else f"{v:.2f}" for v in values]
        lines.append(_cols([name, *shown, _exponent(invoices, values)]))
    return "\n".join(lines)


def _nights_table(nights: list[Night]) -> list[str]:
    stages: list[str] = []
    for night in nights:
        stages += [s for s in night.timeline.stages() if s not in stages]
    rows: list[tuple[str, list[float], bool]] = [
        ("handover run s", [n.measured.wall for n in nights], True),
        *((f"{s} s", [n.timeline.seconds(s) for n in nights], True) for s in stages),
        ("outside tasks s", [n.outside() for n in nights], True),
        ("cases", [float(n.cases or 0) for n in nights], False),
        ("handed over", [float(n.handed_over) for n in nights], False),
        ("peak RSS MiB", [n.measured.peak_mib or 0.0 for n in nights], False),
        ("state.db MiB after", [n.state_mib for n in nights], False),
    ]
    header = ["nights", *(f"{n.number} ({n.as_of:%m-%d})" for n in nights), "2/1"]
    lines = [_cols(header)]
    for name, values, timed in rows:
        shown = [f"{v:.2f}" if timed else f"{v:,.0f}" for v in values]
        ratio = f"{values[1] / values[0]:.2f}" if values[0] else ""
        lines.append(_cols([name, *shown, ratio]))
    return lines


def _lane_rows(night: Night) -> list[str]:
    """Each agency task's own time, before which of its tasks (agencies overlap in time)."""
    rows = []
    for label, seconds in night.timeline.lane_seconds().items():
        if seconds >= SMALL_GAP:
            lanes = [lane for lane in night.timeline.lanes if lane.label == label]
            peak = _peak(night.measured, lanes)
            rows.append(_row(f"    {label}", _s(seconds), "", "", _mib(peak), "(its agency task)"))
    return rows


def _order(timeline: Timeline) -> list[tuple[str, str]]:
    """Stages and gap labels in the order they first happen."""
    events = [(s.start, "stage", s.stage) for s in timeline.spans]
    events += [(g.start, "gap", g.label) for g in timeline.gaps]
    seen: list[tuple[str, str]] = []
    for _, kind, name in sorted(events):
        if (kind, name) not in seen:
            seen.append((kind, name))
    return seen


def _night_line(night: Night) -> str:
    cases = f"{night.cases:,}" if night.cases is not None else "?"
    return (
        f"night {night.number}, as_of {night.as_of}: `handover run` {night.measured.wall:.1f} s, "
        f"peak RSS {_mib(night.measured.peak_mib)} MiB; {cases} cases, "
        f"{night.counts.get('eligible', 0):,} eligible, {night.handed_over:,} handed over; "
        f"state.db {night.state_mib:,.0f} MiB after"
    )


def _peak(measured: Measured, spans: list) -> float | None:
    peaks = [measured.peak_between(s.start, s.end) for s in spans]
    found = [p for p in peaks if p is not None]
    return max(found) if found else None


def _exponent(invoices: list[int], values: list[float]) -> str:
    pairs = [(n, v) for n, v in zip(invoices, values, strict=True) if v > 0]
    if len({n for n, _ in pairs}) < 2:
        return "—"
    slope = np.polyfit([math.log(n) for n, _ in pairs], [math.log(v) for _, v in pairs], 1)[0]
    return f"{round(slope, 2) + 0.0:.2f}"  # never "-0.00"


def _s(seconds: float) -> str:
    return f"{seconds:.2f}"


def _mib(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else ""


def _row(*cells: str) -> str:
    widths = (34, 8, 10, 10, 9, 24, 8, 7)
    cells = cells + ("",) * (len(widths) - len(cells))
    name, *rest = cells
    return (
        f"{name:<{widths[0]}}"
        + "".join(
            f" {c:<{w}}" if i == 4 else f" {c:>{w}}"
            for i, (c, w) in enumerate(zip(rest, widths[1:], strict=True))
        )
    ).rstrip()


def _cols(cells: list[str]) -> str:
    return (f"{cells[0]:<22}" + "".join(f" {c:>12}" for c in cells[1:])).rstrip()
