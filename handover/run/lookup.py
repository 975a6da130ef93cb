"""Small reads of the shop database by id: is this invoice or customer known, and by what?

For the compliance commands (`explain`, `subject`), which must refuse an id nobody knows rather
than answer for it. Ids and invoice numbers are compared exactly, as text (a view may deliver
integer ids): an id that differs only by case or spaces is unknown, though `near_invoices` and
`near_customers` find such look-alikes for a hint. Only ids leave these functions, never a
name, an address or any other value of a row; errors name the table and column, not the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from handover.errors import SourceError
from handover.run.source_db import create_engine

_HINTS = 5  # look-alike ids named in a hint at most

_invoices = sa.table(
    "invoices", sa.column("invoice_id"), sa.column("invoice_number"), sa.column("customer_id")
)
_customers = sa.table("customers", sa.column("customer_id"))


@dataclass(frozen=True)
class InvoiceMatches:
    """The invoices whose id, and those whose invoice number, equal a text exactly."""

    by_id: tuple[str, ...]
    by_number: tuple[str, ...]


def _text(column: sa.ColumnClause[Any]) -> sa.Cast[str]:
    return sa.cast(column, sa.Text)


def _folded(column: sa.ColumnClause[Any]) -> sa.ColumnElement[str]:
    return sa.func.lower(sa.func.trim(_text(column)))


def _ids(source_url: str, table: str, query: sa.Select[Any]) -> tuple[str, ...]:
    """The first column of `query` on the shop database, as sorted distinct text."""
    return tuple(sorted({str(row[0]) for row in _rows(source_url, table, [query])}))


def _rows(source_url: str, table: str, queries: list[sa.Select[Any]]) -> list[sa.Row[Any]]:
    """The rows of `queries` on the shop database, in one connection."""
    engine = create_engine(source_url)
    database = engine.url.database or ":memory:"
    if engine.url.get_backend_name() == "sqlite" and not (
        database == ":memory:" or Path(database).is_file()
    ):
        engine.dispose()  # SQLite would create an empty shop database on connecting
        raise SourceError(f"the shop database {database} does not exist; check source.url")
    try:
        with engine.connect() as conn:
            return [row for query in queries for row in conn.execute(query)]
    except sa.exc.DBAPIError as exc:
        # The driver's message may quote the text looked up; only its type is named.
        raise SourceError(
            f"cannot read table '{table}' of the shop database ({type(exc.orig).__name__}); "
            "check source.url and that the table or view has the columns of "
            "schemas/shop_source.sql"
        ) from None
    finally:
        engine.dispose()


def invoice_numbers(source_url: str, invoice_ids: list[str]) -> dict[str, str]:
    """The invoice number of each of `invoice_ids` the shop database has, by invoice id."""
    column = _text(_invoices.c.invoice_id)
    chunks = [invoice_ids[i : i + 10_000] for i in range(0, len(invoice_ids), 10_000)]
    queries = [
        sa.select(column, _text(_invoices.c.invoice_number)).where(column.in_(chunk))
        for chunk in chunks
    ]
    return {str(row[0]): str(row[1]) for row in _rows(source_url, "invoices", queries)}


def find_invoices(source_url: str, text: str) -> InvoiceMatches:
    """The invoice ids whose `invoice_id`, and those whose `invoice_number`, equal `text`."""
    by_id = sa.select(_text(_invoices.c.invoice_id)).where(_text(_invoices.c.invoice_id) == text)
    by_number = sa.select(_text(_invoices.c.invoice_id)).where(
        _text(_invoices.c.invoice_number) == text
    )
    return InvoiceMatches(
        by_id=_ids(source_url, "invoices", by_id),
        by_number=_ids(source_url, "invoices", by_number),
    )


def customer_exists(source_url: str, customer_id: str) -> bool:
    """Whether table `customers` of the shop database has `customer_id` (exactly)."""
    column = _text(_customers.c.customer_id)
    return bool(_ids(source_url, "customers", sa.select(column).where(column == customer_id)))


def invoices_of(source_url: str, customer_id: str) -> tuple[str, ...]:
    """The ids of the customer's invoices in the shop database (ids only)."""
    query = sa.select(_text(_invoices.c.invoice_id)).where(
        _text(_invoices.c.customer_id) == customer_id
    )
    return _ids(source_url, "invoices", query)


def near_invoices(source_url: str, text: str) -> tuple[str, ...]:
    """Invoice ids whose id or number equals `text` but for case and surrounding spaces."""
    folded = text.strip().lower()
    query = (
        sa.select(_text(_invoices.c.invoice_id))
        .where(
            sa.or_(
                _folded(_invoices.c.invoice_id) == folded,
                _folded(_invoices.c.invoice_number) == folded,
            )
        )
        .limit(_HINTS)
    )
    return _ids(source_url, "invoices", query)


def near_customers(source_url: str, customer_id: str) -> tuple[str, ...]:
    """Customer ids equal to `customer_id` but for case and surrounding spaces."""
    column = _customers.c.customer_id
    query = (
        sa.select(_text(column)).where(_folded(column) == customer_id.strip().lower()).limit(_HINTS)
    )
    return _ids(source_url, "customers", query)


def hint(near: tuple[str, ...], text: str) -> str:
    """'; did you mean …?' naming the look-alike ids (never `text` itself), or ''."""
    others = [repr(i) for i in near if i != text]
    return f"; did you mean {' or '.join(others)}? (ids are matched exactly)" if others else ""
