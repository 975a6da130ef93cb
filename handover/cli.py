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

from handover.errors import HandoverError

DEFAULT_CONFIG = "handover.toml"


def quiet_analytics() -> None:
    """Switch off Prefect's and GX's analytics and give Prefect's local server time to start."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def print_counts(counts: dict[str, int]) -> None:
    """Counts per reason code, one per line, aligned."""
    width = max(map(len, counts), default=0)
    for code, count in counts.items():
        print(f"  {code:<{width}}  {count:>8}")


def cmd_run(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.eligibility import check_as_of

    # Refuse a bad config or date before Prefect starts a server for a doomed run.
    load_config(args.config).in_scope(args.agency)
    if args.as_of:
        check_as_of(dt.date.fromisoformat(args.as_of))
    quiet_analytics()
    from flows.handover import handover

    counts = handover(
        config_path=str(Path(args.config).resolve()),
        as_of=args.as_of,
        agency=args.agency,
        dry_run=args.dry_run,
    )
    print("Dry run: counts per reason code" if args.dry_run else "Counts per reason code")
    print_counts(counts)
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from handover.demo_data import generate

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
    from handover.demo import run_demo

    return run_demo(Path(args.workspace), customers=args.customers, seed=args.seed)


def cmd_explain(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.explain import explain

    print(explain(load_config(args.config), args.invoice_id))
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from handover import audit
    from handover.config import load_config
    from handover.state import StateStore

    store = StateStore(load_config(args.config).state_url)
    with store.engine.connect() as conn:
        status = audit.verify(conn)
    print(f"audit log intact: {status.entries} entries, head {status.head}")
    return 0


def cmd_keys_init(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.keys import KeyDirectory

    keys = KeyDirectory(load_config(args.config).key_dir)
    created = keys.init()
    for path in created:
        print(f"created {path}")
    if not created:
        print(f"all keys already exist in {keys.path}; nothing changed")
    return cmd_keys_show(args)


def cmd_keys_show(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.keys import KeyDirectory

    for name, fingerprint in KeyDirectory(load_config(args.config).key_dir).fingerprints().items():
        print(f"{name}: {fingerprint}")
    return 0


def cmd_policy_show(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from redaction.describe import describe_policy

    config = load_config(args.config)
    for name in args.agency or [a.name for a in config.agencies]:
        print(describe_policy(config, config.agency(name)), end="\n\n")
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.policy_check import check_config

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


def _as_of(text: str) -> str:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-27") from None
    return text


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    top = argparse.ArgumentParser(prog="handover", description=__doc__.splitlines()[0])
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
    with_config(audit.add_parser("verify", help="check the hash chain")).set_defaults(
        func=cmd_audit_verify
    )

    keys = commands.add_parser("keys", help="the key directory").add_subparsers(
        dest="keys_command", required=True
    )
    with_config(keys.add_parser("init", help="create missing keys")).set_defaults(
        func=cmd_keys_init
    )
    with_config(keys.add_parser("show", help="print key fingerprints")).set_defaults(
        func=cmd_keys_show
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; errors print one clear line and exit 1."""
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except HandoverError as exc:
        print(f"handover: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
