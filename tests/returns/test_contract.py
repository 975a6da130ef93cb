"""The return contract agency_return_v1: the schema and the code agree, every row is checked,
and a refusal names the row and column, never what the cell held."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from handover.errors import ReturnRefused
from handover.returns import contract
from tests.support.returns import csv_text, event

REF = "0123456789abcdef0123456789abcdef"
CANARY = "Kanarien.Vögel@example"  # a cell that holds it must never be quoted back
GOOD = [
    event("E-1", REF, "payment", "2026-06-20", 2500),
    event("E-2", REF, "complaint", "2026-06-21"),
    event("E-3", REF, "closed_paid", "2026-06-22", 0),
]


def test_the_schema_and_the_code_name_the_same_columns_and_events():
    schema = contract.json_schema()
    assert tuple(schema["properties"]) == contract.COLUMNS
    assert tuple(schema["required"]) == contract.COLUMNS
    assert tuple(schema["properties"]["event"]["enum"]) == contract.EVENTS
    assert schema["additionalProperties"] is False
    assert all(schema["properties"][c]["description"] for c in contract.COLUMNS)
    for group in (contract.PAYMENT_EVENTS, contract.REVIEW_EVENTS, contract.CLOSING_EVENTS):
        assert set(group) <= set(contract.EVENTS)


def test_a_good_file_parses_into_events_and_back():
    events = contract.parse_events(csv_text(*GOOD), "events.csv")
    assert [(e.event, e.amount_cents, e.currency) for e in events] == [
        ("payment", 2500, "EUR"),
        ("complaint", None, None),
        ("closed_paid", 0, "EUR"),
    ]
    assert contract.to_csv_bytes(events) == csv_text(*GOOD)
    # A spreadsheet's byte order mark and LF line ends are no content.
    bom = b"\xef\xbb\xbf" + csv_text(*GOOD).replace(b"\r\n", b"\n")
    assert contract.parse_events(bom, "events.csv") == events


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([f"{CANARY},{REF},payment,2026-06-20,100,EUR"], "row 1, column event_id breaks"),
        ([f"E-1,{CANARY},payment,2026-06-20,100,EUR"], "row 1, column case_ref breaks"),
        ([f"E-1,{REF},{CANARY},2026-06-20,,"], "row 1, column event breaks the rule 'enum'"),
        ([f"E-1,{REF},payment,{CANARY},100,EUR"], "row 1, column event_date breaks"),
        ([f"E-1,{REF},payment,2026-02-30,100,EUR"], "row 1, column event_date breaks"),
        ([f"E-1,{REF},payment,2026-06-20,0,EUR"], "row 1, column amount_cents breaks"),
        ([f"E-1,{REF},payment,2026-06-20,,EUR"], "row 1, column amount_cents breaks"),
        ([f"E-1,{REF},payment,2026-06-20,-5,EUR"], "row 1, column amount_cents breaks"),
        ([f"E-1,{REF},payment,2026-06-20,12.50,EUR"], "row 1, column amount_cents breaks"),
        ([f"E-1,{REF},payment,2026-06-20,100,"], "row 1, column currency breaks"),
        ([f"E-1,{REF},payment,2026-06-20,100,eur"], "row 1, column currency breaks"),
        ([f"E-1,{REF},complaint,2026-06-20,100,EUR"], "row 1, column amount_cents breaks"),
        ([f"E-1,{REF},complaint,2026-06-20,,{CANARY[:3].upper()}"], "row 1, column currency"),
        ([GOOD[0], f"E-2,{REF},returned,2026-06-20,,,{CANARY}"], "row 2 has 7 cells, expected 6"),
        ([GOOD[0], GOOD[0]], "rows 1 and 2 have the same event_id"),
        ([], "the CSV has a header but no events"),
    ],
)
def test_every_broken_row_is_refused_naming_row_and_column_not_the_value(rows, message):
    with pytest.raises(ReturnRefused) as refused:
        contract.parse_events(csv_text(*rows), "events.csv")
    assert refused.value.check == "rows"
    assert message in str(refused.value)
    assert str(refused.value).startswith("events.csv: ")
    assert CANARY not in str(refused.value) and CANARY[:3].upper() not in str(refused.value)


def test_a_wrong_header_or_encoding_is_refused():
    with pytest.raises(ReturnRefused, match="not the agency_return_v1 header"):
        contract.parse_events(csv_text(*GOOD, header="event_id,case_ref,event"), "x")
    with pytest.raises(ReturnRefused, match="not UTF-8"):
        contract.parse_events(csv_text(*GOOD) + "Kanarienvögel".encode("latin-1"), "x")


def test_an_event_in_the_future_is_refused():
    events = contract.parse_events(csv_text(*GOOD), "x")
    contract.check_not_future(events, dt.date(2026, 6, 22), "x")
    with pytest.raises(ReturnRefused, match="row 3, column event_date is after today"):
        contract.check_not_future(events, dt.date(2026, 6, 21), "x")


MANIFEST = {
    "return_id": "R-1",
    "agency": "nord",
    "schema": "agency_return_v1",
    "event_count": 3,
    "payload": {"file": "R-1.csv.age", "sha256": "a" * 64, "bytes": 10},
}


def test_the_manifest_is_read_strictly():
    stated = contract.parse_manifest(json.dumps(MANIFEST).encode(), "R-1", "x")
    assert (stated.agency, stated.event_count, stated.payload_bytes) == ("nord", 3, 10)
    broken = {
        **MANIFEST,
        "return_id": "R-2",
        "note": CANARY,
        "event_count": -1,
        "payload": {**MANIFEST["payload"], "sha256": "A" * 64},
    }
    with pytest.raises(ReturnRefused) as refused:
        contract.parse_manifest(json.dumps(broken).encode(), "R-1", "x")
    text = str(refused.value)
    assert refused.value.check == "manifest"
    for part in ("unknown keys note", "return_id is not R-1", "event_count", "payload.sha256"):
        assert part in text
    assert CANARY not in text
    with pytest.raises(ReturnRefused, match="not JSON"):
        contract.parse_manifest(b"\xff", "R-1", "x")
