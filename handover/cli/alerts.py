"""`handover alerts setup|show|remove`: the Prefect automation that reports failed runs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from handover.cli.common import quiet_analytics, with_config

# An agency no configuration may name: the test run fails on it before it reads anything.
TEST_AGENCY = "alerts-test"


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
    trial = with_config(
        alerts.add_parser(
            "test",
            help=f"start a real handover run that fails at once (agency '{TEST_AGENCY}', dry "
            "run; the shop is not read, nothing is recorded), to see its alert reach the team",
        )
    )
    trial.set_defaults(func=cmd_test)
    alerts.add_parser("remove", help="delete the alert automation").set_defaults(func=cmd_remove)


def cmd_setup(args: argparse.Namespace) -> int:
    quiet_analytics()
    from handover.admin import alerts

    outcome = alerts.setup(args.block, dry_run=args.dry_run)
    if args.dry_run:
        # The templates as they read, not as JSON-escaped one-liners.
        (action,) = outcome.definition["actions"]
        shown = {**action, "subject": "<subject below>", "body": "<body below>"}
        print(json.dumps({**outcome.definition, "actions": [shown]}, indent=2))
        print(f"subject:\n{action['subject']}\nbody:\n{action['body']}")
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


def cmd_test(args: argparse.Namespace) -> int:
    from pathlib import Path

    from handover.config import load_config
    from handover.errors import ConfigError, HandoverError, PrefectApiError

    config = load_config(args.config)
    if TEST_AGENCY in {agency.name for agency in config.agencies}:
        raise ConfigError(
            f"{config.path}: an agency is named '{TEST_AGENCY}', the name `alerts test` "
            "relies on no agency having; rename it"
        )
    quiet_analytics()
    from handover.admin import alerts

    url, found = alerts.show()
    if not found:
        raise PrefectApiError(
            f"no automation '{alerts.AUTOMATION}' on {url} to test; create it with "
            "`handover alerts setup --block NAME`"
        )
    from flows.nightly import handover
    from handover.cli.terminal import one_line_errors

    with one_line_errors():
        state = handover.with_options(flow_run_name="alerts-test")(
            config_path=str(Path(args.config).resolve()),
            agency=TEST_AGENCY,
            dry_run=True,
            return_state=True,
        )
    run_id = state.state_details.flow_run_id
    if not state.is_failed():
        raise HandoverError(f"the test run {run_id} ended {state.name}, not Failed; no alert")
    blocks = ", ".join(str(a.block or a.block_id) for a in found)
    print(
        f"test run {run_id} failed on purpose (agency '{TEST_AGENCY}', dry run; the shop was "
        "not read, nothing was recorded)"
    )
    print(f"its alert goes to {blocks} within seconds")
    return 0
