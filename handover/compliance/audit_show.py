"""`handover audit show`: audit entries filtered by run, date range, agency and event.

Entries are shown with their identifiers from the side table (internal ids, or `erased`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from handover.ledger import audit
from handover.ledger.store import runs


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to show; None means any."""

    run_id: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None  # inclusive
    agency: str | None = None
    event: str | None = None


def select(conn: sa.Connection, where: AuditFilter) -> list[dict[str, Any]]:
    """The matching entries in order, `data` decoded, `identifiers` from the side table."""
    log, ids = audit.audit_log, audit.audit_identifiers
    query = (
        sa.select(
            log,
            runs.c.agency.label("run_agency"),
            ids.c.identifiers,
            ids.c.erased_at,
        )
        .select_from(
            log.outerjoin(runs, runs.c.run_id == log.c.run_id).outerjoin(
                ids, ids.c.seq == log.c.seq
            )
        )
        .order_by(log.c.seq)
    )
    if where.run_id:
        query = query.where(log.c.run_id == where.run_id)
    if where.event:
        query = query.where(log.c.event == where.event)
    if where.start:
        query = query.where(log.c.at >= where.start.isoformat())
    if where.end:
        query = query.where(log.c.at < (where.end + dt.timedelta(days=1)).isoformat())
    result = []
    for row in conn.execute(query):
        data = json.loads(row.data)
        agency = data.get("agency") or row.run_agency
        if where.agency and agency != where.agency:
            continue
        if row.erased_at:
            identifiers: Any = "erased"
        else:
            identifiers = json.loads(row.identifiers) if row.identifiers else None
        result.append(
            {
                "seq": row.seq,
                "at": row.at,
                "run_id": row.run_id,
                "event": row.event,
                "agency": agency,
                "data": data,
                "identifiers": identifiers,
                "hash": row.hash,
            }
        )
    return result


def as_json(entries: list[dict[str, Any]]) -> str:
    """The entries as a JSON array."""
    return json.dumps(entries, indent=2, ensure_ascii=False) + "\n"


def as_table(entries: list[dict[str, Any]], *, width: int = 70) -> str:
    """The entries as an aligned text table, data shortened to `width` characters."""
    header = ("seq", "at (UTC)", "run", "event", "agency", "data")
    rows = []
    for entry in entries:
        data = {k: v for k, v in entry["data"].items() if k != "ids_sha256"}
        if isinstance(entry["identifiers"], dict):
            data = {**entry["identifiers"], **data}
        elif entry["identifiers"] == "erased":
            data = {"ids": "erased", **data}
        text = " ".join(f"{k}={_short(v)}" for k, v in data.items())
        rows.append(
            (
                str(entry["seq"]),
                entry["at"][:19].replace("T", " "),
                entry["run_id"][:12],
                entry["event"],
                entry["agency"] or "",
                text if len(text) <= width else text[: width - 1] + "…",
            )
        )
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(f"{len(rows)} entries")
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
