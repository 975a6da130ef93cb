"""One run at a time per state store, proven with real processes: a second run waits and then
names the holder, a dead holder's lease is taken over (audited), a dry run needs no lease, and
two processes writing the audit log at once both succeed without forking the chain."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from handover.errors import AuditIntegrityError, LedgerConflict, RunLocked
from handover.ledger import audit, lease
from handover.ledger.store import runs
from tests.support.ledger import signed_store
from tests.support.paths import PROJECT

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_server").create_database()


def worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.ledger_worker", *args],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen[str], expected: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == expected:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"worker never said {expected!r}: {proc.stderr.read()}")


def events(store) -> list[str]:
    with store.engine.connect() as conn:
        return [e["event"] for e in audit.entries(conn)]


def test_a_second_run_waits_then_names_the_holder(url):
    holder = worker("hold", url, "run-A", "30")
    try:
        wait_for_line(holder, "started")
        store = signed_store(url)
        started = time.monotonic()
        with pytest.raises(RunLocked) as refused:
            store.start_run(
                "run-B", as_of=AS_OF, agency="*", dry_run=False, data={}, lock_wait_seconds=2
            )
        waited = time.monotonic() - started
        assert 2 <= waited < 10
        message = str(refused.value)
        assert f"run run-A on {lease.this_host()} (pid {holder.pid})" in message
        assert "[run] lock_wait_seconds" in message
        # The refused run left no trace but nothing either: it is not a run.
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(runs.c.run_id)).scalars().all() == ["run-A"]
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_run_starts_when_the_holder_ends(url):
    holder = worker("hold", url, "run-A", "2")
    wait_for_line(holder, "started")
    store = signed_store(url)
    store.start_run("run-B", as_of=AS_OF, agency="*", dry_run=False, data={}, lock_wait_seconds=60)
    assert holder.wait(timeout=30) == 0
    store.finish_run("run-B", status="succeeded", counts={}, event="run_finished")
    assert store.verify().entries == len(events(store))


def test_two_runs_started_together_one_runs_one_is_refused(url):
    both = [worker("start", url, f"run-{n}", "0") for n in (1, 2)]
    outputs = [proc.communicate(timeout=120) for proc in both]
    codes = sorted(proc.returncode for proc in both)
    # Either one held the lease while the other asked (0 and 3), or they ran one after the
    # other (0 and 0); never two at once, and the log stays one chain.
    assert codes in ([0, 3], [0, 0]), outputs
    store = signed_store(url)
    assert events(store).count("run_started") == codes.count(0)
    store.verify()


def test_a_killed_holder_is_taken_over_and_the_takeover_audited(url):
    holder = worker("hold", url, "run-A", "300")
    wait_for_line(holder, "started")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    store = signed_store(url)
    with pytest.raises(AuditIntegrityError, match="run run-A, which is not running"):
        store.verify()  # between the crash and the next run: a tail nobody closed
    store.start_run("run-B", as_of=AS_OF, agency="*", dry_run=False, data={})
    with store.engine.connect() as conn:
        entries = audit.entries(conn)
        status = dict(conn.execute(sa.select(runs.c.run_id, runs.c.status)).all())
    killed = next(e for e in entries if e["event"] == "run_killed")
    taken = next(e for e in entries if e["event"] == "lease_taken_over")
    assert killed["data"] == {
        "run_id": "run-A",
        "why": f"process {holder.pid} is gone",
        "host": lease.this_host(),
        "pid": holder.pid,
    }
    assert taken["data"] == {"from_run": "run-A", "why": f"process {holder.pid} is gone"}
    assert status == {"run-A": "killed", "run-B": "running"}
    store.verify()  # the takeover closed the dead run's entries with a checkpoint
    store.finish_run("run-B", status="succeeded", counts={}, event="run_finished")
    store.verify()


def test_a_holder_on_another_host_counts_until_its_heartbeat_expires(url):
    store = signed_store(url)
    store.start_run("run-A", as_of=AS_OF, agency="*", dry_run=False, data={})
    store._heartbeats.pop("run-A").stop()  # it runs "elsewhere" now
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)).isoformat()
    with store.transaction() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == "run-A")
            .values(host="elsewhere", pid=1, alive_until=future)
        )
    with pytest.raises(RunLocked, match="run run-A on elsewhere"):
        store.start_run("run-B", as_of=AS_OF, agency="*", dry_run=False, data={})
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    with store.transaction() as conn:
        conn.execute(runs.update().where(runs.c.run_id == "run-A").values(alive_until=past))
    store.start_run("run-B", as_of=AS_OF, agency="*", dry_run=False, data={})
    with store.engine.connect() as conn:
        taken = [e for e in audit.entries(conn) if e["event"] == "lease_taken_over"]
    assert taken[0]["data"]["why"] == f"no heartbeat since {past}"


def test_a_dry_run_needs_no_lease(url):
    holder = worker("hold", url, "run-A", "30")
    try:
        wait_for_line(holder, "started")
        store = signed_store(url)
        store.start_run("dry-1", as_of=AS_OF, agency="*", dry_run=True, data={})
        store.finish_run("dry-1", status="succeeded", counts={}, event="dry_run")
        with store.engine.connect() as conn:
            assert lease.holder(conn) == "run-A"
    finally:
        holder.kill()
        holder.wait()


def test_a_run_that_lost_its_lease_may_not_change_drops(url):
    store = signed_store(url)
    store.start_run("run-A", as_of=AS_OF, agency="*", dry_run=False, data={})
    with store.transaction() as conn:
        lease.release(conn, "run-A")
        lease.take(conn, "run-B", previous=None, now=dt.datetime.now(dt.UTC))
    with pytest.raises(LedgerConflict, match=r"run run-A does not hold the lease .* run-B"):
        store.mark_sealed("run-A", "any-drop", {})  # refused before the drop is even looked at


def test_concurrent_writers_wait_and_the_chain_stays_one(url):
    writers = [worker("append", url, f"cmd-{n}", "40") for n in range(3)]
    outputs = [proc.communicate(timeout=180) for proc in writers]
    assert [proc.returncode for proc in writers] == [0, 0, 0], outputs
    store = signed_store(url)
    status = store.verify()
    # Each entry is closed by its own checkpoint: 3 writers × 40 × 2, nothing lost or doubled.
    assert status.entries == 240 and status.checkpoints == 120
    assert events(store).count("concurrent_write") == 120


def test_the_heartbeat_keeps_a_run_alive_for_other_hosts(url, monkeypatch):
    monkeypatch.setattr(lease, "ALIVE_SECONDS", 0.4)
    store = signed_store(url)
    store.start_run("run-A", as_of=AS_OF, agency="*", dry_run=False, data={})
    first = _alive_until(store, "run-A")
    deadline = time.monotonic() + 20  # beats every 0.1 s; the value has whole seconds
    while _alive_until(store, "run-A") == first and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive_until(store, "run-A") > first
    store.finish_run("run-A", status="succeeded", counts={}, event="run_finished")
    assert not store.is_running("run-A")


def _alive_until(store, run_id: str) -> str:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(runs.c.alive_until).where(runs.c.run_id == run_id)).scalar()


def test_process_exists_tells_a_zombie_from_a_live_process(tmp_path: Path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    stat = Path(f"/proc/{child.pid}/stat")
    while time.monotonic() < deadline and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.05)
    assert not lease.process_exists(child.pid)  # exited, not yet reaped
    child.wait()
    assert not lease.process_exists(child.pid)
    assert lease.process_exists(os.getpid())
