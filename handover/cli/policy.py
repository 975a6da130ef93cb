"""`handover policy show` and `policy check [--connect] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from handover.cli.common import with_config
from handover.cli.exits import ERROR, OK


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    policy = commands.add_parser("policy", help="the agencies' policies").add_subparsers(
        dest="policy_command", required=True
    )
    show = with_config(policy.add_parser("show", help="an agency's policy in plain words"))
    show.add_argument("agency", nargs="*", help="agency name(s) (default: all)")
    show.set_defaults(func=cmd_policy_show)
    check = with_config(policy.add_parser("check", help="validate the whole config"))
    check.add_argument(
        "--connect",
        action="store_true",
        help="also log in to each agency's SFTP server (pinned host key, the shop's key) and "
        "check its inbox takes a file: a hidden check file is written and removed, nothing "
        "else is sent; and that its returns folder, if it sends return files, can be listed",
    )
    check.add_argument("--json", action="store_true", help="one JSON document (see README)")
    check.set_defaults(func=cmd_policy_check)


def cmd_policy_show(args: argparse.Namespace) -> int:
    from handover.compliance.policy_text import describe_policy
    from handover.config import load_config

    config = load_config(args.config)
    for name in args.agency or [a.name for a in config.agencies]:
        print(describe_policy(config, config.agency(name)), end="\n\n")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    from handover.compliance.policy_check import check_config, check_connections, policy_warnings
    from handover.config import load_config
    from handover.ledger.store import recorded_policies

    config = load_config(args.config)  # every error of the file at once, one line each
    problems = check_config(config)
    warnings = policy_warnings(config, recorded_policies(config.state_url))
    connections = {c.agency: c for c in check_connections(config)} if args.connect else {}
    problems += [p for c in connections.values() for p in c.problems]
    if args.json:
        print(json.dumps(_as_json(config, problems, warnings, connections), indent=2))
        return ERROR if problems else OK
    for warning in warnings:
        print(f"handover: warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"handover: error: {problem}", file=sys.stderr)
    if problems:
        return ERROR
    print(f"{config.path}: policy version {config.policy_version} is consistent")
    for agency in config.agencies:
        print(f"  {agency.name}: sha256 {config.policy_hash(agency)}")
    if connections:
        print("Connected to every agency (nothing sent but a hidden check file, removed again):")
    for c in connections.values():
        print(
            f"  {c.agency}: logged in to {c.user}@{c.host}:{c.port}, host key "
            f"{c.host_key_fingerprint} as pinned; inbox '{c.inbox}' takes a file"
        )
        if c.returns_folder is not None:
            print(f"  {c.agency}: returns folder '{c.returns_folder}' can be listed")
    return OK


def _as_json(
    config: Any, problems: list[str], warnings: list[str], connections: dict[str, Any]
) -> dict[str, Any]:
    """The check as one JSON document: the same content as the text, keys fixed."""
    agencies = []
    for agency in config.agencies:
        c = connections.get(agency.name)
        connection = None
        if c is not None:
            connection = {
                "ok": c.ok,
                "host": c.host,
                "port": c.port,
                "user": c.user,
                "inbox": c.inbox,
                "host_key_fingerprint": c.host_key_fingerprint,
                "problem": c.problem,
                "returns": None
                if c.returns_folder is None
                else {
                    "folder": c.returns_folder,
                    "ok": c.returns_problem is None,
                    "problem": c.returns_problem,
                },
            }
        agencies.append(
            {
                "name": agency.name,
                "policy_sha256": config.policy_hash(agency),
                "connection": connection,
            }
        )
    return {
        "config": str(config.path),
        "policy_version": config.policy_version,
        "ok": not problems,
        "problems": problems,
        "warnings": warnings,
        "agencies": agencies,
    }
