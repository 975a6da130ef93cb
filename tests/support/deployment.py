"""What the deployment tests share: a shop's HANDOVER_HOME with an agency on the real sshd, a
reader's shell for the README's commands, and flow runs read from a real Prefect server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handover.contract import COLUMNS
from handover.run.decide import today_berlin
from tests.conftest import Sshd, make_age_identity
from tests.support.paths import PROJECT
from tests.support.prefect_server import PrefectServer
from tests.support.returns import Agency as ReturnsAgency
from tests.support.shell import Shell
from tests.support.workspaces import CONFIG_HEAD, sftp_agency, shop_keys

# The README's example values, and what the tests put in their place.
README_API_URL = "http://127.0.0.1:4200/api"
README_HOME = "/srv/handover"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


@dataclass(frozen=True)
class Home:
    """A HANDOVER_HOME: handover.toml, shop.db, keys/, known_hosts; and the agency's side."""

    path: Path
    inbox: Path
    identity: Path  # the agency's age identity, outside HANDOVER_HOME
    returns: Path  # the folder the agency leaves its return files in, on the sshd

    @property
    def config(self) -> Path:
        return self.path / "handover.toml"


def canary_home(root: Path, sshd: Sshd) -> Home:
    """test_canary's shop on today's date (every customer a canary), every column to the agency,
    which sends return files to a folder of its own on the sshd (empty)."""
    from tests.flows.test_canary import build_shop

    home = root / "srv-handover"
    home.mkdir(parents=True)
    build_shop(home / "shop.db", today=today_berlin())
    shop_keys(home / "keys", sshd)
    sshd.write_known_hosts(home / "known_hosts")
    identity = make_age_identity(root / "agency-identity.txt")
    inbox = sshd.new_inbox()
    columns = f"columns = {json.dumps(list(COLUMNS))}"
    agency = sftp_agency("test", identity.recipient, sshd, inbox, extra=columns)
    returns = sshd.new_inbox()
    signer = ReturnsAgency.make("test", root / "agency-signing-key")
    (home / "handover.toml").write_text(CONFIG_HEAD + agency + signer.config(str(returns)))
    return Home(home, inbox, identity.path, returns)


def reader_shell(root: Path, server: PrefectServer, home: Path) -> Shell:
    """A fresh login's shell in the project root: no Prefect settings, its own HOME and TMPDIR."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PREFECT_", "HANDOVER_"))
    }
    for folder in ("home", "tmp"):
        (root / folder).mkdir(exist_ok=True)
    env.update(HOME=str(root / "home"), TMPDIR=str(root / "tmp"))
    return Shell(
        cwd=PROJECT,
        env=env,
        replace={README_API_URL: server.api_url, README_HOME: str(home)},
    )


def flow_runs(server: PrefectServer, deployment: str) -> list[dict[str, Any]]:
    """The flow runs of deployment `flow/deployment`, by expected start time."""
    found = server.api("GET", f"deployments/name/{deployment}")
    return server.api(
        "POST",
        "flow_runs/filter",
        {
            "deployments": {"id": {"any_": [found["id"]]}},
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 200,
        },
    )


def state_of(run: dict[str, Any]) -> str:
    return (run.get("state") or {}).get("type") or "NONE"


def wait_until(check: Callable[[], Any], what: str, timeout: float = 240) -> Any:
    """Poll `check` every second until it returns something true; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def finished(server: PrefectServer, run_id: str, timeout: float = 240) -> dict[str, Any]:
    """The flow run `run_id` once its state is terminal."""

    def done() -> dict[str, Any] | None:
        run = server.api("GET", f"flow_runs/{run_id}")
        return run if state_of(run) in TERMINAL else None

    return wait_until(done, f"flow run {run_id} finished", timeout)
