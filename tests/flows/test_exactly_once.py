"""Exactly once, under production's ordinary events, with real processes and real servers.

(Issue 8's acceptance; the states and crash points are drawn in the README's Design section.)

Each test runs `handover run` as the data engineer does (a subprocess of the console script,
against one Prefect server for the session) for a shop with two agencies on a real OpenSSH
sshd, and breaks the night in one way: SIGKILL at a stage boundary, two runs at once, a second
run during an upload, the agency's tool between a crash and the rerun, a link that is cut or
stalls, a full inbox, a changed host key. Then it lets the reruns finish and checks the promise:

- every eligible case is in exactly one delivered drop, and the agency's tool imports each case
  exactly once (it is run after every night, as an agency would);
- the audit log records each delivery and each case once;
- `handover audit verify --manifests` passes over what the agencies keep.
"""

from __future__ import annotations

import collections
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest

from handover.agency.opener import open_drops
from handover.errors import AuditIntegrityError
from handover.faults import VARIABLE as STOP_AT
from handover.ledger import audit
from handover.ledger.store import StateStore
from handover.ledger.witness import manifest_heads, shop_verifier
from tests.conftest import Sshd, remount, write_known_hosts_for
from tests.support.attacker import drop_guards, sql
from tests.support.ledger import throwaway_signer
from tests.support.paths import PROJECT
from tests.support.proxy import FaultProxy
from tests.support.shopbuilder import AS_OF, Shop
from tests.support.workspaces import shop_keys

AGENCIES = ("nord", "sued")
# Four German cases for nord, two Austrian ones for sued; I7 is paid and never leaves.
EXPECTED = {"nord": {"RE-I1", "RE-I2", "RE-I3", "RE-I4"}, "sued": {"RE-I5", "RE-I6"}}


@dataclass
class Night:
    """A shop, its two agencies' inboxes and tools, and how to run `handover` on it."""

    root: Path
    config: Path
    inboxes: dict[str, Path]
    identities: dict[str, Path]
    shop_key: Path
    env: dict[str, str]

    @property
    def store(self) -> StateStore:
        return StateStore(f"sqlite:///{self.root / 'state.db'}")

    def out(self, agency: str) -> Path:
        return self.root / "agency-side" / agency

    def start(self, *, stop_at: str | None = None) -> subprocess.Popen[bytes]:
        env = {**self.env, **({STOP_AT: stop_at} if stop_at else {})}
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "handover.cli.main",
                "run",
                "--config",
                str(self.config),
                "--as-of",
                AS_OF.isoformat(),
            ],
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def run(self) -> tuple[int, str]:
        proc = self.start()
        out, _ = proc.communicate(timeout=300)
        return proc.returncode, out.decode(errors="replace")

    def crash(self, point: str) -> None:
        """Run until crash point `point`, then SIGKILL the process there."""
        proc = self.start(stop_at=point)
        wait_stopped(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def agency_opens(self) -> None:
        """Each agency's tool opens what is in its inbox, as it would every morning."""
        for agency in AGENCIES:
            open_drops(
                str(self.inboxes[agency]),
                identity=self.identities[agency],
                shop_key=self.shop_key,
                out_dir=self.out(agency),
                agency=agency,
            )

    def imported(self, agency: str) -> list[str]:
        """Invoice numbers of every CSV the agency's tool wrote, one entry per row."""
        numbers = []
        for path in sorted(self.out(agency).glob("*.csv")):
            rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
            numbers += [row["invoice_number"] for row in rows]
        return numbers


def wait_stopped(proc: subprocess.Popen[bytes], timeout: float = 240) -> None:
    """Wait until `proc` stopped itself at its crash point (state T in /proc)."""
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(
                f"the run ended (exit {proc.returncode}) before its crash point:\n{out[-3000:]}"
            )
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "T":
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the run never reached its crash point")


def build(
    root: Path,
    sshd: Sshd,
    api_url: str,
    *,
    delivery: str = "",
    ports: dict | None = None,
    agency_extra: dict[str, str] | None = None,
) -> Night:
    """Two agencies on the sshd, nord (DE: I1-I4) and sued (AT: I5, I6); `agency_extra` adds
    TOML lines to an agency's table (its `columns`, say)."""
    root.mkdir(parents=True)
    shop = Shop(root / "shop.db")
    for n in range(1, 5):
        shop.customer(f"C{n}").invoice(f"I{n}", f"C{n}")
    for n in (5, 6):
        shop.customer(f"C{n}", country="AT", postal_code="1010", city="Wien")
        shop.invoice(f"I{n}", f"C{n}")
    shop.customer("C7").invoice("I7", "C7").payment("I7", 5000)
    keys = shop_keys(root / "keys", sshd)
    shop_key = root / "shop-signing.pub"
    shop_key.write_text(keys.signing_public_key() + "\n")
    ports = ports or {}
    tables, inboxes, identities = [], {}, {}
    for agency, country in zip(AGENCIES, ("DE", "AT"), strict=True):
        identity = pyrage.x25519.Identity.generate()
        identities[agency] = root / f"{agency}-identity.txt"
        identities[agency].write_text(str(identity) + "\n")
        os.chmod(identities[agency], 0o600)
        inboxes[agency] = sshd.new_inbox()
        port = ports.get(agency, sshd.port)
        known_hosts = write_known_hosts_for(sshd, root / f"known_hosts_{agency}", port)
        tables.append(
            f"""
[agencies.{agency}]
recipients = ["{identity.to_public()}"]
countries = ["{country}"]
{(agency_extra or {}).get(agency, "")}
[agencies.{agency}.sftp]
host = "{sshd.host}"
port = {port}
user = "{sshd.user}"
inbox = "{inboxes[agency]}"
known_hosts = "{known_hosts.name}"
"""
        )
    config = root / "handover.toml"
    config.write_text(
        f"""
[shop]
name = "Test Shop"
support_contact = "support@shop.example"
[source]
url = "sqlite:///shop.db"
[run]
lock_wait_seconds = 3
[delivery]
retry_delay_seconds = [1]
timeout_seconds = 5
{delivery}
"""
        + "".join(tables)
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(root / "prefect-home"),
        "PYTHONPATH": str(PROJECT),
    }
    env.pop(STOP_AT, None)
    return Night(root, config, inboxes, identities, shop_key, env)


@pytest.fixture
def api_url(prefect) -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@pytest.fixture
def night(tmp_path, sshd, api_url) -> Night:
    return build(tmp_path / "night", sshd, api_url)


def check_exactly_once(night: Night) -> None:
    """The promise, checked on what the agencies hold and on what the shop recorded."""
    night.agency_opens()
    for agency in AGENCIES:
        imported = night.imported(agency)
        assert sorted(imported) == sorted(EXPECTED[agency]), (agency, imported)
    store = night.store
    with store.engine.connect() as conn:
        entries = audit.entries(conn)
    delivered = collections.Counter(
        e["data"]["drop_id"] for e in entries if e["event"] == "drop_delivered"
    )
    assert set(delivered.values()) == {1}, delivered
    cases = collections.Counter(
        e["data"]["case_ref"] for e in entries if e["event"] == "case_handed_over"
    )
    assert sum(cases.values()) == 6 and set(cases.values()) == {1}, cases
    assert len(store.handed_over()) == 6
    # What the agencies keep (inbox and processed/) is what witnesses the shop's log.
    verify_signature = shop_verifier(night.root / "keys")
    for agency in AGENCIES:
        heads, _ = manifest_heads(night.inboxes[agency], verify_signature)
        assert heads, f"{agency} keeps no witnessed head"
        store.verify(verify_signature=verify_signature, witnessed=heads)
    store.engine.dispose()


def rerun_until_done(night: Night) -> str:
    code, out = night.run()
    assert code == 0, out[-3000:]
    return out


CRASH_POINTS = [
    "run_started",
    "drop_prepared",
    "payload_sealed",
    "drop_sealed",
    "drop_recorded",
    "payload_sent",
    "files_sent",
    "drop_committed",
    "run_closed",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_run_killed_at_any_stage_boundary_loses_and_doubles_nothing(night, point):
    night.crash(point)
    rerun_until_done(night)
    check_exactly_once(night)


@pytest.mark.parametrize("point", ["files_sent", "payload_sent"])
def test_the_agency_opening_a_drop_between_crash_and_rerun_gets_it_once(night, point):
    night.crash(point)
    night.agency_opens()  # the drop whose files all arrived is opened and moved to processed/
    out = rerun_until_done(night)
    check_exactly_once(night)
    with night.store.engine.connect() as conn:
        found = [
            e["data"].get("found_at_agency")
            for e in audit.entries(conn)
            if e["event"] == "drop_delivered"
        ]
    if point == "files_sent":
        assert "receipt" in found or "processed" in found, (found, out[-2000:])


def test_two_runs_started_together_deliver_once(night):
    first, second = night.start(), night.start()
    outputs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes in ([0, 0], [0, 1]), outputs
    if codes == [0, 1]:
        refused = next(o for o, p in zip(outputs, (first, second), strict=True) if p.returncode)
        assert "the state store is in use by run" in refused
    check_exactly_once(night)


def test_a_second_run_during_an_upload_is_refused_and_the_first_completes(night):
    first = night.start(stop_at="payload_sent")
    wait_stopped(first)
    code, out = night.run()
    assert code == 1
    assert "the state store is in use by run" in out and f"(pid {first.pid})" in out
    first.send_signal(signal.SIGCONT)  # the first run resumes its upload where it paused
    # It stops at the other agency's payload too, if that one had not passed it yet.
    while first.poll() is None:
        try:
            wait_stopped(first, timeout=60)
        except AssertionError:
            break
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0
    check_exactly_once(night)


def test_a_full_inbox_is_named_and_only_that_agency_waits(night, mount_tmpfs):
    mount_tmpfs(night.inboxes["sued"], size="8k")
    code, out = night.run()
    assert code == 1
    assert "agency sued" in out and "refused to write" in out, out[-3000:]
    assert "will retry" not in out
    night.agency_opens()
    assert sorted(night.imported("nord")) == sorted(EXPECTED["nord"])  # nord did not wait
    remount(night.inboxes["sued"], "size=8m")
    rerun_until_done(night)
    check_exactly_once(night)


@pytest.mark.parametrize("fault", ["cut", "stall"])
def test_a_cut_or_stalled_link_to_one_agency_holds_back_only_that_agency(
    tmp_path, sshd, api_url, fault
):
    with FaultProxy(sshd.port) as proxy:
        night = build(tmp_path / "night", sshd, api_url, ports={"sued": proxy.port})
        getattr(proxy, f"{fault}_after")(4096)  # during the SSH handshake or the upload
        started = time.monotonic()
        code, out = night.run()
        assert code == 1 and "agency sued" in out, out[-3000:]
        # Two attempts of at most a few timeouts each, not the minutes of a serial retry chain.
        assert time.monotonic() - started < 120
        night.agency_opens()
        assert sorted(night.imported("nord")) == sorted(EXPECTED["nord"])
        proxy.forward()
        rerun_until_done(night)
        check_exactly_once(night)


def test_a_changed_host_key_blocks_only_its_agency_from_the_second_night_on(night, sshd):
    rerun_until_done(night)  # the first night delivers to both
    stranger = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    pinned = night.root / "known_hosts_sued"
    original = pinned.read_text()
    pinned.write_text(f"[{sshd.host}]:{sshd.port} {stranger}\n")
    shop = Shop(night.root / "shop.db", first_id=100)
    for night_cases in (("I8", "I9"), ("I10", "I11")):  # the second and third nights
        de, at = night_cases
        shop.customer(f"C{de}").invoice(de, f"C{de}")
        shop.customer(f"C{at}", country="AT", postal_code="1010", city="Wien").invoice(at, f"C{at}")
        code, out = night.run()
        assert code == 1 and "agency sued" in out and "CHANGED" in out, out[-3000:]
    night.agency_opens()
    assert sorted(night.imported("nord")) == sorted(EXPECTED["nord"] | {"RE-I8", "RE-I10"})
    assert sorted(night.imported("sued")) == sorted(EXPECTED["sued"])
    pinned.write_text(original)
    rerun_until_done(night)  # sued's waiting drops go first, in order, then nothing new
    night.agency_opens()
    assert sorted(night.imported("sued")) == sorted(EXPECTED["sued"] | {"RE-I9", "RE-I11"})


def test_a_full_outbox_is_named_abandons_the_drop_and_raises_no_false_alarm(night, mount_tmpfs):
    mount_tmpfs(night.root / "outbox", size="4k")
    code, out = night.run()
    assert code == 1 and "the outbox is full" in out and str(night.root / "outbox") in out, out[
        -3000:
    ]
    assert "check the recipients" not in out
    with night.store.engine.connect() as conn:
        abandoned = [e for e in audit.entries(conn) if e["event"] == "drop_abandoned"]
    assert abandoned and all(
        e["data"]["reason"] == "sealing failed (EnvelopeError)" for e in abandoned
    )
    night.store.verify()  # a failed seal is no tampering
    remount(night.root / "outbox", "size=8m")
    rerun_until_done(night)
    check_exactly_once(night)


def _witnesses(night: Night):
    verify_signature = shop_verifier(night.root / "keys")
    heads = []
    for agency in AGENCIES:
        heads += manifest_heads(night.inboxes[agency], verify_signature)[0]
    return verify_signature, heads


def _head(store: StateStore) -> audit.Head:
    with store.engine.connect() as conn:
        return audit.head(conn)


def _cut(store: StateStore, after: int) -> None:
    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_identifiers WHERE seq > :s", s=after)
    sql(store.engine, "DELETE FROM audit_log WHERE seq > :s", s=after)


def test_verify_names_a_deleted_checkpoint_a_cut_tail_and_a_consistent_rewrite(night):
    rerun_until_done(night)
    store = night.store
    verify_signature, heads = _witnesses(night)
    assert any(w.source.startswith("head file") for w in heads)  # the tail left the shop
    store.verify(verify_signature=verify_signature, witnessed=heads)
    with store.engine.connect() as conn:
        entries = audit.entries(conn)
    last = entries[-1]
    assert last["event"] == "audit_checkpoint"

    # 1. The newest checkpoint deleted: the run's end is no longer signed.
    _cut(store, last["seq"] - 1)
    with pytest.raises(
        AuditIntegrityError, match=r"run .* ended at audit entry .* checkpoint .* missing"
    ):
        store.verify(verify_signature=verify_signature)

    # 2. Cut back to just after the last manifest head: the deliveries vanish.
    prepared = max(e["seq"] for e in entries if e["event"] == "drop_prepared")
    _cut(store, prepared)
    with pytest.raises(AuditIntegrityError, match=r"come after .* checkpoint .* not running"):
        store.verify(verify_signature=verify_signature)
    with pytest.raises(
        AuditIntegrityError, match=r"head file .* witnessed audit entry .* log ends"
    ):
        store.verify(verify_signature=verify_signature, witnessed=heads)

    # 3. ...and rewritten consistently: new entries, linked and closed by a checkpoint that
    #    someone without the shop's key signed.
    forger = StateStore(str(store.engine.url), signer=throwaway_signer())
    while _head(forger).seq < max(w.seq for w in heads):  # as long as the real log was
        forger.record_event("forged-run", "run_finished", {"handed_over": 0})
    with pytest.raises(AuditIntegrityError, match=r"signature of audit entry .* is invalid"):
        forger.verify(verify_signature=verify_signature)
    with pytest.raises(
        AuditIntegrityError, match=r"differs from the head .* that (head file|manifest)"
    ):
        forger.verify(witnessed=heads)


def test_a_waiting_drop_whose_files_are_lost_is_named_and_can_be_abandoned(night):
    night.crash("drop_recorded")  # sealed, nothing sent
    waiting = next(d for d in night.store.live_drops() if d.status == "sealed")
    shutil.rmtree(waiting.directory)  # the outbox was lost
    code, out = night.run()
    assert code == 1 and f"agency {waiting.agency}" in out, out[-3000:]
    assert f"handover drops abandon {waiting.drop_id}" in out
    listed = subprocess.run(
        [sys.executable, "-m", "handover.cli.main", "drops", "list", "--config", str(night.config)],
        env=night.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert waiting.drop_id in listed and "sealed" in listed
    abandoned = subprocess.run(
        [
            sys.executable,
            "-m",
            "handover.cli.main",
            "drops",
            "abandon",
            waiting.drop_id,
            "--config",
            str(night.config),
        ],
        env=night.env,
        capture_output=True,
        text=True,
    )
    assert abandoned.returncode == 0, abandoned.stderr
    rerun_until_done(night)
    check_exactly_once(night)
