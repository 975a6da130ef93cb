"""Acceptance test of issue 10: the README's "Run it on Prefect", followed literally.

The README's commands run, in its order, through bash in the project root, in a fresh login's
shell (`tests/support/shell.py`; its own HOME and TMPDIR, no Prefect settings), against the
session's real `prefect server start`: the process work pool, the pseudonym key as a Secret block
(the key files then leave HANDOVER_HOME), `prefect deploy --all` from prefect.yaml, `prefect worker
start` and the smoke test of all four deployments (dry runs, and a run of `returns`). The shop
is test_canary's, every customer a canary, and its agency is a real sshd (inbox and returns
folder).

The scheduled run: the test adds to the nightly deployment a cron schedule that fires at the next
minute. The server's scheduler queues that run, the worker runs it with the parameters stored in
the deployment (`config_path = "handover.toml"`, relative to HANDOVER_HOME), and the drop lands
in the inbox, where age opens it. Then Prefect's database, the server's log, the worker's output,
every command's output, HOME, TMPDIR and HANDOVER_HOME are searched for the canaries. Last, the
upgrade steps (which set the schedules back to prefect.yaml's), and a worker started without
HANDOVER_HOME, whose run fails at once naming it.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from handover.contract import read_csv_rows
from handover.ledger.store import StateStore
from tests.conftest import Sshd, require_tool
from tests.flows.test_canary import CUSTOMER, IN_PAYLOAD, PHONE_E164, files_under, find_canaries
from tests.support import readme
from tests.support.deployment import (
    canary_home,
    finished,
    flow_runs,
    reader_shell,
    state_of,
    wait_until,
)
from tests.support.prefect_server import PrefectServer, stop_group

BERLIN = ZoneInfo("Europe/Berlin")
NIGHTLY_CRON = "30 1 * * 1-5"
RETURNS_CRON = "0 8-20/2 * * *"


def words(text: str) -> str:
    """`text` with its line breaks and runs of spaces made single spaces (Rich wraps at 80)."""
    return " ".join(text.split())


def next_minute(lead_seconds: float = 30) -> dt.datetime:
    """The first whole minute (UTC) at least `lead_seconds` from now."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead_seconds)
    return at.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def started_at(run: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(run["expected_start_time"])


def crons(server: PrefectServer, deployment: str) -> list[str]:
    found = server.api("GET", f"deployments/name/{deployment}")
    return sorted(s["schedule"]["cron"] for s in found["schedules"])


def run_id_in(output: str) -> str:
    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, output
    return match.group(1)


def test_run_it_on_prefect_as_the_readme_says(
    tmp_path: Path, sshd: Sshd, prefect_server: PrefectServer
) -> None:
    (
        install,
        path,
        api_url,
        analytics_off,
        handover_home,
        server_start,
        pool,
        secret,
        deploy,
        worker_start,
        smoke_nightly,
        smoke_returns,
        smoke_identifiers,
        smoke_archive,
        schedule_ls,
        scheduled_runs,
        git_pull,
        reinstall,
        redeploy,
    ) = readme.commands("Run it on Prefect")
    server = prefect_server
    home = canary_home(tmp_path, sshd)
    shell = reader_shell(tmp_path, server, home.path)
    timings: dict[str, float] = {}
    clock = time.monotonic()

    # 1-2. Install, and the environment of every shell and worker.
    for command in (install, path, api_url, analytics_off, handover_home):
        shell.run(command)
    assert shell.env["HANDOVER_HOME"] == str(home.path)
    assert shell.env["PREFECT_API_URL"] == server.api_url
    assert shell.run("command -v prefect").stdout.strip().endswith("/.venv/bin/prefect")
    # 3. The server: the session's `prefect server start` (tests/support/prefect_server.py).
    assert server_start == "prefect server start"

    # 4. prefect.yaml creates no work pool: without it, `prefect deploy` fails naming it.
    if shell.run("prefect work-pool inspect handover", check=False).returncode == 0:
        shell.run("prefect --no-prompt work-pool delete handover")  # as on a fresh server
    refused = shell.run(deploy, check=False)
    assert refused.returncode == 1
    assert "references work pool 'handover' which does not exist" in words(refused.stdout)
    shell.run(pool)

    # 5. The pseudonym key as a Secret block; then no key file is left for the runs to read.
    shell.run(secret)
    vault = tmp_path / "vault"
    vault.mkdir()
    for key_file in (home.path / "keys").glob("pseudonym*"):
        key_file.rename(vault / key_file.name)
    (keys_table,) = readme.blocks("Run it on Prefect", "toml")
    home.config.write_text(home.config.read_text() + "\n" + keys_table)

    # 6. Deploy from the project root.
    shell.run(deploy)
    assert crons(server, "handover/nightly") == [NIGHTLY_CRON]
    assert crons(server, "returns/returns") == [RETURNS_CRON]
    for name in (
        "identifier-retention/identifier-retention",
        "archive-retention/archive-retention",
    ):
        assert [c.split()[2:] for c in crons(server, name)] == [["1", "*", "*"]], name
    # The schedule that proves a scheduled run: once, at the next minute.
    fire = next_minute()
    shell.run(
        "prefect deployment schedule create handover/nightly "
        f"--cron '{fire.minute} {fire.hour} {fire.day} {fire.month} *' --timezone UTC"
    )
    timings["set-up and deploy"] = time.monotonic() - clock

    # 7-8. A worker, the smoke test, the schedules.
    worker_log = tmp_path / "worker.log"
    worker = shell.start(worker_start, worker_log)
    try:
        for command in (smoke_nightly, smoke_returns, smoke_identifiers, smoke_archive):
            watched = shell.run(command)  # --watch exits 0 only for Completed
            assert "Flow run finished successfully in 'Completed'" in watched.stdout, command
        timings["four smoke runs"] = time.monotonic() - clock - sum(timings.values())
        # The returns run logged in to the agency's returns folder and found it empty.
        (returns_run,) = [
            run for run in flow_runs(server, "returns/returns") if not run["auto_scheduled"]
        ]
        assert state_of(returns_run) == "COMPLETED"
        assert returns_run["parameters"] == {"config_path": "handover.toml"}
        assert list(home.returns.iterdir()) == []
        assert f"cron: {NIGHTLY_CRON}" in shell.run(schedule_ls).stdout
        shell.run(scheduled_runs)
        queued = [
            started_at(run).astimezone(BERLIN)
            for run in flow_runs(server, "handover/nightly")
            if state_of(run) == "SCHEDULED" and started_at(run) != fire
        ]
        assert queued, "the nightly schedule queued no run"
        assert all((t.hour, t.minute) == (1, 30) and t.weekday() < 5 for t in queued), queued

        # The run the server's scheduler queued for `fire`, run by the worker.
        (scheduled,) = wait_until(
            lambda: [
                run
                for run in flow_runs(server, "handover/nightly")
                if run["auto_scheduled"] and started_at(run) == fire
            ],
            f"the scheduler queued the nightly run for {fire:%H:%M} UTC",
            timeout=150,
        )
        run = finished(server, scheduled["id"], timeout=300)
        timings["scheduled run"] = time.monotonic() - clock - sum(timings.values())
    finally:
        stop_group(worker)
    assert state_of(run) == "COMPLETED", run["state"]
    assert run["parameters"] == {"config_path": "handover.toml"}
    # A worker submits a run up to PREFECT_WORKER_PREFETCH_SECONDS (10) before it is due; it
    # starts later if a smoke run still holds the deployment's concurrency slot.
    lateness = dt.datetime.fromisoformat(run["start_time"]) - fire
    assert dt.timedelta(seconds=-15) <= lateness <= dt.timedelta(minutes=5), lateness

    # The drop is in the agency's inbox; age opens it; the canaries went, and only there.
    (payload,) = home.inbox.glob("*.csv.age")
    age = require_tool("age", "age")
    plain = subprocess.run(
        [age, "-d", "-i", str(home.identity), str(payload)], check=True, capture_output=True
    ).stdout
    rows = read_csv_rows(plain)
    handed_over = StateStore(f"sqlite:///{home.path / 'state.db'}").handed_over()
    assert len(rows) == len(handed_over) >= 20
    assert {row["email"] for row in rows} == {CUSTOMER["email"]}
    assert {row["phone"] for row in rows} == {PHONE_E164}
    assert find_canaries(plain) >= set(IN_PAYLOAD)

    # Upgrading: `git pull` is the one command not run (this checkout is the code under test).
    assert git_pull == "git pull"
    shell.run(reinstall)
    shell.run(redeploy)
    assert crons(server, "handover/nightly") == [NIGHTLY_CRON]

    # A worker without HANDOVER_HOME: the run fails at once, and says why.
    worker = shell.start(worker_start, tmp_path / "worker-no-home.log", HANDOVER_HOME="")
    try:
        failed = shell.run(smoke_nightly, check=False)
    finally:
        stop_group(worker)
    assert failed.returncode == 1
    assert "Flow run finished in state 'Failed'" in failed.stdout
    run_id = run_id_in(failed.stdout)
    state = server.api("GET", f"flow_runs/{run_id}")["state"]
    assert state["type"] == "FAILED"
    assert state["message"].startswith("HANDOVER_HOME is not set on this worker; set HANDOVER_HOME")
    logs = server.api("POST", "logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
    assert any(log["message"] == state["message"] for log in logs)
    timings["upgrade and worker without HANDOVER_HOME"] = (
        time.monotonic() - clock - sum(timings.values())
    )

    # Prefect's database and log, the workers' output, what every command printed, HOME, TMPDIR
    # and HANDOVER_HOME (but the shop's database) hold no canary.
    database = Path(server.database_url.removeprefix("sqlite+aiosqlite:///"))
    places = {
        f"command {n}": output for n, output in enumerate(shell.transcript, start=1)
    } | files_under(database.parent, tmp_path / "home", tmp_path / "tmp", home.path)
    places = {name: data for name, data in places.items() if "shop.db" not in Path(name).name}
    for log in (worker_log, tmp_path / "worker-no-home.log"):
        places[str(log)] = log.read_bytes()
    assert str(database) in places and str(server.log) in places and str(worker_log) in places
    assert b"handover.toml" in b"".join(
        data for name, data in places.items() if "prefect.db" in name
    )
    assert b"Decisions: " in places[str(worker_log)]
    leaks = {name: sorted(found) for name, data in places.items() if (found := find_canaries(data))}
    assert leaks == {}
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
