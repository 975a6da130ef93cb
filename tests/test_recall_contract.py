"""The JSON Schema of a recall/update row (schemas/agency_recall_v1.json) against
handover.recall_contract, and against the handover contract it shares its cell rules with."""

from __future__ import annotations

import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from handover import contract, recall_contract
from handover.recall_contract import (
    COLUMNS,
    MESSAGE_TYPES,
    PERSONAL_COLUMNS,
    REASONS,
    VALUE_COLUMNS,
    json_schema,
    read_csv_rows,
    row_problem,
    to_csv_bytes,
)

EMPTY = dict.fromkeys(COLUMNS, "")
PAYMENT = {
    **EMPTY,
    "case_ref": "ab" * 16,
    "invoice_number": "'=2024-1001",
    "message_type": "update",
    "reason_code": "partial_payment",
    "effective_date": "2026-06-13",
    "fields": "paid_cents;open_cents;payment_cents;payment_date",
    "paid_cents": "2000",
    "open_cents": "3000",
    "payment_cents": "-500",
    "payment_date": "2026-06-13",
}


def test_the_schema_is_valid_and_lists_the_columns_in_contract_order():
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["title"] == recall_contract.SCHEMA_VERSION
    assert tuple(schema["properties"]) == COLUMNS == tuple(schema["required"])
    assert schema["additionalProperties"] is False
    # Every column tells the agency what it means.
    assert all(len(p["description"]) > 40 for p in schema["properties"].values())


def test_the_codes_in_the_schema_are_the_codes_in_code():
    schema = json_schema()
    assert tuple(schema["properties"]["message_type"]["enum"]) == MESSAGE_TYPES
    assert set(schema["properties"]["reason_code"]["enum"]) == {
        r for reasons in REASONS.values() for r in reasons
    }
    pairing = {
        rule["if"]["properties"]["message_type"]["const"]: rule["then"]["properties"][
            "reason_code"
        ]["enum"]
        for rule in schema["allOf"]
        if "const" in rule["if"]["properties"].get("message_type", {})
        and "reason_code" in rule["then"]["properties"]
    }
    assert {k: set(v) for k, v in pairing.items()} == {k: set(v) for k, v in REASONS.items()}
    description = schema["properties"]["message_type"]["description"]
    assert all(f"'{kind}'" in description for kind in MESSAGE_TYPES)


def test_cells_follow_the_handover_contract_rules():
    case, recall = contract.json_schema()["properties"], json_schema()["properties"]
    for column in ("invoice_number", *recall_contract.NAME_COLUMNS, "street", "city"):
        assert recall[column]["pattern"] == case[column]["pattern"], column
        assert recall[column]["maxLength"] == contract.LENGTH_LIMITS[column], column
    assert recall["case_ref"]["pattern"] == case["case_ref"]["pattern"]
    assert not {"email", "phone", "date_of_birth"} & set(COLUMNS)  # never sent by an update
    assert set(VALUE_COLUMNS) >= PERSONAL_COLUMNS and PERSONAL_COLUMNS <= contract.PERSONAL_COLUMNS


def test_a_valid_row_and_what_a_schema_cannot_say():
    assert row_problem(PAYMENT) is None
    stray = row_problem({**PAYMENT, "street": "Hauptstraße 1"})
    assert stray is not None and (stray.column, stray.rule) == ("street", "fields")
    twice = row_problem({**PAYMENT, "fields": "paid_cents;paid_cents"})
    assert twice is not None and twice.column == "fields"
    assert "Hauptstraße" not in stray.describe()


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"payment_date": ""}, "payment_date"),
        ({"payment_date": "2026-02-30"}, "payment_date"),
        ({"paid_cents": "20.00"}, "paid_cents"),
        ({"message_type": "recall"}, "reason_code"),
        ({"channel": "email"}, "channel"),
        ({"fields": "paid_cents;open_cents"}, "fields"),
        ({"invoice_number": "=2024-1001"}, "invoice_number"),
    ],
)
def test_rows_that_break_the_schema(change, column):
    problem = row_problem({**PAYMENT, **change})
    assert problem is not None and problem.column == column, problem


def test_csv_round_trip():
    rows = pd.DataFrame([PAYMENT, {**PAYMENT, "case_ref": "cd" * 16}], columns=list(COLUMNS))
    data = to_csv_bytes(rows)
    assert data.startswith(b"case_ref,invoice_number,message_type,") and b"\r\n" in data
    assert read_csv_rows(data)[0] == PAYMENT
    with pytest.raises(ValueError, match="agency_recall_v1"):
        to_csv_bytes(rows[list(reversed(COLUMNS))])
