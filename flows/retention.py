"""Archive retention: the monthly flow that deletes sealed drops past `[archive] retention_days`.

The logic is plain Python in `handover/ledger/archive.py`; this flow only runs it and logs the
count.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger

from handover.ledger.archive import delete_expired


@flow(name="archive-retention", persist_result=False, log_prints=False)
def archive_retention(config_path: str, dry_run: bool = False) -> list[str]:
    """Delete the archived drops past `[archive] retention_days`; returns their drop ids."""
    deleted = delete_expired(config_path, now=dt.datetime.now(dt.UTC), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    get_run_logger().info("Archive retention %s %d drops", verb, len(deleted))
    return deleted
