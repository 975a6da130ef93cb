"""The monthly retention flows: archived drops (`archive_retention`) and identifiers
(`identifier_retention`).

The logic is plain Python in `handover/ledger/archive.py` and `handover/ledger/retention.py`; these
flows only run it and log the counts. Their parameters are a config path (absolute, or relative to
`HANDOVER_HOME`) and a flag.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger

from flows.home import config_file
from handover.config import load_config
from handover.ledger import retention
from handover.ledger.archive import delete_expired
from handover.ledger.store import open_store


@flow(name="archive-retention", persist_result=False, log_prints=False)
def archive_retention(config_path: str, dry_run: bool = False) -> list[str]:
    """Delete the archived drops past `[archive] retention_days`; returns their drop ids."""
    deleted = delete_expired(config_file(config_path), now=dt.datetime.now(dt.UTC), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    get_run_logger().info("Archive retention %s %d drops", verb, len(deleted))
    return deleted


@flow(name="identifier-retention", persist_result=False, log_prints=False)
def identifier_retention(config_path: str, dry_run: bool = False) -> dict[str, int]:
    """Erase the identifiers past `[retention] identifier_years` (`handover retention run`).

    Returns how many records of each kind were erased (or would be, for a dry run).
    """
    config = load_config(config_file(config_path))
    result = retention.run(
        open_store(config),
        today=dt.date.today(),
        years=config.compliance.identifier_years,
        dry_run=dry_run,
    )
    logger = get_run_logger()
    for line in result.lines():
        logger.info("Identifier retention: %s", line.strip())
    return {
        "identifiers_erased": result.identifiers_erased,
        "consent_rows_erased": result.consent_rows_erased,
        "handovers_removed": result.handovers_removed,
        "decisions_removed": result.decisions_removed,
        "quarantine_removed": result.quarantine_removed,
        "return_events_removed": result.return_events_removed,
        "reviews_removed": result.reviews_removed,
        "recall_cases_removed": result.recall_cases_removed,
    }
