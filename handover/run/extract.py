"""Extract the cases and their facts from the shop database (`schemas/shop_source.sql`).

Only what the rules and the agency contract need is read: open invoices due before `as_of`,
their customers, and the state facts about them. Invoice lines, payment methods, IBANs, support
notes and free-text reasons are never selected. The connection is a SQLAlchemy URL, so SQLite and
PostgreSQL (tables or views with the contract's names) both work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd
import sqlalchemy as sa

from handover.errors import SourceError

# Open invoices whose due date has passed: the cases. Related rows are limited to these.
_CASES = "SELECT invoice_id FROM invoices WHERE status = 'open' AND due_date < :as_of"
_CASE_CUSTOMERS = "SELECT customer_id FROM invoices WHERE status = 'open' AND due_date < :as_of"

# table -> (columns read, row filter, date columns, timestamp columns)
QUERIES: Mapping[str, tuple[tuple[str, ...], str, tuple[str, ...], tuple[str, ...]]] = {
    "invoices": (
        (
            "invoice_id",
            "invoice_number",
            "customer_id",
            "order_date",
            "issued_at",
            "due_date",
            "amount_cents",
            "currency",
            "status",
        ),
        "status = 'open' AND due_date < :as_of",
        ("order_date", "issued_at", "due_date"),
        (),
    ),
    "customers": (
        (
            "customer_id",
            "kind",
            "first_name",
            "last_name",
            "company_name",
            "date_of_birth",
            "email",
            "phone",
            "street",
            "postal_code",
            "city",
            "country",
            "language",
        ),
        f"customer_id IN ({_CASE_CUSTOMERS})",
        ("date_of_birth",),
        (),
    ),
    "payments": (("invoice_id", "amount_cents"), f"invoice_id IN ({_CASES})", (), ()),
    "dunning_events": (
        ("invoice_id", "kind", "sent_at", "fee_cents", "announces_handover"),
        f"invoice_id IN ({_CASES})",
        (),
        ("sent_at",),
    ),
    "disputes": (
        ("invoice_id", "resolved_at", "outcome"),
        f"invoice_id IN ({_CASES})",
        (),
        ("resolved_at",),
    ),
    "installment_plans": (("invoice_id", "status"), f"invoice_id IN ({_CASES})", (), ()),
    "customer_flags": (
        ("customer_id", "flag", "cleared_at"),
        f"customer_id IN ({_CASE_CUSTOMERS})",
        (),
        ("cleared_at",),
    ),
    "consents": (
        ("customer_id", "purpose", "granted", "recorded_at", "source"),
        f"customer_id IN ({_CASE_CUSTOMERS})",
        (),
        ("recorded_at",),
    ),
    "holds": (
        ("invoice_id", "customer_id", "expires_at"),
        f"invoice_id IN ({_CASES}) OR customer_id IN ({_CASE_CUSTOMERS})",
        (),
        ("expires_at",),
    ),
}

_BOOLEAN_COLUMNS = {("dunning_events", "announces_handover"), ("consents", "granted")}
_NULLABLE_INT_COLUMNS = {("dunning_events", "fee_cents")}
# Minor units. PostgreSQL NUMERIC columns (or SUM(bigint) in a view) arrive as floats.
_AMOUNT_COLUMNS = {("invoices", "amount_cents"), ("payments", "amount_cents")}


def extract(source_url: str, as_of: dt.date) -> dict[str, pd.DataFrame]:
    """Read the cases due before `as_of` and their facts, one DataFrame per contract table."""
    engine = create_engine(source_url)
    try:
        with engine.connect() as conn:
            _check_contract(conn)
            return {
                table: _read(conn, table, *spec, as_of=as_of) for table, spec in QUERIES.items()
            }
    except sa.exc.OperationalError as exc:
        # The driver's message names the database, not row values; libpq's spans lines.
        raise SourceError(
            f"cannot read the shop database: {' '.join(str(exc.orig).split())}"
        ) from None
    finally:
        engine.dispose()


def create_engine(source_url: str) -> sa.Engine:
    """An engine for the shop database; a bad URL is named by its setting, never quoted."""
    try:
        return sa.create_engine(source_url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        # An ImportError names a module; an ArgumentError may quote the URL and its password,
        # so only its kind is named.
        problem = str(exc) if isinstance(exc, ImportError) else "unknown form or dialect"
        raise SourceError(
            f"source.url is not a usable SQLAlchemy URL ({problem}); check its form "
            "(sqlite:///file.db, postgresql+psycopg://user@host/db) and that its driver is "
            "installed"
        ) from None


def _check_contract(conn: sa.Connection) -> None:
    """Name every missing table or column before any query fails on it."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    for table, (columns, *_) in QUERIES.items():
        if table not in present:
            raise SourceError(
                f"the shop database has no table or view '{table}'; create it or a view with "
                "that name as described in schemas/shop_source.sql"
            )
        have = {c["name"] for c in inspector.get_columns(table)}
        missing = [c for c in columns if c not in have]
        if missing:
            raise SourceError(
                f"table '{table}' lacks column(s) {', '.join(missing)} required by "
                "schemas/shop_source.sql; add them or map them in a view"
            )


def _read(
    conn: sa.Connection,
    table: str,
    columns: tuple[str, ...],
    where: str,
    dates: tuple[str, ...],
    timestamps: tuple[str, ...],
    *,
    as_of: dt.date,
) -> pd.DataFrame:
    query = sa.text(f"SELECT {', '.join(columns)} FROM {table} WHERE {where}").bindparams(
        sa.bindparam("as_of", type_=sa.Date)
    )
    try:
        frame = pd.read_sql(query, conn, params={"as_of": as_of})
    except sa.exc.DBAPIError as exc:
        raise _unreadable(table, columns, exc) from None
    for column in dates + timestamps:
        frame[column] = _to_datetime(frame[column], table, column)
    for column in columns:
        if (table, column) in _BOOLEAN_COLUMNS:
            frame[column] = _to_bool(frame[column], table, column)
        elif (table, column) in _NULLABLE_INT_COLUMNS:
            frame[column] = _to_integer(frame[column], table, column).astype("Int64")
        elif (table, column) in _AMOUNT_COLUMNS:
            frame[column] = _to_integer(frame[column], table, column)
    return frame


def _unreadable(table: str, columns: tuple[str, ...], exc: sa.exc.DBAPIError) -> SourceError:
    """The error for a table the driver failed to read: its type and the column, not its text.

    Drivers quote row values in their messages (SQLite: "Could not decode to UTF-8 column
    'first_name' with text '…'"; PostgreSQL: 'invalid input syntax for type date: "…"').
    """
    text = str(exc.orig)
    column = next((c for c in columns if f"column '{c}'" in text), None)
    where = f"{table}.{column}" if column else f"table '{table}'"
    if "decode" in text.lower():
        hint = "it holds text that is not UTF-8 (a Latin-1 import?); convert it to UTF-8"
    else:
        hint = "check it against schemas/shop_source.sql"
    return SourceError(
        f"cannot read {where} of the shop database ({type(exc.orig).__name__}; the driver's "
        f"message is withheld because it may quote row values): {hint}"
    )


# The range of datetime64[ns]; a date outside it is a typo such as 0071 for 1971.
_FIRST_DAY = pd.Timestamp("1678-01-01", tz="UTC")
_LAST_DAY = pd.Timestamp("2261-12-31", tz="UTC")


def _to_datetime(values: pd.Series, table: str, column: str) -> pd.Series:
    """ISO text (SQLite) or native values (PostgreSQL) to naive UTC datetime64."""
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
