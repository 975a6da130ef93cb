"""`handover returns export`: the agencies' payments for the accounting, by event date, with the
invoice number from the shop database; an invoice the shop no longer has is refused, not
exported without its number."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from handover.errors import ConfigError, UnknownId
from handover.ledger import audit
from handover.returns.export import COLUMNS, export_payments
from tests.support.recorded_runs import workspace
from tests.support.returns import deliver_cases
from tests.support.shopbuilder import AS_OF


@pytest.fixture
def ws(tmp_path):
    ws = workspace(tmp_path / "ws")
    ws.shop.customer("C1").invoice("I1", "C1").invoice("I2", "C1")
    ws.shop.db.execute("UPDATE invoices SET invoice_number = '=HYPERLINK(1)' WHERE invoice_id='I2'")
    ws.shop.db.commit()
    store = ws.store
    store.start_run("run-1", as_of=AS_OF, agency="*", dry_run=False, data={})
    refs = {"I1": "1" * 32, "I2": "2" * 32, "I9": "9" * 32}
    deliver_cases(store, "run-1", "nord", refs, tmp_path, as_of=AS_OF)

    def ev(event_id, invoice, kind, day, amount=None):
        return {
            "event_id": event_id,
            "invoice_id": invoice,
            "case_ref": refs[invoice],
            "event": kind,
            "event_date": day,
            "amount_cents": amount,
            "currency": None if amount is None else "EUR",
        }

    store.ingest_return(
        "run-1",
        agency="nord",
        return_id="R1",
        manifest_sha256="a" * 64,
        events=[
            ev("E1", "I1", "payment", "2026-06-20", 1500),
            ev("E2", "I2", "closed_paid", "2026-06-30", 3500),
            ev("E3", "I1", "complaint", "2026-06-21"),
            ev("E4", "I9", "payment", "2026-07-02", 100),
        ],
    )
    store.finish_run("run-1", status="succeeded", counts={}, event="run_finished")
    return ws


def test_payments_in_the_period_with_their_invoice_numbers(ws):
    done = export_payments(ws.config, ws.store, dt.date(2026, 6, 1), dt.date(2026, 6, 30))
    rows = list(csv.DictReader(io.StringIO(done.csv.decode())))
    assert tuple(rows[0]) == COLUMNS
    assert [(r["invoice_number"], r["event"], r["amount_cents"]) for r in rows] == [
        ("RE-I1", "payment", "1500"),
        ("'=HYPERLINK(1)", "closed_paid", "3500"),  # a spreadsheet shows it as text
    ]
    assert (done.rows, done.sums) == (2, {"EUR": 5000})
    with ws.store.engine.connect() as conn:
        (entry,) = [e for e in audit.entries(conn) if e["event"] == "returns_exported"]
    assert entry["data"] == {
        "from": "2026-06-01",
        "to": "2026-06-30",
        "agency": None,
        "rows": 2,
        "sums": {"EUR": 5000},
    }
    ws.verify()  # closed with a signed checkpoint


def test_an_invoice_the_shop_no_longer_has_is_refused_and_an_unknown_agency_named(ws):
    with pytest.raises(UnknownId, match="has no invoice I9 in table 'invoices'"):
        export_payments(ws.config, ws.store, dt.date(2026, 6, 1), dt.date(2026, 7, 31))
    with pytest.raises(ConfigError, match="no agency 'sued'"):
        export_payments(ws.config, ws.store, dt.date(2026, 6, 1), dt.date(2026, 6, 30), "sued")
