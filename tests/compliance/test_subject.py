"""Subject access requests: a customer with two cases in two drops and one case held back."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import stat

import pytest
import sqlalchemy as sa

from handover.cli.main import main
from handover.compliance.subject import subject_report, to_html, to_text
from handover.errors import EnvelopeError
from handover.ledger import audit
from tests.support.cli import audit_rows, handover
from tests.support.recorded_runs import workspace
from tests.support.returns import case_refs_of, record_returns
from tests.support.shopbuilder import AS_OF

LATER = dt.date(2026, 6, 22)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = workspace(tmp_path_factory.mktemp("subject"))
    shop = ws.shop
    shop.customer("C1").customer("C2", last_name="Andere")
    shop.consent("C1", "contact_email", True, "2025-01-01 10:00:00", source="checkout")
    shop.consent("C1", "contact_phone", False, "2025-02-01 09:00:00", source="account")
    shop.invoice("I1", "C1").invoice("I2", "C1").invoice("I3", "C1").invoice("I4", "C2")
    shop.hold(invoice_id="I2", expires_at="2026-06-20 00:00:00")
    shop.plan("I3", "active")
    first = ws.run(AS_OF)  # I1 and I4; I2 on hold, I3 in a plan
    second = ws.run(LATER)  # I2, its hold expired
    ws.drops = (first, second)
    return ws


def test_two_cases_in_two_drops_and_one_held_back(ws):
    report = subject_report(ws.config, "C1")
    assert [(c.invoice_id, c.drop_id) for c in report.sent] == [
        ("I1", ws.drops[0]),
        ("I2", ws.drops[1]),
    ]
    one, two = report.sent
    assert one.status == two.status == "delivered" and one.agency == "nord"
    assert one.lawful_basis == "Art. 6(1)(f) GDPR: enforcement of the shop's claim"
    assert one.notice_date == "2026-05-01"  # the final notice announced the handover
    assert "email" in one.columns and "phone" not in one.columns
    assert one.current_state.startswith("already_handed_over (run of 2026-06-22")
    channels = {c.channel: c for c in one.channels}
    assert (channels["email"].sent, channels["email"].basis) == (True, "consent")
    assert channels["email"].consent_recorded_at == "2025-01-01 10:00:00"
    assert channels["email"].consent_source == "checkout"
    assert (channels["phone"].sent, channels["phone"].consent_source) == (False, "account")
    assert channels["phone"].basis.startswith("withheld: consent refused")
    assert (channels["date_of_birth"].sent, channels["date_of_birth"].basis) == (True, "policy")
    assert [(h.invoice_id, h.reasons, h.as_of) for h in report.held] == [
        ("I3", ("installment_plan",), "2026-06-22")
    ]
    assert report.values_included is False and one.values is None
    text = to_text(report)
    assert "Müller" not in text and "I3: installment_plan" in text


def test_archive_identity_adds_the_exact_values_sent(ws):
    report = subject_report(ws.config, "C1", archive_identity=ws.archive_identity.read_text())
    values = [case.values for case in report.sent]
    assert [v["invoice_number"] for v in values] == ["RE-I1", "RE-I2"]
    assert values[0]["last_name"] == "Müller-Lüdenscheidt"
    assert values[0]["email"] == "j.mueller@example.de"
    assert values[0]["date_of_birth"] == "1980-05-17"
    assert "phone" not in values[0]  # withheld: not sent, so not shown as sent
    assert set(values[0]) == set(report.sent[0].columns)
    page = to_html(report)
    assert "Müller-Lüdenscheidt" in page and "Andere" not in page


def test_a_key_that_cannot_open_the_archive_is_named(ws, tmp_path):
    import pyrage

    stranger = pyrage.x25519.Identity.generate()
    with pytest.raises(EnvelopeError, match=rf"drop {ws.drops[0]} is not encrypted to the"):
        subject_report(ws.config, "C1", archive_identity=str(stranger))


def test_cli_exports_json_privately_and_audits_the_request(ws, tmp_path, capsys):
    out = tmp_path / "c1.json"
    argv = ["subject", "C1", "--config", str(ws.config_path), "--export", "json"]
    assert main([*argv, "-o", str(out), "--archive-identity", str(ws.archive_identity)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    answer = json.loads(out.read_text())
    assert [c["invoice_id"] for c in answer["sent"]] == ["I1", "I2"]
    assert answer["sent"][1]["values"]["invoice_number"] == "RE-I2"

    assert main([*argv[:4], "--export", "html"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!doctype html>") and "Invoice I2" in page and "Müller" not in page

    store = ws.store
    with store.engine.connect() as conn:
        requests = [e for e in audit.entries(conn) if e["event"] == "subject_request_answered"]
        ids = conn.execute(
            sa.select(audit.audit_identifiers.c.customer_id).where(
                audit.audit_identifiers.c.seq == requests[-1]["seq"]
            )
        ).scalar_one()
    assert requests[-1]["data"] == {
        "cases_sent": 2,
        "cases_held": 1,
        "values_included": False,
        "ids_sha256": requests[-1]["data"]["ids_sha256"],
    }
    assert "C1" not in json.dumps(requests[-1]["data"]) and ids == "C1"
    assert ws.verify().entries == requests[-1]["seq"] + 1  # and the checkpoint closing it


def test_a_drop_no_longer_archived_is_noted_not_fatal(tmp_path):
    ws = workspace(tmp_path / "ws")
    ws.shop.customer("C1").invoice("I1", "C1")
    drop_id = ws.run(AS_OF)
    payload = ws.config.outbox / "nord" / drop_id / f"{drop_id}.csv.age"
    payload.unlink()  # as `handover retention drops` does after [archive] retention_days
    report = subject_report(ws.config, "C1", archive_identity=ws.archive_identity.read_text())
    (case,) = report.sent
    assert case.values is None and "no longer kept" in case.values_note
    assert "values sent: not available" in to_text(report)


# --- ids are checked: an unknown customer is refused, a deleted one still answered ---------------


@pytest.mark.parametrize(("customer", "near"), [("C9999999", None), ("c1", "C1"), ("C1 ", "C1")])
def test_an_unknown_customer_is_refused_and_nothing_written_or_audited(
    ws, tmp_path, customer, near
):
    page = tmp_path / "answer.html"
    before = audit_rows(ws.root / "state.db")
    argv = ["subject", customer, "--config", ws.config_path, "--export", "html", "-o", page]
    result = handover(*argv, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"handover: error: customer {customer!r} is unknown: table 'customers' of the shop "
        "database (source.url in "
    )
    assert "the state store (state.url) holds no drop or consent log entry for it" in line
    assert "nothing was written or audited" in line
    if near:
        assert line.endswith(f"; did you mean {near!r}? (ids are matched exactly)")
    else:
        assert "did you mean" not in line
    assert not page.exists() and list(tmp_path.iterdir()) == []
    assert audit_rows(ws.root / "state.db") == before


def test_a_customer_the_shop_deleted_is_still_answered_from_the_state_store(tmp_path):
    ws = workspace(tmp_path / "ws")
    ws.shop.customer("C1").invoice("I1", "C1")
    drop_id = ws.run(AS_OF)
    with sqlite3.connect(ws.shop.path) as db:  # the shop erased the customer after the handover
        db.execute("DELETE FROM dunning_events WHERE invoice_id = 'I1'")
        db.execute("DELETE FROM invoices WHERE customer_id = 'C1'")
        db.execute("DELETE FROM customers WHERE customer_id = 'C1'")
    before = audit_rows(ws.root / "state.db")
    result = handover("subject", "C1", "--config", ws.config_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Customer C1: 1 case(s) left the shop\nThe shop database no")
    assert f"to nord in drop {drop_id}, delivered" in result.stdout
    events, identifiers = audit_rows(ws.root / "state.db")
    assert (events, identifiers) == (before[0] + 2, before[1] + 1)  # answered + checkpoint
    assert subject_report(ws.config, "C1").in_shop is False


# --- what the agency reported about each case, and its review hold -------------------------------


def test_what_the_agency_reported_and_the_review_hold_are_in_every_form(tmp_path):
    ws = workspace(tmp_path / "ws")
    ws.shop.customer("C1").customer("C2")
    ws.shop.invoice("I1", "C1").invoice("I2", "C1").invoice("I3", "C1").invoice("I4", "C2")
    drop_id = ws.run(AS_OF)
    store = ws.store
    refs = case_refs_of(store)

    def ev(event_id: str, invoice: str, kind: str, amount: int | None = None) -> dict:
        return {
            "event_id": event_id,
            "invoice_id": invoice,
            "case_ref": refs[invoice],
            "event": kind,
            "event_date": "2026-06-16",
            "amount_cents": amount,
            "currency": "EUR" if amount is not None else None,
        }

    record_returns(
        store,
        "nord",
        "R-7",
        [
            ev("N-1", "I1", "payment", 1500),
            ev("N-2", "I1", "complaint"),
            ev("N-3", "I2", "disputed_by_debtor"),
            ev("N-4", "I4", "complaint"),  # another customer's case: not in C1's answer
        ],
    )
    store.engine.dispose()
    released = handover(
        "release", "I2", "--reason", "dispute_settled", "--config", ws.config_path, cwd=tmp_path
    )
    assert released.returncode == 0, released.stderr

    report = subject_report(ws.config, "C1")
    one, two, three = report.sent
    assert [
        (r.event_id, r.event, r.amount_cents, r.currency, r.return_id) for r in one.returns
    ] == [
        ("N-1", "payment", 1500, "EUR", "R-7"),
        ("N-2", "complaint", None, None, "R-7"),
    ]
    assert one.review is not None and one.review.status == "on_review"
    assert (one.review.event, one.review.event_id, one.review.agency) == (
        "complaint",
        "N-2",
        "nord",
    )
    assert [r.event_id for r in two.returns] == ["N-3"]
    assert two.review is not None and two.review.status == "released"
    assert two.review.release_reason == "dispute_settled" and two.review.released_at
    assert three.returns == () and three.review is None

    # The console script: text, JSON and HTML say the same.
    def answer(*export: str) -> str:
        done = handover("subject", "C1", *export, "--config", ws.config_path, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    text = answer()
    assert (
        "  reported by nord in return file R-7 (event N-1): payment on 2026-06-16, 1500 EUR "
        "(minor units)\n" in text
    )
    assert "  reported by nord in return file R-7 (event N-2): complaint on 2026-06-16\n" in text
    assert "  on review since " in text and (
        ": complaint reported by nord (event N-2); not handed over again until released\n" in text
    )
    assert "  released from review at " in text and "(reason dispute_settled)" in text
    assert "N-4" not in text and f"to nord in drop {drop_id}" in text
    sent = {c["invoice_id"]: c for c in json.loads(answer("--export", "json"))["sent"]}
    assert sent["I1"]["returns"][0] == {
        "agency": "nord",
        "return_id": "R-7",
        "event_id": "N-1",
        "event": "payment",
        "event_date": "2026-06-16",
        "amount_cents": 1500,
        "currency": "EUR",
        "ingested_at": one.returns[0].ingested_at,
    }
    assert sent["I1"]["review"]["status"] == "on_review" and sent["I1"]["review"]["since"]
    assert sent["I2"]["review"]["release_reason"] == "dispute_settled"
    assert sent["I3"]["returns"] == [] and sent["I3"]["review"] is None
    page = answer("--export", "html")
    assert "<td>payment</td><td>2026-06-16</td><td>1500 EUR (minor units)</td>" in page
    assert "on review since" in page and "released from review at" in page
