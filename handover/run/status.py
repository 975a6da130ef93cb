"""`handover status`: the latest runs, who holds the lease, the drops waiting, the next runs.

Read from the state store without changing it (`ledger.store.read_snapshot`) and, when a Prefect
API answers, from Prefect (`run.schedule`). Everything shown is ids, dates, hosts and counts:
no personal data, in the text as in the JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handover.config import Config
from handover.ledger.store import Snapshot, read_snapshot
from handover.run.schedule import Schedule, read_schedule

ALL_AGENCIES = "*"  # the runs table's agency for a run over every agency


@dataclass(frozen=True)
class Status:
    """One look at the handover: what the state store and Prefect say, at `now`."""

    now: dt.datetime
    agencies: tuple[str, ...]  # the configured agencies, in config order
    snapshot: Snapshot | None  # None: no run has ever started on this state store
    schedule: Schedule

    @property
    def waiting(self) -> tuple[dict[str, Any], ...]:
        """The drops prepared or sealed and not delivered, oldest first."""
        return self.snapshot.drops if self.snapshot else ()


def collect(
    config: Config, *, runs: int, now: dt.datetime, env: Mapping[str, str] = os.environ
) -> Status:
    """The status of `config`'s state store (its latest `runs` runs), then Prefect's schedule.

    `env` is where the Prefect API is looked up (`run.schedule.configured_api_url`).
    """
    snapshot = read_snapshot(config.state_url, runs_limit=runs)
    return Status(now, tuple(a.name for a in config.agencies), snapshot, read_schedule(env))


# --------------------------------------------------------------------------- JSON


def to_json(status: Status) -> str:
    """The status as one JSON document; its keys are documented in the README."""
    return json.dumps(as_dict(status), indent=2) + "\n"


def as_dict(status: Status) -> dict[str, Any]:
    """The JSON document's content (stable keys; times are ISO 8601 in UTC)."""
    snap = status.snapshot
    waiting = [_drop(status, d) for d in status.waiting]
    by_agency = {name: [d for d in waiting if d["agency"] == name] for name in status.agencies}
    for drop in waiting:  # a drop of an agency since removed from the config still waits
        if drop["agency"] not in status.agencies:
            by_agency.setdefault(drop["agency"], []).append(drop)
    return {
        "now": _iso(status.now),
        "runs": [_run(r) for r in snap.runs] if snap else [],
        "lease": _lease(status),
        "drops_waiting": len(waiting),
        "agencies": {
            name: {
                "drops_waiting": len(drops),
                "cases_waiting": sum(d["case_count"] for d in drops),
                "oldest_prepared_at": drops[0]["prepared_at"] if drops else None,
                "drops": drops,
            }
            for name, drops in by_agency.items()
        },
        "schedule": {
            "api_url": status.schedule.api_url,
            "reachable": status.schedule.reachable,
            "note": status.schedule.note,
            "deployments": [
                {
                    "deployment": n.deployment,
                    "paused": n.paused,
                    "work_pool": n.work_pool,
                    "next_run": n.next_run,
                    "late": n.late(status.now),
                    "flow_run_id": n.flow_run_id,
                }
                for n in status.schedule.deployments
            ],
        },
    }


def _run(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "as_of": row["as_of"],
        "agency": None if row["agency"] == ALL_AGENCIES else row["agency"],
        "dry_run": bool(row["dry_run"]),
        "status": row["status"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "host": row["host"],
        "pid": row["pid"],
        "held_lease": not row["dry_run"],  # a dry run sends nothing and takes no lease
        "counts": json.loads(row["counts"]) if row["counts"] else {},
    }


def _lease(status: Status) -> dict[str, Any]:
    snap = status.snapshot
    if snap is None or snap.lease_run_id is None:
        return {"held": False, "run_id": None, "since": None, "host": None, "pid": None,
                "alive": None, "why_dead": None}  # fmt: skip
    holder = snap.lease_holder
    why_dead = holder.death(status.now) if holder else "its run is no longer running"
    return {
        "held": True,
        "run_id": snap.lease_run_id,
        "since": snap.lease_since,
        "host": holder.host if holder else None,
        "pid": holder.pid if holder else None,
        "alive": why_dead is None,
        "why_dead": why_dead,
    }


def _drop(status: Status, row: dict[str, Any]) -> dict[str, Any]:
    since = row["sealed_at"] if row["status"] == "sealed" and row["sealed_at"] else None
    return {
        "agency": row["agency"],
        "drop_id": row["drop_id"],
        "run_id": row["run_id"],
        "kind": row.get("kind") or "handover",  # or "recall": a recall/update drop
        "status": row["status"],
        "case_count": row["case_count"],
        "prepared_at": row["prepared_at"],
        "sealed_at": row["sealed_at"],
        "status_since": since or row["prepared_at"],
        "age_seconds": _seconds_since(status.now, row["prepared_at"]),
    }


# --------------------------------------------------------------------------- text


def to_text(status: Status) -> str:
    """The status in words, for a terminal."""
    data = as_dict(status)
    return (
        "\n\n".join(
            "\n".join(part)
            for part in (
                _runs_text(data["runs"]),
                _lease_text(data["lease"]),
                _drops_text(data),
                _schedule_text(data["schedule"], status.now),
            )
        )
        + "\n"
    )


def _runs_text(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return ["No run yet: the state store has recorded none."]
    lines = [f"Latest {len(runs)} run(s), newest first:"]
    for run in runs:
        kind = "dry run" if run["dry_run"] else "run"
        agency = run["agency"] or "all agencies"
        lines.append(
            f"  {run['as_of']}  {run['status']:<9}  {kind} {run['run_id']} ({agency}), "
            f"started {run['started_at']}, on {run['host']} pid {run['pid']}"
        )
        if run["counts"]:
            lines.append(f"      {_counts_summary(run['counts'])}")
    return lines


def _counts_summary(counts: dict[str, Any]) -> str:
    if "error" in counts:  # a failed run records its error's type only
        return f"failed with {counts['error']} (`handover run` printed it; Prefect's log has it)"
    handed = {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("handed_over.")}
    held = sum(v for k, v in counts.items() if k.startswith("quarantined."))
    parts = [f"eligible {counts.get('eligible', 0)}"]
    if handed:
        per = ", ".join(f"{agency} {n}" for agency, n in handed.items())
        parts.append(f"handed over {sum(handed.values())} ({per})")
    parts.append(f"quarantined {held}")
    return "; ".join(parts)


def _lease_text(lease: dict[str, Any]) -> list[str]:
    if not lease["held"]:
        return ["Lease: free (no run is working on the state store)."]
    where = f"on {lease['host']} pid {lease['pid']}" if lease["host"] else "(run not running)"
    line = f"Lease: held by run {lease['run_id']} {where} since {lease['since']}"
    if lease["alive"]:
        return [line + " (alive)."]
    return [line + f": that run is dead ({lease['why_dead']}); the next run takes the lease over."]


def _drops_text(data: dict[str, Any]) -> list[str]:
    if not data["drops_waiting"]:
        return ["Drops waiting for delivery: none."]
    lines = [f"Drops waiting for delivery: {data['drops_waiting']}"]
    for agency, info in data["agencies"].items():
        if not info["drops"]:
            lines.append(f"  {agency}: none")
            continue
        lines.append(
            f"  {agency}: {info['drops_waiting']} drop(s), {info['cases_waiting']} cases, "
            f"oldest waiting {_duration(info['drops'][0]['age_seconds'])}"
        )
        for drop in info["drops"]:
            what = (
                "sealed, the next run delivers it"
                if drop["status"] == "sealed"
                else "prepared, never sealed (its run ended first); the next run gives it up "
                "and its cases go again"
            )
            kind = " (recall/update drop)" if drop["kind"] == "recall" else ""
            lines.append(
                f"    {drop['drop_id']}{kind}  {drop['status']} since {drop['status_since']}, "
                f"waiting {_duration(drop['age_seconds'])}, {drop['case_count']} cases, "
                f"run {drop['run_id']}: {what}"
            )
    return lines


def _schedule_text(schedule: dict[str, Any], now: dt.datetime) -> list[str]:
    if schedule["note"]:
        return [f"Next scheduled runs unknown: {schedule['note']}."]
    if not schedule["deployments"]:
        return [
            f"Next scheduled runs: Prefect API {schedule['api_url']} has no deployment of "
            "this project's flows (README: 'Run it on Prefect')."
        ]
    lines = [f"Next scheduled runs (Prefect API {schedule['api_url']}):"]
    for dep in schedule["deployments"]:
        pool = f", work pool {dep['work_pool']}" if dep["work_pool"] else ""
        if dep["next_run"] is None:
            when = "nothing scheduled" + (" (paused)" if dep["paused"] else "")
        else:
            seconds = _seconds_since(now, dep["next_run"])
            when = (
                f"{dep['next_run']} LATE by {_duration(seconds)}: is a worker polling the pool?"
                if dep["late"]
                else f"{dep['next_run']} (in {_duration(-seconds)})"
            )
        lines.append(f"  {dep['deployment']}: {when}{pool}")
    return lines


# --------------------------------------------------------------------------- times


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _seconds_since(now: dt.datetime, iso: str) -> int:
    then = dt.datetime.fromisoformat(iso)
    if then.tzinfo is None:  # the state store writes UTC
        then = then.replace(tzinfo=dt.UTC)
    return int((now - then).total_seconds())


def _duration(seconds: int) -> str:
    """A rough duration for people: '45 s', '12 min', '3 h 5 min', '2 d 4 h'."""
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 3600:
        return f"{minutes} min"
    if seconds < 86400:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"
