"""Recalls and updates, end to end (issue 11's acceptance), with the real `handover` command.

Each test hands a batch over to two agencies on a real OpenSSH sshd (`test_exactly_once`'s
night: nord gets I1-I4, sued I5 and I6), changes facts in the shop database the way the shop
would, and runs `handover run` (or `handover recalls`) again as a subprocess. What the agencies
receive is read with their own tool (`handover.agency.opener`), as they would read it.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import json
import signal
import sqlite3
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from handover import recall_contract
from handover.contract import COLUMNS
from handover.ledger import audit
from handover.ledger.store import delivered_cases, drops, handovers
from handover.ledger.witness import manifest_heads, shop_verifier
from tests.flows.test_exactly_once import AGENCIES, Night, build, wait_stopped
from tests.support.shopbuilder import Shop

# sued may receive e-mail addresses (with consent): so it can be told to delete one.
ALL_COLUMNS = f"columns = {list(COLUMNS)!r}".replace("'", '"')
NEW_STREET = "Neubaugasse 12"
# The six changes of the acceptance, and the message each must give.
EXPECTED = {
    "nord": {
        ("RE-I1", "recall", "paid_in_full"),
        ("RE-I2", "update", "partial_payment"),
        ("RE-I3", "recall", "disputed"),
        ("RE-I4", "recall", "protected_customer"),
    },
    "sued": {
        ("RE-I5", "erase_channel", "consent_withdrawn"),
        ("RE-I6", "update", "address_changed"),
    },
}


@pytest.fixture
def api_url(prefect) -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@pytest.fixture
def night(tmp_path, sshd, api_url) -> Night:
    night = build(tmp_path / "night", sshd, api_url, agency_extra={"sued": ALL_COLUMNS})
    # C5 agreed to e-mail contact before the handover, so sued gets the address.
    Shop(night.root / "shop.db", first_id=500).consent(
        "C5", "contact_email", True, "2026-05-01 09:00:00"
    )
    return night


def handover(night: Night, *args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "handover.cli.main", *args, "--config", str(night.config)],
        cwd=night.root,
        env=night.env,
        capture_output=True,
        timeout=300,
    )
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")


def run_ok(night: Night) -> str:
    code, out = night.run()
    assert code == 0, out[-3000:]
    return out


def change_the_facts(night: Night) -> None:
    """In the shop database: pay one case in full, pay one partly, open a dispute on one, flag
    one customer insolvent, withdraw e-mail consent for one, change one address."""
    shop = Shop(night.root / "shop.db", first_id=600)
    shop.payment("I1", 5000, paid_at="2026-06-12 10:00:00")
    shop.payment("I2", 2000, paid_at="2026-06-13 10:00:00")
    shop.dispute("I3", None, None)
    shop.flag("C4", "insolvency")
    shop.consent("C5", "contact_email", False, "2026-06-14 09:00:00")
    with sqlite3.connect(night.root / "shop.db") as db:
        db.execute("UPDATE customers SET street = ? WHERE customer_id = 'C6'", (NEW_STREET,))


def opened(night: Night, agency: str, contract: str) -> list[dict[str, str]]:
    """Every row of every CSV of `contract` the agency's tool wrote."""
    columns = recall_contract.COLUMNS if contract == "recall" else COLUMNS
    rows = []
    for path in sorted(night.out(agency).glob("*.csv")):
        found = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
        if found and tuple(found[0]) == columns:
            rows += found
    return rows


def audited(night: Night, event: str) -> list[dict]:
    with night.store.engine.connect() as conn:
        return [e for e in audit.entries(conn) if e["event"] == event]


def recall_drops(night: Night) -> collections.Counter[str]:
    """Delivered recall/update drops per agency (each audited as delivered once)."""
    delivered = collections.Counter(
        e["data"]["drop_id"]
        for e in audited(night, "drop_delivered")
        if e["data"].get("kind") == "recall"
    )
    assert set(delivered.values()) <= {1}, delivered
    with night.store.engine.connect() as conn:
        agencies = conn.execute(
            sa.select(drops.c.agency).where(drops.c.drop_id.in_(list(delivered)))
        ).scalars()
        return collections.Counter(agencies)


def check_the_six_messages(night: Night) -> None:
    """Each agency holds exactly its messages, once, with the right fields and values."""
    night.agency_opens()
    handed = {row["invoice_number"]: row for a in AGENCIES for row in opened(night, a, "case")}
    for agency in AGENCIES:
        rows = opened(night, agency, "recall")
        got = [(r["invoice_number"], r["message_type"], r["reason_code"]) for r in rows]
        assert sorted(got) == sorted(EXPECTED[agency]), (agency, got)
        for row in rows:  # the case_ref the agency holds the case under
            assert row["case_ref"] == handed[row["invoice_number"]]["case_ref"]
    nord = {r["invoice_number"]: r for r in opened(night, "nord", "recall")}
    sued = {r["invoice_number"]: r for r in opened(night, "sued", "recall")}
    partial = nord["RE-I2"]
    assert partial["fields"] == "paid_cents;open_cents;payment_cents;payment_date"
    assert (partial["paid_cents"], partial["open_cents"], partial["payment_cents"]) == (
        "2000",
        "3000",
        "2000",
    )
    assert partial["payment_date"] == partial["effective_date"] == "2026-06-13"
    assert nord["RE-I1"]["effective_date"] == "2026-06-12"  # the day of the payment
    assert nord["RE-I3"]["effective_date"] == "2026-04-01"  # the dispute's
    for recall in ("RE-I1", "RE-I3", "RE-I4"):
        values = [nord[recall][c] for c in recall_contract.VALUE_COLUMNS]
        assert nord[recall]["fields"] == "" and not any(values)
    erase = sued["RE-I5"]
    assert (erase["channel"], erase["fields"], erase["effective_date"]) == (
        "email",
        "",
        "2026-06-14",
    )
    moved = sued["RE-I6"]
    assert moved["fields"] == "street;postal_code;city;country"
    assert (moved["street"], moved["postal_code"], moved["city"], moved["country"]) == (
        NEW_STREET,
        "1010",
        "Wien",
        "AT",
    )
    # Only the new address is personal data in the drop; no name, and never an e-mail.
    for row in (*nord.values(), *sued.values()):
        if row is not moved:
            assert not any(row[c] for c in recall_contract.PERSONAL_COLUMNS), row


def test_the_next_run_delivers_one_recall_drop_per_agency_with_the_six_messages(night):
    run_ok(night)
    night.agency_opens()
    assert len(opened(night, "nord", "case")) == 4 and len(opened(night, "sued", "case")) == 2
    change_the_facts(night)

    out = run_ok(night)
    assert "recall.paid_in_full" in out and "update.address_changed" in out, out[-2000:]
    assert recall_drops(night) == {"nord": 1, "sued": 1}
    check_the_six_messages(night)

    # Per case: audited once, and the recalled ones are no longer at their agency.
    recalled = {e["data"]["case_ref"] for e in audited(night, "case_recalled")}
    updated = {e["data"]["case_ref"] for e in audited(night, "case_updated")}
    assert len(recalled) == 3 and len(updated) == 3
    assert night.store.handed_over() == {"I2", "I5", "I6"}

    # A rerun sends nothing twice: no new drop of any kind, nothing new for the agencies.
    prepared = len(audited(night, "drop_prepared"))
    out = run_ok(night)
    assert len(audited(night, "drop_prepared")) == prepared, out[-2000:]
    assert recall_drops(night) == {"nord": 1, "sued": 1}
    night.agency_opens()
    check_the_six_messages(night)

    # explain and subject show what each case was told; only subject with the archive key
    # shows a value, and only the requester gets it.
    code, out = handover(night, "explain", "RE-I3", "--json")
    assert code == 0, out
    explained = json.loads(out)
    assert [(m["message_type"], m["reason"], m["status"]) for m in explained["messages"]] == [
        ("recall", "disputed", "delivered")
    ]
    assert explained["at_agency"] is None
    code, out = handover(night, "explain", "I2")
    assert "update (partial_payment, effective 2026-06-13): paid_cents, open_cents" in out
    assert "At agency nord now" in out
    code, out = handover(night, "subject", "C6", "--export", "json")
    assert code == 0 and NEW_STREET not in out, out
    (case,) = json.loads(out)["sent"]
    assert [(m["message_type"], m["reason"]) for m in case["messages"]] == [
        ("update", "address_changed")
    ]
    code, out = handover(
        night, "subject", "C6", "--archive-identity", str(night.root / "keys" / "archive.age")
    )
    assert code == 0 and f"street: {NEW_STREET}" in out, out
    code, out = handover(night, "subject", "C1")
    assert "recalled from nord (paid_in_full, effective 2026-06-12)" in out, out

    # What the agencies keep witnesses the shop's log, recall drops included.
    verify_signature = shop_verifier(night.root / "keys")
    for agency in AGENCIES:
        heads, _ = manifest_heads(night.inboxes[agency], verify_signature)
        night.store.verify(verify_signature=verify_signature, witnessed=heads)

    # Outcomes: nord's recalls by reason, and their latency from the day of the fact (the
    # effective date the agency read) to the Berlin day the recall drop was delivered.
    with night.store.engine.connect() as conn:
        (delivered_at,) = conn.execute(
            sa.select(drops.c.delivered_at).where(
                drops.c.kind == "recall", drops.c.agency == "nord"
            )
        ).scalars()
    arrived = dt.datetime.fromisoformat(delivered_at).astimezone(ZoneInfo("Europe/Berlin"))
    days = sorted(
        (arrived.date() - dt.date.fromisoformat(r["effective_date"])).days
        for r in opened(night, "nord", "recall")
        if r["message_type"] == "recall"
    )
    day = delivered_at[:10]
    code, out = handover(
        night, "outcomes", "--from", day, "--to", day, "--agency", "nord", "--json"
    )
    assert code == 0, out
    nord = json.loads(out)["agencies"]["nord"]
    assert nord["cases"] == 4
    assert nord["recalls"] == {"disputed": 1, "paid_in_full": 1, "protected_customer": 1}
    assert nord["recall_latency_days"] == {
        "recalls": 3,
        "median": float(days[1]),
        "p90": days[2],
        "max": days[2],
    }
    code, out = handover(night, "outcomes", "--from", day, "--to", day, "--agency", "nord_")
    assert code == 1 and "no drop for agency 'nord_'" in out, out


def test_a_recalled_case_goes_out_again_only_once_its_facts_make_it_eligible(night):
    run_ok(night)
    change_the_facts(night)
    run_ok(night)
    assert "I3" not in night.store.handed_over()

    # The dispute ends with the claim upheld: I3 is eligible again. I1 stays paid.
    with sqlite3.connect(night.root / "shop.db") as db:
        db.execute(
            "UPDATE disputes SET resolved_at = '2026-06-14 12:00:00', outcome = 'claim_upheld' "
            "WHERE invoice_id = 'I3'"
        )
    run_ok(night)
    night.agency_opens()
    numbers = [row["invoice_number"] for row in opened(night, "nord", "case")]
    assert collections.Counter(numbers) == {"RE-I1": 1, "RE-I2": 1, "RE-I3": 2, "RE-I4": 1}
    assert night.store.handed_over() == {"I2", "I3", "I5", "I6"}
    with night.store.engine.connect() as conn:
        drops_of_i3 = conn.execute(handovers.select().where(handovers.c.invoice_id == "I3")).all()
        at_agency = conn.execute(
            delivered_cases.select().where(delivered_cases.c.invoice_id == "I3")
        ).one()
    assert len(drops_of_i3) == 2  # its history is kept
    first, again = (d["drop_id"] for d in night.store.drops_of("I3"))
    assert first != again
    assert at_agency.drop_id == again
    code, out = handover(night, "explain", "I3")
    assert code == 0 and out.count("Handed over in drop") == 2, out
    assert "recall (disputed, effective 2026-04-01); delivered" in out
    assert f"At agency nord now (drop {again})." in out

    # Nothing changed for the new handover: the next run sends nothing.
    prepared = len(audited(night, "drop_prepared"))
    run_ok(night)
    assert len(audited(night, "drop_prepared")) == prepared


def test_handover_recalls_sends_them_at_once_and_a_dry_run_sends_nothing(night):
    run_ok(night)
    change_the_facts(night)
    code, out = handover(night, "recalls", "--dry-run")
    assert code == 0 and "recall.disputed" in out and "Dry run" in out, out[-2000:]
    assert recall_drops(night) == {}
    code, out = handover(night, "recalls")
    assert code == 0 and "recalls_delivered.nord" in out, out[-2000:]
    assert recall_drops(night) == {"nord": 1, "sued": 1}
    check_the_six_messages(night)
    started = [e["data"] for e in audited(night, "run_started")]
    assert started[-1].get("recalls_only") is True


RECALL_CRASH_POINTS = [
    "drop_prepared",
    "payload_sealed",
    "drop_recorded",
    "payload_sent",
    "files_sent",
    "drop_committed",
]


@pytest.mark.parametrize("point", RECALL_CRASH_POINTS)
def test_a_run_killed_while_sending_recalls_loses_and_doubles_nothing(night, point):
    run_ok(night)
    change_the_facts(night)
    proc = night.start(stop_at=point)  # the first drop of this night is a recall drop
    wait_stopped(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run_ok(night)
    assert recall_drops(night) == {"nord": 1, "sued": 1}
    check_the_six_messages(night)
    cases = collections.Counter(
        e["data"]["case_ref"]
        for e in audited(night, "case_recalled") + audited(night, "case_updated")
    )
    assert len(cases) == 6 and set(cases.values()) == {1}, cases
    # and the rerun after that changes nothing
    prepared = len(audited(night, "drop_prepared"))
    run_ok(night)
    assert len(audited(night, "drop_prepared")) == prepared


def test_an_agency_that_cannot_be_reached_gets_its_recalls_later_and_once(night, sshd):
    run_ok(night)
    change_the_facts(night)
    pinned = night.root / "known_hosts_sued"
    original = pinned.read_text()
    stranger = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    pinned.write_text(f"[{sshd.host}]:{sshd.port} {stranger}\n")
    code, out = night.run()
    assert code == 1 and "agency sued (recalls and updates)" in out, out[-3000:]
    assert recall_drops(night) == {"nord": 1}  # nord was told; sued's drop waits, sealed
    (waiting,) = night.store.live_drops()
    assert (waiting.agency, waiting.kind, waiting.status) == ("sued", "recall", "sealed")
    code, out = handover(night, "status")
    assert f"{waiting.drop_id} (recall/update drop)  sealed" in out, out

    pinned.write_text(original)
    run_ok(night)  # the waiting drop first; its cases are not told twice
    assert recall_drops(night) == {"nord": 1, "sued": 1}
    check_the_six_messages(night)
