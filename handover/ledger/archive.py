"""The archive of sealed drops: find them in the outbox, and delete those past retention.

A sealed drop stays in `<outbox>/<agency>/<drop_id>/`, its payload encrypted to the shop's archive
recipient too, as proof of what was sent (Art. 5(2) GDPR) and to answer access requests. Its age
is the `created_at` of its signed manifest (the manifest file's time where that is missing).
Only directories laid out as a drop are touched; the deletion is audited with the drop ids.
The default period and its reasons: `handover.config.DEFAULT_ARCHIVE_RETENTION_DAYS`.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from handover.config import load_config
from handover.crypto.envelope import MANIFEST_SUFFIX
from handover.ledger.store import open_store


@dataclass(frozen=True)
class ArchivedDrop:
    """A drop kept in the outbox and when it was sealed."""

    drop_id: str
    agency: str
    directory: Path
    created_at: dt.datetime


def archived_drops(outbox: Path) -> list[ArchivedDrop]:
    """Every `<outbox>/<agency>/<drop_id>/` that holds `<drop_id>.manifest.json`, oldest first."""
    found = []
    for agency_dir in sorted(Path(outbox).glob("*/")):
        if agency_dir.is_symlink() or not agency_dir.is_dir():
            continue
        for directory in sorted(agency_dir.iterdir()):
            manifest = directory / f"{directory.name}{MANIFEST_SUFFIX}"
            if directory.is_symlink() or not directory.is_dir() or not manifest.is_file():
                continue  # not a drop: never delete what we cannot date
            found.append(
                ArchivedDrop(directory.name, agency_dir.name, directory, _sealed_at(manifest))
            )
    return sorted(found, key=lambda d: (d.created_at, d.drop_id))


def expired(drops: list[ArchivedDrop], retention_days: int, now: dt.datetime) -> list[ArchivedDrop]:
    """The drops sealed more than `retention_days` before `now`."""
    limit = now - dt.timedelta(days=retention_days)
    return [d for d in drops if d.created_at < limit]


def delete_expired(config_path: str, *, now: dt.datetime, dry_run: bool = False) -> list[str]:
    """Delete (or, with `dry_run`, only list) the expired drops; returns their drop ids."""
    config = load_config(config_path)
    days = config.key_settings.archive_retention_days
    store = open_store(config)
    archived = archived_drops(config.outbox)
    # A drop still waiting for delivery is not an archive copy yet: it must not be lost.
    waiting = {drop.drop_id for drop in store.live_drops()}
    doomed = [d for d in expired(archived, days, now) if d.drop_id not in waiting]
    ids = [d.drop_id for d in doomed]
    if dry_run or not doomed:
        return ids
    # Audited first: a deletion that fails half-way is retried, never unrecorded.
    store.record_event(
        f"archive-retention-{uuid.uuid4().hex[:12]}",
        "archive_expired",
        {"drop_ids": ids, "retention_days": days, "at": now.isoformat()},
    )
    for drop in doomed:
        shutil.rmtree(drop.directory)
    return ids


def _sealed_at(manifest: Path) -> dt.datetime:
    try:
        created = json.loads(manifest.read_text(encoding="utf-8")).get("created_at")
        when = dt.datetime.fromisoformat(created)
        if when.tzinfo is not None:
            return when
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    return dt.datetime.fromtimestamp(manifest.stat().st_mtime, dt.UTC)
