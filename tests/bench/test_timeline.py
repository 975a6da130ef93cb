"""bench/timeline.py: task runs become stages, and the time between them is named."""

from __future__ import annotations

import datetime as dt

import pytest

from bench import timeline

T0 = dt.datetime(2026, 12, 4, 2, 0, tzinfo=dt.UTC)
START = T0.timestamp()


def _task_run(name: str, start: float, end: float, parent: str | None = None) -> dict[str, object]:
    def stamp(seconds: float) -> str:
        return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    inputs = {"__parents__": [{"input_type": "task_run", "id": parent}]} if parent else {}
    return {
        "id": f"{name}@{start}",
        "name": name,
        "start_time": stamp(start),
        "end_time": stamp(end),
        "task_inputs": inputs,
    }


DEMO = "hand over to inkasso-demo@8"  # the id of the agency task below
RUNS = [
    _task_run("extract-a1b", 2, 3),
    _task_run("validate-c6a", 3.5, 5),
    _task_run("eligibility-6eb", 5, 5.5),
    _task_run("minimise-455", 6, 6.5),
    _task_run("validate-22e", 6.5, 8),
    _task_run("hand over to inkasso-demo", 8, 12),  # contains the three below
    _task_run("encrypt-a77", 9, 9.5, DEMO),
    _task_run("deliver-da5", 9.5, 10, DEMO),
    _task_run("record-732", 10, 11, DEMO),
]


def _timeline(runs: list[dict[str, object]], seconds: float) -> timeline.Timeline:
    spans, agencies = timeline._spans(runs)
    gaps = timeline._gaps(spans, agencies, START, START + seconds)
    return timeline.Timeline("run", spans, gaps, (), timeline._lanes(spans, agencies))


def test_validation_before_the_rules_is_the_source_suite_and_agency_tasks_are_left_out() -> None:
    spans, agencies = timeline._spans(RUNS)
    assert [s.stage for s in spans] == list(timeline.ORDER)
    assert [s.seconds for s in spans] == [1, 1.5, 0.5, 0.5, 1.5, 0.5, 0.5, 1]
    assert [s.agency for s in spans][-3:] == ["inkasso-demo"] * 3
    assert [(a.stage, a.seconds) for a in agencies] == [("inkasso-demo", 4)]


def test_gaps_are_named_by_the_stage_that_follows_them() -> None:
    found = _timeline(RUNS, 14)
    assert found.gap_seconds() == {
        "→ extract": 2,
        "→ source GX": 0.5,
        "→ minimise": 0.5,
        timeline.IN_AGENCY_TASKS: 2,  # 8-9 before its seal, 11-12 after its record
        "→ exit": 2,
    }
    assert found.lane_seconds() == {"inkasso-demo → seal": 1, "inkasso-demo → end": 1}
    assert found.inside() == pytest.approx(7)
    assert found.inside() + sum(found.gap_seconds().values()) == pytest.approx(14)


def test_two_agencies_side_by_side_are_summed_per_stage_and_counted_once_inside() -> None:
    b2b = "hand over to inkasso-b2b@8.1"
    runs = [
        *RUNS,
        _task_run("hand over to inkasso-b2b", 8.1, 10.6),
        _task_run("encrypt-b2b", 9.2, 9.7, b2b),
        _task_run("deliver-b2b", 9.7, 10.5, b2b),
    ]
    found = _timeline(runs, 14)
    assert found.seconds("seal") == pytest.approx(1.0)
    assert found.seconds("deliver") == pytest.approx(1.3)
    assert found.inside() == pytest.approx(7)  # 9.5-9.7 overlaps: not counted twice
    lanes = found.lane_seconds()
    assert lanes["inkasso-demo → seal"] == pytest.approx(1)
    assert lanes["inkasso-b2b → seal"] == pytest.approx(1.1)
    assert lanes["inkasso-b2b → end"] == pytest.approx(0.1)


def test_the_flow_before_the_agency_tasks_is_named_by_the_next_stage() -> None:
    runs = [*RUNS[:5], {**RUNS[5], "start_time": RUNS[6]["start_time"]}]
    runs += [_task_run("encrypt-a77", 9, 9.5, "hand over to inkasso-demo@8")]
    found = _timeline(runs, 12)
    assert found.gap_seconds()["→ seal"] == pytest.approx(1)  # 8-9: no agency task yet
