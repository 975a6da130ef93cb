"""`handover explain` by invoice id or invoice number; an id nobody knows is refused.

The console script runs as a subprocess against a real SQLite shop and a state store written by
the real stages of a run (tests/support/recorded_runs.py).
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.support.cli import audit_rows, handover
from tests.support.recorded_runs import Workspace, workspace
from tests.support.returns import case_refs_of, record_returns
from tests.support.shopbuilder import AS_OF


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = workspace(tmp_path_factory.mktemp("explain"))
    shop = ws.shop
    shop.customer("C1").invoice("I1", "C1").invoice("I2", "C1")
    shop.hold(invoice_id="I2")
    # Two invoices that carry the same number (a shop that numbers per year or per channel).
    shop.customer("C2").invoice("I4", "C2", invoice_number="RE-2026-7")
    shop.invoice("I5", "C2", invoice_number="RE-2026-7")
    # An invoice whose id is another invoice's number.
    shop.invoice("I6", "C2", invoice_number="I5")
    # A customer and invoice the shop deletes after the handover.
    shop.customer("C3").invoice("I3", "C3")
    # An invoice in two instalments: the first is dunned and leaves, the second is not.
    shop.customer("C4").invoice("I7", "C4", dunned=False, due_date="2026-05-10")
    shop.instalment("I7", "A", "2026-03-15", 2500).instalment("I7", "B", "2026-05-10", 2500)
    shop.event("I7", "reminder", "2026-03-25 08:00:00", announces=False, instalment="A")
    shop.event("I7", "final_notice", "2026-05-01 08:00:00", instalment="A")
    ws.drop = ws.run(AS_OF)
    with sqlite3.connect(shop.path) as db:
        db.execute("DELETE FROM dunning_events WHERE invoice_id = 'I3'")
        db.execute("DELETE FROM invoices WHERE invoice_id = 'I3'")
        db.execute("DELETE FROM customers WHERE customer_id = 'C3'")
    return ws


def explain(ws: Workspace, invoice: str):
    return handover("explain", invoice, "--config", ws.config_path, cwd=ws.root)


def _files(ws: Workspace) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in ws.root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("invoice", ["I9999999", "i1", " I1", "I1 ", "RE-I9", "re-i1"])
def test_an_unknown_invoice_is_refused_and_nothing_is_recorded(ws: Workspace, invoice: str):
    before = audit_rows(ws.root / "state.db"), _files(ws)
    result = explain(ws, invoice)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"handover: error: invoice {invoice!r} is unknown: no invoice has")
    assert "table 'invoices' of the shop database (source.url in " in line
    assert "state store (state.url) recorded no decision" in line
    # Ids are matched exactly; a look-alike is only suggested.
    if invoice.strip().lower() in ("i1", "re-i1"):
        assert line.endswith("; did you mean 'I1'? (ids are matched exactly)")
    else:
        assert "did you mean" not in line
    assert (audit_rows(ws.root / "state.db"), _files(ws)) == before


def test_explain_by_invoice_id(ws: Workspace):
    result = explain(ws, "I1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Invoice I1: eligible in the latest run")
    assert f"Handed over in drop {ws.drop} to nord" in result.stdout


def test_an_invoice_in_instalments_names_its_cases_and_each_is_explained(ws: Workspace):
    result = explain(ws, "I7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Invoice I7 is paid in instalments: each instalment is a case")
    assert "(I7#A, I7#B)" in result.stdout
    first = explain(ws, "I7#A")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Invoice I7#A: eligible in the latest run")
    assert "no longer in the shop database" not in first.stdout
    assert f"Handed over in drop {ws.drop} to nord" in first.stdout
    second = explain(ws, "I7#B")
    assert "FAIL  4. " in second.stdout and "Never handed over." in second.stdout
    listed = json.loads(_json(ws, "I7"))
    assert listed["instalment_cases"] == ["I7#A", "I7#B"]


def _json(ws: Workspace, invoice: str) -> str:
    result = handover("explain", invoice, "--json", "--config", ws.config_path, cwd=ws.root)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_explain_by_the_invoice_number_support_staff_see(ws: Workspace):
    result = explain(ws, "RE-I2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Invoice number RE-I2 is invoice I2."
    assert lines[1].startswith("Invoice I2: NOT eligible in the latest run")
    assert "FAIL 13. no hold by support in force [on_hold]" in result.stdout


def test_a_number_that_several_invoices_carry_lists_their_ids(ws: Workspace):
    before = audit_rows(ws.root / "state.db")
    result = explain(ws, "RE-2026-7")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        "handover: error: 'RE-2026-7' names 2 invoices (by invoice number: I4, I5); "
        "run `handover explain INVOICE_ID` with the id of the one you mean\n"
    )
    assert audit_rows(ws.root / "state.db") == before


def test_an_id_that_is_also_another_invoices_number_is_ambiguous(ws: Workspace):
    result = explain(ws, "I5")
    assert result.returncode == 1
    assert "'I5' names 2 invoices (by id: I5; by invoice number: I6)" in result.stderr


def test_an_invoice_the_shop_deleted_is_explained_from_the_state_store(ws: Workspace):
    result = explain(ws, "I3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Invoice I3 is no longer in the shop database; this is what the state store recorded."
    )
    assert lines[1].startswith("Invoice I3: eligible in the latest run")
    assert f"Handed over in drop {ws.drop} to nord" in result.stdout


# --- what the agencies reported (return files) and the review hold --------------------------------


def ev(event_id: str, invoice: str, kind: str, refs: dict[str, str], amount=None) -> dict:
    """One event as the returns flow records it, dated the day after the handover."""
    return {
        "event_id": event_id,
        "invoice_id": invoice,
        "case_ref": refs[invoice],
        "event": kind,
        "event_date": "2026-06-16",
        "amount_cents": amount,
        "currency": "EUR" if amount is not None else None,
    }


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """nord reported a payment and a complaint on I1 (on review) and a dispute on I2, which
    staff released with `handover release`; of I3 it reported nothing."""
    ws = workspace(tmp_path_factory.mktemp("reported"))
    ws.shop.customer("C1").invoice("I1", "C1").invoice("I2", "C1").invoice("I3", "C1")
    ws.drop = ws.run(AS_OF)
    store = ws.store
    refs = case_refs_of(store)
    events = [
        ev("N-1", "I1", "payment", refs, amount=1500),
        ev("N-2", "I1", "complaint", refs),
        ev("N-3", "I2", "disputed_by_debtor", refs),
    ]
    record_returns(store, "nord", "R-2026-1", events)
    store.engine.dispose()
    done = handover(
        "release", "I2", "--reason", "dispute_settled", "--config", ws.config_path, cwd=ws.root
    )
    assert done.returncode == 0, done.stderr
    return ws


def test_explain_shows_what_the_agency_reported_and_that_the_case_is_on_review(reported):
    result = explain(reported, "I1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    by = "Reported by nord in return file R-2026-1"
    assert f"{by} (event N-1): payment on 2026-06-16, 1500 EUR (minor units)" in lines
    assert f"{by} (event N-2): complaint on 2026-06-16" in lines
    (hold,) = [line for line in lines if line.startswith("On review since ")]
    assert hold.endswith(
        ": complaint reported by nord (event N-2); not handed over again until `handover release`."
    )
    # Only its own events: the dispute about I2 is not I1's.
    assert "N-3" not in result.stdout


def test_explain_shows_a_released_review_with_its_reason_code(reported):
    result = explain(reported, "RE-I2")
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "review since" in line]
    assert line.startswith("Released from review at ")
    assert "(reason dispute_settled); on review since " in line
    assert line.endswith(": disputed_by_debtor reported by nord (event N-3).")
    assert "Reported by nord in return file R-2026-1 (event N-3): disputed_by_debtor" in (
        result.stdout
    )


def test_explain_json_has_the_events_and_the_review(reported):
    def as_json(invoice: str) -> dict:
        done = handover(
            "explain", invoice, "--json", "--config", reported.config_path, cwd=reported.root
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    one = as_json("I1")
    keys = ("agency", "return_id", "event_id", "event", "event_date", "amount_cents", "currency")
    assert [tuple(r[k] for k in keys) for r in one["returns"]] == [
        ("nord", "R-2026-1", "N-1", "payment", "2026-06-16", 1500, "EUR"),
        ("nord", "R-2026-1", "N-2", "complaint", "2026-06-16", None, None),
    ]
    review = one["review"]
    assert (review["status"], review["event"], review["event_id"], review["agency"]) == (
        "on_review",
        "complaint",
        "N-2",
        "nord",
    )
    assert review["since"] and review["released_at"] is None and review["release_reason"] is None
    two = as_json("I2")["review"]
    assert (two["status"], two["release_reason"], two["event"]) == (
        "released",
        "dispute_settled",
        "disputed_by_debtor",
    )
    assert two["released_at"] >= two["since"]
    nothing = as_json("I3")
    assert nothing["returns"] == [] and nothing["review"] is None
    assert "Reported by" not in explain(reported, "I3").stdout
