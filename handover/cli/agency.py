"""`handover agency add`, `rotate-recipient`, and the agency's tool: `agency open`, `return`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from handover.cli.common import with_config


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    agency = commands.add_parser("agency", help="agencies, and the agency's tool").add_subparsers(
        dest="agency_command", required=True
    )
    add = with_config(agency.add_parser("add", help="register an agency in the configuration"))
    add.add_argument("name", help="the agency's name in [agencies] (letters, digits, '-', '_')")
    add.add_argument("--recipient", required=True, help="its age recipient (age1…)")
    add.add_argument("--host", required=True, help="its SFTP host")
    add.add_argument("--port", type=int, default=22, help="its SFTP port (default 22)")
    add.add_argument("--user", required=True, help="our SFTP user name there")
    add.add_argument("--host-key", required=True, help="its host key line 'ssh-ed25519 AAAA…'")
    add.add_argument("--inbox", default="inbox", help="the inbox folder (default: inbox)")
    add.add_argument(
        "--known-hosts",
        default="known_hosts",
        help="file to pin the host key in (default: known_hosts)",
    )
    add.set_defaults(func=cmd_agency_add)
    rotate = with_config(agency.add_parser("rotate-recipient", help="add or remove a recipient"))
    rotate.add_argument("name")
    rotate.add_argument("--add", metavar="AGE1", help="recipient to add (the agency's new key)")
    rotate.add_argument("--remove", metavar="AGE1", help="recipient to remove (its old key)")
    rotate.set_defaults(func=cmd_agency_rotate_recipient)
    opener = agency.add_parser("open", help="the agency's tool: verify, decrypt, validate drops")
    opener.add_argument("source", help="a drop or inbox folder, or sftp://user@host:port/path")
    opener.add_argument("--identity", required=True, help="the agency's age identity file")
    opener.add_argument("--shop-key", required=True, help="the shop's signing key (.pub)")
    opener.add_argument("--agency", help="refuse drops for any other agency")
    opener.add_argument("--out", default=".", help="folder for <drop_id>.csv (default: .)")
    opener.add_argument("--known-hosts", help="for sftp://: pinned host keys (~/.ssh/known_hosts)")
    opener.add_argument("--ssh-key", help="for sftp://: the private key to log in with")
    opener.add_argument("--keep", action="store_true", help="do not move drops to processed/")
    opener.set_defaults(func=cmd_agency_open)
    back = agency.add_parser(
        "return",
        help="the agency's tool: build a signed, encrypted return file from a CSV of events",
        description="Check every row of the CSV against schemas/agency_return_v1.json, encrypt "
        "it to the shop's returns recipient and sign its manifest with the agency's key "
        "(namespace handover-return). Writes <return_id>.csv.age, .manifest.json and "
        ".manifest.json.sig into --out, the signature last; nothing is written when a row is "
        "refused.",
    )
    back.add_argument("--csv", required=True, help="the events: a CSV with the contract's header")
    back.add_argument("--agency", required=True, help="the name the shop knows the agency by")
    back.add_argument(
        "--shop-recipient",
        required=True,
        action="append",
        help="the shop's returns recipient age1… (`handover keys show` at the shop)",
    )
    back.add_argument("--signing-key", required=True, help="the agency's Ed25519 private key")
    back.add_argument("--out", required=True, help="folder to write into (e.g. the returns folder)")
    back.set_defaults(func=cmd_agency_return)


def cmd_agency_add(args: argparse.Namespace) -> int:
    from handover.admin.registry import add_agency
    from handover.config import load_config

    done = add_agency(
        Path(args.config),
        args.name,
        recipient=args.recipient,
        host=args.host,
        port=args.port,
        user=args.user,
        host_key=args.host_key,
        inbox=args.inbox,
        known_hosts=args.known_hosts,
    )
    print(f"added agency {done.name} to {done.config}")
    print(f"pinned the host key of {done.host_entry} in {done.known_hosts}")
    print("Confirm out of band (phone, signed letter) that the agency reads back exactly:")
    print(f"  host key   {done.host_key_type} {done.host_key_fingerprint}")
    print(f"  recipient  {done.recipient}")
    if len(load_config(done.config).agencies) > 1:
        print(
            f"Its route takes every case it serves: narrow [agencies.{done.name}.route] or the "
            "others' so they do not overlap, then run `handover policy check`."
        )
    return 0


def cmd_agency_rotate_recipient(args: argparse.Namespace) -> int:
    from handover.admin.registry import rotate_recipient

    now = rotate_recipient(Path(args.config), args.name, add=args.add, remove=args.remove)
    print(f"agency {args.name} now has {len(now)} recipient(s):")
    for recipient in now:
        print(f"  {recipient}")
    return 0


def cmd_agency_open(args: argparse.Namespace) -> int:
    from handover.agency.opener import open_drops

    outcomes = open_drops(
        args.source,
        identity=Path(args.identity),
        shop_key=Path(args.shop_key),
        out_dir=Path(args.out),
        agency=args.agency,
        known_hosts=Path(args.known_hosts) if args.known_hosts else None,
        ssh_key=Path(args.ssh_key) if args.ssh_key else None,
        keep=args.keep,
    )
    if not outcomes:
        print(f"no drop in {args.source}")
    for outcome in outcomes:
        if outcome.ok:
            verb = "moved" if outcome.subject == "audit-head" else "opened"
            print(f"{verb} {outcome.drop_id}: {outcome.message}")
        else:
            refused = "REFUSED " if outcome.output is None else ""
            print(f"handover: {refused}{outcome.message}", file=sys.stderr)
    return 0 if all(o.ok for o in outcomes) else 1


def cmd_agency_return(args: argparse.Namespace) -> int:
    from handover.agency.returns import build_return

    built = build_return(
        Path(args.csv),
        agency=args.agency,
        shop_recipients=args.shop_recipient,
        signing_key=Path(args.signing_key),
        out_dir=Path(args.out),
    )
    kinds = ", ".join(f"{n} {event}" for event, n in built.events.items())
    print(f"return file {built.return_id}: {built.event_count} events ({kinds})")
    for path in built.files.files:
        print(f"  {path}")
    return 0
