"""`handover alerts setup|show|remove`: the Prefect automation that reports failed runs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from handover.cli.common import quiet_analytics


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    alerts = commands.add_parser(
        "alerts",
        help="tell the team when a run fails, stops on validation or leaves a drop waiting "
        "(a Prefect automation; needs PREFECT_API_URL)",
    ).add_subparsers(dest="alerts_command", required=True)
    setup = alerts.add_parser(
        "setup",
        help="create or update the automation that sends failed and crashed runs to a "
        "notification block",
    )
    setup.add_argument(
        "--block",
        "--webhook-block",
        dest="block",
        required=True,
        metavar="NAME",
        help="an existing Prefect notification block (Custom Webhook, Slack Webhook, Sendgrid "
        "Email, …) by name, or as TYPE/NAME when several types share the name",
    )
    setup.add_argument(
        "--dry-run", action="store_true", help="print the automation; change nothing"
    )
    setup.set_defaults(func=cmd_setup)
    alerts.add_parser("show", help="the alert automation on the Prefect server").set_defaults(
        func=cmd_show
    )
    alerts.add_parser("remove", help="delete the alert automation").set_defaults(func=cmd_remove)


def cmd_setup(args: argparse.Namespace) -> int:
    quiet_analytics()
    from handover.admin import alerts

    outcome = alerts.setup(args.block, dry_run=args.dry_run)
    if args.dry_run:
        print(json.dumps(outcome.definition, indent=2))
    subject = f"automation '{alerts.AUTOMATION}'"
    print(f"{outcome.verb} {subject} on {outcome.api_url}")
    if outcome.alert:
        print("\n".join(outcome.alert.lines()[1:]))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    quiet_analytics()
    from handover.admin import alerts
    from handover.errors import PrefectApiError

    url, found = alerts.show()
    if not found:
        raise PrefectApiError(
            f"no automation '{alerts.AUTOMATION}' on {url}: nobody is told when a run fails; "
            "create it with `handover alerts setup --block NAME`"
        )
    print(f"on {url}:")
    for alert in found:
        print("\n".join(alert.lines()))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    quiet_analytics()
    from handover.admin import alerts

    url, deleted = alerts.remove()
    print(f"deleted {deleted} automation(s) '{alerts.AUTOMATION}' on {url}")
    return 0
