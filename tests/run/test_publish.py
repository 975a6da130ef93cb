"""The run's Prefect artifact: counts only, published to a real Prefect server."""

from __future__ import annotations

import uuid

from handover.run import publish

COUNTS = {
    "eligible": 3,
    "on_hold": 1,
    "not_open": 0,
    "handed_over.nord": 2,
    "handed_over.sued": 1,
    "installment_plan": 2,
}


def test_table_orders_totals_then_rules_and_explains_each_code():
    rows = publish.run_table(COUNTS)
    assert [r["code"] for r in rows] == [
        "eligible",
        "handed_over.nord",
        "handed_over.sued",
        "not_open",
        "installment_plan",
        "on_hold",
    ]
    meaning = {r["code"]: r["meaning"] for r in rows}
    assert meaning["on_hold"] == "13. no hold by support in force"
    assert meaning["handed_over.sued"] == "delivered to sued"
    assert publish.handed_over(COUNTS) == 3


def test_markdown_names_run_drops_and_head():
    text = publish.run_markdown(
        run_id="r1",
        as_of="2026-06-15",
        agency="Inkasso Nord",
        counts={**COUNTS, "error": "HostKeyMismatch"},
        dry_run=False,
        drop_ids=["D1"],
        audit_head={"seq": 17, "hash": "ab" * 32},
    )
    assert text.startswith("# Run for Inkasso Nord, as_of 2026-06-15")
    assert "handed over: **3**" in text and "failed with `HostKeyMismatch`" in text
    assert "`D1`" in text and "entry 17" in text
    assert "| `on_hold` | 13. no hold by support in force | 1 |" in text
    assert publish.artifact_key("Inkasso Nord/1") == "handover-inkasso-nord-1"


def test_publish_inside_a_flow_creates_both_artifacts(prefect):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    agency = f"test-{uuid.uuid4().hex[:8]}"

    @flow(persist_result=False)
    def publish_counts() -> None:
        publish.publish(run_id="r1", as_of="2026-06-15", agency=agency, counts=COUNTS, dry_run=True)

    publish_counts()
    key = publish.artifact_key(agency)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key, f"{key}-counts"]))
        )
    by_key = {a.key: a for a in found}
    assert by_key[key].type == "markdown"
    assert "# Dry run for" in by_key[key].data
    assert by_key[f"{key}-counts"].type == "table"
    assert '"on_hold"' in str(by_key[f"{key}-counts"].data)
