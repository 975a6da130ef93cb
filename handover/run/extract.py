"""Extract the cases and their facts from the shop database (`schemas/shop_source.sql`).

Only what the rules and the agency contract need is read: open invoices due before `as_of` (and
those whose due date is NULL or unreadable, for the source suite to hold back), their customers,
and the state facts about them. Invoice lines, payment methods, IBANs, support
notes and free-text reasons are never selected. The connection is a SQLAlchemy URL, so SQLite and
PostgreSQL (tables or views with the contract's names) both work.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from handover.case_keys import invoice_ids as case_invoice_ids
from handover.config_schema import DunningLevel
from handover.errors import SourceError
from handover.run import source_contract
from handover.run.dunning_levels import ANNOUNCES, announced_by_levels, read_levels
from handover.run.source_contract import ContractReport, Plan
from handover.run.source_db import create_engine
from handover.run.source_rules import CASE_DATES, CODES, COLUMNS, KINDS, RECALL_COLUMNS

_BOOLEAN_COLUMNS = {c for c, kind in KINDS.items() if kind == "flag"}
_NULLABLE_INT_COLUMNS = {("dunning_events", "fee_cents")}
_AMOUNT_COLUMNS = {c for c, kind in KINDS.items() if kind == "amount"} - _NULLABLE_INT_COLUMNS
_NO_LEVELS: Mapping[str, DunningLevel] = types.MappingProxyType({})
# Dates whose unreadable values become NaT for the source suite to quarantine (invalid_date);
# any other unreadable date or timestamp stops the run.
_COERCED_DATES = {("invoices", c) for c in CASE_DATES} | {("invoice_instalments", "due_date")}


def extract(
    source_url: str,
    as_of: dt.date,
    *,
    minor_units_confirmed: bool = False,
    dunning_levels: Mapping[str, DunningLevel] = _NO_LEVELS,
) -> dict[str, pd.DataFrame]:
    """Read the cases due before `as_of` and their facts, one DataFrame per contract table.

    The contract is checked first (`source_contract.check`): a view that delivers a wrong type
    stops the run with a message naming it and its column before a row is read.
    `dunning_levels` (`[source.dunning_levels]`): the view's dunning kinds are the shop's levels.
    """
    engine = create_engine(source_url)
    try:
        with engine.connect() as conn:
            return _checked_read(conn, as_of, COLUMNS, None, minor_units_confirmed, dunning_levels)
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    finally:
        engine.dispose()


def extract_invoices(
    source_url: str,
    invoice_ids: Sequence[str],
    as_of: dt.date,
    *,
    minor_units_confirmed: bool = False,
    dunning_levels: Mapping[str, DunningLevel] = _NO_LEVELS,
) -> dict[str, pd.DataFrame]:
    """The facts of the cases `invoice_ids`, whatever their status or due date, in one read.

    A case key of an instalment (`handover.run.instalments`) reads its invoice and all of the
    invoice's instalments.

    What the comparison of the cases at an agency with the shop's facts needs: the tables of
    `extract`, each limited to these invoices and their customers, plus when each fact arose
    (`source_rules.FACT_TIMES`). Checked by the same contract first. An invoice the shop no
    longer has is simply absent.
    """
    engine = create_engine(source_url)
    try:
        with engine.connect() as conn:
            return _checked_read(
                conn,
                as_of,
                RECALL_COLUMNS,
                case_invoice_ids(invoice_ids),
                minor_units_confirmed,
                dunning_levels,
            )
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    finally:
        engine.dispose()


def check_source(
    source_url: str,
    as_of: dt.date,
    *,
    minor_units_confirmed: bool = False,
    dunning_levels: Mapping[str, DunningLevel] = _NO_LEVELS,
    birth_dates_expected: bool = True,
) -> ContractReport:
    """The contract check alone, as `handover source check` runs it: counts, no rows.

    It checks the columns of both reads of a run, its cases' and the comparison's of the cases
    at an agency (`source_rules.RECALL_COLUMNS`, a superset), over the cases a run reads.
    """
    engine = create_engine(source_url)
    try:
        with engine.connect() as conn:
            return source_contract.check(
                conn,
                as_of,
                minor_units_confirmed=minor_units_confirmed,
                columns=RECALL_COLUMNS,
                optional=_optional(dunning_levels),
                levels=tuple(dunning_levels),
                birth_dates_expected=birth_dates_expected,
            )
    except sa.exc.OperationalError as exc:
        raise _unreachable(exc) from None
    finally:
        engine.dispose()


def _unreachable(exc: sa.exc.OperationalError) -> SourceError:
    # The driver's message names the database, not row values; libpq's spans lines.
    return SourceError(f"cannot read the shop database: {' '.join(str(exc.orig).split())}")


def select_sql(
    report: ContractReport | Plan, table: str, columns: tuple[str, ...] | None = None
) -> str:
    """The SELECT that reads `table`'s `columns` (default: a run's) over the rows the contract
    check counted, each column as it was checked; it binds `report.params`.

    The benchmark exports the same rows with the `sqlite3` CLI (bench/baselines.py).
    """
    return f"SELECT {_selected(report, table, columns or COLUMNS[table])} FROM {table} " + (
        f"WHERE {report.where[table]}"
    )


def _selected(report: ContractReport | Plan, table: str, columns: tuple[str, ...]) -> str:
    return ", ".join(
        column
        if report.read(table, column) == column
        else f"{report.read(table, column)} AS {column}"
        for column in columns
    )


def _checked_read(
    conn: sa.Connection,
    as_of: dt.date,
    columns: Mapping[str, tuple[str, ...]],
    invoice_ids: Sequence[str] | None,
    minor_units_confirmed: bool,
    levels: Mapping[str, DunningLevel],
) -> dict[str, pd.DataFrame]:
    """The tables of `columns`, the contract checked on exactly the rows read.

    Each table is read once, its probes counted from bits read with its rows
    (`source_contract.probe_masks`), and the contract judged before a value is converted or
    returned: the same counts and messages as `source_contract.check` at half the reading.
    When the catalog already finds something, or a read fails, the check runs alone first and
    then the reads, so what stops the run is named as `handover source check` names it.
    """
    optional = _optional(levels)
    planned = source_contract.plan(
        conn, as_of, columns=columns, invoice_ids=invoice_ids, optional=optional
    )
    if planned.countable():
        frames: dict[str, pd.DataFrame] = {}
        counted: dict[str, source_contract.Counted] = {}
        unconvertible: SourceError | None = None  # raised only if the contract holds
        try:
            for table in columns:
                if planned.kinds[table] == "absent":
                    frames[table] = _absent(table, columns[table])
                    continue
                frame, counted[table] = _read_probed(conn, planned, table)
                if table == "invoices" and planned.dialect == "sqlite":
                    planned = planned.listing(frame)
                elif table == "customers" and planned.dialect == "sqlite":
                    planned = planned.debtor_listing(frame)
                try:  # at once, so the text of a table's dates is not kept while others read
                    frames[table] = _convert(_levels(frame, table, levels), table, columns[table])
                except SourceError as exc:
                    unconvertible = unconvertible or exc
        except sa.exc.DBAPIError:
            conn.rollback()
        else:
            planned.report(counted, minor_units_confirmed=minor_units_confirmed).raise_if_broken()
            if unconvertible is not None:
                raise unconvertible
            return frames
    report = source_contract.check(
        conn,
        as_of,
        minor_units_confirmed=minor_units_confirmed,
        columns=columns,
        invoice_ids=invoice_ids,
        optional=optional,
    )
    report.raise_if_broken()
    return {
        table: _absent(table, columns[table])
        if report.kind(table) == "absent"
        else _read(conn, report, table, columns[table], levels)
        for table in columns
    }


def _optional(levels: Mapping[str, DunningLevel]) -> frozenset[tuple[str, str]]:
    """The columns the configuration makes optional: the notice flag where levels say it."""
    if announced_by_levels(levels):
        return frozenset({("dunning_events", ANNOUNCES)})
    return frozenset()


def _levels(frame: pd.DataFrame, table: str, levels: Mapping[str, DunningLevel]) -> pd.DataFrame:
    return read_levels(frame, levels) if table == "dunning_events" else frame


def _absent(table: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """An optional table the shop does not have, as a table without rows of the contract's
    columns and dtypes."""
    return _convert(
        pd.DataFrame({column: pd.Series([], dtype=object) for column in columns}), table, columns
    )


_MASK = "handover_probes_{}"


def _read_probed(
    conn: sa.Connection, planned: Plan, table: str
) -> tuple[pd.DataFrame, source_contract.Counted]:
    """The rows of `table` as the database delivers them, and the counts of its probes."""
    masks = source_contract.probe_masks(planned, table)
    selected = ", ".join(
        [
            _selected(planned, table, planned.columns[table]),
            *(f"{mask} AS {_MASK.format(n)}" for n, mask in enumerate(masks)),
        ]
    )
    sql = f"SELECT {selected} FROM {table} WHERE {planned.where[table]}"
    frame = _fetch(conn, sql, planned.params)
    bits = [frame.pop(_MASK.format(n)).to_numpy(dtype=np.int64) for n in range(len(masks))]
    return frame, source_contract.counted_from_masks(planned, table, len(frame), bits)


def _fetch(conn: sa.Connection, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of `sql`, as `pandas.read_sql` builds them, without its per-row overhead: the
    driver's cursor is read whole and the frame built once (values inferred per column)."""
    query, bound = source_contract.statement(sql, params)
    result = conn.execute(query, bound)
    names = list(result.keys())
    try:
        rows = result.cursor.fetchall()
    except conn.dialect.loaded_dbapi.Error as exc:
        # SQLAlchemy wraps errors of execute; those of the rows that follow, this does.
        raise sa.exc.DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error) from None
    finally:
        result.close()
    if not rows:
        return pd.DataFrame(columns=names)
    # Copied: the text columns pandas builds are views of one array of every value read, which
    # would keep the text of every date and every probe's bits alive as long as the frame.
    return pd.DataFrame.from_records(rows, columns=names, coerce_float=True).copy()


def _read(
    conn: sa.Connection,
    report: ContractReport,
    table: str,
    columns: tuple[str, ...],
    levels: Mapping[str, DunningLevel],
) -> pd.DataFrame:
    """The rows of `table` the contract check counted, each column read as it was checked."""
    try:
        frame = _fetch(conn, select_sql(report, table, columns), report.params)
    except sa.exc.DBAPIError as exc:
        raise _unreadable(report.kind(table), table, columns, exc) from None
    return _convert(_levels(frame, table, levels), table, columns)


def _convert(frame: pd.DataFrame, table: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Each column of the contract's kinds as its dtype; unreadable values stop the run.

    Codes (`source_rules.CODES`) keep their dtype, each distinct value held once (`_shared`).
    """
    for column in columns:
        kind = KINDS.get((table, column))
        if (table, column) in CODES and frame[column].dtype == "str":
            frame[column] = _shared(frame[column])
        if kind in ("date", "timestamp"):
            coerce = (table, column) in _COERCED_DATES
            frame[column] = _to_datetime(frame[column], table, column, coerce=coerce)
        elif (table, column) in _BOOLEAN_COLUMNS:
            frame[column] = _to_bool(frame[column], table, column)
        elif (table, column) in _NULLABLE_INT_COLUMNS:
            frame[column] = _to_integer(frame[column], table, column).astype("Int64")
        elif (table, column) in _AMOUNT_COLUMNS:
            frame[column] = _to_integer(frame[column], table, column)
    return frame


def _shared(values: pd.Series) -> pd.Series:
    """`values` with each distinct text one object: the driver makes an object per value, and
    a country, currency or status repeats across every row (8 bytes a row instead of ~60)."""
    codes, uniques = pd.factorize(values)
    if len(uniques) == len(values):
        return values
    return pd.Series(uniques.take(codes, allow_fill=True), index=values.index, name=values.name)


def _unreadable(
    kind: str,
    table: str,
    columns: tuple[str, ...],
    exc: sa.exc.DBAPIError | pd.errors.DatabaseError,
) -> SourceError:
    """The error for a table the driver failed to read: the table and column, not the text.

    pandas wraps SQLAlchemy's error in its own DatabaseError (whose text quotes the query and
    the driver's message); the driver's error is found under it.
    """
    cause = exc if isinstance(exc, sa.exc.DBAPIError) else exc.__cause__
    if not isinstance(cause, sa.exc.DBAPIError):
        return SourceError(
            f"cannot read {kind} '{table}' of the shop database ({type(exc).__name__}; "
            "its message is withheld because it may quote row values): check it against "
            "schemas/shop_source.sql"
        )
    return SourceError(source_contract.query_failed(kind, table, columns, cause))


# The range of datetime64[ns]; a date outside it is a typo such as 0071 for 1971.
_FIRST_DAY = pd.Timestamp("1678-01-01", tz="UTC")
_LAST_DAY = pd.Timestamp("2261-12-31", tz="UTC")


def _to_datetime(values: pd.Series, table: str, column: str, *, coerce: bool) -> pd.Series:
    """ISO text (SQLite) or native values (PostgreSQL) to naive UTC datetime64.

    With `coerce`, a value that is no date becomes NaT (for the source suite to quarantine).
    """
    if coerce:
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
        parsed = parsed.where(parsed.between(_FIRST_DAY, _LAST_DAY))
        return parsed.dt.tz_localize(None).astype("datetime64[ns]")
    try:
        parsed = pd.to_datetime(values, format="ISO8601")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        return parsed.astype("datetime64[ns]")
    except (ValueError, TypeError, OverflowError):
        # pandas' message quotes the offending value, which may be personal data.
        coerced = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
        bad = values.notna() & ~coerced.between(_FIRST_DAY, _LAST_DAY)
        raise SourceError(
            f"{table}.{column} has {int(bad.sum())} value(s) that are not ISO dates "
            f"between {_FIRST_DAY.year} and {_LAST_DAY.year}; fix them in the shop or in a view"
        ) from None


def _to_integer(values: pd.Series, table: str, column: str) -> pd.Series:
    """Whole minor units as int64 (Int64 where NULLs are left for the suite to quarantine)."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return values
    numbers = pd.to_numeric(values, errors="coerce")
    bad = (numbers.isna() & values.notna()) | (numbers.notna() & (numbers % 1 != 0))
    if bad.any():
        raise SourceError(
            f"{table}.{column} has {int(bad.sum())} value(s) that are not whole numbers of "
            "minor units (cents); store integers there or convert them in a view"
        )
    return numbers.astype("Int64" if numbers.isna().any() else "int64")


def _to_bool(values: pd.Series, table: str, column: str) -> pd.Series:
    if values.isna().any():
        raise SourceError(f"{table}.{column} is NULL in {int(values.isna().sum())} row(s)")
    return values.astype(bool)
