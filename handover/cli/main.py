"""The `handover` console script.

Commands import their heavy machinery (Prefect, Great Expectations) only when they run, so
`handover explain` or `handover audit verify` answer at once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from handover.errors import AuditUnverifiable, HandoverError

DEFAULT_CONFIG = "handover.toml"


def quiet_analytics() -> None:
    """Switch off Prefect's and GX's analytics and give Prefect's local server time to start."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def cmd_run(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.run.decide import check_as_of

    # Refuse a bad config or date before Prefect starts a server for a doomed run.
    load_config(args.config).in_scope(args.agency)
    if args.as_of:
        check_as_of(dt.date.fromisoformat(args.as_of))
    quiet_analytics()
    from flows.nightly import handover
    from handover.run.publish import counts_text

    counts = handover(
        config_path=str(Path(args.config).resolve()),
        as_of=args.as_of,
        agency=args.agency,
        dry_run=args.dry_run,
    )
    print("Dry run: counts per reason code" if args.dry_run else "Counts per reason code")
    print(counts_text(counts), end="")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from handover.demo.data import generate

    summary = generate(
        Path(args.out),
        customers=args.customers,
        seed=args.seed,
        overwrite=args.force,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(f"Wrote {args.out}: {summary}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    quiet_analytics()
    from handover.demo.workspace import run_demo

    return run_demo(Path(args.workspace), customers=args.customers, seed=args.seed)


def cmd_explain(args: argparse.Namespace) -> int:
    from handover.compliance.explain import explain
    from handover.config import load_config

    print(explain(load_config(args.config), args.invoice_id))
    return 0


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


def cmd_retention_run(args: argparse.Namespace) -> int:
    from handover.config import load_compliance, load_config
    from handover.ledger import retention
    from handover.ledger.store import StateStore

    config = load_config(args.config)
    years = load_compliance(args.config).identifier_years
    result = retention.run(
        StateStore(config.state_url), today=dt.date.today(), years=years, dry_run=args.dry_run
    )
    print("\n".join(result.lines()))
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


def cmd_subject(args: argparse.Namespace) -> int:
    from handover.compliance import subject
    from handover.config import load_config

    config = load_config(args.config)
    identity = Path(args.archive_identity).read_text() if args.archive_identity else None
    report = subject.subject_report(config, args.customer_id, archive_identity=identity)
    render = {"json": subject.to_json, "html": subject.to_html}.get(args.export, subject.to_text)
    _write_output(render(report), args.output, private=report.values_included)
    subject.record_request(config, report)
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
    _write_output(text, args.output, private=False)
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


def _write_output(text: str, output: str | None, *, private: bool) -> None:
    """Print `text`, or write it to `output` (owner-only when it holds personal data)."""
    if not output:
        print(text, end="")
        return
    path = Path(output)
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def cmd_keys_init(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.crypto.keys import KeyDirectory

    keys = KeyDirectory(load_config(args.config).key_dir)
    created = keys.init()
    for path in created:
        print(f"created {path}")
    if not created:
        print(f"all keys already exist in {keys.path}; nothing changed")
    return cmd_keys_show(args)


def cmd_keys_show(args: argparse.Namespace) -> int:
    from handover.config import load_config, load_key_settings
    from handover.crypto.keys import SIGNING_KEY, KeyDirectory
    from handover.crypto.sshsig import MANIFEST_NAMESPACE, allowed_signers_line

    keys = KeyDirectory(load_config(args.config).key_dir)
    for name, fingerprint in keys.fingerprints().items():
        print(f"{name}: {fingerprint}")
    if (keys.path / f"{SIGNING_KEY}.pub").exists():
        identity = load_key_settings(args.config).signer_identity
        line = allowed_signers_line(identity, keys.signing_public_key(), MANIFEST_NAMESPACE)
        print(f"\nFor the agencies' allowed_signers file (ssh-keygen -Y verify -I {identity}):")
        print(line, end="")
    return 0


def cmd_keys_rotate_pseudonym(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.crypto.keys import KeyDirectory

    keys = KeyDirectory(load_config(args.config).key_dir)
    new = keys.rotate_pseudonym()
    print(f"new active pseudonym key id {new.key_id}; kept: {', '.join(keys.pseudonym_key_ids())}")
    return 0


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


def cmd_retention_drops(args: argparse.Namespace) -> int:
    from handover.ledger.archive import delete_expired

    deleted = delete_expired(args.config, now=dt.datetime.now(dt.UTC), dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"archived drops past [archive] retention_days: {verb} {len(deleted)}")
    for drop_id in deleted:
        print(f"  {drop_id}")
    return 0


def cmd_policy_show(args: argparse.Namespace) -> int:
    from handover.compliance.policy_text import describe_policy
    from handover.config import load_config

    config = load_config(args.config)
    for name in args.agency or [a.name for a in config.agencies]:
        print(describe_policy(config, config.agency(name)), end="\n\n")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    from handover.compliance.policy_check import check_config
    from handover.config import load_config

    config = load_config(args.config)
    problems = check_config(config)
    for problem in problems:
        print(f"handover: policy: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{config.path}: policy version {config.policy_version} is consistent")
    for agency in config.agencies:
        print(f"  {agency.name}: sha256 {config.policy_hash(agency)}")
    return 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.ledger.store import StateStore

    held = StateStore(load_config(args.config).state_url).quarantined(args.run)
    if not held:
        print("no quarantined cases" + (f" in run {args.run}" if args.run else ""))
        return 0
    header = {"run_id": "run", "invoice_id": "invoice", "suite": "suite", "reasons": "reasons"}
    width = {k: max(len(header[k]), *(len(str(r[k])) for r in held)) for k in header}
    for row in [header, *held]:
        print("  ".join(str(row[k]).ljust(width[k]) for k in header).rstrip())
    return 0


def cmd_drops_list(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.ledger.store import open_store

    waiting = open_store(load_config(args.config), signing=False).live_drops()
    if not waiting:
        print("no drop is waiting for delivery")
    for drop in waiting:
        print(f"{drop.drop_id}  {drop.agency}  {drop.status}  {drop.case_count} cases")
    return 0


def cmd_drops_abandon(args: argparse.Namespace) -> int:
    import uuid

    from handover.config import load_config
    from handover.ledger.store import open_store
    from handover.run.seal import remove_files

    store = open_store(load_config(args.config))
    drop = store.abandon_by_operator(f"abandon-{uuid.uuid4().hex[:12]}", args.drop_id)
    remove_files(drop)
    print(f"abandoned {drop.drop_id}: its {drop.case_count} cases go into the next run's drop")
    return 0


def _as_of(text: str) -> str:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-27") from None
    return text


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    top = argparse.ArgumentParser(
        prog="handover",
        description="Hand overdue receivables to debt-collection agencies, lawfully and "
        "provably. Every command takes --config (default $HANDOVER_CONFIG or ./handover.toml).",
    )
    commands = top.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config",
            default=os.environ.get("HANDOVER_CONFIG", DEFAULT_CONFIG),
            help="the TOML configuration (default: $HANDOVER_CONFIG or ./handover.toml)",
        )
        return p

    run = with_config(commands.add_parser("run", help="run the handover flow once"))
    run.add_argument("--as-of", type=_as_of, help="date in Europe/Berlin (default: today)")
    run.add_argument("--agency", help="agency name (default: the only one configured)")
    run.add_argument(
        "--dry-run", action="store_true", help="decide and validate, but seal and send nothing"
    )
    run.set_defaults(func=cmd_run)

    demo_data = commands.add_parser("demo-data", help="generate a demo shop database")
    demo_data.add_argument("--customers", type=int, default=10_000)
    demo_data.add_argument("--seed", type=int, default=1)
    demo_data.add_argument("--out", required=True, help="SQLite file to write")
    demo_data.add_argument("--force", action="store_true", help="overwrite an existing file")
    demo_data.set_defaults(func=cmd_demo_data)

    demo = commands.add_parser("demo", help="build a demo workspace and run one handover")
    demo.add_argument("--workspace", default="demo-workspace")
    demo.add_argument("--customers", type=int, default=10_000)
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=cmd_demo)

    explain = with_config(commands.add_parser("explain", help="why a case was (not) handed over"))
    explain.add_argument("invoice_id")
    explain.set_defaults(func=cmd_explain)

    policy = commands.add_parser("policy", help="the agencies' policies").add_subparsers(
        dest="policy_command", required=True
    )
    show = with_config(policy.add_parser("show", help="an agency's policy in plain words"))
    show.add_argument("agency", nargs="*", help="agency name(s) (default: all)")
    show.set_defaults(func=cmd_policy_show)
    with_config(policy.add_parser("check", help="validate the whole config")).set_defaults(
        func=cmd_policy_check
    )

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
    show.add_argument("--from", dest="start", type=_as_of, help="from this UTC date")
    show.add_argument("--to", dest="end", type=_as_of, help="up to this UTC date (inclusive)")
    show.add_argument("--agency", help="only this agency")
    show.add_argument("--event", help="only this event type, e.g. case_handed_over")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(func=cmd_audit_show)

    keys = commands.add_parser("keys", help="the key directory").add_subparsers(
        dest="keys_command", required=True
    )
    with_config(keys.add_parser("init", help="create missing keys")).set_defaults(
        func=cmd_keys_init
    )
    with_config(keys.add_parser("show", help="print key fingerprints")).set_defaults(
        func=cmd_keys_show
    )
    with_config(
        keys.add_parser("rotate-pseudonym", help="new active case_ref key; old ones are kept")
    ).set_defaults(func=cmd_keys_rotate_pseudonym)

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

    retention = commands.add_parser(
        "retention", help="erase identifiers and archived drops past their retention period"
    ).add_subparsers(dest="retention_command", required=True)
    erase = with_config(retention.add_parser("run", help="erase identifiers past retention"))
    erase.add_argument("--dry-run", action="store_true", help="count, erase nothing")
    erase.set_defaults(func=cmd_retention_run)
    archived = with_config(retention.add_parser("drops", help="delete expired archived drops"))
    archived.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    archived.set_defaults(func=cmd_retention_drops)

    consent = commands.add_parser("consent", help="the consent log").add_subparsers(
        dest="consent_command", required=True
    )
    changed = with_config(consent.add_parser("changes", help="consents withdrawn after a handover"))
    changed.add_argument("--since", type=_as_of, help="withdrawn on or after this date")
    changed.set_defaults(func=cmd_consent_changes)

    subject = with_config(commands.add_parser("subject", help="answer an access request"))
    subject.add_argument("customer_id")
    subject.add_argument("--export", choices=("json", "html"), help="default: plain text")
    subject.add_argument("-o", "--output", help="write to this file (default: stdout)")
    subject.add_argument(
        "--archive-identity", metavar="FILE", help="age identity to include the values sent"
    )
    subject.set_defaults(func=cmd_subject)

    ropa = with_config(commands.add_parser("ropa", help="write the Art. 30 record"))
    ropa.add_argument("-o", "--output", help="Markdown file (default: stdout)")
    ropa.set_defaults(func=cmd_ropa)

    report = with_config(commands.add_parser("report", help="HTML report on a period"))
    report.add_argument("--from", dest="start", type=_as_of, required=True)
    report.add_argument("--to", dest="end", type=_as_of, required=True)
    report.add_argument("-o", "--output", required=True, help="the HTML file to write")
    report.add_argument("--manifests", metavar="DIR", help="also check these manifests' heads")
    report.set_defaults(func=cmd_report)

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

    quarantine = commands.add_parser("quarantine", help="cases held back by validation")
    held = with_config(
        quarantine.add_subparsers(dest="quarantine_command", required=True).add_parser(
            "list", help="held-back cases: run, invoice, suite, reason codes"
        )
    )
    held.add_argument("--run", help="only this run id (default: every run)")
    held.set_defaults(func=cmd_quarantine_list)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; errors print one clear line and exit 1.

    Exit 3: the audit log could not be checked (a key or file is missing); 2: a bug.
    """
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except AuditUnverifiable as exc:
        print(f"handover: cannot verify: {exc}", file=sys.stderr)
        return 3
    except HandoverError as exc:
        print(f"handover: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `handover … | head` closed our output: not an error
        return 0
    except Exception as exc:
        if os.environ.get("HANDOVER_DEBUG"):
            raise
        from redaction.logs.safe_errors import safe_error

        # A library's message may quote personal data: name its type and place only.
        print(f"handover: error: {safe_error(exc, f'handover {args.command}')}", file=sys.stderr)
        print("handover: set HANDOVER_DEBUG=1 to see the full traceback", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
