"""Decisions kept as what changed (store.py, schema version 3): every run's decision per case reads
back as it was recorded, a case not decided in a run is told apart from one decided the same way,
a night that changes nothing adds no case rows, retention forgets removed runs, and a state store
of version 2 (every case of every run) migrates to the same rows a version 3 store writes."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from handover.ledger import retention
from handover.ledger.store import (
    StateStore,
    decision_changes,
    decision_runs,
    decisions,
    latest_decisions,
    runs,
)
from tests.support.ledger import signed_store

# Four nights: (as_of, {invoice: (reasons, routed agency)}).
NIGHTS = [
    (
        "2024-06-01",
        {"I1": ("", "nord"), "I2": ("not_overdue", None), "I3": ("", "sued"), "I5": ("x", None)},
    ),
    (
        "2024-06-02",
        {"I1": ("", "nord"), "I2": ("", "nord"), "I3": ("", "sued"), "I4": ("too_low", None)},
    ),
    ("2024-06-03", {"I1": ("", "nord"), "I2": ("", "nord"), "I4": ("too_low", None)}),
    ("2024-06-04", {"I1": ("", "nord"), "I2": ("", "süd"), "I3": ("", "sued")}),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_server").create_database()


def record(store: StateStore, run_id: str, as_of: str, decided: dict[str, tuple]) -> None:
    """One run that records `decided` (invoice → (reasons, agency)), as the nightly flow does."""
    store.start_run(
        run_id, as_of=dt.date.fromisoformat(as_of), agency="all", dry_run=False, data={}
    )
    ids = list(decided)
    reasons = pd.Series([decided[i][0] for i in ids], index=ids, dtype=object)
    routed = pd.Series([decided[i][1] for i in ids], index=ids, dtype="string")
    store.record_decisions(run_id, reasons, routed, {"cases": len(ids)})
    store.finish_run(run_id, status="succeeded", counts={}, event="run_finished")


def record_nights(store: StateStore, nights=NIGHTS, first: int = 1) -> None:
    for number, (as_of, decided) in enumerate(nights, first):
        record(store, f"run-{number}", as_of, decided)


def expanded(store: StateStore) -> set[tuple]:
    with store.engine.connect() as conn:
        return set(map(tuple, conn.execute(decisions())))


def expected(nights=NIGHTS, first: int = 1) -> set[tuple]:
    return {
        (f"run-{number}", invoice, reasons, agency)
        for number, (_, decided) in enumerate(nights, first)
        for invoice, (reasons, agency) in decided.items()
    }


def rows(store: StateStore, table: sa.Table) -> list[tuple]:
    with store.engine.connect() as conn:
        return sorted(map(tuple, conn.execute(sa.select(table))), key=repr)


def test_each_run_reads_back_as_it_decided_from_the_changes_alone(url):
    store = signed_store(url)
    record_nights(store)
    assert expanded(store) == expected()
    # Newest first, as `explain` shows it; run-3 did not decide I3 (it was not extracted).
    history = [(h["run_id"], h["reasons"], h["routed_to"]) for h in store.decision_history("I3")]
    assert history == [("run-4", "", "sued"), ("run-2", "", "sued"), ("run-1", "", "sued")]
    latest = store.decision_history("I2")[0]
    assert (latest["as_of"], latest["agency"], latest["dry_run"]) == ("2024-06-04", "all", False)
    assert store.decision_history("I9") == []
    # A row per case and change: I1 once; I2 three times; I3, I4 and I5 each with the run
    # from which they were not decided (reasons NULL).
    assert rows(store, decision_changes) == sorted(
        [
            ("I1", 1, "", "nord"),
            ("I2", 1, "not_overdue", None),
            ("I2", 2, "", "nord"),
            ("I2", 4, "", "süd"),
            ("I3", 1, "", "sued"),
            ("I3", 3, None, None),
            ("I3", 4, "", "sued"),
            ("I4", 2, "too_low", None),
            ("I4", 4, None, None),
            ("I5", 1, "x", None),
            ("I5", 2, None, None),
        ],
        key=repr,
    )
    assert rows(store, latest_decisions) == sorted(
        [("I1", "", "nord"), ("I2", "", "süd"), ("I3", "", "sued")], key=repr
    )
    assert [r[:3] for r in rows(store, decision_runs)] == [
        (1, "run-1", 4),
        (2, "run-2", 4),
        (3, "run-3", 3),
        (4, "run-4", 3),
    ]
    assert store.knows_invoice("I5") and not store.knows_invoice("I9")
    store.verify()
    store.engine.dispose()


def test_a_night_that_changes_nothing_adds_no_case_rows(tmp_path):
    store = signed_store(f"sqlite:///{tmp_path / 'state.db'}")
    same = {f"I{n}": ("" if n % 3 else "not_overdue", "nord" if n % 3 else None) for n in range(50)}
    record_nights(store, [(f"2024-06-0{day}", same) for day in range(1, 6)])
    assert len(rows(store, decision_changes)) == 50
    assert len(rows(store, decision_runs)) == 5
    assert len(expanded(store)) == 250


def test_an_empty_run_marks_every_case_not_decided(tmp_path):
    store = signed_store(f"sqlite:///{tmp_path / 'state.db'}")
    record_nights(store, [NIGHTS[0], ("2024-06-02", {}), NIGHTS[0]])
    assert expanded(store) == expected([NIGHTS[0], ("2024-06-02", {}), NIGHTS[0]])
    assert [h["run_id"] for h in store.decision_history("I1")] == ["run-3", "run-1"]


def test_retention_forgets_the_decisions_of_removed_runs_only(url):
    store = signed_store(url)
    old = [("2019-06-01", NIGHTS[0][1]), ("2019-06-02", NIGHTS[1][1])]
    record_nights(store, old + NIGHTS[2:])
    result = retention.run(store, today=dt.date(2026, 6, 1), years=3)  # cut-off 2023-01-01
    assert result.decisions_removed == 8  # as many as the old table held for run-1 and run-2
    assert expanded(store) == expected(NIGHTS[2:], first=3)
    # No row tells when a removed run decided, nor that a case only they decided was known.
    assert min(seq for _, seq, _, _ in rows(store, decision_changes)) == 3
    assert not store.knows_invoice("I5")
    assert [r[1] for r in rows(store, decision_runs)] == ["run-3", "run-4"]
    # The next run compares with what the remaining runs decided.
    record(store, "run-5", "2024-06-05", NIGHTS[3][1] | {"I4": ("too_low", None)})
    assert expanded(store) == expected(NIGHTS[2:], first=3) | {
        ("run-5", invoice, *decided)
        for invoice, decided in (NIGHTS[3][1] | {"I4": ("too_low", None)}).items()
    }
    assert retention.run(store, today=dt.date(2026, 6, 1), years=3).decisions_removed == 0
    store.verify()
    store.engine.dispose()


@pytest.mark.parametrize("routing", [True, False], ids=["v2", "v2-before-routing"])
def test_a_version_2_store_migrates_to_the_rows_version_3_writes(url, routing):
    store = signed_store(url)
    record_nights(store)
    native = rows(store, decision_changes), rows(store, latest_decisions)
    as_v2(store, routing=routing)
    store.engine.dispose()

    migrated = StateStore(url, signer=store.signer)
    with migrated.engine.connect() as conn:
        assert not sa.inspect(conn).has_table("decisions")
        assert conn.execute(sa.text("SELECT value FROM ledger_meta")).scalar() == "3"
    if routing:
        assert (rows(migrated, decision_changes), rows(migrated, latest_decisions)) == native
        assert expanded(migrated) == expected()
    else:  # a version before routing kept no agency: the changes of reasons remain
        assert expanded(migrated) == {(r, i, reasons, None) for r, i, reasons, _ in expected()}
        assert len(rows(migrated, decision_changes)) == 10  # I2's change of agency is none
    # Runs numbered in the order they started; the next run goes on from there.
    assert [r[:3] for r in rows(migrated, decision_runs)] == [
        (1, "run-1", 4),
        (2, "run-2", 4),
        (3, "run-3", 3),
        (4, "run-4", 3),
    ]
    record(migrated, "run-5", "2024-06-05", NIGHTS[3][1])
    history = migrated.decision_history("I2")
    assert [(h["run_id"], h["routed_to"]) for h in history[:2]] == [
        ("run-5", "süd"),
        ("run-4", "süd" if routing else None),
    ]
    migrated.verify()
    migrated.engine.dispose()


def as_v2(store: StateStore, *, routing: bool) -> None:
    """Turn `store` into what version 2 left: the table `decisions` with every case of every
    run, no decision_* tables, schema "2" (and, before routing, no agency column)."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE decisions (run_id TEXT NOT NULL REFERENCES runs (run_id), "
                "invoice_id TEXT NOT NULL, reasons TEXT NOT NULL, agency TEXT, "
                "PRIMARY KEY (run_id, invoice_id))"
            )
        )
        every = decisions().subquery()
        old = sa.table("decisions", *map(sa.column, ("run_id", "invoice_id", "reasons", "agency")))
        conn.execute(old.insert().from_select(list(every.c.keys()), sa.select(every)))
        for table in ("latest_decisions", "decision_changes", "decision_runs"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
        conn.execute(sa.text("UPDATE ledger_meta SET value = '2' WHERE key = 'schema'"))
        if not routing:
            conn.execute(sa.text("ALTER TABLE decisions DROP COLUMN agency"))
        # Runs started in one second are ordered by id, as `decision_history` orders them.
        assert conn.execute(sa.select(sa.func.count(sa.distinct(runs.c.run_id)))).scalar() == 4
