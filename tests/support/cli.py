"""The `handover` console script as users run it, and what it left in the audit log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from handover.ledger import audit

# The console script pip installed beside this interpreter (`handover = handover.cli.main:main`).
SCRIPT = Path(sys.executable).with_name("handover")


def handover(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `handover ARGS…` as a subprocess; its output as text."""
    env = {k: v for k, v in os.environ.items() if k not in ("HANDOVER_CONFIG", "HANDOVER_DEBUG")}
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def audit_rows(state_db: Path) -> tuple[int, int]:
    """The number of rows of the audit log and of its identifier side table."""
    engine = sa.create_engine(f"sqlite:///{state_db}")
    try:
        with engine.connect() as conn:
            return tuple(
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in (audit.audit_log, audit.audit_identifiers)
            )
    finally:
        engine.dispose()
