"""`handover returns fetch`, `returns export`, and `handover release` (agency → shop)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from handover.cli.common import as_of, quiet_analytics, with_config, write_output


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    from handover.returns.reasons import RELEASE_REASONS

    group = commands.add_parser(
        "returns", help="the agencies' return files: payments, closures, disputes, complaints"
    ).add_subparsers(dest="returns_command", required=True)
    fetch = with_config(
        group.add_parser(
            "fetch",
            help="take the agencies' return files now (the nightly run does it first)",
            description="Fetch, verify, decrypt and ingest every complete return file in the "
            "returns folder of each agency with [agencies.NAME.returns], then move it to the "
            "folder's processed/. A refused file stays and is named; the command exits 1.",
        )
    )
    fetch.add_argument("--agency", help="only this agency (default: every one that sends them)")
    fetch.set_defaults(func=cmd_returns_fetch)
    export = with_config(
        group.add_parser(
            "export",
            help="the payments agencies reported, as CSV for the shop's accounting",
            description="One row per payment or closed_paid event with an event date in the "
            "period: invoice_number, invoice_id, agency, event, event_date, amount_cents, "
            "currency, event_id, return_id. Written owner-only (0600).",
        )
    )
    export.add_argument("--from", dest="start", type=as_of, required=True, help="first day")
    export.add_argument("--to", dest="end", type=as_of, required=True, help="last day")
    export.add_argument("--agency", help="only this agency's payments")
    export.add_argument("-o", "--output", help="the CSV file to write (default: stdout)")
    export.set_defaults(func=cmd_returns_export)

    release = with_config(
        commands.add_parser(
            "release",
            help="take a case off review (after an agency reported a dispute or complaint)",
            description="A case an agency reported disputed or complained about is never handed "
            "over again until released. The reason is a code; the story belongs in the support "
            "ticket. Reasons: "
            + "; ".join(f"{code}: {text}" for code, text in RELEASE_REASONS.items()),
        )
    )
    release.add_argument(
        "invoice", help="the invoice id, or the invoice number printed on the invoice (exact)"
    )
    release.add_argument("--reason", required=True, choices=list(RELEASE_REASONS))
    release.set_defaults(func=cmd_release)


def cmd_returns_fetch(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.run.preflight import preflight

    config = load_config(args.config)  # a bad config is refused before Prefect starts
    senders = [a for a in config.in_scope(args.agency) if a.returns is not None]
    preflight(config, senders, dry_run=False)
    quiet_analytics()
    from flows.returns import returns
    from handover.cli.terminal import one_line_errors

    with one_line_errors():
        counts = returns(config_path=str(Path(args.config).resolve()), agency=args.agency)
    for key, value in counts.items():
        print(f"{key}: {value}")
    return 0


def cmd_returns_export(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.ledger.store import open_store
    from handover.returns.export import export_payments

    config = load_config(args.config)
    done = export_payments(
        config,
        open_store(config),
        dt.date.fromisoformat(args.start),
        dt.date.fromisoformat(args.end),
        args.agency,
    )
    write_output(done.csv.decode("utf-8"), args.output, private=True)
    sums = ", ".join(f"{cents} {currency}" for currency, cents in done.sums.items()) or "nothing"
    if args.output:
        print(f"{done.rows} payments ({sums}, in minor units)")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.ledger.store import open_store
    from handover.returns.review import release

    config = load_config(args.config)
    done = release(config, open_store(config), args.invoice, args.reason)
    print(
        f"released invoice {done.invoice_id} ({done.reason}): on review since "
        f"{done.on_review_since} after {done.event} {done.event_id} of agency {done.agency}; "
        "the next run decides on it again"
    )
    return 0
