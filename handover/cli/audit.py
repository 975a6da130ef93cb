"""`handover audit verify` and `audit show`."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from handover.cli.common import as_of, with_config


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    audit = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True
    )
    verify = with_config(audit.add_parser("verify", help="check chain, checkpoints, manifests"))
    verify.add_argument(
        "--manifests", metavar="DIR", help="check the audit heads in DIR's *.manifest.json"
    )
    verify.set_defaults(func=cmd_audit_verify)
    show = with_config(audit.add_parser("show", help="list audit entries"))
    show.add_argument("--run", help="only this run id")
    show.add_argument("--from", dest="start", type=as_of, help="from this UTC date")
    show.add_argument("--to", dest="end", type=as_of, help="up to this UTC date (inclusive)")
    show.add_argument("--agency", help="only this agency")
    show.add_argument("--event", help="only this event type, e.g. case_handed_over")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="the same as --format json: one JSON document (see README)",
    )
    show.set_defaults(func=cmd_audit_show)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.ledger import consent_log
    from handover.ledger.store import open_store
    from handover.ledger.witness import manifest_heads, shop_verifier

    config = load_config(args.config)
    verify_signature = shop_verifier(config.key_dir)
    witnessed, without = (
        manifest_heads(Path(args.manifests), verify_signature) if args.manifests else ([], 0)
    )
    store = open_store(config, signing=False)
    status = store.verify(verify_signature=verify_signature, witnessed=witnessed)
    with store.engine.connect() as conn:
        drops_checked = consent_log.verify(conn)
    print(status.summary())
    print(f"consent log intact for {drops_checked} drops")
    if args.manifests:
        print(f"{len(witnessed)} witnessed heads match the log; {without} manifests carry none")
    return 0


def cmd_audit_show(args: argparse.Namespace) -> int:
    from handover.compliance import audit_show
    from handover.config import load_config
    from handover.ledger.store import StateStore

    where = audit_show.AuditFilter(
        run_id=args.run,
        start=dt.date.fromisoformat(args.start) if args.start else None,
        end=dt.date.fromisoformat(args.end) if args.end else None,
        agency=args.agency,
        event=args.event,
    )
    store = StateStore(load_config(args.config).state_url)
    with store.engine.connect() as conn:
        found = audit_show.select(conn, where)
    render = audit_show.as_json if args.format == "json" else audit_show.as_table
    print(render(found), end="")
    return 0
