"""The whole flow on real parts: SQLite shop, Prefect run, stock age, OpenSSH sshd, audit log."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest

from handover.config import load_config
from handover.contract import COLUMNS, read_csv_rows
from handover.errors import ConfigError, HostKeyMismatch
from handover.ledger import audit
from handover.ledger.store import StateStore
from tests.conftest import require_tool
from tests.support.shopbuilder import AS_OF, Shop
from tests.support.workspaces import CONFIG_HEAD, sftp_agency, shop_keys


@dataclass
class Setup:
    root: Path
    config: Path
    inbox: Path
    identity: Path
    shop: Shop

    @property
    def store(self) -> StateStore:
        return StateStore(f"sqlite:///{self.root / 'state.db'}")


def build(tmp_path: Path, sshd) -> Setup:
    """A shop with 3 eligible and 3 excluded cases, keys, an agency on the real sshd."""
    tmp_path.mkdir(exist_ok=True)
    shop = Shop(tmp_path / "shop.db")
    for n in range(1, 7):
        shop.customer(f"C{n}")
        shop.consent(f"C{n}", "contact_email", True, "2025-01-01 10:00:00")
        shop.invoice(f"I{n}", f"C{n}")
    shop.plan("I4", "active").flag("C5", "hardship").hold(invoice_id="I6")
    shop.payment("I1", 1000)

    shop_keys(tmp_path / "keys", sshd)

    identity = pyrage.x25519.Identity.generate()
    identity_file = tmp_path / "agency-identity.txt"
    identity_file.write_text(str(identity) + "\n")
    inbox = sshd.new_inbox()
    sshd.write_known_hosts(tmp_path / "known_hosts")
    config = tmp_path / "handover.toml"
    # The agency lists e-mail (the default allow-list withholds it), so consent decides.
    columns = "columns = " + json.dumps([c for c in COLUMNS if c != "date_of_birth"])
    agency = sftp_agency("test", str(identity.to_public()), sshd, inbox, extra=columns)
    config.write_text(CONFIG_HEAD + agency)
    return Setup(tmp_path, config, inbox, identity_file, shop)


def decrypt(setup: Setup, payload: Path) -> bytes:
    age = require_tool("age", "age")
    return subprocess.run(
        [age, "-d", "-i", str(setup.identity), str(payload)], check=True, capture_output=True
    ).stdout


@pytest.fixture
def setup(tmp_path, sshd):
    return build(tmp_path, sshd)


def run(setup: Setup, **params):
    from flows.nightly import handover

    return handover(config_path=str(setup.config), as_of=AS_OF.isoformat(), **params)


def test_run_delivers_a_drop_that_stock_age_opens(prefect, setup):
    counts = run(setup)
    assert counts["eligible"] == 3
    assert counts["handed_over.test"] == 3
    assert (counts["installment_plan"], counts["protected_customer"], counts["on_hold"]) == (
        1,
        1,
        1,
    )

    payloads = list(setup.inbox.glob("*.csv.age"))
    manifests = list(setup.inbox.glob("*.manifest.json"))
    assert len(payloads) == len(manifests) == 1
    assert not list(setup.inbox.glob(".*"))
    rows = read_csv_rows(decrypt(setup, payloads[0]))
    assert list(rows[0]) == list(COLUMNS)
    assert sorted(r["invoice_number"] for r in rows) == ["RE-I1", "RE-I2", "RE-I3"]
    assert {r["open_cents"] for r in rows} == {"4000", "5000"}

    with setup.store.engine.connect() as conn:
        assert audit.verify(conn).entries > 3
        entries = audit.entries(conn)
        events = [e["event"] for e in entries]
    assert events.count("case_handed_over") == 3
    config = load_config(setup.config)
    policy_hash = config.policy_hash(config.agency("test"))
    about_the_drop = [
        e
        for e in entries
        if e["event"] in {"drop_prepared", "drop_sealed", "drop_delivered", "case_handed_over"}
    ]
    assert len(about_the_drop) == 6
    assert all(e["data"]["policy_sha256"] == policy_hash for e in about_the_drop)
    assert events[-2:] == ["run_finished", "audit_checkpoint"]


def test_second_run_on_the_same_day_hands_over_nothing_twice(prefect, setup):
    run(setup)
    counts = run(setup)
    assert counts["already_handed_over"] == 3
    assert counts["eligible"] == 0
    assert "handed_over.test" not in counts
    assert len(list(setup.inbox.glob("*.csv.age"))) == 1


def test_dry_run_sends_and_seals_nothing(prefect, setup):
    counts = run(setup, dry_run=True)
    assert counts["eligible"] == 3
    assert list(setup.inbox.iterdir()) == []
    assert not (setup.root / "outbox").exists()
    with setup.store.engine.connect() as conn:
        assert [e["event"] for e in audit.entries(conn)[-2:]] == ["dry_run", "audit_checkpoint"]
    assert setup.store.handed_over() == set()


def test_the_flow_itself_refuses_a_run_that_could_not_deliver(prefect, setup):
    """A deployment calls the flow without `handover run`'s checks: it checks for itself."""
    (setup.root / "known_hosts").unlink()
    with pytest.raises(ConfigError, match=r"agencies\.test\.sftp\.known_hosts: .* does not exist"):
        run(setup)
    assert not (setup.root / "state.db").exists()  # refused before the run was recorded
    assert not (setup.root / "outbox").exists()
    assert run(setup, dry_run=True)["eligible"] == 3  # a dry run sends nothing: no host key


def test_changed_host_key_stops_delivery_and_a_later_run_resumes_the_drop(
    prefect, setup, sshd, tmp_path
):
    stranger = tmp_path / "stranger.pub"
    stranger.write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x\n"
    )
    known_hosts = setup.root / "known_hosts"
    sshd.write_known_hosts(known_hosts, stranger)
    with pytest.raises(HostKeyMismatch, match=r"127\.0\.0\.1"):
        run(setup)
    assert list(setup.inbox.iterdir()) == []
    assert setup.store.handed_over() == set()

    sshd.write_known_hosts(known_hosts)
    counts = run(setup)
    # The sealed drop of the failed run is delivered first; its cases are not sealed again.
    assert counts["already_handed_over"] == 3
    assert counts["eligible"] == 0
    assert len(list(setup.inbox.glob("*.csv.age"))) == 1
    assert setup.store.handed_over() == {"I1", "I2", "I3"}


def test_one_agency_failing_does_not_hold_back_the_other(prefect, setup, sshd, tmp_path):
    """Consumers go to `test`, businesses to `firms`, whose host key is wrong at first."""
    setup.shop.db.execute(
        "UPDATE customers SET kind = 'business', company_name = 'Ölmühle GmbH' "
        "WHERE customer_id = 'C3'"
    )
    setup.shop.db.commit()
    firms_inbox = sshd.new_inbox()
    stranger = tmp_path / "stranger.pub"
    stranger.write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x\n"
    )
    firms_known_hosts = sshd.write_known_hosts(setup.root / "firms_known_hosts", stranger)
    recipient = pyrage.x25519.Identity.generate().to_public()
    setup.config.write_text(
        setup.config.read_text()
        + f"""
[agencies.test.route]
debtor_kinds = ["consumer"]
[agencies.firms]
recipients = ["{recipient}"]
[agencies.firms.route]
debtor_kinds = ["business"]
[agencies.firms.sftp]
host = "{sshd.host}"
port = {sshd.port}
user = "{sshd.user}"
inbox = "{firms_inbox}"
known_hosts = "firms_known_hosts"
"""
    )
    with pytest.raises(HostKeyMismatch):
        run(setup)
    assert len(list(setup.inbox.glob("*.csv.age"))) == 1  # consumers were delivered
    assert list(firms_inbox.iterdir()) == []
    assert setup.store.handed_over() == {"I1", "I2"}

    sshd.write_known_hosts(firms_known_hosts)
    counts = run(setup)
    assert len(list(firms_inbox.glob("*.csv.age"))) == 1
    assert setup.store.handed_over() == {"I1", "I2", "I3"}
    assert counts["eligible"] == 0 and counts["already_handed_over"] == 3
