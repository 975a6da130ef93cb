"""A real `prefect server start` on loopback, as a data engineer runs it, for deployment tests.

The in-process test harness (`prefect` fixture in conftest) serves flow tests; deployments,
workers and automations need the real server process with its services (scheduler, triggers,
actions). Each server has its own PREFECT_HOME and database (SQLite by default, or a
PostgreSQL URL), and `env()` gives the environment a `prefect` CLI call, a worker or `handover`
needs to talk to it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.sshd import free_port

PREFECT = str(Path(sys.executable).parent / "prefect")
# What every process of a test deployment shares: no analytics, no update checks, no UI build.
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
}


@dataclass(frozen=True)
class PrefectServer:
    """A running Prefect server: its API URL, home, database and log file."""

    api_url: str
    home: Path
    database_url: str
    log: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process that uses this server (CLI, worker, handover)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(QUIET)
        env.update(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home))
        env.update(extra)
        return env

    def prefect(self, *args: str, cwd: Path | None = None, timeout: float = 300, **extra: str):
        """Run the `prefect` CLI against this server; raises with its output when it fails."""
        done = subprocess.run(
            [PREFECT, "--no-prompt", *args],
            cwd=cwd,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"prefect {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the server's REST API at `path` (below /api); returns the decoded JSON answer."""
        request = urllib.request.Request(
            f"{self.api_url}/{path.lstrip('/')}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read()
        return json.loads(data) if data else None


@contextmanager
def prefect_server(workdir: Path, database_url: str | None = None) -> Iterator[PrefectServer]:
    """Start `prefect server start` on a free loopback port; stop it (and its children) after."""
    home = workdir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    database_url = database_url or f"sqlite+aiosqlite:///{workdir / 'prefect.db'}"
    port = free_port()
    server = PrefectServer(
        api_url=f"http://127.0.0.1:{port}/api",
        home=home,
        database_url=database_url,
        log=workdir / "prefect-server.log",
    )
    # The scheduler looks for deployments to schedule every 5 s, not 60: a schedule a test
    # adds for the next minute is queued in time.
    env = server.env(
        PREFECT_API_DATABASE_CONNECTION_URL=database_url,
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
    )
    env.pop("PREFECT_API_URL")
    with server.log.open("wb") as log:
        proc = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(server, proc)
        yield server
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Stop the server and whatever it started (its own session), killing what lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


_stop_group = stop_group  # its name before the deployment tests needed it


def _wait_healthy(
    server: PrefectServer, proc: subprocess.Popen[bytes], timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"prefect server exited {proc.returncode}:\n{server.log.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"{server.api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server not healthy after {timeout:.0f} s:\n{server.log}")
