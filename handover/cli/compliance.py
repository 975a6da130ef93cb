"""What compliance officers ask: explain, subject, consent changes, RoPA, report, outcomes."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from handover.cli.common import as_of, with_config, write_output


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    explain = with_config(commands.add_parser("explain", help="why a case was (not) handed over"))
    explain.add_argument(
        "invoice", help="the invoice id, or the invoice number printed on the invoice (exact)"
    )
    explain.add_argument("--json", action="store_true", help="one JSON document (see README)")
    explain.set_defaults(func=cmd_explain)

    subject = with_config(commands.add_parser("subject", help="answer an access request"))
    subject.add_argument("customer_id", help="the shop's customer id (exact)")
    subject.add_argument("--export", choices=("json", "html"), help="default: plain text")
    subject.add_argument("-o", "--output", help="write to this file (default: stdout)")
    subject.add_argument(
        "--archive-identity", metavar="FILE", help="age identity to include the values sent"
    )
    subject.set_defaults(func=cmd_subject)

    consent = commands.add_parser("consent", help="the consent log").add_subparsers(
        dest="consent_command", required=True
    )
    changed = with_config(consent.add_parser("changes", help="consents withdrawn after a handover"))
    changed.add_argument("--since", type=as_of, help="withdrawn on or after this date")
    changed.set_defaults(func=cmd_consent_changes)

    ropa = with_config(commands.add_parser("ropa", help="write the Art. 30 record"))
    ropa.add_argument("-o", "--output", help="Markdown file (default: stdout)")
    ropa.set_defaults(func=cmd_ropa)

    report = with_config(commands.add_parser("report", help="HTML report on a period"))
    report.add_argument("--from", dest="start", type=as_of, required=True)
    report.add_argument("--to", dest="end", type=as_of, required=True)
    report.add_argument("-o", "--output", required=True, help="the HTML file to write")
    report.add_argument("--manifests", metavar="DIR", help="also check these manifests' heads")
    report.set_defaults(func=cmd_report)

    outcomes = with_config(
        commands.add_parser(
            "outcomes",
            help="what became of the cases handed over in a period, per agency",
            description="For the cases delivered to an agency from --from to --to (days of "
            "delivery, UTC): amounts handed over and recovered, recalls by reason and their "
            "latency, disputes and complaints per 100 cases, what the agency reported. Counts "
            "and amounts only.",
        )
    )
    outcomes.add_argument("--from", dest="start", type=as_of, required=True, help="first day")
    outcomes.add_argument("--to", dest="end", type=as_of, required=True, help="last day")
    outcomes.add_argument("--agency", help="only this agency")
    outcomes.add_argument("--json", action="store_true", help="one JSON document, minor units")
    outcomes.set_defaults(func=cmd_outcomes)


def cmd_explain(args: argparse.Namespace) -> int:
    import json

    from handover.compliance import explain
    from handover.config import load_config

    config = load_config(args.config)
    if args.json:
        found = explain.as_dict(explain.explanation(config, args.invoice))
        print(json.dumps(found, indent=2))
    else:
        print(explain.explain(config, args.invoice))
    return 0


def cmd_subject(args: argparse.Namespace) -> int:
    from handover.compliance import subject
    from handover.config import load_config

    config = load_config(args.config)
    identity = Path(args.archive_identity).read_text() if args.archive_identity else None
    # An unknown customer id raises here: no page is written and nothing is audited.
    report = subject.subject_report(config, args.customer_id, archive_identity=identity)
    render = {"json": subject.to_json, "html": subject.to_html}.get(args.export, subject.to_text)
    write_output(render(report), args.output, private=report.values_included)
    subject.record_request(config, report)
    return 0


def cmd_consent_changes(args: argparse.Namespace) -> int:
    from handover.compliance.consent_changes import changes
    from handover.config import load_config
    from handover.ledger.store import StateStore

    config = load_config(args.config)
    since = dt.date.fromisoformat(args.since) if args.since else None
    found = changes(StateStore(config.state_url).engine, config.source_url, since=since)
    if not found:
        print("no consent was withdrawn after a handover")
        return 0
    print("customer_id  purpose  withdrawn_at  source  drop  agency  delivered_at  sent")
    for c in found:
        sent = "sent" if c.channel_sent else "not sent"
        print(
            f"{c.customer_id}  {c.purpose}  {c.withdrawn_at}  {c.source}  {c.drop_id}  "
            f"{c.agency}  {c.delivered_at}  {sent}"
        )
    print(f"{len(found)} withdrawal(s) after handover: tell the agency to stop using the channel")
    return 0


def cmd_ropa(args: argparse.Namespace) -> int:
    from handover.compliance.ropa import ropa_markdown
    from handover.config import load_compliance, load_config, load_key_settings

    text = ropa_markdown(
        load_config(args.config),
        load_compliance(args.config),
        archive_retention_days=load_key_settings(args.config).archive_retention_days,
        today=dt.date.today(),
    )
    write_output(text, args.output, private=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from handover.compliance import report
    from handover.config import load_config
    from handover.crypto.keys import KeyDirectory
    from handover.ledger.store import StateStore
    from handover.ledger.witness import manifest_heads, shop_verifier

    config = load_config(args.config)
    verify_signature = shop_verifier(config.key_dir)
    witnessed = manifest_heads(Path(args.manifests), verify_signature)[0] if args.manifests else []
    data = report.collect(
        StateStore(config.state_url),
        start=dt.date.fromisoformat(args.start),
        end=dt.date.fromisoformat(args.end),
        fingerprints=KeyDirectory(config.key_dir).fingerprints(),
        verify_signature=verify_signature,
        witnessed=witnessed,
    )
    Path(args.output).write_text(report.render_html(data), encoding="utf-8")
    print(f"wrote {args.output}: {sum(n for *_, n in data.handovers)} cases handed over")
    return 0


def cmd_outcomes(args: argparse.Namespace) -> int:
    import json

    from handover.compliance import outcomes
    from handover.config import load_config
    from handover.ledger.store import StateStore

    config = load_config(args.config)
    found = outcomes.collect(
        StateStore(config.state_url),
        start=dt.date.fromisoformat(args.start),
        end=dt.date.fromisoformat(args.end),
        agency=args.agency,
    )
    if args.json:
        print(json.dumps(outcomes.as_dict(found), indent=2))
    else:
        print("\n".join(outcomes.lines(found)))
    return 0
