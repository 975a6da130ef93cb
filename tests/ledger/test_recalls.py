"""Recall/update drops in the ledger: the same states as a handover drop; delivered, a recall
takes its case away from the agency (so it may go out again later) and an update changes what
the agency holds; no invoice is at two agencies at once (the database's primary key)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from handover.errors import LedgerConflict
from handover.ledger import audit
from handover.ledger.store import (
    BASELINE_COLUMNS,
    PreparedDrop,
    delivered_cases,
    recall_cases,
    recall_messages,
)
from tests.ledger.test_drops import AS_OF, events, prepare, status
from tests.support.ledger import signed_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    store = signed_store(url)
    store.start_run("run-1", as_of=AS_OF, agency="*", dry_run=False, data={})
    yield store
    store.engine.dispose()


STATE = {
    "principal_cents": 5000,
    "paid_cents": 0,
    "open_cents": 5000,
    "name_digest": "n" * 32,
    "address_digest": "a" * 32,
    "email_digest": None,
    "phone_digest": None,
    "digest_key": "k1234567",
}


def delivered(store, drop_id: str, invoices: list[str], tmp_path: Path) -> None:
    """A delivered handover drop to nord whose cases carry a baseline."""
    prepare(store, drop_id, invoices, tmp_path)
    with store.transaction() as conn:  # as seal.prepare writes it with a digest key
        conn.execute(
            sa.text(
                "UPDATE handovers SET principal_cents = 5000, paid_cents = 0, open_cents = 5000, "
                "name_digest = :n, address_digest = :a, digest_key = :k WHERE drop_id = :d"
            ),
            {"n": "n" * 32, "a": "a" * 32, "k": "k1234567", "d": drop_id},
        )
    store.mark_sealed("run-1", drop_id, {})
    store.commit_drop("run-1", drop_id, {})


def recall(store, drop_id: str, changes: dict[str, dict], tmp_path: Path) -> PreparedDrop:
    """Prepare a recall/update drop: per invoice, its reason and state changes."""
    drop = PreparedDrop(
        drop_id, "run-1", "nord", tmp_path / drop_id, (), len(changes), kind="recall"
    )
    rows = {
        invoice: {
            "customer_id": f"C-{invoice}",
            "case_ref": f"ref-{invoice}",
            "handover_drop_id": change.get("from", "D1"),
            "recalled": change["type"] == "recall",
            "reasons": change["reason"],
            **STATE,
            "paused": False,
            **change.get("state", {}),
        }
        for invoice, change in changes.items()
    }
    cases = pd.DataFrame.from_dict(rows, orient="index").rename_axis("invoice_id")
    messages = pd.DataFrame(
        {
            "reason_code": [c["reason"] for c in changes.values()],
            "channel": "",
            "message_type": [c["type"] for c in changes.values()],
            "effective_date": "2026-06-14",
            "fields": [c.get("fields", "") for c in changes.values()],
        },
        index=pd.Index(list(changes), name="invoice_id"),
    )
    store.prepare_recall_drop(drop, cases, messages, {"drop_id": drop_id, "as_of": "2026-06-15"})
    return drop


def state(store, invoice_id: str) -> dict | None:
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(delivered_cases).where(delivered_cases.c.invoice_id == invoice_id)
        ).first()
    return None if row is None else row._asdict()


def test_a_delivered_recall_takes_the_case_away_and_an_update_changes_what_the_agency_holds(
    store, tmp_path
):
    delivered(store, "D1", ["I1", "I2", "I3"], tmp_path)
    assert state(store, "I2")["paid_cents"] == 0 and state(store, "I2")["paused"] is False
    opened = store.open_cases(["nord"])
    assert sorted(opened.index) == ["I1", "I2", "I3"]
    assert opened.loc["I1", "case_ref"] == "ref-I1" and opened.loc["I1", "agency"] == "nord"
    assert opened.loc["I1", "handover_drop_id"] == "D1"
    assert opened.loc["I1", "digest_key"] == "k1234567"
    assert store.open_cases(["sued"]).empty

    recall(
        store,
        "R1",
        {
            "I1": {"type": "recall", "reason": "paid_in_full"},
            "I2": {
                "type": "update",
                "reason": "partial_payment",
                "fields": "paid_cents;open_cents;payment_cents;payment_date",
                "state": {"paid_cents": 2000, "open_cents": 3000},
            },
        },
        tmp_path,
    )
    # While the drop is on its way, its cases are not compared again (no second message).
    assert list(store.open_cases(["nord"]).index) == ["I3"]
    assert store.handed_over() == {"I1", "I2", "I3"}  # still at the agency
    assert store.waiting_drops("nord") == [] and store.waiting_drops("nord", "recall") == []
    store.mark_sealed("run-1", "R1", {"drop_id": "R1"})
    (waiting,) = store.waiting_drops("nord", "recall")
    assert waiting.kind == "recall" and store.waiting_drops("nord") == []
    assert store.in_drops() == {"I1", "I2", "I3"}

    assert store.commit_drop("run-1", "R1", {"host": "h"}) == 2
    assert store.commit_drop("run-1", "R1", {"host": "h"}) == 0  # a second commit: no-op
    assert status(store, "R1") == "delivered"
    assert store.handed_over() == {"I2", "I3"} and store.in_drops() == {"I2", "I3"}
    assert state(store, "I1") is None and store.at_agency("I1") is None
    assert state(store, "I2")["paid_cents"] == 2000 and state(store, "I2")["open_cents"] == 3000
    assert state(store, "I3")["paid_cents"] == 0  # untouched
    assert sorted(store.open_cases(["nord"]).index) == ["I2", "I3"]
    assert events(store).count("case_recalled") == 1 and events(store).count("case_updated") == 1
    with store.engine.connect() as conn:
        entries = {e["event"]: e for e in audit.entries(conn)}
    updated = entries["case_updated"]
    assert updated["data"]["messages"] == [
        {
            "type": "update",
            "reason": "partial_payment",
            "effective_date": "2026-06-14",
            "fields": ["paid_cents", "open_cents", "payment_cents", "payment_date"],
        }
    ]
    with store.engine.connect() as conn:  # the ids sit in the side table retention erases
        ids = conn.execute(
            sa.select(audit.audit_identifiers.c.identifiers).where(
                audit.audit_identifiers.c.seq == updated["seq"]
            )
        ).scalar_one()
    assert json.loads(ids) == {"invoice_id": "I2", "customer_id": "C-I2"}
    assert '"I2"' not in json.dumps(updated["data"])
    assert entries["drop_delivered"]["data"]["kind"] == "recall"
    assert [m["reason"] for m in store.recall_messages_of("I1")] == ["paid_in_full"]
    store.finish_run("run-1", status="succeeded", counts={}, event="run_finished")
    store.verify()


def test_a_recalled_case_may_go_out_again_but_no_case_is_at_two_agencies(store, tmp_path):
    delivered(store, "D1", ["I1", "I2"], tmp_path)
    recall(store, "R1", {"I1": {"type": "recall", "reason": "disputed"}}, tmp_path)
    store.mark_sealed("run-1", "R1", {})
    store.commit_drop("run-1", "R1", {})
    assert store.in_drops() == {"I2"}  # rule 10: I1 is eligible anew, if its facts allow

    delivered(store, "D2", ["I1"], tmp_path)  # handed over anew
    assert store.at_agency("I1") == {"agency": "nord", "drop_id": "D2"}
    assert [d["drop_id"] for d in store.drops_of("I1")] == ["D1", "D2"]  # history kept
    assert state(store, "I1")["digest_key"] == "k1234567"

    prepare(store, "D3", ["I2"], tmp_path)  # I2 is still at the agency: a bug upstream
    store.mark_sealed("run-1", "D3", {})
    with pytest.raises(LedgerConflict, match="already in another delivered drop"):
        store.commit_drop("run-1", "D3", {})
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        conn.execute(delivered_cases.insert().values(invoice_id="I1", drop_id="D3"))


def test_an_abandoned_recall_drop_changes_nothing_and_its_cases_are_compared_again(store, tmp_path):
    delivered(store, "D1", ["I1"], tmp_path)
    recall(store, "R1", {"I1": {"type": "recall", "reason": "cancelled"}}, tmp_path)
    assert store.open_cases(["nord"]).empty
    assert [d.drop_id for d in store.unsealed_drops()] == ["R1"]
    assert store.abandon_drop("run-1", "R1", "sealing did not finish (its run was killed)")
    assert list(store.open_cases(["nord"]).index) == ["I1"]
    assert store.handed_over() == {"I1"}
    with pytest.raises(LedgerConflict, match="drop R1 is abandoned, not sealed"):
        store.commit_drop("run-1", "R1", {})


def test_a_recall_for_a_case_no_longer_at_that_agency_records_nothing(store, tmp_path):
    delivered(store, "D1", ["I1"], tmp_path)
    delivered(store, "D2", ["I2"], tmp_path)
    recall(
        store, "R1", {"I1": {"type": "recall", "reason": "paid_in_full", "from": "D2"}}, tmp_path
    )
    store.mark_sealed("run-1", "R1", {})
    before = events(store)
    with pytest.raises(LedgerConflict, match="names 1 cases, but only 0 are at agency nord"):
        store.commit_drop("run-1", "R1", {})
    assert status(store, "R1") == "sealed" and events(store) == before
    assert store.handed_over() == {"I1", "I2"}


def test_cases_from_before_recalls_get_their_baseline_recorded_once(store, tmp_path):
    prepare(store, "D1", ["I1", "I2"], tmp_path)  # no baseline: an older handover
    store.mark_sealed("run-1", "D1", {})
    store.commit_drop("run-1", "D1", {})
    assert state(store, "I1")["digest_key"] is None
    baselines = pd.DataFrame(
        [{"agency": "nord", **STATE, "paused": False}] * 2,
        index=pd.Index(["I1", "I2"], name="invoice_id"),
    )
    assert store.record_baselines("run-1", baselines) == 2
    assert {state(store, i)["digest_key"] for i in ("I1", "I2")} == {"k1234567"}
    changed = baselines.assign(paid_cents=999)
    assert store.record_baselines("run-1", changed) == 0  # never over a recorded baseline
    assert state(store, "I1")["paid_cents"] == 0
    with store.engine.connect() as conn:
        recorded = [e for e in audit.entries(conn) if e["event"] == "change_baselines_recorded"]
    assert [e["data"] for e in recorded] == [
        {"count": 2, "agencies": {"nord": 2}},
        {"count": 0, "agencies": {"nord": 2}},
    ]
    assert set(BASELINE_COLUMNS) <= set(state(store, "I1"))


def test_retention_erases_the_recall_register_with_its_drop(store, tmp_path):
    delivered(store, "D1", ["I1"], tmp_path)
    recall(store, "R1", {"I1": {"type": "recall", "reason": "written_off"}}, tmp_path)
    store.mark_sealed("run-1", "R1", {})
    store.commit_drop("run-1", "R1", {})
    store.finish_run("run-1", status="succeeded", counts={}, event="run_finished")
    store.apply_retention(
        "retention-1",
        identifier_seqs=[],
        drop_ids=["D1", "R1"],
        runs_before="2000-01-01",
        data={"cutoff": "2000-01-01", "identifier_years": 7},
    )
    with store.engine.connect() as conn:
        for table in (recall_cases, recall_messages):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
    assert not store.knows_invoice("I1")


def test_a_case_its_agency_closed_or_returned_is_no_longer_compared(store, tmp_path):
    delivered(store, "D1", ["I1", "I2", "I3", "I4", "I5"], tmp_path)

    def event(event_id: str, invoice: str, event: str, day: str) -> dict:
        return {
            "event_id": event_id,
            "invoice_id": invoice,
            "case_ref": f"ref-{invoice}",
            "event": event,
            "event_date": day,
            "amount_cents": 5000 if event == "closed_paid" else None,
            "currency": "EUR" if event == "closed_paid" else None,
        }

    after = (AS_OF + dt.timedelta(days=3)).isoformat()
    store.ingest_return(
        "run-1",
        agency="nord",
        return_id="RET-1",
        manifest_sha256="m" * 64,
        events=[
            event("E1", "I1", "closed_uncollectable", after),
            event("E2", "I2", "returned", after),
            event("E3", "I3", "complaint", after),  # not closing: still at the agency
            event("E4", "I4", "closed_paid", (AS_OF - dt.timedelta(days=1)).isoformat()),
        ],
    )
    store.ingest_return(  # another agency cannot close nord's case
        "run-1",
        agency="sued",
        return_id="RET-2",
        manifest_sha256="s" * 64,
        events=[event("E5", "I5", "closed_paid", after)],
    )
    # I4's closing predates its handover: not about this case at nord.
    assert sorted(store.open_cases(["nord"]).index) == ["I3", "I4", "I5"]
    assert store.at_agency("I1") is None
    assert store.at_agency("I3") == {"agency": "nord", "drop_id": "D1"}
