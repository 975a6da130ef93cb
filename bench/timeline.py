"""A run's stages as its Prefect server recorded them: task runs, and the time between them.

Every stage time here is a task run's own start and end (its state timestamps, set by the
process that ran it), read back from the server's API after the run. The nightly flow's tasks
map onto the stages of the issue's table. An agency task ("hand over to NAME") only contains
others (seal, deliver, record, found by their `__parents__` input): its own time outside them
(building the consent log and recording the drop before `seal`, for example) is outside tasks,
and is also shown per agency, as a lane, because agencies run side by side.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.support.prefect_server import PrefectServer

# Task name -> stage. `validate` is the source suite before the eligibility task started and the
# outgoing suite after it.
STAGES = {
    "extract": "extract",
    "eligibility": "rules",
    "minimise": "minimise",
    "encrypt": "seal",
    "deliver": "deliver",
    "record": "record",
}
ORDER = ("extract", "source GX", "rules", "minimise", "outgoing GX", "seal", "deliver", "record")
CONTAINER = "hand over to "
IN_AGENCY_TASKS = "in agency tasks, outside theirs"
_RUN_SUFFIX = re.compile(r"-[0-9a-f]{3}$")
_TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


@dataclass(frozen=True)
class Span:
    """One task run of a stage, in epoch seconds; `agency` names its agency task, if any."""

    stage: str
    start: float
    end: float
    agency: str | None = None

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Gap:
    """Time in the process with no task running, just before stage `before` ("exit": the end).

    `before` is IN_AGENCY_TASKS for time inside an agency task: `Lane` says whose and before what.
    """

    before: str
    start: float
    end: float

    @property
    def label(self) -> str:
        return IN_AGENCY_TASKS if self.before == IN_AGENCY_TASKS else f"→ {self.before}"

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Lane(Gap):
    """An agency task's own time outside its tasks, before its stage `before` ("end")."""

    agency: str = ""

    @property
    def label(self) -> str:
        return f"{self.agency} → {self.before}"


@dataclass(frozen=True)
class Timeline:
    """The flow run's id, its task spans (leaf tasks only), the gaps of the process, the lanes
    of the agency tasks and the run's log lines."""

    flow_run_id: str
    spans: tuple[Span, ...]
    gaps: tuple[Gap, ...]
    log_lines: tuple[str, ...]
    lanes: tuple[Lane, ...] = ()

    def stages(self) -> list[str]:
        """The stages of this run, in the issue's order, then any others by start."""
        seen = sorted({s.stage for s in self.spans}, key=self._first_start)
        return [s for s in ORDER if s in seen] + [s for s in seen if s not in ORDER]

    def seconds(self, stage: str) -> float:
        """The stage's time: its task runs' durations summed (agencies run side by side)."""
        return sum(s.seconds for s in self.spans if s.stage == stage)

    def inside(self) -> float:
        """Seconds in which at least one task ran."""
        return sum(end - start for start, end in _union(self.spans))

    def gap_seconds(self) -> dict[str, float]:
        """Seconds outside tasks per gap label, in the order they first occur."""
        return _by_label(self.gaps)

    def lane_seconds(self) -> dict[str, float]:
        """Each agency task's own seconds per lane label (agencies overlap: no total)."""
        return _by_label(self.lanes)

    def _first_start(self, stage: str) -> float:
        return min(s.start for s in self.spans if s.stage == stage)


def read(server: PrefectServer, started: float, ended: float, timeout: float = 60) -> Timeline:
    """The timeline of the one flow run that started between `started` and `ended`.

    Task runs reach the server as events, a moment after the process ended: poll until their
    number stays the same and each has ended.
    """
    flow_run = _flow_run(server, started, timeout)
    deadline = time.monotonic() + timeout
    previous: list[dict[str, Any]] | None = None
    while True:
        runs = server.api(
            "POST", "task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run]}}, "limit": 200}
        )
        settled = all(r["end_time"] and r["state_type"] in _TERMINAL for r in runs)
        if settled and previous is not None and len(previous) == len(runs):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the task runs of flow run {flow_run} did not settle in time")
        previous = runs
        time.sleep(1)
    spans, agencies = _spans(runs)
    return Timeline(
        flow_run_id=flow_run,
        spans=spans,
        gaps=_gaps(spans, agencies, started, ended),
        log_lines=_logs(server, flow_run),
        lanes=_lanes(spans, agencies),
    )


def _flow_run(server: PrefectServer, started: float, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = server.api("POST", "flow_runs/filter", {"sort": "START_TIME_DESC", "limit": 1})
        if runs and runs[0]["start_time"] and _epoch(runs[0]["start_time"]) >= started:
            return runs[0]["id"]
        time.sleep(1)
    raise RuntimeError("the run's flow run did not reach the Prefect server")


def _spans(runs: list[dict[str, Any]]) -> tuple[tuple[Span, ...], tuple[Span, ...]]:
    """The leaf task runs as stages, and the agency tasks (stage: the agency's name)."""
    containers = {r["id"]: r for r in runs if r["name"].startswith(CONTAINER)}
    agencies = tuple(
        Span(r["name"].removeprefix(CONTAINER), _epoch(r["start_time"]), _epoch(r["end_time"]))
        for r in containers.values()
    )
    leaves = [r for r in runs if r["id"] not in containers]
    rules = [_epoch(r["start_time"]) for r in leaves if _task(r) == "eligibility"]
    rules_start = min(rules) if rules else float("inf")
    spans = []
    for r in leaves:
        start, end, task = _epoch(r["start_time"]), _epoch(r["end_time"]), _task(r)
        if task == "validate":
            stage = "source GX" if start < rules_start else "outgoing GX"
        else:
            stage = STAGES.get(task, task)
        parents = (r.get("task_inputs") or {}).get("__parents__") or [{}]
        parent = containers.get(parents[0].get("id"))
        agency = parent["name"].removeprefix(CONTAINER) if parent else None
        spans.append(Span(stage, start, end, agency))
    return tuple(sorted(spans, key=lambda s: s.start)), agencies


def _gaps(
    spans: tuple[Span, ...], agencies: tuple[Span, ...], started: float, ended: float
) -> tuple[Gap, ...]:
    """The stretches of [started, ended] no task covers, named by the stage that follows; the
    parts inside an agency task are IN_AGENCY_TASKS."""
    outside, cursor = [], started
    for start, end in _union(spans):
        if start > cursor:
            outside.append((cursor, start))
        cursor = max(cursor, end)
    if ended > cursor:
        outside.append((cursor, ended))
    gaps = []
    for start, end in outside:
        for a, b, inside in _split(start, end, _union(agencies)):
            if inside:
                gaps.append(Gap(IN_AGENCY_TASKS, a, b))
                continue
            following = [s for s in spans if s.start >= b]
            before = min(following, key=lambda s: s.start).stage if following else "exit"
            gaps.append(Gap(before, a, b))
    return tuple(gaps)


def _lanes(spans: tuple[Span, ...], agencies: tuple[Span, ...]) -> tuple[Lane, ...]:
    """Each agency task's time outside its own tasks, named by the task that follows."""
    lanes = []
    for agency in agencies:
        cursor = agency.start
        for child in (s for s in spans if s.agency == agency.stage):
            if child.start > cursor:
                lanes.append(Lane(child.stage, cursor, child.start, agency=agency.stage))
            cursor = max(cursor, child.end)
        if agency.end > cursor:
            lanes.append(Lane("end", cursor, agency.end, agency=agency.stage))
    return tuple(sorted(lanes, key=lambda lane: lane.start))


def _split(
    start: float, end: float, covers: list[tuple[float, float]]
) -> list[tuple[float, float, bool]]:
    """[start, end] cut into pieces inside and outside `covers` (sorted, disjoint)."""
    pieces, cursor = [], start
    for a, b in covers:
        a, b = max(a, start), min(b, end)
        if a >= b:
            continue
        if a > cursor:
            pieces.append((cursor, a, False))
        pieces.append((a, b, True))
        cursor = b
    if end > cursor:
        pieces.append((cursor, end, False))
    return pieces


def _by_label(gaps: tuple[Gap, ...]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for gap in gaps:
        totals[gap.label] += gap.seconds
    return dict(totals)


def _union(spans: tuple[Span, ...]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span.end)
        else:
            merged.append([span.start, span.end])
    return [(a, b) for a, b in merged]


def _logs(server: PrefectServer, flow_run: str) -> tuple[str, ...]:
    logs = server.api(
        "POST",
        "logs/filter",
        {"logs": {"flow_run_id": {"any_": [flow_run]}}, "sort": "TIMESTAMP_ASC", "limit": 200},
    )
    return tuple(entry["message"] for entry in logs)


def _task(run: dict[str, Any]) -> str:
    return _RUN_SUFFIX.sub("", run["name"])


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
