"""Return files in the ledger: each file and each event recorded once (primary keys, not only a
check in Python), a reused event id refused, review holds set and released, what agencies closed
and the payments they reported, every step audited with ids, codes, dates and amounts only."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from handover.errors import LedgerConflict
from handover.ledger import audit
from handover.ledger.store import return_events, reviews
from tests.support.ledger import signed_store
from tests.support.returns import deliver_cases

AS_OF = dt.date(2026, 6, 15)
REF = {f"I{n}": f"{n:032x}" for n in range(1, 5)}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    store = signed_store(url)
    store.start_run("run-1", as_of=AS_OF, agency="*", dry_run=False, data={})
    deliver_cases(store, "run-1", "nord", dict(list(REF.items())[:3]), tmp_path, as_of=AS_OF)
    deliver_cases(store, "run-1", "sued", {"I4": REF["I4"]}, tmp_path, as_of=AS_OF)
    yield store
    store.engine.dispose()


def ev(event_id: str, invoice: str, kind: str, date: str = "2026-06-20", amount=None) -> dict:
    return {
        "event_id": event_id,
        "invoice_id": invoice,
        "case_ref": REF[invoice],
        "event": kind,
        "event_date": date,
        "amount_cents": amount,
        "currency": "EUR" if amount is not None else None,
    }


EVENTS = [
    ev("E1", "I1", "payment", amount=2500),
    ev("E2", "I2", "complaint"),
    ev("E3", "I3", "closed_uncollectable"),
]


def ingest(store, return_id="R1", events=EVENTS, sha="a" * 64, agency="nord"):
    return store.ingest_return(
        "run-1", agency=agency, return_id=return_id, manifest_sha256=sha, events=events
    )


def logged(store, event: str) -> list[dict]:
    """The entries of `event`, each with the identifiers of its side-table row."""
    with store.engine.connect() as conn:
        ids = {
            row.seq: json.loads(row.identifiers)
            for row in conn.execute(sa.select(audit.audit_identifiers))
        }
        return [
            {**e, "identifiers": ids.get(e["seq"])}
            for e in audit.entries(conn)
            if e["event"] == event
        ]


def test_cases_at_agency_are_the_delivered_ones_of_that_agency(store):
    found = store.cases_at_agency("nord", [REF["I1"], REF["I4"], "f" * 32])
    assert {ref: case.invoice_id for ref, case in found.items()} == {REF["I1"]: "I1"}
    assert found[REF["I1"]].handed_over_on == AS_OF.isoformat()


def test_a_file_is_ingested_once_and_each_event_audited(store):
    done = ingest(store)
    assert (done.new_events, done.duplicates, done.put_on_review, done.already) == (3, 0, 1, None)
    again = ingest(store)  # the same file (same signed manifest) again
    assert (again.new_events, again.already is not None) == (0, True)
    assert len(logged(store, "return_event")) == 3
    (file_entry,) = logged(store, "return_ingested")
    assert file_entry["data"]["new_events"] == 3
    payment = next(e for e in logged(store, "return_event") if e["data"]["event_id"] == "E1")
    assert payment["data"] == {
        "agency": "nord",
        "return_id": "R1",
        "event_id": "E1",
        "case_ref": REF["I1"],
        "event": "payment",
        "event_date": "2026-06-20",
        "amount_cents": 2500,
        "currency": "EUR",
        "ids_sha256": payment["data"]["ids_sha256"],
    }
    assert payment["identifiers"] == {"invoice_id": "I1"}  # the side table, erasable
    assert store.verify().entries > 0  # the chain holds, the run is still open


def test_the_same_event_in_a_new_file_changes_nothing(store):
    ingest(store)
    done = ingest(store, "R2", [EVENTS[0], ev("E4", "I1", "payment", amount=100)], sha="b" * 64)
    assert (done.new_events, done.duplicates) == (1, 1)
    assert len(store.agency_payments(AS_OF, dt.date(2026, 12, 31))) == 2


def test_a_reused_event_id_or_a_different_file_under_an_old_id_is_refused(store):
    ingest(store)
    changed = [ev("E1", "I1", "payment", amount=9999)]
    with pytest.raises(LedgerConflict, match=r"row\(s\) 1 reuse an event_id ingested before"):
        ingest(store, "R2", changed, sha="b" * 64)
    with pytest.raises(LedgerConflict, match="a different return file under an id ingested"):
        ingest(store, "R1", [ev("E9", "I1", "returned")], sha="c" * 64)
    assert store.return_file("nord", "R2") is None
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(return_events)).scalar() == 3


def test_the_database_refuses_an_event_twice_and_an_amount_where_none_belongs(store):
    ingest(store)
    row = {**ev("E1", "I1", "payment", amount=1), "agency": "nord", "return_id": "R1"}
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(return_events.insert().values(**row, ingested_at="x"))
    wrong = {**ev("E7", "I2", "complaint"), "amount_cents": 5, "currency": "EUR"}
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            return_events.insert().values(**wrong, agency="nord", return_id="R1", ingested_at="x")
        )
    unknown = {**ev("E8", "I2", "complaint"), "event": "paid_somehow"}
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            return_events.insert().values(**unknown, agency="nord", return_id="R1", ingested_at="x")
        )


def test_a_complaint_puts_the_case_on_review_until_released_and_again_after(store):
    ingest(store)
    assert store.on_review() == {"I2"}
    was = store.release_review("release-1", "I2", "complaint_resolved")
    assert (was["event_id"], was["event"]) == ("E2", "complaint")
    assert store.on_review() == set()
    (released,) = logged(store, "review_released")
    assert released["data"]["reason"] == "complaint_resolved"
    assert released["identifiers"] == {"invoice_id": "I2"}
    with store.engine.connect() as conn:
        last = audit.entries(conn)[-1]
    assert last["event"] == audit.CHECKPOINT_EVENT  # the command closed its change
    with pytest.raises(LedgerConflict, match="invoice I2 is not on review"):
        store.release_review("release-2", "I2", "complaint_resolved")
    with pytest.raises(LedgerConflict, match=r"invoice I1 is not on review \(it never was"):
        store.release_review("release-3", "I1", "complaint_resolved")
    ingest(store, "R2", [ev("E5", "I2", "disputed_by_debtor")], sha="b" * 64)
    assert store.on_review() == {"I2"}
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(reviews)).one()
    assert (row.status, row.event_id, row.released_at) == ("on_review", "E5", None)
    assert len(logged(store, "case_on_review")) == 2


def test_closed_by_agency_and_payments(store):
    ingest(store)
    ingest(store, "R2", [ev("E6", "I1", "closed_paid", amount=0)], sha="b" * 64)
    ingest(store, "R3", [ev("E7", "I4", "returned")], sha="c" * 64, agency="sued")
    assert store.closed_by_agency() == {"I1", "I3", "I4"}
    assert store.closed_by_agency("nord") == {"I1", "I3"}
    paid = store.agency_payments(AS_OF, dt.date(2026, 6, 30))
    assert [(p["invoice_id"], p["event"], p["amount_cents"]) for p in paid] == [
        ("I1", "payment", 2500),
        ("I1", "closed_paid", 0),
    ]
    assert store.agency_payments(AS_OF, AS_OF) == []
    assert store.agency_payments(AS_OF, dt.date(2026, 6, 30), "sued") == []


def test_the_events_and_the_review_of_one_invoice_for_explain_and_subject(store):
    ingest(store)
    later = [ev("E8", "I2", "payment", "2026-06-25", amount=700), ev("E9", "I2", "returned")]
    ingest(store, "R2", later, sha="b" * 64)
    found = store.return_events_of("I2")
    assert [(e["event_id"], e["event_date"], e["return_id"]) for e in found] == [
        ("E2", "2026-06-20", "R1"),  # by event date, then when ingested
        ("E9", "2026-06-20", "R2"),
        ("E8", "2026-06-25", "R2"),
    ]
    assert found[2] | {"ingested_at": None} == {
        "agency": "nord",
        "return_id": "R2",
        "event_id": "E8",
        "case_ref": REF["I2"],
        "event": "payment",
        "event_date": "2026-06-25",
        "amount_cents": 700,
        "currency": "EUR",
        "ingested_at": None,
    }
    assert store.return_events_of("I4") == []
    held = store.review_of("I2")
    assert (held["status"], held["event"], held["event_id"], held["agency"]) == (
        "on_review",
        "complaint",
        "E2",
        "nord",
    )
    assert held["since"] and held["released_at"] is None and held["release_reason"] is None
    store.release_review("release-1", "I2", "complaint_resolved")
    released = store.review_of("I2")
    assert (released["status"], released["release_reason"]) == ("released", "complaint_resolved")
    assert released["released_at"] >= released["since"]
    assert store.review_of("I1") is None


def test_ingesting_needs_the_lease(store):
    store.finish_run("run-1", status="succeeded", counts={}, event="run_finished")
    with pytest.raises(LedgerConflict, match="does not hold the lease"):
        ingest(store)


def test_no_personal_data_and_no_invoice_id_in_the_entries(store):
    ingest(store)
    store.record_return_refused("run-1", "nord", "R9", "signature")
    with store.engine.connect() as conn:
        text = json.dumps([e["data"] for e in audit.entries(conn)])
    assert '"I1"' not in text and '"I2"' not in text
    (refused,) = logged(store, "return_refused")
    assert refused["data"] == {"agency": "nord", "return_id": "R9", "check": "signature"}


def test_retention_removes_return_events_and_released_holds_past_the_period(store):
    from handover.ledger import retention

    ingest(store)  # E2 puts I2 on review
    ingest(store, "R2", [ev("E5", "I1", "disputed_by_debtor")], sha="b" * 64)
    store.release_review("release-1", "I1", "dispute_unfounded")
    store.finish_run("run-1", status="succeeded", counts={}, event="run_finished")
    later = dt.date(dt.date.today().year + 4, 1, 1)
    assert (
        retention.run(store, today=later - dt.timedelta(days=1), years=3).return_events_removed == 0
    )
    result = retention.run(store, today=later, years=3)
    assert (result.return_events_removed, result.reviews_removed) == (4, 1)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(return_events)).scalar() == 0
        assert conn.execute(sa.select(reviews.c.invoice_id)).scalars().all() == ["I2"]
    assert store.on_review() == {"I2"}  # a hold in force stays
    assert store.agency_payments(AS_OF, dt.date(2026, 12, 31)) == []
    # The hold is all that is left of I2, and enough for `explain` and `release` to find it.
    assert store.knows_invoice("I2") and not store.knows_invoice("I1")
    assert store.review_of("I2")["status"] == "on_review" and store.return_events_of("I2") == []
