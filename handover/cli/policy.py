"""`handover policy show` and `policy check`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from handover.cli.common import with_config


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    policy = commands.add_parser("policy", help="the agencies' policies").add_subparsers(
        dest="policy_command", required=True
    )
    show = with_config(policy.add_parser("show", help="an agency's policy in plain words"))
    show.add_argument("agency", nargs="*", help="agency name(s) (default: all)")
    show.set_defaults(func=cmd_policy_show)
    with_config(policy.add_parser("check", help="validate the whole config")).set_defaults(
        func=cmd_policy_check
    )


def cmd_policy_show(args: argparse.Namespace) -> int:
    from handover.compliance.policy_text import describe_policy
    from handover.config import load_config

    config = load_config(args.config)
    for name in args.agency or [a.name for a in config.agencies]:
        print(describe_policy(config, config.agency(name)), end="\n\n")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    from handover.compliance.policy_check import check_config, policy_warnings
    from handover.config import load_config
    from handover.ledger.store import recorded_policies

    config = load_config(args.config)  # every error of the file at once, one line each
    problems = check_config(config)
    for warning in policy_warnings(config, recorded_policies(config.state_url)):
        print(f"handover: warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"handover: error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{config.path}: policy version {config.policy_version} is consistent")
    for agency in config.agencies:
        print(f"  {agency.name}: sha256 {config.policy_hash(agency)}")
    return 0
