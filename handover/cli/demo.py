"""`handover demo` and `demo-data`: a whole shop on this machine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from handover.cli.common import quiet_analytics


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
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
    from handover.cli.terminal import one_line_errors
    from handover.demo.workspace import run_demo

    with one_line_errors():  # each error once, in main's final line; tracebacks in the log
        return run_demo(Path(args.workspace), customers=args.customers, seed=args.seed)
