"""Run the Great Expectations suites in `expectations/` on in-memory frames.

A suite is a JSON file in the format `ExpectationSuite` serialises to. GX validates one DataFrame
per batch, so every expectation names its frame in `meta.table` and the suite is split by table.
Two suites exist: `source` (the extracted shop tables, before the eligibility rules) and
`outgoing` (the rows of a drop, frame `outgoing`).

Privacy: GX runs in an ephemeral (in-memory) context, so nothing is written to disk, and with a
result format that keeps counts only, never row values. Reports and `ValidationFailed` name
suites, tables, expectations, columns and counts, never values.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from handover.errors import ValidationFailed

SUITES_DIR = Path(__file__).resolve().parent.parent / "expectations"

# Counts only. GX's default (BASIC) puts up to 20 offending values per expectation into the
# result ("partial_unexpected_list"); those are personal data and must not reach logs or errors.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
    "include_unexpected_rows": False,
}

_INDEX = "handover_index"
_DTYPE_EXPECTATIONS = frozenset(
    {"expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"}
)
_DEFAULT_ON_FAILURE = "Fix the data or the code that produced it, then run again."

# GX contexts are not documented as thread-safe; Prefect may run tasks in threads.
_LOCK = threading.Lock()


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


def check(frames: Mapping[str, pd.DataFrame], suite: str) -> ValidationReport:
    """Validate `frames` against `expectations/<suite>.json`; raise ValidationFailed on failure."""
    report = validate(frames, suite)
    if not report.success:
        raise ValidationFailed(_failure_message(report, _load(suite).on_failure))
    return report


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
                result = _run_table(table, frames[table.table])
                # GX returns results grouped by metric, not in suite order.
                results = sorted(result.results, key=lambda r: r.expectation_config.meta[_INDEX])
                outcomes.extend(_outcome(table.table, r) for r in results)
        finally:
            _forget_batches(loaded.datasource)
    return ValidationReport(suite=suite, outcomes=tuple(outcomes))


# --- loading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TableSuite:
    table: str
    batch_definition: Any  # great_expectations.core.batch_definition.BatchDefinition
    suite: Any  # great_expectations.core.ExpectationSuite, one table's part


@dataclass(frozen=True)
class _LoadedSuite:
    name: str
    datasource: Any  # great_expectations.datasource.fluent.PandasDatasource
    tables: tuple[_TableSuite, ...]
    on_failure: str


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
    # Keyed by mtime so a long-running worker picks up an edited suite.
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

    path = _suite_path(suite)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        configs = data["expectations"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(f"{path}: not a readable expectation suite ({exc})") from None

    by_table: dict[str, list[Any]] = {}
    for index, config in enumerate(configs):
        table = (config.get("meta") or {}).get("table") if isinstance(config, dict) else None
        if not isinstance(table, str) or not table:
            raise ValidationFailed(f"{path}: expectation #{index} has no meta.table")
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
        )
        for table, expectations in by_table.items()
    )
    on_failure = (data.get("meta") or {}).get("on_failure") or _DEFAULT_ON_FAILURE
    return _LoadedSuite(name=suite, datasource=datasource, tables=tables, on_failure=on_failure)


# --- running -------------------------------------------------------------------------------------


def _run_table(table: _TableSuite, frame: pd.DataFrame) -> Any:
    """Run one table's suite; returns GX's ExpectationSuiteValidationResult (counts only)."""
    batch = table.batch_definition.get_batch(batch_parameters={"dataframe": frame})
    return batch.validate(table.suite, result_format=RESULT_FORMAT)


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


def _outcome(table: str, result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    kwargs = config.kwargs
    column = None if config.type.startswith("expect_table_") else _column(kwargs)
    details = result.result or {}
    count = details.get("unexpected_count")
    return ExpectationOutcome(
        table=table,
        expectation=config.type,
        column=column,
        success=bool(result.success),
        unexpected_count=int(count) if count is not None else None,
        raised=_raised(result.exception_info),
        detail=None if result.success else _detail(config.type, details),
    )


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


def _failure_message(report: ValidationReport, on_failure: str) -> str:
    """Name suite, tables, expectations, columns and counts; never a value."""
    failures = report.failures()
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
