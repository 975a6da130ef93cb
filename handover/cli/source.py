"""`handover source check`: the shop-side contract checked as a run checks it, without a run.

No Prefect and no Great Expectations on this path: it answers in seconds, and its exit status
serves scripts (0 when every table is OK, 1 when anything is to fix).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from handover.cli.common import as_of, with_config


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    source = commands.add_parser("source", help="the shop database as handover reads it")
    check = with_config(
        source.add_subparsers(dest="source_command", required=True).add_parser(
            "check",
            help="check every table or view a run reads: per table OK (n rows) or what to fix",
        )
    )
    check.add_argument(
        "--as-of", type=as_of, help="the run's date in Europe/Berlin (default: today)"
    )
    check.set_defaults(func=cmd_source_check)


def cmd_source_check(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.run.decide import check_as_of, today_berlin
    from handover.run.extract import check_source

    config = load_config(args.config)
    day = check_as_of(dt.date.fromisoformat(args.as_of)) if args.as_of else today_berlin()
    report = check_source(
        config.source_url,
        day,
        minor_units_confirmed=config.confirm_minor_units,
        dunning_levels=config.dunning_levels,
        birth_dates_expected=config.keeps_birth_dates,
    )
    print(f"Shop database of {args.config}, the rows a run on {day.isoformat()} reads:")
    width = max(len(t.table) for t in report.tables)
    for table in report.tables:
        if table.kind == "absent":
            status = "ABSENT (optional: a run reads it as empty)"
        elif table.ok and table.rows is None:
            status = "NOT CHECKED (the rows a run reads are those of the cases: fix invoices)"
        elif table.ok:
            status = f"OK ({table.rows} rows)"
        elif table.rows is None:
            status = "FIX (not counted until it can be queried)"
        else:
            status = f"FIX ({table.rows} rows)"
        print(f"  {table.table.ljust(width)}  {status}")
        for finding in table.findings:
            mark = "fix" if finding.stops else "fix (a run holds these cases back)"
            print(f"      {mark}: {finding.message}")
        for conversion in table.conversions:
            print(f"      read: {conversion}")
        for warning in table.warnings:
            print(f"      warn: {warning}")
    stopping = len(report.stopping())
    held = sum(len(t.findings) for t in report.tables) - stopping
    if report.ok:
        print("All tables meet the contract (schemas/shop_source.sql).")
        return 0
    print(
        f"{stopping} problem(s) stop a run, {held} hold cases back: fix them in the shop "
        "database or its views (README: 'The shop side'), then check again."
    )
    return 1
