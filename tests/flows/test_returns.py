"""Acceptance of the returns stream on real parts: a real sshd is the agency's SFTP server, the
agency writes its return file with `handover agency return` (the console script), the nightly
flow takes it before deciding, once; a complained case stays held back (`on_review`) in every
later run until `handover release`; a tampered file is refused whole without holding back a
handover; the payments go to the accounting with `handover returns export`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from handover.contract import read_csv_rows
from handover.errors import HandoverError
from handover.ledger import audit
from handover.returns import contract
from tests.flows.test_nightly import Setup, build, decrypt
from tests.support.cli import handover
from tests.support.returns import Agency, csv_text, event
from tests.support.shopbuilder import AS_OF

DAY = AS_OF.isoformat()


@pytest.fixture
def setup(tmp_path, sshd) -> tuple[Setup, Path, Agency]:
    """The nightly test shop, its agency `test` sending return files to a folder on the sshd."""
    setup = build(tmp_path / "shop", sshd)
    folder = sshd.new_inbox()
    agency = Agency.make("test", tmp_path / "agency")
    setup.config.write_text(setup.config.read_text() + agency.config(str(folder)))
    return setup, folder, agency


def run(setup: Setup, **params):
    from flows.nightly import handover as nightly

    return nightly(config_path=str(setup.config), as_of=DAY, **params)


def case_refs(setup: Setup) -> dict[str, str]:
    """invoice number → case_ref, as the agency read them from its drops."""
    rows = [r for p in setup.inbox.glob("*.csv.age") for r in read_csv_rows(decrypt(setup, p))]
    return {r["invoice_number"]: r["case_ref"] for r in rows}


def returns_recipient(setup: Setup) -> str:
    keys = json.loads(handover("keys", "show", "--json", "--config", setup.config).stdout)
    return keys["returns"]["recipient"]


def agency_return(setup: Setup, agency: Agency, rows: list[str], out: Path, work: Path) -> str:
    """`handover agency return` as the agency runs it; the new return id."""
    work.mkdir(parents=True, exist_ok=True)
    events = work / "events.csv"
    events.write_bytes(csv_text(*rows))
    done = handover(
        "agency", "return", "--csv", events, "--agency", agency.name,
        "--shop-recipient", returns_recipient(setup), "--signing-key", agency.key, "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[2].rstrip(":")


def reasons_of(setup: Setup, invoice: str) -> list[str]:
    (latest, *_) = setup.store.decision_history(invoice)
    return latest["reasons"].split(",")


def explained(setup: Setup, invoice: str) -> dict:
    """`handover explain INVOICE --json`."""
    done = handover("explain", invoice, "--json", "--config", setup.config)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def entries(setup: Setup, event: str) -> list[dict]:
    with setup.store.engine.connect() as conn:
        return [e for e in audit.entries(conn) if e["event"] == event]


def test_a_return_file_is_taken_once_and_a_complaint_holds_its_case_until_released(
    prefect, setup, tmp_path
):
    setup, folder, agency = setup
    assert run(setup)["handed_over.test"] == 3
    refs = case_refs(setup)
    rows = [
        event("TEST-1", refs["RE-I1"], "payment", DAY, 1500),
        event("TEST-2", refs["RE-I2"], "complaint", DAY),
        event("TEST-3", refs["RE-I3"], "closed_uncollectable", DAY),
    ]
    return_id = agency_return(setup, agency, rows, folder, tmp_path / "work")

    counts = run(setup)
    assert counts["returns.new_events.test"] == 3
    assert counts["on_review"] == 1
    assert sorted(p.name for p in (folder / "processed").iterdir()) == sorted(
        contract.file_names(return_id)
    )
    assert [p.name for p in folder.iterdir()] == ["processed"]
    assert "on_review" in reasons_of(setup, "I2")
    assert "on_review" not in reasons_of(setup, "I1")
    assert len(entries(setup, "return_event")) == 3

    # A second copy of the same file changes nothing, and does not fail the run.
    for name in contract.file_names(return_id):
        shutil.copy2(folder / "processed" / name, folder / name)
    counts = run(setup)
    assert counts["returns.new_events.test"] == 0
    assert len(entries(setup, "return_event")) == 3 and len(entries(setup, "return_ingested")) == 1
    assert "on_review" in reasons_of(setup, "I2")  # held back in every later run
    # explain names what the agency reported and the hold; subject shows it to the customer.
    told = explained(setup, "RE-I2")
    assert [(r["event_id"], r["event"], r["return_id"]) for r in told["returns"]] == [
        ("TEST-2", "complaint", return_id)
    ]
    assert (told["review"]["status"], told["review"]["event_id"]) == ("on_review", "TEST-2")
    paid = explained(setup, "I1")["returns"]
    assert [(r["event"], r["amount_cents"], r["currency"]) for r in paid] == [
        ("payment", 1500, "EUR")
    ]
    answer = handover("subject", "C2", "--config", setup.config)
    assert answer.returncode == 0, answer.stderr
    assert f"reported by test in return file {return_id} (event TEST-2): complaint" in (
        answer.stdout
    )

    # Released (by the invoice number), with a reason code; free text is refused.
    prose = handover("release", "RE-I2", "--reason", "Kundin rief an", "--config", setup.config)
    assert prose.returncode == 2 and "invalid choice" in prose.stderr
    done = handover("release", "RE-I2", "--reason", "complaint_resolved", "--config", setup.config)
    assert done.returncode == 0, done.stderr
    assert "released invoice I2 (complaint_resolved)" in done.stdout
    again = handover("release", "I2", "--reason", "complaint_resolved", "--config", setup.config)
    assert again.returncode == 1
    assert "handover: error: invoice I2 is not on review (it was released on" in again.stderr
    run(setup)
    assert "on_review" not in reasons_of(setup, "I2")
    (released,) = entries(setup, "review_released")
    assert released["data"]["reason"] == "complaint_resolved"
    review = explained(setup, "I2")["review"]
    assert (review["status"], review["release_reason"]) == ("released", "complaint_resolved")
    verified = handover("audit", "verify", "--config", setup.config)
    assert verified.returncode == 0, verified.stderr

    # The payment, for the shop's accounting.
    out = tmp_path / "payments.csv"
    exported = handover(
        "returns", "export", "--from", DAY, "--to", DAY, "-o", out, "--config", setup.config
    )
    assert exported.returncode == 0, exported.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    (row,) = csv.DictReader(io.StringIO(out.read_text()))
    assert row == {
        "invoice_number": "RE-I1",
        "invoice_id": "I1",
        "agency": "test",
        "event": "payment",
        "event_date": DAY,
        "amount_cents": "1500",
        "currency": "EUR",
        "event_id": "TEST-1",
        "return_id": return_id,
    }
    assert entries(setup, "returns_exported")[0]["data"]["sums"] == {"EUR": 1500}

    # Outcomes and the report: computed here from what the agency received and reported.
    handed = [r for p in setup.inbox.glob("*.csv.age") for r in read_csv_rows(decrypt(setup, p))]
    open_cents = sum(int(r["open_cents"]) for r in handed)
    today = dt.datetime.now(dt.UTC).date().isoformat()  # drops are dated by delivery, in UTC
    done = handover("outcomes", "--from", today, "--to", today, "--json", "--config", setup.config)
    assert done.returncode == 0, done.stderr
    test = json.loads(done.stdout)["agencies"]["test"]
    assert (test["cases"], test["handed_over_cents"]) == (3, {"EUR": open_cents})
    assert test["recovered_cents"] == {"EUR": 1500}
    assert test["recovery_rate_percent"] == {"EUR": round(100 * 1500 / open_cents, 1)}
    assert (test["complaints"], test["complaints_per_100"]) == (1, 33.3)
    assert (test["disputes"], test["disputes_per_100"]) == (0, 0.0)
    assert test["reported"]["closed_uncollectable"] == 1
    assert test["reported"]["closed_paid"] == test["reported"]["returned"] == 0
    text = handover("outcomes", "--from", today, "--to", today, "--config", setup.config)
    assert "  complaints after handover: 1 (33.3 per 100 cases)" in text.stdout, text.stdout
    assert "  recovered (agency's payment reports): 15.00 EUR (" in text.stdout
    page = tmp_path / "report.html"
    done = handover("report", "--from", today, "--to", today, "-o", page, "--config", setup.config)
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    outcomes = html[html.index("<table id='outcomes'>") :].split("</table>")[0]
    assert "<td>test</td><td>3</td>" in outcomes
    assert "<td>15.00 EUR (" in outcomes and "<td>1 (33.3)</td>" in outcomes
    assert "closed_uncollectable 1" in outcomes


def test_a_refused_return_file_holds_back_no_handover_and_fails_the_run(prefect, setup, tmp_path):
    setup, folder, agency = setup
    run(setup)
    refs = case_refs(setup)
    return_id = agency_return(
        setup, agency, [event("T-1", refs["RE-I1"], "complaint", DAY)], folder, tmp_path / "w"
    )
    payload = folder / contract.payload_name(return_id)
    data = bytearray(payload.read_bytes())
    data[-1] ^= 1
    payload.write_bytes(bytes(data))
    # A case that became eligible meanwhile.
    setup.shop.customer("C7").invoice("I7", "C7")

    with pytest.raises(HandoverError) as failed:
        run(setup)
    assert f"return file {return_id} of agency test: {return_id}.csv.age does not match" in str(
        failed.value
    )
    assert "I7" in setup.store.handed_over()  # the handover went ahead
    assert setup.store.on_review() == set()  # nothing of the refused file
    assert sorted(p.name for p in folder.iterdir()) == sorted(contract.file_names(return_id))
    (refused,) = entries(setup, "return_refused")
    assert refused["data"] == {"agency": "test", "return_id": return_id, "check": "checksum"}
    with setup.store.engine.connect() as conn:
        last_run = conn.execute(
            sa.text("SELECT status, counts FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1")
        ).one()
    assert last_run.status == "failed"
    assert json.loads(last_run.counts)["returns.refused.test"] == 1  # the counts are kept


def test_returns_fetch_alone_exits_1_naming_a_foreign_signed_file(setup, tmp_path):
    setup, folder, _ = setup
    stranger = Agency.make("test", tmp_path / "stranger")
    ref = "0" * 32
    return_id = agency_return(
        setup, stranger, [event("T-1", ref, "complaint", DAY)], folder, tmp_path / "w"
    )
    done = handover("returns", "fetch", "--config", setup.config)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("handover: error:")]
    assert line.startswith(
        f"handover: error: return file {return_id} of agency test: "
        f"{return_id}.manifest.json.sig does not prove the manifest is the agency's (the key "
        "pinned in [agencies.test.returns] signing_key): signed by another key (SHA256:"
    )
    assert setup.store.return_file("test", return_id) is None
