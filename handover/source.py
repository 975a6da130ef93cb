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


def extract(source_url: str, as_of: dt.date) -> dict[str, pd.DataFrame]:
    """Read the cases due before `as_of` and their facts, one DataFrame per contract table."""
    try:
        engine = sa.create_engine(source_url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise SourceError(f"source.url is not a usable SQLAlchemy URL ({exc})") from None
    try:
        with engine.connect() as conn:
            _check_contract(conn)
            return {
                table: _read(conn, table, *spec, as_of=as_of) for table, spec in QUERIES.items()
            }
    except sa.exc.OperationalError as exc:
        # The driver's message names the database, not row values.
        raise SourceError(f"cannot read the shop database: {exc.orig}") from None
    finally:
        engine.dispose()


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
    frame = pd.read_sql(query, conn, params={"as_of": as_of})
    for column in dates + timestamps:
        frame[column] = _to_datetime(frame[column], table, column)
    for column in columns:
        if (table, column) in _BOOLEAN_COLUMNS:
            frame[column] = _to_bool(frame[column], table, column)
        elif (table, column) in _NULLABLE_INT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    return frame


def _to_datetime(values: pd.Series, table: str, column: str) -> pd.Series:
    """ISO text (SQLite) or native values (PostgreSQL) to naive UTC datetime64."""
    try:
        parsed = pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError):
        # pandas' message quotes the offending value, which may be personal data.
        bad = values[pd.to_datetime(values, format="ISO8601", errors="coerce").isna()]
        raise SourceError(
            f"{table}.{column} has {int(bad.notna().sum())} value(s) that are not ISO dates"
        ) from None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _to_bool(values: pd.Series, table: str, column: str) -> pd.Series:
    if values.isna().any():
        raise SourceError(f"{table}.{column} is NULL in {int(values.isna().sum())} row(s)")
    return values.astype(bool)
