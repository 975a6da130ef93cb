"""What every command group shares: the --config option, dates, private output, Prefect's quiet."""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import gc
import os
import sys
from pathlib import Path

DEFAULT_CONFIG = "handover.toml"


def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add --config (default $HANDOVER_CONFIG, then ./handover.toml) to `p`."""
    p.add_argument(
        "--config",
        default=os.environ.get("HANDOVER_CONFIG", DEFAULT_CONFIG),
        help="the TOML configuration (default: $HANDOVER_CONFIG or ./handover.toml)",
    )
    return p


def as_of(text: str) -> str:
    """An ISO date argument, refused with a readable message."""
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-27") from None
    return text


def write_output(text: str, output: str | None, *, private: bool) -> None:
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


def quiet_analytics() -> None:
    """Switch off Prefect's and GX's analytics and give Prefect's local server time to start."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def no_collection_at_exit() -> None:
    """Let the process end without the garbage collection of everything it imported.

    Python collects garbage while it shuts down; after Prefect, pandas and Great Expectations
    that is a pass over some 400,000 objects the operating system frees anyway, about a second
    of every run. Frozen objects are skipped. Registered now, it runs after the flow and after
    Prefect has sent its last logs and events (at thread shutdown, before atexit).
    """
    atexit.register(gc.freeze)
