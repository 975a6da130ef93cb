"""The `handover` console script.

Each command group lives in its own module (`runs`, `demo`, `compliance`, `policy`, `audit`,
`keys`, `agency`, `returns`, `retention`), which registers its commands here. Commands import
their heavy machinery (Prefect, Great Expectations) only when they run, so `handover explain` or
`handover audit verify` answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import handover.cli.alerts as alerts
from handover.cli import (
    agency,
    audit,
    compliance,
    demo,
    keys,
    policy,
    retention,
    returns,
    runs,
    source,
)
from handover.cli.common import quiet_analytics
from handover.cli.exits import BUG, EPILOG, ERROR, OK, UNVERIFIABLE
from handover.errors import AuditUnverifiable, HandoverError

__all__ = ["main", "parser", "quiet_analytics"]


def parser() -> argparse.ArgumentParser:
    """The command-line interface: one module per command group registers its commands."""
    top = argparse.ArgumentParser(
        prog="handover",
        description="Hand overdue receivables to debt-collection agencies, lawfully and "
        "provably. Every command takes --config (default $HANDOVER_CONFIG or ./handover.toml).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action=_Version, help="print the installed version and exit")
    commands = top.add_subparsers(dest="command", required=True)
    groups = (
        runs,
        source,
        demo,
        compliance,
        policy,
        audit,
        keys,
        agency,
        returns,
        retention,
        alerts,
    )
    for group in groups:
        group.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; errors print one clear line and exit 1.

    The exit codes are `handover.cli.exits` (printed by `handover --help`).
    """
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except AuditUnverifiable as exc:
        print(f"handover: cannot verify: {exc}", file=sys.stderr)
        return UNVERIFIABLE
    except HandoverError as exc:
        for line in str(exc).splitlines() or [""]:  # one line per problem (ConfigError)
            print(f"handover: error: {line}", file=sys.stderr)
        return ERROR
    except BrokenPipeError:  # `handover … | head` closed our output: not an error
        return OK
    except Exception as exc:
        if os.environ.get("HANDOVER_DEBUG"):
            raise
        from redaction.logs.safe_errors import safe_error

        # A library's message may quote personal data: name its type and place only.
        print(f"handover: error: {safe_error(exc, f'handover {args.command}')}", file=sys.stderr)
        print("handover: set HANDOVER_DEBUG=1 to see the full traceback", file=sys.stderr)
        return BUG


class _Version(argparse.Action):
    """`--version`: the installed distribution's version, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("handover")
        except PackageNotFoundError:  # run from a source tree that was never installed
            found = "unknown (not installed; pip install -e .)"
        print(f"handover {found}")  # on stdout, as argparse's own version action does
        parser.exit(OK)


if __name__ == "__main__":
    sys.exit(main())
