"""The JSON Schema of one drop row (schemas/agency_case_v1.json) against handover.contract."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from handover.contract import (
    CENTS_COLUMNS,
    COLUMNS,
    COLUMNS_V1_1,
    DATE_COLUMNS,
    FORMULA_PREFIXES,
    FREE_TEXT_COLUMNS,
    INSTALMENTS_VERSION,
    LENGTH_LIMITS,
    PERSONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SCHEMA_VERSION,
    json_schema,
    read_csv_rows,
    to_csv_bytes,
    version_of,
)
from handover.run.validate import SUITES_DIR

CONSUMER_ROW: dict[str, str] = {
    "case_ref": "0123456789abcdef0123456789abcdef",
    "invoice_number": "2024-1001",
    "debtor_kind": "consumer",
    "first_name": "Erika",
    "last_name": "Mustermann",
    "company_name": "",
    "street": "Musterstraße 1",
    "postal_code": "01067",
    "city": "Dresden",
    "country": "DE",
    "language": "de",
    "email": "erika@example.org",
    "phone": "+493511234567",
    "date_of_birth": "",
    "order_date": "2024-03-01",
    "invoice_date": "2024-03-01",
    "due_date": "2024-03-15",
    "default_date": "2024-04-02",
    "currency": "EUR",
    "principal_cents": "12000",
    "paid_cents": "2000",
    "open_cents": "10000",
    "dunning_fees_cents": "0",
    "claim_subject": "Online-Bestellung 2024-1001 vom 2024-03-01",
    "last_dunning_date": "2024-04-16",
    "handover_notice_date": "2024-04-16",
}

BUSINESS_ROW: dict[str, str] = {
    **CONSUMER_ROW,
    "case_ref": "fedcba9876543210fedcba9876543210",
    "debtor_kind": "business",
    "first_name": "",
    "last_name": "",
    "company_name": "Beispiel GmbH",
    "postal_code": "1010",
    "city": "Wien",
    "country": "AT",
    "email": "",
    "phone": "+431234567",
}


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    # The format checker makes "format": "date" reject impossible dates such as 2024-02-30.
    return Draft202012Validator(json_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_schema_is_a_valid_2020_12_schema() -> None:
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://handover.example/schemas/agency_case_v1.json"
    assert schema["description"]


def test_properties_are_the_contract_columns_in_order() -> None:
    schema = json_schema()
    assert tuple(schema["properties"]) == COLUMNS
    assert tuple(schema["required"]) == COLUMNS
    assert schema["additionalProperties"] is False
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{name} has no description"


@pytest.mark.parametrize("row", [CONSUMER_ROW, BUSINESS_ROW], ids=["consumer", "business"])
def test_good_row_validates(validator: Draft202012Validator, row: dict[str, str]) -> None:
    assert list(validator.iter_errors(row)) == []


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("due_date", "15.03.2024"),
        ("due_date", "2024-3-15"),
        ("due_date", "2024-02-30"),  # matches the pattern, but is no calendar date
        ("order_date", "٢٠٢٤-03-01"),  # non-ASCII digits: the patterns use [0-9], not \d
        ("date_of_birth", "17.05.1980"),
        ("open_cents", "-1"),
        ("principal_cents", "12000.00"),
        ("paid_cents", "0100"),
        ("dunning_fees_cents", ""),
        ("case_ref", "0123456789ABCDEF0123456789ABCDEF"),
        ("case_ref", "0123456789abcdef"),
        ("debtor_kind", "person"),
        ("country", "CH"),
        ("postal_code", "1010"),  # DE needs 5 digits
        ("language", "deu"),
        ("currency", "eur"),
        ("email", "not-an-address"),
        ("phone", "call me"),
        ("phone", "0351 1234567"),  # E.164 only
        ("phone", "+49 351 1234567"),
        ("email", "=1+1@example.org"),  # a formula in a spreadsheet
        ("last_name", "Muster\nmann"),  # control characters
        ("street", "Musterstraße\t1"),
        ("claim_subject", ""),
        ("street", ""),
    ],
)
def test_bad_value_is_rejected(validator: Draft202012Validator, column: str, value: str) -> None:
    assert not validator.is_valid({**CONSUMER_ROW, column: value})


def test_consumer_without_last_name_is_rejected(validator: Draft202012Validator) -> None:
    assert not validator.is_valid({**CONSUMER_ROW, "last_name": ""})


def test_business_without_company_name_is_rejected(validator: Draft202012Validator) -> None:
    assert not validator.is_valid({**BUSINESS_ROW, "company_name": ""})


def test_at_postal_code_has_four_digits(validator: Draft202012Validator) -> None:
    assert not validator.is_valid({**BUSINESS_ROW, "postal_code": "01067"})


def test_extra_column_is_rejected(validator: Draft202012Validator) -> None:
    assert not validator.is_valid({**CONSUMER_ROW, "customer_id": "cus-1"})


def test_missing_column_is_rejected(validator: Draft202012Validator) -> None:
    row = dict(CONSUMER_ROW)
    del row["email"]
    assert not validator.is_valid(row)


@pytest.mark.parametrize("column", ["first_name", "email", "phone", "date_of_birth"])
def test_optional_personal_column_may_be_empty(
    validator: Draft202012Validator, column: str
) -> None:
    assert validator.is_valid({**CONSUMER_ROW, column: ""})


def test_schema_requires_at_least_what_the_config_requires(
    validator: Draft202012Validator,
) -> None:
    # An empty cell is how a policy withholds a column; a column the schema demands for some
    # row must be one that config.py never lets a policy withhold (names depend on the kind).
    never_empty = {c for c in COLUMNS if not validator.is_valid({**CONSUMER_ROW, c: ""})}
    assert never_empty <= set(REQUIRED_COLUMNS)
    assert set(REQUIRED_COLUMNS) - never_empty == {"company_name"}
    # Address is required, other personal data may be withheld (a consumer's last name aside).
    assert never_empty & PERSONAL_COLUMNS == {"street", "postal_code", "city", "last_name"}


def test_csv_written_by_contract_validates(validator: Draft202012Validator) -> None:
    # The frame as the pipeline holds it: ints for cents, None for withheld values.
    records = []
    for row in (CONSUMER_ROW, BUSINESS_ROW):
        record: dict[str, object] = {c: (v or None) for c, v in row.items()}
        record.update({c: int(row[c]) for c in CENTS_COLUMNS})
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    rows = read_csv_rows(to_csv_bytes(frame))
    assert len(rows) == 2
    for row in rows:
        assert list(validator.iter_errors(row)) == []
    assert all(rows[0][c] for c in DATE_COLUMNS if c != "date_of_birth")


# --- outgoing bounds: length limits and formula cells, the same in schema and outgoing suite ---


def _outgoing_suite() -> list[dict]:
    return json.loads((SUITES_DIR / "outgoing.json").read_text(encoding="utf-8"))["expectations"]


def test_schema_and_outgoing_suite_agree_on_the_length_limits() -> None:
    in_schema = {
        column: prop["maxLength"]
        for column, prop in json_schema()["properties"].items()
        if "maxLength" in prop
    }
    in_suite = {
        e["kwargs"]["column"]: e["kwargs"]["max_value"]
        for e in _outgoing_suite()
        if e["type"] == "expect_column_value_lengths_to_be_between"
    }
    assert in_schema == in_suite == LENGTH_LIMITS
    assert LENGTH_LIMITS["email"] == 254 and LENGTH_LIMITS["last_name"] == 200
    for e in _outgoing_suite():
        if e["type"] == "expect_column_value_lengths_to_be_between":
            assert e["meta"]["quarantine"] == "too_long"
            assert "min_value" not in e["kwargs"]


@pytest.mark.parametrize("column", sorted(LENGTH_LIMITS))
def test_a_cell_longer_than_its_limit_is_refused(
    validator: Draft202012Validator, column: str
) -> None:
    limit = LENGTH_LIMITS[column]
    if column == "email":
        at_limit = "a" * (limit - len("@example.org")) + "@example.org"
    else:
        at_limit = "x" * limit
    assert validator.is_valid({**CONSUMER_ROW, column: at_limit})
    assert not validator.is_valid({**CONSUMER_ROW, column: at_limit + "x"})


@pytest.mark.parametrize("column", [c for c in COLUMNS if c not in CENTS_COLUMNS])
def test_no_text_cell_is_unbounded(validator: Draft202012Validator, column: str) -> None:
    # maxLength, an enum, or a pattern with bounded repetition: 10,000 characters never pass.
    for filler in ("a", "1", "x@y.de"):
        assert not validator.is_valid({**CONSUMER_ROW, column: filler * 10_000})


def test_the_free_text_columns_are_the_ones_the_schema_guards_against_formulas() -> None:
    guarded = {
        column
        for column, prop in json_schema()["properties"].items()
        if prop.get("pattern", "").startswith("^([^=+")
    }
    assert guarded == set(FREE_TEXT_COLUMNS)


@pytest.mark.parametrize("column", FREE_TEXT_COLUMNS)
@pytest.mark.parametrize("prefix", list(FORMULA_PREFIXES))
def test_an_unneutralised_formula_cell_is_refused(
    validator: Draft202012Validator, column: str, prefix: str
) -> None:
    value = f"{prefix}HYPERLINK(1)"
    assert not validator.is_valid({**CONSUMER_ROW, column: value})
    quoted = {**CONSUMER_ROW, column: "'" + value}
    # A tab or carriage return is a control character: refused anywhere, quoted or not.
    assert validator.is_valid(quoted) == (prefix not in "\t\r")


@pytest.mark.parametrize("prefix", list(FORMULA_PREFIXES))
def test_an_address_that_starts_like_a_formula_is_refused(
    validator: Draft202012Validator, prefix: str
) -> None:
    assert not validator.is_valid({**CONSUMER_ROW, "email": f"{prefix}x@example.org"})


def test_the_outgoing_suite_refuses_what_the_schema_refuses() -> None:
    formula = [
        e
        for e in _outgoing_suite()
        if e["type"] == "expect_column_values_to_not_match_regex"
        and e["kwargs"]["regex"].startswith("^")
    ]
    assert {e["kwargs"]["column"] for e in formula} == set(FREE_TEXT_COLUMNS)
    for e in formula:
        assert "quarantine" not in e["meta"]  # a bug in minimisation: the run stops
        regex = re.compile(e["kwargs"]["regex"])
        for prefix in FORMULA_PREFIXES:
            assert regex.search(f"{prefix}x") and not regex.search(f"'{prefix}x")
        assert not regex.search("Müller-Lüdenscheidt")
    (email,) = [
        e
        for e in _outgoing_suite()
        if e["type"] == "expect_column_values_to_match_regex" and e["kwargs"]["column"] == "email"
    ]
    assert email["kwargs"]["regex"] == json_schema()["properties"]["email"]["pattern"][3:]


# --- the CSV writer: built column-wise, byte for byte what the csv module writes ---


def _csv_module(rows: pd.DataFrame) -> bytes:
    """The reference: Python's csv writer, as the contract specifies the CSV."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(rows.columns)
    text = rows.astype(object).where(rows.notna(), "")
    writer.writerows(text.itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


TRICKY_TEXT = [
    "plain",
    "",
    None,
    "Müller, Meier & Co.",
    'Say "hi"',
    '"',
    ",",
    "two\nlines",
    "carriage\rreturn",
    "crlf\r\nend",
    " leading and trailing ",
    "'=SUM(A1)",
    "\u0130stanbul \U0001f600",
    "tab\tinside",
]


@pytest.mark.parametrize("tricky", TRICKY_TEXT)
def test_csv_is_what_the_csv_module_writes(tricky: str | None) -> None:
    records = []
    for row in (CONSUMER_ROW, BUSINESS_ROW):
        record: dict[str, object] = {c: (v or None) for c, v in row.items()}
        record.update({c: int(row[c]) for c in CENTS_COLUMNS})
        records.append(record)
    records[1]["street"] = tricky
    records[0]["claim_subject"] = tricky
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    assert to_csv_bytes(frame) == _csv_module(frame)
    assert read_csv_rows(to_csv_bytes(frame))[1]["street"] == (tricky or "")


def test_csv_of_other_types_and_no_rows_is_what_the_csv_module_writes() -> None:
    base = pd.DataFrame.from_records([CONSUMER_ROW] * 3, columns=list(COLUMNS))
    variants = {
        "no rows": base.iloc[:0],
        "floats": base.assign(principal_cents=[1.5, float("nan"), 3.0]),
        "nullable ints": base.assign(paid_cents=pd.array([1, None, 3], dtype="Int64")),
        "dates": base.assign(due_date=pd.to_datetime(["2026-01-01", None, "2026-01-03"])),
        "booleans": base.assign(language=[True, False, True]),
        "string dtype": base.astype("string"),
        "categories": base.assign(currency=pd.Categorical(["EUR", None, "CHF"])),
        "all missing": base.assign(email=None),
        "negative ints": base.assign(open_cents=[-1, 0, 2**62]),
    }
    for name, frame in variants.items():
        assert to_csv_bytes(frame) == _csv_module(frame), name


# agency_case_v1_1: v1 and one more column, for drops with an instalment.


def test_v1_1_is_v1_with_the_instalment_number_last() -> None:
    v1, v1_1 = json_schema(), json_schema(INSTALMENTS_VERSION)
    Draft202012Validator.check_schema(v1_1)
    assert v1_1["$id"].endswith("/agency_case_v1_1.json")
    assert tuple(v1_1["properties"]) == tuple(v1_1["required"]) == COLUMNS_V1_1
    assert (*COLUMNS, "instalment_number") == COLUMNS_V1_1
    for name in COLUMNS:  # every v1 rule is the same; only descriptions may say more
        rule = {k: v for k, v in v1_1["properties"][name].items() if k != "description"}
        assert rule == {k: v for k, v in v1["properties"][name].items() if k != "description"}
    assert v1_1["allOf"] == v1["allOf"] and v1_1["additionalProperties"] is False


@pytest.mark.parametrize(
    ("number", "valid"),
    [("1", True), ("12", True), ("", True), ("0", False), ("01", False), ("1.0", False)],
)
def test_v1_1_instalment_numbers(number: str, valid: bool) -> None:
    checker = Draft202012Validator(json_schema(INSTALMENTS_VERSION))
    row = {**CONSUMER_ROW, "instalment_number": number}
    assert checker.is_valid(row) is valid
    assert not checker.is_valid(CONSUMER_ROW)  # a v1 row lacks the column


def test_rows_say_their_version_and_both_are_written_and_read() -> None:
    v1 = pd.DataFrame([CONSUMER_ROW])
    v1_1 = v1.assign(instalment_number="2")
    assert (version_of(v1), version_of(v1_1)) == (SCHEMA_VERSION, INSTALMENTS_VERSION)
    assert read_csv_rows(to_csv_bytes(v1_1)) == [{**CONSUMER_ROW, "instalment_number": "2"}]
    assert read_csv_rows(to_csv_bytes(v1)) == [CONSUMER_ROW]
    with pytest.raises(ValueError):
        to_csv_bytes(v1.assign(extra="x"))
