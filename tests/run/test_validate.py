"""The Great Expectations suites (expectations/*.json) run through handover.run.validate."""

from __future__ import annotations

import gc
import json
import logging
import weakref
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from handover.contract import COLUMNS, for_validation
from handover.errors import ValidationFailed
from handover.run import validate
from tests.support.paths import SHOP_DDL

CANARY = "Zyxwv-canary"  # a value that must never appear in a result, report or message


def _ts(*values: str | None) -> pd.Series:
    """Naive datetime64 column, as the extractor delivers dates and UTC timestamps."""
    return pd.to_datetime(pd.Series(values, dtype=object))


def source_frames() -> dict[str, pd.DataFrame]:
    """A small, valid set of extracted source frames (pandas 3 default dtypes)."""
    return {
        "invoices": pd.DataFrame(
            {
                "invoice_id": ["inv-1", "inv-2"],
                "invoice_number": ["2024-1001", "2024-1002"],
                "customer_id": ["cus-1", "cus-2"],
                "order_date": _ts("2024-03-01", "2024-03-02"),
                "issued_at": _ts("2024-03-01", "2024-03-03"),
                "due_date": _ts("2024-03-15", "2024-03-17"),
                "amount_cents": pd.Series([12_000, 5_000], dtype="int64"),
                "currency": ["EUR", "EUR"],
                "status": ["open", "paid"],
            }
        ),
        "customers": pd.DataFrame(
            {
                "customer_id": ["cus-1", "cus-2"],
                "kind": ["consumer", "business"],
                "first_name": ["Erika", None],
                "last_name": ["Mustermann", None],
                "company_name": [None, "Beispiel GmbH"],
                "date_of_birth": _ts("1980-05-17", None),
                "email": ["erika@example.org", None],
                "phone": [None, "+43 1 234567"],
                "street": ["Musterstraße 1", "Beispielgasse 2"],
                "postal_code": ["01067", "1010"],
                "city": ["Dresden", "Wien"],
                "country": ["DE", "AT"],
                "language": ["de", "de"],
                "parent_customer_id": [None, None],
            }
        ),
        "payments": pd.DataFrame(
            {
                "invoice_id": ["inv-1", "inv-2"],
                "amount_cents": pd.Series([2_000, -500], dtype="int64"),  # -500: a refund
                "instalment_id": ["ins-1", None],
            }
        ),
        "dunning_events": pd.DataFrame(
            {
                "invoice_id": ["inv-1", "inv-1"],
                "kind": ["reminder", "dunning"],
                "sent_at": _ts("2024-03-20 08:00:00", "2024-04-02 08:00:00"),
                "fee_cents": pd.Series([None, 250], dtype="Int64"),
                "announces_handover": [False, True],
                "instalment_id": [None, "ins-1"],
            }
        ),
        "disputes": pd.DataFrame(
            {"invoice_id": ["inv-2"], "resolved_at": _ts(None), "outcome": [None]}
        ),
        "installment_plans": pd.DataFrame({"invoice_id": ["inv-2"], "status": ["completed"]}),
        "customer_flags": pd.DataFrame(
            {"customer_id": ["cus-2"], "flag": ["hardship"], "cleared_at": _ts("2024-01-01")}
        ),
        "consents": pd.DataFrame(
            {
                "customer_id": ["cus-1"],
                "purpose": ["contact_email"],
                "granted": [True],
                "recorded_at": _ts("2024-03-01 10:00:00"),
                "source": ["checkout"],
            }
        ),
        "holds": pd.DataFrame(
            {
                "invoice_id": [None],
                "customer_id": ["cus-2"],
                "expires_at": _ts(None),
                "held_until": _ts(None),
            }
        ),
        "unallocated_payments": pd.DataFrame(
            {
                "customer_id": ["cus-2"],
                "amount_cents": pd.Series([1_500], dtype="int64"),
                "received_at": _ts("2024-04-01"),
                "allocated_at": _ts("2024-04-03"),
            }
        ),
        "invoice_instalments": pd.DataFrame(
            {
                "instalment_id": ["ins-1", "ins-2"],
                "invoice_id": ["inv-1", "inv-1"],
                "due_date": _ts("2024-03-15", "2024-04-15"),
                "amount_cents": pd.Series([6_000, 6_000], dtype="int64"),
            }
        ),
    }


def outgoing_frames() -> dict[str, pd.DataFrame]:
    """Valid outgoing rows as `contract.for_validation` gives them: invoice_id, rows, helper."""
    rows = pd.DataFrame(
        {
            "case_ref": ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"],
            "invoice_number": ["2024-1001", "2024-1003"],
            "debtor_kind": ["consumer", "business"],
            "first_name": ["Erika", None],
            "last_name": ["Mustermann", None],
            "company_name": [None, "Beispiel GmbH"],
            "street": ["Musterstraße 1", "Beispielgasse 2"],
            "postal_code": ["01067", "1010"],
            "city": ["Dresden", "Wien"],
            "country": ["DE", "AT"],
            "language": ["de", "de"],
            "email": ["erika@example.org", None],
            "phone": [None, "+431234567"],
            "date_of_birth": [None, None],
            "order_date": ["2024-03-01", "2024-03-02"],
            "invoice_date": ["2024-03-01", "2024-03-03"],
            "due_date": ["2024-03-15", "2024-03-17"],
            "default_date": ["2024-04-02", "2024-04-03"],
            "currency": ["EUR", "EUR"],
            "principal_cents": pd.Series([12_000, 5_000], dtype="int64"),
            "paid_cents": pd.Series([2_000, 0], dtype="int64"),
            "open_cents": pd.Series([10_000, 5_000], dtype="int64"),
            "dunning_fees_cents": pd.Series([0, 250], dtype="int64"),
            "claim_subject": ["Online-Bestellung 2024-1001", "Online-Bestellung 2024-1003"],
            "last_dunning_date": ["2024-04-16", "2024-04-03"],
            "handover_notice_date": ["2024-04-16", "2024-04-03"],
        },
    )
    assert tuple(rows.columns) == COLUMNS
    rows.index = pd.Index(["inv-1", "inv-3"], name="invoice_id")
    return {"outgoing": for_validation(rows)}


def _frames(suite: str) -> dict[str, pd.DataFrame]:
    return source_frames() if suite == "source" else outgoing_frames()


# --- the suite files -----------------------------------------------------------------------------


@pytest.mark.parametrize("suite", ["source", "outgoing"])
def test_suite_file_is_in_gx_format(suite: str) -> None:
    from great_expectations.core import ExpectationSuite

    data = json.loads((validate.SUITES_DIR / f"{suite}.json").read_text(encoding="utf-8"))
    # GX drops invalid expectations with a log line only: the count proves none was dropped.
    assert len(ExpectationSuite(**data).expectations) == len(data["expectations"])
    tables = {e["meta"]["table"] for e in data["expectations"]}
    assert tables == set(_frames(suite))


def test_outgoing_suite_expects_contract_columns_then_helper() -> None:
    data = json.loads((validate.SUITES_DIR / "outgoing.json").read_text(encoding="utf-8"))
    (ordered,) = [
        e for e in data["expectations"] if e["type"] == "expect_table_columns_to_match_ordered_list"
    ]
    assert ordered["kwargs"]["column_list"] == ["invoice_id", *COLUMNS, "sum_check_cents"]


def test_source_suite_columns_are_in_shop_contract() -> None:
    ddl = SHOP_DDL.read_text()
    data = json.loads((validate.SUITES_DIR / "source.json").read_text(encoding="utf-8"))
    for e in data["expectations"]:
        if e["type"] == "expect_table_columns_to_match_set":
            table = e["meta"]["table"]
            assert f"CREATE TABLE {table} (" in ddl
            for column in e["kwargs"]["column_set"]:
                assert f"\n    {column} " in ddl, f"{table}.{column} is not in shop_source.sql"


# --- good data -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", ["source", "outgoing"])
def test_good_frames_pass(suite: str) -> None:
    report = validate.check(_frames(suite), suite)
    assert report.success
    assert report.failures() == ()
    n = len(report.outcomes)
    assert report.summary() == f"{suite}: {n}/{n} expectations passed"


def test_empty_source_frames_pass() -> None:
    # A shop without disputes, holds, ...: zero rows, and dtype object as read_sql gives them.
    frames = {name: pd.DataFrame(columns=f.columns) for name, f in source_frames().items()}
    assert validate.check(frames, "source").success


def test_other_string_and_datetime_dtypes_pass() -> None:
    frames = source_frames()
    invoices = frames["invoices"]
    invoices["invoice_id"] = invoices["invoice_id"].astype(object)
    invoices["currency"] = invoices["currency"].astype("string")
    invoices["due_date"] = invoices["due_date"].astype("datetime64[ns]")
    frames["customers"]["date_of_birth"] = frames["customers"]["date_of_birth"].astype(
        "datetime64[s]"
    )
    frames["dunning_events"]["fee_cents"] = pd.Series([0, 250], dtype="int64")
    assert validate.check(frames, "source").success


def test_frames_are_not_modified() -> None:
    frames = source_frames()
    before = {name: frame.copy() for name, frame in frames.items()}
    validate.check(frames, "source")
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, before[name])


# --- each category of failure --------------------------------------------------------------------


def _set(table: str, column: str, value: object, row: int = 0) -> Callable[[dict], None]:
    def mutate(frames: dict[str, pd.DataFrame]) -> None:
        frames[table].loc[row, column] = value

    return mutate


def _replace(table: str, column: str, series: pd.Series) -> Callable[[dict], None]:
    def mutate(frames: dict[str, pd.DataFrame]) -> None:
        frames[table][column] = series

    return mutate


def _drop(table: str, column: str) -> Callable[[dict], None]:
    def mutate(frames: dict[str, pd.DataFrame]) -> None:
        frames[table] = frames[table].drop(columns=[column])

    return mutate


def _add(table: str, column: str) -> Callable[[dict], None]:
    def mutate(frames: dict[str, pd.DataFrame]) -> None:
        frames[table][column] = "x"

    return mutate


FAILURES = [
    # id, suite, mutation, table, expectation, column
    (
        "bad currency",
        "source",
        _set("invoices", "currency", "eur"),
        "invoices",
        "expect_column_values_to_match_regex",
        "currency",
    ),
    (
        "duplicate invoice_id",
        "source",
        _set("invoices", "invoice_id", "inv-1", row=1),
        "invoices",
        "expect_column_values_to_be_unique",
        "invoice_id",
    ),
    (
        "negative amount",
        "source",
        _set("invoices", "amount_cents", -1),
        "invoices",
        "expect_column_values_to_be_between",
        "amount_cents",
    ),
    (
        "unknown status",
        "source",
        _set("invoices", "status", "archived"),
        "invoices",
        "expect_column_values_to_be_in_set",
        "status",
    ),
    (
        "due before issue",
        "source",
        _replace("invoices", "due_date", _ts("2024-02-28", "2024-03-17")),
        "invoices",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "due_date, issued_at",
    ),
    (
        "timezone-aware timestamp",
        "source",
        _replace(
            "dunning_events", "sent_at", _ts("2024-03-20", "2024-04-02").dt.tz_localize("UTC")
        ),
        "dunning_events",
        "expect_column_values_to_be_of_type",
        "sent_at",
    ),
    (
        "float fee_cents",
        "source",
        _replace("dunning_events", "fee_cents", pd.Series([None, 250.0])),
        "dunning_events",
        "expect_column_values_to_be_of_type",
        "fee_cents",
    ),
    (
        "postal code as integer",
        "source",
        _replace("customers", "postal_code", pd.Series([1067, 1010])),
        "customers",
        "expect_column_values_to_be_of_type",
        "postal_code",
    ),
    (
        "hold on nothing",
        "source",
        _set("holds", "customer_id", None),
        "holds",
        "expect_column_values_to_not_be_null",
        "invoice_id",
    ),
    (
        "bad postal code",
        "outgoing",
        _set("outgoing", "postal_code", "D-01067"),
        "outgoing",
        "expect_column_values_to_match_regex",
        "postal_code",
    ),
    (
        "AT postal code with 5 digits",
        "outgoing",
        _set("outgoing", "postal_code", "10100", row=1),
        "outgoing",
        "expect_column_values_to_match_regex",
        "postal_code",
    ),
    (
        "sum check not zero",
        "outgoing",
        _set("outgoing", "sum_check_cents", 1),
        "outgoing",
        "expect_column_values_to_be_in_set",
        "sum_check_cents",
    ),
    (
        "bad case_ref",
        "outgoing",
        _set("outgoing", "case_ref", "0123456789ABCDEF0123456789ABCDEF"),
        "outgoing",
        "expect_column_values_to_match_regex",
        "case_ref",
    ),
    (
        "duplicate case_ref",
        "outgoing",
        _set("outgoing", "case_ref", "0123456789abcdef0123456789abcdef", row=1),
        "outgoing",
        "expect_column_values_to_be_unique",
        "case_ref",
    ),
    (
        "consumer without last name",
        "outgoing",
        _set("outgoing", "last_name", None),
        "outgoing",
        "expect_column_values_to_not_be_null",
        "last_name",
    ),
    (
        "date not ISO",
        "outgoing",
        _set("outgoing", "due_date", "15.03.2024"),
        "outgoing",
        "expect_column_values_to_match_regex",
        "due_date",
    ),
    (
        "default not after due date",
        "outgoing",
        _set("outgoing", "default_date", "2024-03-15"),
        "outgoing",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "default_date, due_date",
    ),
    (
        # An object column of str is checked as str dtype (validate._as_strings); not this one.
        "number in an object text column",
        "outgoing",
        _replace("outgoing", "city", pd.Series(["Dresden", 1010], dtype=object)),
        "outgoing",
        "expect_column_values_to_be_of_type",
        "city",
    ),
    (
        "bad postal code in an object column of str",
        "outgoing",
        _replace("outgoing", "postal_code", pd.Series(["0106", "1010"], dtype=object)),
        "outgoing",
        "expect_column_values_to_match_regex",
        "postal_code",
    ),
    (
        "negative open cents",
        "outgoing",
        _set("outgoing", "open_cents", -5),
        "outgoing",
        "expect_column_values_to_be_between",
        "open_cents",
    ),
]


@pytest.mark.parametrize(
    ("suite", "mutate", "table", "expectation", "column"),
    [f[1:] for f in FAILURES],
    ids=[f[0] for f in FAILURES],
)
def test_failure_is_reported(
    suite: str,
    mutate: Callable[[dict], None],
    table: str,
    expectation: str,
    column: str,
) -> None:
    frames = _frames(suite)
    mutate(frames)
    # One run only (GX is slow): the message lists every failing outcome as
    # "<table>: <expectation> on <column>: <count or dtype>".
    with pytest.raises(ValidationFailed) as caught:
        validate.check(frames, suite)
    message = str(caught.value)
    assert f"suite '{suite}' failed" in message
    assert f"\n  {table}: {expectation} on {column}: " in message
    assert "then run again" in message or "report it" in message


def test_validate_reports_without_raising() -> None:
    frames = source_frames()
    frames["invoices"].loc[0, "currency"] = "eur"
    frames["invoices"].loc[1, "currency"] = "euro"
    report = validate.validate(frames, "source")
    assert not report.success
    (failure,) = report.failures()
    assert failure == validate.ExpectationOutcome(
        table="invoices",
        expectation="expect_column_values_to_match_regex",
        column="currency",
        success=False,
        unexpected_count=2,
        reason="invalid_currency",
        id_columns=("invoice_id",),
        unexpected_ids=(("inv-1",), ("inv-2",)),
    )
    n = len(report.outcomes)
    assert report.summary() == f"source: {n - 1}/{n} expectations passed"


def test_missing_column_fails_clearly() -> None:
    frames = source_frames()
    _drop("invoices", "currency")(frames)
    report = validate.validate(frames, "source")
    exists = [o for o in report.failures() if o.expectation == "expect_column_to_exist"]
    assert [(o.table, o.column) for o in exists] == [("invoices", "currency")]
    with pytest.raises(ValidationFailed) as caught:
        validate.check(frames, "source")
    message = str(caught.value)
    assert "invoices: column currency is missing (expect_column_to_exist)" in message
    assert "missing columns: currency" in message
    # The expectations that could not run on the missing column are counted, not listed.
    assert "expect_column_values_to_match_regex on currency" not in message
    assert "could not run" in message


def test_extra_source_column_fails() -> None:
    # Data minimisation: the extractor must not read more than the suite names.
    frames = source_frames()
    _add("customers", "iban")(frames)
    with pytest.raises(ValidationFailed, match="customers: expect_table_columns_to_match_set"):
        validate.check(frames, "source")


def test_outgoing_columns_out_of_order_fail() -> None:
    frames = outgoing_frames()
    cases = frames["outgoing"]
    frames["outgoing"] = cases[["invoice_id", "invoice_number", "case_ref", *cases.columns[3:]]]
    report = validate.validate(frames, "outgoing")
    (ordered,) = [
        o
        for o in report.failures()
        if o.expectation == "expect_table_columns_to_match_ordered_list"
    ]
    assert ordered.column is None
    assert "expected case_ref" in (ordered.detail or "")


def test_wrong_dtype_names_the_dtype() -> None:
    frames = outgoing_frames()
    frames["outgoing"]["paid_cents"] = frames["outgoing"]["paid_cents"].astype(float)
    with pytest.raises(ValidationFailed, match="on paid_cents: observed dtype float64"):
        validate.check(frames, "outgoing")


@pytest.mark.parametrize("suite", ["source", "outgoing"])
def test_missing_frame_names_the_table(suite: str) -> None:
    frames = _frames(suite)
    name = next(iter(frames))
    del frames[name]
    for run in (validate.check, validate.validate):
        with pytest.raises(ValidationFailed, match=name):
            run(frames, suite)


def test_unknown_suite() -> None:
    with pytest.raises(ValidationFailed, match="no expectation suite 'nope'"):
        validate.check({}, "nope")


# --- privacy -------------------------------------------------------------------------------------

ID_COLUMNS = {"invoice_id", "customer_id"}


def _poisoned(suite: str) -> dict[str, pd.DataFrame]:
    """Frames in which every value but the ids is a canary, duplicated: nearly all fail.

    Ids stay clean: results name failing rows by them on purpose (they are not personal data).
    """
    frames = {}
    for name, frame in _frames(suite).items():
        poisoned = pd.DataFrame(
            {
                c: frame[c].tolist()
                if c in ID_COLUMNS
                else [f"{CANARY}-{name}-{c}-{i}" for i in range(len(frame))]
                for c in frame.columns
            }
        )
        frames[name] = pd.concat([poisoned, poisoned], ignore_index=True)
    # A mixed-type column too: it makes GX raise inside a metric, and pandas' exception messages
    # can quote values.
    first = next(iter(frames))
    column = frames[first].columns[-1]
    frames[first][column] = frames[first][column].astype(object)
    frames[first].loc[0, column] = 123456789
    return frames


@pytest.mark.parametrize("suite", ["source", "outgoing"])
def test_no_value_in_results_reports_messages_or_logs(
    suite: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    frames = _poisoned(suite)
    loaded = validate._load(suite)
    raw = [r.to_json_dict() for t in loaded.tables for r in validate._run_table(t, frames[t.table])]
    report = validate.validate(frames, suite)
    with pytest.raises(ValidationFailed) as caught:
        validate.check(frames, suite)

    assert len(report.failures()) > 10  # the canary rows did fail
    # Failing rows are named by their ids, in the raw results and in the report:
    text = json.dumps(raw)
    assert '"unexpected_index_list"' in text
    assert any(o.unexpected_ids for o in report.failures())
    for text in (json.dumps(raw), repr(report), str(caught.value), caplog.text):
        assert CANARY not in text
        assert "123456789" not in text


def test_the_canary_check_can_fail() -> None:
    # Without exclude_unexpected_values GX would put the values into the result: the check
    # above is meaningful only because the result format removes them.
    frames = _poisoned("outgoing")
    (table,) = validate._load("outgoing").tables
    batch = table.batch_definition.get_batch(batch_parameters={"dataframe": frames["outgoing"]})
    leaky = {**validate.row_result_format(["invoice_id"]), "exclude_unexpected_values": False}
    try:
        assert CANARY in json.dumps(batch.validate(table.suite, result_format=leaky).to_json_dict())
    finally:
        validate._forget_batches(validate._load("outgoing").datasource)


def test_nothing_is_written_under_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    validate._build.cache_clear()  # create the GX context with tmp_path as cwd
    validate.check(source_frames(), "source")
    with pytest.raises(ValidationFailed):
        validate.check(_poisoned("outgoing"), "outgoing")
    assert list(tmp_path.iterdir()) == []
    assert not (validate.SUITES_DIR.parent / "gx").exists()


def test_frame_is_released_after_validation() -> None:
    # GX caches the last batch's DataFrame; validation must not keep personal data alive.
    frames = outgoing_frames()
    ref = weakref.ref(frames["outgoing"])
    validate.check(frames, "outgoing")
    del frames
    gc.collect()
    assert ref() is None


# --- speed ---------------------------------------------------------------------------------------


def test_a_clean_batch_asks_gx_for_success_only() -> None:
    # BOOLEAN_ONLY first: on a clean batch GX builds no counts or id lists, most of its work.
    frames = outgoing_frames()
    (table,) = validate._load("outgoing").tables
    try:
        results = validate._run_table(table, frames["outgoing"])
    finally:
        validate._forget_batches(validate._load("outgoing").datasource)
    assert len(results) == len(table.suite.expectations)
    assert all(r.success for r in results)
    assert not [r for r in results if "unexpected_count" in (r.result or {})]


def test_only_failed_expectations_run_again_with_ids() -> None:
    frames = outgoing_frames()
    frames["outgoing"].loc[1, "open_cents"] = -5
    (table,) = validate._load("outgoing").tables
    try:
        results = validate._run_table(table, frames["outgoing"])
    finally:
        validate._forget_batches(validate._load("outgoing").datasource)
    detailed = [r for r in results if "unexpected_count" in (r.result or {})]
    assert [r.success for r in detailed] == [False] * len(detailed)
    assert [r.expectation_config.kwargs.get("column") for r in detailed] == ["open_cents"]
    assert detailed[0].result["unexpected_index_list"] == [{"invoice_id": ["inv-3"]}]


def test_batches_are_not_fingerprinted() -> None:
    # GX would hash every row for a batch marker: seconds at 1M invoices, a digest of the data.
    frames = outgoing_frames()
    (table,) = validate._load("outgoing").tables
    batch = table.batch_definition.get_batch(batch_parameters={"dataframe": frames["outgoing"]})
    try:
        assert "pandas_data_fingerprint" not in batch.batch_markers
    finally:
        validate._forget_batches(validate._load("outgoing").datasource)


def test_object_columns_of_str_become_str_dtype() -> None:
    frame = pd.DataFrame(
        {
            "text": pd.Series(["a", None, float("nan")], dtype=object),
            "mixed": pd.Series(["a", 1, None], dtype=object),
            "number": [1, 2, 3],
        }
    )
    seen = validate._as_strings(frame)
    assert seen["text"].dtype == pd.Series(["a"]).dtype
    assert seen["text"].isna().tolist() == [False, True, True]
    assert seen["mixed"].dtype == object
    assert seen["number"].dtype == "int64"
    assert frame["text"].dtype == object  # the caller's frame is left as it was


def test_warm_up_builds_the_suites_in_the_background() -> None:
    validate._build.cache_clear()
    # An unknown suite's error is dropped there (validation raises it with its message).
    thread = validate.warm_up(("source", "nope", "outgoing"))
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert validate._build.cache_info().currsize == 1  # it stopped at the error
    thread = validate.warm_up()
    thread.join(timeout=300)
    assert validate._build.cache_info().currsize == 2
    validate.check(outgoing_frames(), "outgoing")
    assert validate._build.cache_info().currsize == 2
