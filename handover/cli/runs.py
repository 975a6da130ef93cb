"""`handover run`, the drops and quarantine it leaves, and `handover status` over them all."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from handover.cli.common import as_of, no_collection_at_exit, quiet_analytics, with_config
from handover.cli.exits import OK, WAITING


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    run = with_config(commands.add_parser("run", help="run the handover flow once"))
    run.add_argument("--as-of", type=as_of, help="date in Europe/Berlin (default: today)")
    run.add_argument("--agency", help="agency name (default: the only one configured)")
    run.add_argument(
        "--dry-run", action="store_true", help="decide and validate, but seal and send nothing"
    )
    run.set_defaults(func=cmd_run)

    recalls = with_config(
        commands.add_parser(
            "recalls",
            help="send recalls and updates now (the first step of every run, alone)",
            description="Compare every case at an agency with the shop's facts now and deliver "
            "each agency one recall/update drop with what changed (recalls, new amounts, names "
            "and addresses, channels to delete, pauses and resumes), as every run does before "
            "it hands over new cases. Holds the same run lease as `handover run`.",
        )
    )
    recalls.add_argument("--agency", help="only this agency (default: every agency)")
    recalls.add_argument(
        "--dry-run", action="store_true", help="compare and count, but seal and send nothing"
    )
    recalls.set_defaults(func=cmd_recalls)

    drops = commands.add_parser("drops", help="drops waiting for delivery").add_subparsers(
        dest="drops_command", required=True
    )
    with_config(
        drops.add_parser("list", help="drops prepared or sealed, not delivered")
    ).set_defaults(func=cmd_drops_list)
    abandon = with_config(
        drops.add_parser(
            "abandon",
            help="give up a waiting drop the agency confirmed it does not hold (its files are "
            "deleted; its cases go into the next drop)",
        )
    )
    abandon.add_argument("drop_id")
    abandon.set_defaults(func=cmd_drops_abandon)

    status = with_config(
        commands.add_parser(
            "status",
            help="latest runs and the lease, drops waiting per agency, next scheduled runs",
            description="The latest runs (as_of, status, counts, host and pid of the run that "
            "held the lease), the drops waiting for delivery per agency with their age, and the "
            "next scheduled runs when a Prefect API is configured (PREFECT_API_URL) and answers.",
        )
    )
    status.add_argument("--runs", type=_positive, default=5, help="how many runs (default 5)")
    status.add_argument("--json", action="store_true", help="one JSON document (see README)")
    status.add_argument(
        "--check",
        action="store_true",
        help=f"exit {WAITING} when a drop is waiting for delivery (for monitoring scripts)",
    )
    status.set_defaults(func=cmd_status)

    quarantine = commands.add_parser("quarantine", help="cases held back by validation")
    held = with_config(
        quarantine.add_subparsers(dest="quarantine_command", required=True).add_parser(
            "list", help="held-back cases: run, invoice, suite, reason codes"
        )
    )
    held.add_argument("--run", help="only this run id (default: every run)")
    held.add_argument("--json", action="store_true", help="one JSON document (see README)")
    held.set_defaults(func=cmd_quarantine_list)


def cmd_run(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.run.decide import check_as_of
    from handover.run.preflight import preflight

    # Refuse a bad config, key directory or date before Prefect starts a server for a doomed run.
    config = load_config(args.config)
    if args.as_of:
        check_as_of(dt.date.fromisoformat(args.as_of))
    preflight(config, config.in_scope(args.agency), dry_run=args.dry_run)
    quiet_analytics()
    no_collection_at_exit()
    from flows.nightly import handover
    from handover.cli.terminal import one_line_errors
    from handover.run.publish import counts_text

    with one_line_errors():  # each error once, in main's final line; tracebacks in the log
        counts = handover(
            config_path=str(Path(args.config).resolve()),
            as_of=args.as_of,
            agency=args.agency,
            dry_run=args.dry_run,
        )
    print("Dry run: counts per reason code" if args.dry_run else "Counts per reason code")
    print(counts_text(counts), end="")
    return 0


def cmd_recalls(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.run.preflight import preflight

    config = load_config(args.config)
    preflight(config, config.in_scope(args.agency), dry_run=args.dry_run)
    quiet_analytics()
    no_collection_at_exit()
    from flows.nightly import handover
    from handover.cli.terminal import one_line_errors
    from handover.run.publish import counts_text

    with one_line_errors():
        counts = handover(
            config_path=str(Path(args.config).resolve()),
            agency=args.agency,
            dry_run=args.dry_run,
            recalls_only=True,
        )
    print("Dry run: recalls and updates" if args.dry_run else "Recalls and updates")
    print(counts_text(counts) or "  nothing changed for the cases at the agencies\n", end="")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.run import status

    config = load_config(args.config)
    quiet_analytics()  # Prefect is imported only if its API answers; then quietly
    found = status.collect(config, runs=args.runs, now=dt.datetime.now(dt.UTC))
    print(status.to_json(found) if args.json else status.to_text(found), end="")
    return WAITING if args.check and found.waiting else OK


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def cmd_drops_list(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.ledger.store import open_store

    waiting = open_store(load_config(args.config), signing=False).live_drops()
    if not waiting:
        print("no drop is waiting for delivery")
    for drop in waiting:
        kind = "  (recall/update drop)" if drop.kind == "recall" else ""
        print(f"{drop.drop_id}  {drop.agency}  {drop.status}  {drop.case_count} cases{kind}")
    return 0


def cmd_drops_abandon(args: argparse.Namespace) -> int:
    import uuid

    from handover.config import load_config
    from handover.ledger.store import open_store
    from handover.run.seal import remove_files

    store = open_store(load_config(args.config))
    drop = store.abandon_by_operator(f"abandon-{uuid.uuid4().hex[:12]}", args.drop_id)
    remove_files(drop)
    if drop.kind == "recall":
        print(
            f"abandoned recall/update drop {drop.drop_id}: the next run compares its "
            f"{drop.case_count} cases again and tells the agency what changed"
        )
        return 0
    print(f"abandoned {drop.drop_id}: its {drop.case_count} cases go into the next run's drop")
    return 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.ledger.store import StateStore

    held = StateStore(load_config(args.config).state_url).quarantined(args.run)
    if args.json:
        import json

        rows = [{**row, "reasons": [c for c in row["reasons"].split(",") if c]} for row in held]
        print(json.dumps({"run_id": args.run, "quarantined": rows}, indent=2))
        return OK
    if not held:
        print("no quarantined cases" + (f" in run {args.run}" if args.run else ""))
        return 0
    header = {"run_id": "run", "invoice_id": "invoice", "suite": "suite", "reasons": "reasons"}
    width = {k: max(len(header[k]), *(len(str(r[k])) for r in held)) for k in header}
    for row in [header, *held]:
        print("  ".join(str(row[k]).ljust(width[k]) for k in header).rstrip())
    return 0
