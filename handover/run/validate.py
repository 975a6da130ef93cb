"""Run the Great Expectations suites in `expectations/` on in-memory frames.

A suite is a JSON file in the format `ExpectationSuite` serialises to. GX validates one DataFrame
per batch, so every expectation names its frame in `meta.table` and the suite is split by table.
Two suites exist: `source` (the extracted shop tables, before the eligibility rules) and
`outgoing` (the rows of a drop, frame `outgoing`).

The suite's `meta` says how failing rows are identified: `row_ids` names each table's id
columns (invoice_id, customer_id) and `cases` the table whose rows are the batch's cases. An
expectation whose `meta.quarantine` holds a reason code is row-level: `handover.run.quarantine`
holds back the cases of its failing rows instead of stopping the run. `references` lists foreign
keys (every invoice's customer was extracted), which `handover.run.quarantine` checks with
pandas: GX copies an expectation's value set for every metric, which takes seconds for 20,000 ids.

Privacy: GX runs in an ephemeral (in-memory) context, so nothing is written to disk, and batches
are not fingerprinted (a digest of the data). Every table is validated with BOOLEAN_ONLY first;
the expectations that failed run again: on tables with id columns with result format COMPLETE,
`unexpected_index_column_names` set to those columns and `exclude_unexpected_values`, so a
result lists the failing rows' ids and no value; on other tables with a result format that keeps
counts only. Reports and `ValidationFailed` name suites, tables, expectations, columns and
counts, never values.

Speed: GX's cost is mostly per expectation and per metric, so a clean batch (the usual night)
asks only for success; its import takes seconds, so a run starts `warm_up` first.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from handover.errors import ValidationFailed

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations"

# Counts only. GX's default (BASIC) puts up to 20 offending values per expectation into the
# result ("partial_unexpected_list"); those are personal data and must not reach logs or errors.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
    "include_unexpected_rows": False,
}
# The first pass: success only (see _run_table).
BOOLEAN_ONLY: dict[str, Any] = {"result_format": "BOOLEAN_ONLY"}
_REASON_CODE = re.compile(r"^[a-z][a-z_]*$")

_INDEX = "handover_index"
_DTYPE_EXPECTATIONS = frozenset(
    {"expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"}
)
# pandas' str dtype, missing values as NaN: what the extraction's text columns have.
_STR = pd.StringDtype(storage="python", na_value=float("nan"))
_DEFAULT_ON_FAILURE = "Fix the data or the code that produced it, then run again."

# GX contexts are not documented as thread-safe, and building one changes GX's global current
# context; Prefect may run tasks in threads, and warm_up builds in one. So building and running
# take the same lock.
_LOCK = threading.RLock()


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation on one frame: counts, never values."""

    table: str
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    # True when GX could not evaluate the expectation (a missing column, an unsupported dtype).
    raised: bool = False
    # For a failed column-list expectation, the columns missing, unexpected or out of order;
    # for a failed dtype expectation, the observed dtype. Names only, never a row's value.
    detail: str | None = None
    # meta.quarantine: the reason code that makes a failure row-level (handover.run.quarantine).
    reason: str | None = None
    # The table's id columns (meta.row_ids) and, for each failing row, their values: ids only.
    id_columns: tuple[str, ...] = ()
    unexpected_ids: tuple[tuple[str | None, ...], ...] = ()


@dataclass(frozen=True)
class ValidationReport:
    """All outcomes of one suite run."""

    suite: str
    outcomes: tuple[ExpectationOutcome, ...]

    @property
    def success(self) -> bool:
        """True when every expectation passed."""
        return all(o.success for o in self.outcomes)

    def failures(self) -> tuple[ExpectationOutcome, ...]:
        """The outcomes that did not pass, in suite order."""
        return tuple(o for o in self.outcomes if not o.success)

    def summary(self) -> str:
        """One line, for example 'source: 41/41 expectations passed'."""
        passed = sum(o.success for o in self.outcomes)
        return f"{self.suite}: {passed}/{len(self.outcomes)} expectations passed"


@dataclass(frozen=True)
class Reference:
    """A foreign key of the suite's meta.references: table.column values in target.column."""

    table: str
    column: str
    target: str
    target_column: str
    reason: str  # the quarantine code of a row whose value is not in the target


@dataclass(frozen=True)
class SuiteLayout:
    """How a suite identifies rows: the cases table, each table's id columns, its references."""

    cases: str | None
    row_ids: Mapping[str, tuple[str, ...]]
    references: tuple[Reference, ...] = ()


def check(frames: Mapping[str, pd.DataFrame], suite: str) -> ValidationReport:
    """Validate `frames` against `expectations/<suite>.json`; raise ValidationFailed on failure."""
    report = validate(frames, suite)
    if not report.success:
        raise ValidationFailed(failure_message(report))
    return report


def layout(suite: str) -> SuiteLayout:
    """The suite's cases table and id columns (its meta.cases and meta.row_ids)."""
    loaded = _load(suite)
    return SuiteLayout(
        cases=loaded.cases,
        row_ids={t.table: t.row_ids for t in loaded.tables},
        references=loaded.references,
    )


def failure_message(
    report: ValidationReport, failures: Sequence[ExpectationOutcome] | None = None
) -> str:
    """The message of a ValidationFailed for `failures` (default: every failure of `report`)."""
    return _failure_message(report, _load(report.suite).on_failure, failures)


def warm_up(suites: Sequence[str] = ("source", "outgoing")) -> threading.Thread:
    """Import GX and build the suites' contexts in a background thread; returns it, started.

    Importing great_expectations takes seconds; a run calls this first, so the import overlaps
    the returns, recalls and extraction instead of delaying validation. An error here is
    dropped: validation loads the suite again and raises it there, with its message.
    """

    def build() -> None:
        for suite in suites:
            try:
                _load(suite)
            except Exception:  # validate() raises it again, with its message
                return

    thread = threading.Thread(target=build, name="handover-gx-warm-up", daemon=True)
    thread.start()
    return thread


def validate(frames: Mapping[str, pd.DataFrame], suite: str) -> ValidationReport:
    """Validate `frames` against `expectations/<suite>.json` and report, without raising.

    A frame the suite names but `frames` lacks is a wiring error, not a data finding: it raises
    ValidationFailed here too. Frames the suite does not name are ignored.
    """
    loaded = _load(suite)
    missing = [t.table for t in loaded.tables if t.table not in frames]
    if missing:
        raise ValidationFailed(
            f"suite '{suite}' needs the frame(s) {', '.join(missing)}, which were not passed to "
            "validation; pass every frame the suite names (see meta.table in "
            f"{_suite_path(suite)})"
        )
    for table in loaded.tables:
        if not isinstance(frames[table.table], pd.DataFrame):
            raise TypeError(f"frame '{table.table}' must be a pandas DataFrame")
    outcomes: list[ExpectationOutcome] = []
    with _LOCK:
        try:
            for table in loaded.tables:
                outcomes.extend(_outcome(table, r) for r in _run_table(table, frames[table.table]))
        finally:
            _forget_batches(loaded.datasource)
    return ValidationReport(suite=suite, outcomes=tuple(outcomes))


# --- loading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TableSuite:
    table: str
    batch_definition: Any  # great_expectations.core.batch_definition.BatchDefinition
    suite: Any  # great_expectations.core.ExpectationSuite, one table's part
    row_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class _LoadedSuite:
    name: str
    datasource: Any  # great_expectations.datasource.fluent.PandasDatasource
    tables: tuple[_TableSuite, ...]
    on_failure: str
    cases: str | None = None
    references: tuple[Reference, ...] = ()


def _suite_path(suite: str) -> Path:
    return SUITES_DIR / f"{suite}.json"


def _load(suite: str) -> _LoadedSuite:
    path = _suite_path(suite)
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ValidationFailed(
            f"no expectation suite '{suite}': {path} does not exist; the suites are "
            + ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.json")))
        ) from None
    # Keyed by mtime so a long-running worker picks up an edited suite. Under the lock, so a
    # validation that starts while warm_up still builds waits for it instead of building again.
    with _LOCK:
        return _build(suite, mtime)


@lru_cache(maxsize=8)
def _build(suite: str, _mtime_ns: int) -> _LoadedSuite:
    """Build a context, one dataframe asset per table and the table suites (~35 ms, cached)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Imported here: importing great_expectations takes seconds, and most commands never validate.
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    _no_fingerprints()
    path = _suite_path(suite)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        configs = data["expectations"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(f"{path}: not a readable expectation suite ({exc})") from None

    suite_meta = data.get("meta") or {}
    row_ids, cases, references = _read_layout(path, suite_meta)
    by_table: dict[str, list[Any]] = {}
    for index, config in enumerate(configs):
        table = (config.get("meta") or {}).get("table") if isinstance(config, dict) else None
        if not isinstance(table, str) or not table:
            raise ValidationFailed(f"{path}: expectation #{index} has no meta.table")
        reason = config["meta"].get("quarantine")
        if reason is not None and not (
            isinstance(reason, str) and _REASON_CODE.match(reason) and row_ids.get(table)
        ):
            raise ValidationFailed(
                f"{path}: expectation #{index} has meta.quarantine {reason!r}: a reason code is "
                "lower_snake_case, and its table needs id columns in the suite's meta.row_ids"
            )
        # The index survives into the result's meta, so outcomes can be put in suite order.
        config = {**config, "meta": {**config["meta"], _INDEX: index}}
        try:
            # ExpectationSuite(...) would log and silently drop an invalid expectation.
            expectation = ExpectationConfiguration(**config).to_domain_obj()
        except Exception as exc:
            raise ValidationFailed(
                f"{path}: expectation #{index} ({config.get('type')}) is not valid in "
                f"great_expectations {gx.__version__}: {type(exc).__name__}"
            ) from None
        by_table.setdefault(table, []).append(expectation)

    # Ephemeral: a file context would write a gx/ tree and store every result. No temporary
    # docs site, no progress bars on stderr.
    context_config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(project_config=context_config, mode="ephemeral")
    datasource = context.data_sources.add_pandas(name=f"handover-{suite}")
    tables = tuple(
        _TableSuite(
            table=table,
            batch_definition=datasource.add_dataframe_asset(
                name=table
            ).add_batch_definition_whole_dataframe("whole"),
            suite=ExpectationSuite(name=f"{suite}.{table}", expectations=expectations),
            row_ids=row_ids.get(table, ()),
        )
        for table, expectations in by_table.items()
    )
    on_failure = suite_meta.get("on_failure") or _DEFAULT_ON_FAILURE
    return _LoadedSuite(
        name=suite,
        datasource=datasource,
        tables=tables,
        on_failure=on_failure,
        cases=cases,
        references=references,
    )


def _no_fingerprints() -> None:
    """Stop GX from fingerprinting every batch (an md5 over all its rows, kept in the result).

    GX hashes each DataFrame smaller than `HASH_THRESHOLD` bytes for a batch marker that nothing
    here reads; at 1M invoices that took longer than all the source checks together, and it is a
    digest of personal data. A threshold of 0 is GX's own path for frames too large to hash.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    # tests/run/test_validate.py checks that no fingerprint is made, should a GX upgrade rename it.
    pandas_execution_engine.HASH_THRESHOLD = 0


def _read_layout(
    path: Path, meta: Mapping[str, Any]
) -> tuple[dict[str, tuple[str, ...]], str | None, tuple[Reference, ...]]:
    """The suite's meta.row_ids, meta.cases and meta.references, checked."""
    try:
        row_ids = {str(t): tuple(map(str, c)) for t, c in (meta.get("row_ids") or {}).items()}
        references = tuple(
            Reference(*r["from"].split("."), *r["to"].split("."), reason=r["quarantine"])
            for r in meta.get("references") or ()
        )
    except (AttributeError, TypeError, KeyError):
        raise ValidationFailed(
            f"{path}: meta.row_ids must map tables to lists of id columns, and each of "
            "meta.references needs 'from' and 'to' as 'table.column' and a 'quarantine' code"
        ) from None
    for reference in references:
        if not (_REASON_CODE.match(reference.reason) and row_ids.get(reference.table)):
            raise ValidationFailed(
                f"{path}: meta.references from {reference.table}.{reference.column}: its "
                "quarantine code must be lower_snake_case and its table needs meta.row_ids"
            )
    cases = meta.get("cases")
    if cases is not None and "invoice_id" not in row_ids.get(cases, ()):
        raise ValidationFailed(
            f"{path}: meta.cases names '{cases}', whose meta.row_ids must include invoice_id"
        )
    return row_ids, cases, references


# --- running -------------------------------------------------------------------------------------


def row_result_format(row_ids: Sequence[str]) -> dict[str, Any]:
    """The result format for a table with id columns: failing rows' ids, never their values.

    COMPLETE lists every failing row; `exclude_unexpected_values` keeps the tested column's
    values out of `unexpected_index_list` and drops `unexpected_list`; the pandas query that
    would select the rows is not built.
    """
    return {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": list(row_ids),
        "exclude_unexpected_values": True,
        "partial_unexpected_count": 0,
        "include_unexpected_rows": False,
        "return_unexpected_index_query": False,
    }


def _run_table(table: _TableSuite, frame: pd.DataFrame) -> list[Any]:
    """Run one table's suite; GX's ExpectationValidationResults in suite order (ids, no values).

    The whole suite runs with BOOLEAN_ONLY, which computes each expectation's unexpected count
    and nothing else; only the expectations that failed run again, on the same batch, with the
    result format that reports counts, failing rows' ids and column names. On a clean batch (the
    usual night) GX thus builds no unexpected value or index lists, which is most of its work
    per expectation. One Validator per table loads the batch once (`Batch.validate` would load
    it again for each call).
    """
    from great_expectations.core import ExpectationSuite
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=table.batch_definition,
        batch_parameters={"dataframe": _as_strings(frame)},
        result_format=BOOLEAN_ONLY,
    )
    results = {
        r.expectation_config.meta[_INDEX]: r
        for r in validator.validate_expectation_suite(table.suite).results
    }
    failed = [e for e in table.suite.expectations if not results[e.meta[_INDEX]].success]
    if failed:
        validator.result_format = (
            row_result_format(table.row_ids) if table.row_ids else RESULT_FORMAT
        )
        again = ExpectationSuite(name=f"{table.suite.name}.failed", expectations=failed)
        for r in validator.validate_expectation_suite(again).results:
            results[r.expectation_config.meta[_INDEX]] = r
    return _in_order(results)


def _as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each object column that holds only str (or missing) as pandas' str dtype.

    GX checks a str dtype column's type from its dtype, but an object column's value by value in
    Python; every other expectation sees the same values and missing values either way. A column
    holding anything but str stays object, so GX finds and reports it as before.
    """
    strings = [
        name
        for name, dtype in frame.dtypes.items()
        if pd.api.types.is_object_dtype(dtype)
        and pd.api.types.infer_dtype(frame[name], skipna=True) == "string"
    ]
    if not strings:
        return frame
    frame = frame.copy(deep=False)
    for name in strings:
        frame[name] = frame[name].astype(_STR)
    return frame


def _in_order(results: Mapping[int, Any]) -> list[Any]:
    # GX returns results grouped by metric, not in suite order.
    return [results[i] for i in sorted(results)]


def _forget_batches(datasource: Any) -> None:
    """Drop GX's reference to the last validated DataFrame.

    The datasource's execution engine keeps the last batch's data; through the cached context
    (and GX's global project manager) that would keep personal data alive after validation.
    """
    manager = datasource.get_execution_engine().batch_manager
    manager.reset_batch_cache()
    # Private in GX 1.x, hence defensive; tests/test_validation.py checks the frame is released.
    data_cache = getattr(manager, "_batch_data_cache", None)
    if isinstance(data_cache, dict):
        data_cache.clear()
    if hasattr(manager, "_active_batch_data_id"):
        manager._active_batch_data_id = None


def _column(kwargs: Mapping[str, Any]) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    if "column_list" in kwargs:
        return ", ".join(kwargs["column_list"])
    return None  # table-level (for example the ordered column list)


def _raised(exception_info: Any) -> bool:
    # GX stores either one info dict or a dict of them keyed by the failing metric.
    if not isinstance(exception_info, dict):
        return False
    if exception_info.get("raised_exception"):
        return True
    return any(isinstance(v, dict) and v.get("raised_exception") for v in exception_info.values())


def _outcome(table: _TableSuite, result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    kwargs = config.kwargs
    column = None if config.type.startswith("expect_table_") else _column(kwargs)
    details = result.result or {}
    count = details.get("unexpected_count")
    return ExpectationOutcome(
        table=table.table,
        expectation=config.type,
        column=column,
        success=bool(result.success),
        unexpected_count=int(count) if count is not None else None,
        raised=_raised(result.exception_info),
        detail=None if result.success else _detail(config.type, details),
        reason=(config.meta or {}).get("quarantine"),
        id_columns=table.row_ids,
        unexpected_ids=()
        if result.success
        else _unexpected_ids(details.get("unexpected_index_list"), table.row_ids),
    )


def _unexpected_ids(
    index_list: Any, id_columns: tuple[str, ...]
) -> tuple[tuple[str | None, ...], ...]:
    """The id columns' values of each failing row, read from GX's unexpected_index_list.

    With `exclude_unexpected_values` GX gives one dict of lists ({"invoice_id": [...]}), without
    it one dict per row; only the id columns are read either way.
    """
    if not id_columns or not isinstance(index_list, list):
        return ()
    rows: list[tuple[str | None, ...]] = []
    for entry in index_list:
        if not isinstance(entry, dict):
            continue
        if all(isinstance(entry.get(c), list) for c in id_columns):
            rows.extend(zip(*(map(_id, entry[c]) for c in id_columns), strict=True))
        else:
            rows.append(tuple(_id(entry.get(c)) for c in id_columns))
    return tuple(rows)


def _id(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)


def _detail(expectation: str, details: Mapping[str, Any]) -> str | None:
    # Only these expectations report names (columns, dtypes) as observed_value; others such as
    # expect_column_max_to_be_between would report a value from the data, so they are not read.
    if expectation in _DTYPE_EXPECTATIONS:
        observed = details.get("observed_value")
        return f"observed dtype {observed}" if isinstance(observed, str) else None
    return _column_detail(details.get("details"))


def _column_detail(details: Any) -> str | None:
    """Render GX's column-list mismatch (names only) for the table-level column expectations."""
    mismatched = details.get("mismatched") if isinstance(details, dict) else None
    if isinstance(mismatched, dict):  # expect_table_columns_to_match_set
        parts = [
            f"{label} columns: {', '.join(map(str, mismatched[key]))}"
            for key, label in (("unexpected", "unexpected"), ("missing", "missing"))
            if mismatched.get(key)
        ]
        return "; ".join(parts) or None
    if isinstance(mismatched, list):  # expect_table_columns_to_match_ordered_list
        parts = [
            f"position {m.get('Expected Column Position')}: expected {m.get('Expected')}, "
            f"found {m.get('Found')}"
            for m in mismatched
            if isinstance(m, dict)
        ]
        return "; ".join(parts) or None
    return None


# --- messages ------------------------------------------------------------------------------------


def _failure_message(
    report: ValidationReport,
    on_failure: str,
    failures: Sequence[ExpectationOutcome] | None = None,
) -> str:
    """Name suite, tables, expectations, columns and counts; never a value."""
    failures = report.failures() if failures is None else tuple(failures)
    missing = {(o.table, o.column) for o in failures if o.expectation == "expect_column_to_exist"}

    def on_missing_column(o: ExpectationOutcome) -> bool:
        # GX raises for every expectation on a missing column; the column is reported once.
        columns = (o.column or "").split(", ")
        return o.raised and any((o.table, c) in missing for c in columns)

    lines = [
        f"suite '{report.suite}' failed: {len(failures)} of {len(report.outcomes)} "
        "expectations did not pass"
    ]
    for o in failures:
        if o.expectation == "expect_column_to_exist":
            lines.append(f"  {o.table}: column {o.column} is missing (expect_column_to_exist)")
            continue
        if on_missing_column(o):
            continue
        where = f"{o.table}: {o.expectation}" + (f" on {o.column}" if o.column else "")
        if o.raised:
            lines.append(f"  {where}: could not be evaluated (missing column or unsupported dtype)")
        elif o.detail:
            lines.append(f"  {where}: {o.detail}")
        elif o.unexpected_count is not None:
            rows = "row" if o.unexpected_count == 1 else "rows"
            lines.append(f"  {where}: {o.unexpected_count} unexpected {rows}")
        else:
            lines.append(f"  {where}: failed")
    skipped = sum(on_missing_column(o) for o in failures)
    if skipped:
        lines.append(f"  ({skipped} more expectations on the missing columns could not run)")
    lines.append(on_failure)
    lines.append("No values are shown on purpose: query the data itself to find the rows.")
    return "\n".join(lines)
