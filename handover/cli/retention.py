"""`handover retention run` (identifiers) and `retention drops` (the archive)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from handover.cli.common import with_config


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    retention = commands.add_parser(
        "retention", help="erase identifiers and archived drops past their retention period"
    ).add_subparsers(dest="retention_command", required=True)
    erase = with_config(retention.add_parser("run", help="erase identifiers past retention"))
    erase.add_argument("--dry-run", action="store_true", help="count, erase nothing")
    erase.set_defaults(func=cmd_retention_run)
    archived = with_config(retention.add_parser("drops", help="delete expired archived drops"))
    archived.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    archived.set_defaults(func=cmd_retention_drops)


def cmd_retention_run(args: argparse.Namespace) -> int:
    from handover.config import load_compliance, load_config
    from handover.ledger import retention
    from handover.ledger.store import StateStore

    config = load_config(args.config)
    years = load_compliance(args.config).identifier_years
    result = retention.run(
        StateStore(config.state_url), today=dt.date.today(), years=years, dry_run=args.dry_run
    )
    print("\n".join(result.lines()))
    return 0


def cmd_retention_drops(args: argparse.Namespace) -> int:
    from handover.ledger.archive import delete_expired

    deleted = delete_expired(args.config, now=dt.datetime.now(dt.UTC), dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"archived drops past [archive] retention_days: {verb} {len(deleted)}")
    for drop_id in deleted:
        print(f"  {drop_id}")
    return 0
