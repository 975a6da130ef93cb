"""Alerts end to end: a real `prefect server start`, a webhook block pointed at an HTTP server of
this test, `handover alerts setup` and `handover run` as console scripts, a real sshd agency.

The shop's customers carry canary names, addresses, e-mails and phones; a failed run's alert must
name the run, the failure and its counts, and none of them. A successful run must send nothing.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from handover.contract import COLUMNS
from tests.conftest import Sshd, make_age_identity
from tests.flows.test_canary import CUSTOMER, find_canaries
from tests.support.shopbuilder import AS_OF, Shop
from tests.support.workspaces import CONFIG_HEAD, sftp_agency, shop_keys

SCRIPT = Path(sys.executable).with_name("handover")
# Distinctive invoice ids: the quarantine's message lists them, the alert must not.
INVOICES = ("QX7001", "QX7002", "QX7003")
STRANGER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x"
# A rendered alert arrives within seconds (2–5 s measured); this is the patience for a slow CI.
ALERT_TIMEOUT = 90


# --------------------------------------------------------------------------- the team's inbox


@dataclass
class Inbox:
    """An HTTP server on loopback that keeps every request body posted to it."""

    url: str
    bodies: list[bytes] = field(default_factory=list)

    def alerts(self) -> list[dict[str, str]]:
        return [json.loads(body) for body in self.bodies]

    def wait_for(self, run_id: str, timeout: float = ALERT_TIMEOUT) -> dict[str, str]:
        """The alert that names `run_id`; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for alert in self.alerts():
                if run_id in alert["body"]:
                    return alert
            time.sleep(0.25)
        raise AssertionError(f"no alert for run {run_id} in {timeout} s; got {self.alerts()}")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Inbox(f"http://127.0.0.1:{server.server_port}/alerts", received)
    finally:
        server.shutdown()
        server.server_close()


def make_webhook_block(server, name: str, url: str) -> None:
    """A Custom Webhook block, made as the README shows, in a process of its own."""
    code = (
        "import sys\n"
        "from prefect.blocks.notifications import CustomWebhookNotificationBlock\n"
        "CustomWebhookNotificationBlock(name='team', url=sys.argv[2],\n"
        "    json_data={'subject': '{{subject}}', 'body': '{{body}}'}).save(sys.argv[1],"
        " overwrite=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, name, url],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def handover(server, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The `handover` console script, talking to `server`."""
    env = server.env(GX_ANALYTICS_ENABLED="false")
    for name in ("HANDOVER_CONFIG", "HANDOVER_DEBUG"):
        env.pop(name, None)
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture
def alerting(prefect_server, inbox, request) -> Iterator[Inbox]:
    """The alert automation on the session's server, sending to this test's inbox."""
    block = f"alerts-{request.node.name.replace('_', '-')[:40].lower()}"
    make_webhook_block(prefect_server, block, inbox.url)
    done = handover(prefect_server, "alerts", "setup", "--webhook-block", block)
    assert done.returncode == 0, done.stderr
    try:
        yield inbox
    finally:
        # Other tests of the session share the server: leave no automation behind.
        handover(prefect_server, "alerts", "remove")


# --------------------------------------------------------------------------- the shop


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: Path
    known_hosts: Path
    inbox: Path

    def run(self, server) -> tuple[subprocess.CompletedProcess[str], str]:
        """`handover run` against `server`; its result and the run id it recorded."""
        done = handover(server, "run", "--config", self.config, "--as-of", AS_OF.isoformat())
        with sqlite3.connect(self.root / "state.db") as db:
            run_ids = [r for (r,) in db.execute("SELECT run_id FROM runs ORDER BY started_at")]
        assert run_ids, done.stderr
        return done, run_ids[-1]


def workspace(root: Path, sshd: Sshd) -> Workspace:
    """A shop of three eligible cases whose debtors are canaries, an agency on the real sshd."""
    root.mkdir(parents=True)
    shop = Shop(root / "shop.db")
    for n, invoice in enumerate(INVOICES, start=1):
        shop.customer(f"C{n}", **CUSTOMER)
        shop.consent(f"C{n}", "contact_email", True, "2025-01-01 10:00:00")
        shop.invoice(invoice, f"C{n}")
    shop_keys(root / "keys", sshd)
    identity = make_age_identity(root / "agency-identity.txt")
    inbox = sshd.new_inbox()
    known_hosts = sshd.write_known_hosts(root / "known_hosts")
    columns = f"columns = {json.dumps(list(COLUMNS))}"
    config = root / "handover.toml"
    config.write_text(
        CONFIG_HEAD + sftp_agency("test", identity.recipient, sshd, inbox, extra=columns)
    )
    return Workspace(root, config, known_hosts, inbox)


# --------------------------------------------------------------------------- the tests


def test_setup_is_idempotent_and_refuses_what_is_missing(prefect_server, inbox):
    make_webhook_block(prefect_server, "alerts-setup", inbox.url)
    first = handover(prefect_server, "alerts", "setup", "--webhook-block", "alerts-setup")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created automation 'handover: failed runs'")
    again = handover(prefect_server, "alerts", "setup", "--block", "custom-webhook/alerts-setup")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("unchanged automation")
    shown = handover(prefect_server, "alerts", "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("automation 'handover: failed runs'") == 1
    assert "sends: custom-webhook/alerts-setup" in shown.stdout
    assert "handover, returns, archive-retention, identifier-retention" in shown.stdout

    missing = handover(prefect_server, "alerts", "setup", "--webhook-block", "no-such-block")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1, missing.stderr
    assert "no notification block named 'no-such-block'" in missing.stderr
    assert "Blocks" in missing.stderr  # says how to create one

    removed = handover(prefect_server, "alerts", "remove")
    assert "deleted 1 automation" in removed.stdout, removed.stderr
    gone = handover(prefect_server, "alerts", "show")
    assert gone.returncode == 1 and "nobody is told" in gone.stderr

    unset = subprocess.run(
        [str(SCRIPT), "alerts", "show"],
        env={k: v for k, v in prefect_server.env().items() if k != "PREFECT_API_URL"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unset.returncode == 1 and "PREFECT_API_URL is not set" in unset.stderr


def test_a_drop_left_waiting_alerts_with_run_id_and_agency_only(
    prefect_server, alerting, sshd, tmp_path
):
    ws = workspace(tmp_path / "shop", sshd)
    stranger = tmp_path / "stranger.pub"
    stranger.write_text(STRANGER_KEY + "\n")
    sshd.write_known_hosts(ws.known_hosts, stranger)  # the agency's key is not the pinned one

    failed, run_id = ws.run(prefect_server)
    assert failed.returncode == 1, failed.stderr
    assert "agency test" in failed.stderr
    assert list((ws.root / "outbox").rglob("*.csv.age")), "the drop should wait, sealed"

    alert = alerting.wait_for(run_id)
    assert alert["subject"] == f"handover alert: handover run Failed (run {run_id})"
    body = alert["body"]
    assert body.startswith("Delivery failed: the named agencies' cases wait for the next run")
    assert f"run id:   {run_id}" in body
    assert "error:    HostKeyMismatch" in body
    assert "details:  agency test: " in body
    assert f"as_of:    {AS_OF.isoformat()}" in body
    assert "agency:   all" in body and "dry run:  no" in body
    assert find_canaries(b"".join(alerting.bodies)) == set()
    assert len(alerting.bodies) == 1, alerting.alerts()


def test_a_threshold_stop_alerts_with_counts_and_a_success_sends_nothing(
    prefect_server, alerting, sshd, tmp_path
):
    good = workspace(tmp_path / "good", sshd)
    done, good_run = good.run(prefect_server)
    assert done.returncode == 0, done.stderr
    assert len(list(good.inbox.glob("*.csv.age"))) == 1

    # One debtor in three with an e-mail the outgoing suite refuses: 33 % > 5 % allowed.
    broken = workspace(tmp_path / "broken", sshd)
    with sqlite3.connect(broken.root / "shop.db") as db:
        db.execute("UPDATE customers SET email = 'kanarien(at)example' WHERE customer_id = 'C2'")
    stopped, stopped_run = broken.run(prefect_server)
    assert stopped.returncode == 1, stopped.stderr
    assert "QX7002" in stopped.stderr  # the operator's terminal lists the invoices…

    alert = alerting.wait_for(stopped_run)
    body = alert["body"]
    assert body.startswith("Stopped by validation before anything was sent")
    assert f"handover quarantine list --run {stopped_run}" in body
    assert "error:    ValidationFailed" in body
    assert "1 of 3 cases" in body and "Reasons: invalid_email 1." in body
    for invoice in INVOICES:  # …the alert does not
        assert invoice not in body
    assert find_canaries(b"".join(alerting.bodies)) == set()

    # The successful run finished before the failed one started: its alert, had there been
    # one, would have come first. A few seconds more for a late one.
    time.sleep(3)
    assert [a for a in alerting.alerts() if good_run in a["body"]] == [], alerting.alerts()
    assert len(alerting.bodies) == 1, alerting.alerts()


def test_alerts_test_fails_a_real_run_on_purpose_and_its_alert_arrives(
    prefect_server, alerting, sshd, tmp_path
):
    ws = workspace(tmp_path / "shop", sshd)
    done = handover(prefect_server, "alerts", "test", "--config", ws.config)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split()[2]
    assert done.stdout.startswith(f"test run {run_id} failed on purpose")

    alert = alerting.wait_for(run_id)
    body = alert["body"]
    assert body.startswith("The run failed.")
    assert "error:    ConfigError" in body and "no agency 'alerts-test'" in body
    assert "agency:   alerts-test" in body and "dry run:  yes" in body
    assert not (ws.root / "state.db").exists()  # nothing was recorded
