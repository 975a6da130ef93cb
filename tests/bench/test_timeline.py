"""bench/timeline.py: task runs become stages, and the time between them is named."""

from __future__ import annotations

import datetime as dt

import pytest

from bench import timeline

T0 = dt.datetime(2026, 12, 4, 2, 0, tzinfo=dt.UTC)


def _task_run(name: str, start: float, end: float) -> dict[str, object]:
    def stamp(seconds: float) -> str:
        return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    return {"name": name, "start_time": stamp(start), "end_time": stamp(end)}


RUNS = [
    _task_run("extract-a1b", 2, 3),
    _task_run("validate-c6a", 3.5, 5),
    _task_run("eligibility-6eb", 5, 5.5),
    _task_run("minimise-455", 6, 6.5),
    _task_run("validate-22e", 6.5, 8),
    _task_run("hand over to inkasso-demo", 8, 12),  # contains the three below
    _task_run("encrypt-a77", 9, 9.5),
    _task_run("deliver-da5", 9.5, 10),
    _task_run("record-732", 10, 11),
]


def test_validation_before_the_rules_is_the_source_suite_and_containers_are_left_out() -> None:
    spans = timeline._spans(RUNS)
    assert [s.stage for s in spans] == list(timeline.ORDER)
    assert [s.seconds for s in spans] == [1, 1.5, 0.5, 0.5, 1.5, 0.5, 0.5, 1]


def test_gaps_are_named_by_the_stage_that_follows_them() -> None:
    spans = timeline._spans(RUNS)
    start = T0.timestamp()
    found = timeline.Timeline("run", spans, timeline._gaps(spans, start, start + 14), ())
    assert found.gap_seconds() == {
        "→ extract": 2,
        "→ source GX": 0.5,
        "→ minimise": 0.5,
        "→ seal": 1,
        "→ exit": 3,
    }
    assert found.inside() == pytest.approx(7)
    assert found.inside() + sum(found.gap_seconds().values()) == pytest.approx(14)


def test_two_agencies_side_by_side_are_summed_per_stage_and_counted_once_inside() -> None:
    runs = [*RUNS, _task_run("encrypt-b2b", 9.2, 9.7), _task_run("deliver-b2b", 9.7, 10.5)]
    spans = timeline._spans(runs)
    start = T0.timestamp()
    found = timeline.Timeline("run", spans, timeline._gaps(spans, start, start + 14), ())
    assert found.seconds("seal") == pytest.approx(1.0)
    assert found.seconds("deliver") == pytest.approx(1.3)
    assert found.inside() == pytest.approx(7)  # 9.5-9.7 overlaps: not counted twice


def test_a_gap_after_one_agency_finished_belongs_to_the_stage_the_other_starts() -> None:
    # inkasso-b2b seals, delivers and records while inkasso-demo still builds its consent log.
    runs = [*RUNS[:5], _task_run("encrypt-b2b", 8.2, 8.3), _task_run("record-b2b", 8.3, 8.4)]
    runs += [_task_run("encrypt-a77", 10, 10.5)]
    spans = timeline._spans(runs)
    start = T0.timestamp()
    gaps = timeline._gaps(spans, start, start + 11)
    assert [(g.label, round(g.seconds, 2)) for g in gaps][-3:] == [
        ("→ seal", 0.2),
        ("→ seal", 1.6),
        ("→ exit", 0.5),
    ]
