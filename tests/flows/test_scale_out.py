"""Acceptance test of issue 10: one night at a time across workers, as the README scales out.

Prefect's own database and the state store are on PostgreSQL (the session's server), Prefect's
server is started with the README's `PREFECT_API_DATABASE_CONNECTION_URL`, and the README's two
worker commands run as two processes with their own HOME, standing in for two hosts that share
HANDOVER_HOME. Two nightly runs are triggered at once. The deployment's concurrency limit makes
one wait (Prefect's state AwaitingConcurrencySlot) until the other has delivered; then it runs
and hands over nothing new. No case leaves twice: one drop in the inbox, opened once by the
agency's tool, and each invoice once in the ledger's `delivered_cases`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import sqlalchemy as sa

from handover.ledger.store import delivered_cases, runs
from tests.conftest import Sshd
from tests.flows.test_nightly import build
from tests.support import readme
from tests.support.deployment import finished, reader_shell, wait_until
from tests.support.paths import PROJECT
from tests.support.pgserver import PostgresServer
from tests.support.prefect_server import prefect_server, stop_group
from tests.support.shell import Shell

SCALE_OUT = "Scale out: several workers, one night at a time"
README_PREFECT_DB = "postgresql+asyncpg://prefect@db.shop.example/prefect"
README_STATE_DB = "postgresql+psycopg://handover@db.shop.example/handover"


def test_two_workers_hand_over_each_case_once(
    tmp_path: Path, sshd: Sshd, postgres_server: PostgresServer
) -> None:
    database_url, server_start, worker_a, worker_b = readme.commands(SCALE_OUT)
    _install, *environment = readme.commands("Run it on Prefect")[:5]
    pool, deploy = "prefect work-pool create --type process handover", "prefect deploy --all"
    assert {pool, deploy} <= set(readme.commands("Run it on Prefect"))

    prefect_db = postgres_server.create_database().replace("+psycopg://", "+asyncpg://")
    state_db = postgres_server.create_database()
    home = build(tmp_path / "srv-handover", sshd)  # 3 eligible cases, 3 held back
    assert home.config.parent == home.root
    (state_table,) = readme.blocks(SCALE_OUT, "toml")
    home.config.write_text(home.config.read_text() + "\n" + state_table)

    # The server's host: the README's database URL, then `prefect server start`.
    assert server_start == "prefect server start"
    assert database_url.startswith("export PREFECT_API_DATABASE_CONNECTION_URL=")
    server_shell = Shell(cwd=PROJECT, env=dict(os.environ), replace={README_PREFECT_DB: prefect_db})
    server_shell.run(database_url)
    url = server_shell.env["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert url == prefect_db
    with prefect_server(tmp_path / "prefect", database_url=url) as server:
        shell = reader_shell(tmp_path, server, home.root)
        shell.replace[README_STATE_DB] = state_db
        home.config.write_text(shell.line(home.config.read_text()))
        assert f'url = "{state_db}"' in home.config.read_text()
        for command in (*environment, pool, deploy):
            shell.run(command)

        hosts = {}
        for name, command in (("host-a", worker_a), ("host-b", worker_b)):
            (tmp_path / name / "tmp").mkdir(parents=True)
            log = tmp_path / f"{name}.log"
            hosts[name] = shell.start(
                command, log, HOME=str(tmp_path / name), TMPDIR=str(tmp_path / name / "tmp")
            )
        try:
            wait_until(
                lambda: (
                    {w["name"] for w in server.api("POST", "work_pools/handover/workers/filter")}
                    >= {"host-a", "host-b"}
                ),
                "both workers polling the pool",
                timeout=60,
            )
            # Two runs at once.
            trigger = [
                subprocess.Popen(
                    ["bash", "-c", "prefect deployment run handover/nightly"],
                    cwd=shell.cwd,
                    env=shell.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for _ in range(2)
            ]
            outputs = [proc.communicate(timeout=120)[0] for proc in trigger]
            assert [proc.returncode for proc in trigger] == [0, 0], outputs
            run_ids = [
                line.split()[-1] for out in outputs for line in out.splitlines() if "UUID" in line
            ]
            assert len(set(run_ids)) == 2, outputs
            ended = {run_id: finished(server, run_id, timeout=300) for run_id in run_ids}
        finally:
            for worker in hosts.values():
                stop_group(worker)

        assert {run["state"]["type"] for run in ended.values()} == {"COMPLETED"}, ended
        # Prefect held one back until the other ended.
        waited = [
            run_id
            for run_id in run_ids
            if "AwaitingConcurrencySlot"
            in {s["name"] for s in server.api("GET", f"flow_run_states/?flow_run_id={run_id}")}
        ]
        assert len(waited) == 1, ended
        submitted_by = {
            run_id: {
                name
                for name in hosts
                for log in server.api(
                    "POST", "logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}}
                )
                if f"Worker '{name}' submitting flow run" in log["message"]
            }
            for run_id in run_ids
        }
        assert all(submitted_by.values()), submitted_by

    # The ledger: one run delivered the 3 cases, the other found them handed over.
    engine = sa.create_engine(state_db)
    with engine.connect() as conn:
        recorded = {
            row.run_id: (row.status, json.loads(row.counts))
            for row in conn.execute(sa.select(runs.c.run_id, runs.c.status, runs.c.counts))
        }
        delivered = conn.execute(sa.select(delivered_cases.c.invoice_id)).scalars().all()
    engine.dispose()
    assert set(recorded) == set(run_ids)
    (first,) = [run_id for run_id in run_ids if run_id not in waited]
    assert recorded[first][0] == "succeeded"
    assert recorded[first][1]["handed_over.test"] == 3
    (second,) = waited
    assert recorded[second][0] == "succeeded"
    assert recorded[second][1]["already_handed_over"] == 3
    assert "handed_over.test" not in recorded[second][1]
    assert sorted(delivered) == ["I1", "I2", "I3"]

    # The agency: one drop in the inbox, opened once by its tool, each case once.
    assert len(list(home.inbox.glob("*.csv.age"))) == 1
    opened = tmp_path / "agency-opened"
    home.identity.chmod(0o600)  # the agency's tool refuses a key others can read
    shell.run(
        f"handover agency open {home.inbox} --identity {home.identity} "
        f"--shop-key {home.root / 'keys' / 'signing_ed25519.pub'} --out {opened}"
    )
    (register,) = [
        json.loads(line) for line in (opened / "opened-drops.jsonl").read_text().splitlines()
    ]
    assert register["case_count"] == 3
    print("runs submitted by:", submitted_by)
