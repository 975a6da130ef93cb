"""Extraction errors name the table and column, never a value the shop stored there."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from handover.errors import SourceError
from handover.run import extract, source_contract
from tests.support.shopbuilder import AS_OF, Shop


def test_text_that_is_not_utf8_is_named_by_column_not_quoted(tmp_path):
    shop = Shop(tmp_path / "shop.db").customer().invoice()
    # A legacy import wrote Latin-1; SQLite's decode error would quote the name.
    shop.db.execute(
        "UPDATE customers SET first_name = CAST(? AS TEXT)", ("Jürgen".encode("latin-1"),)
    )
    shop.db.commit()
    with pytest.raises(
        SourceError, match=r"table 'customers', column 'first_name' .*not UTF-8"
    ) as caught:
        extract.extract(shop.url, AS_OF)
    assert "rgen" not in str(caught.value)


@pytest.mark.parametrize("birth", ["0071-07-07", "1971-02-30", "07/07/1971"])
def test_a_date_out_of_range_or_unparsable_is_counted_not_quoted(tmp_path, birth):
    shop = Shop(tmp_path / "shop.db").customer(date_of_birth=birth).invoice()
    with pytest.raises(
        SourceError,
        match=r"table 'customers', column 'date_of_birth': 1 of 1 values are not ISO dates",
    ) as caught:
        extract.extract(shop.url, AS_OF)
    assert "71" not in str(caught.value)


def messy_shop(path) -> Shop:
    """Cases whose dates, amounts, flags and ids hold every kind of value a probe counts."""
    shop = Shop(path)
    dates = [
        "2026-03-15",
        "2026-02-30",
        "0071-07-07",
        "2026-03-15 00:00:00",
        "2026-03-15 10:00:00",
        "2026-03-14T23:30:00Z",
        "15.03.2026",
        20260315,
        None,
    ]
    for n, day in enumerate(dates, start=1):
        invoice_dates = {} if day is None else {"order_date": day, "issued_at": day}
        shop.customer(f"C{n}", date_of_birth=day).invoice(
            f"I{n}", f"C{n}", due_date=day or "2026-03-01", amount_cents=n * 7, **invoice_dates
        )
        shop.event(f"I{n}", "dunning", day if isinstance(day, str) else "x", fee=n)
        shop.consent(f"C{n}", "contact_email", n % 2 == 0, "2025-01-01 10:00:00")
        shop.payment(f"I{n}", n * 3 if n % 3 else -150)
    shop.invoice("I99", 1, amount_cents=2.5, due_date="2026-03-01")
    shop.db.execute("UPDATE dunning_events SET announces_handover = 2 WHERE invoice_id = 'I2'")
    shop.db.commit()
    return shop


def test_the_probes_read_with_the_rows_count_what_the_contract_check_counts(tmp_path):
    """Extraction counts the contract's probes from bits read with the rows: per table the
    same counts as the check's own grouped query, and so the same report."""
    shop = messy_shop(tmp_path / "shop.db")
    engine = sa.create_engine(shop.url)
    with engine.connect() as conn:
        planned = source_contract.plan(conn, AS_OF)
        assert planned.countable()
        for table in planned.columns:
            _, counted = extract._read_probed(conn, planned, table)
            assert counted == source_contract._count(
                conn,
                table,
                planned.kinds[table],
                planned.described[table],
                planned.where[table],
                planned.params,
            ), table
            if table in ("invoices", "customers", "payments", "dunning_events", "consents"):
                assert counted[0] > 0, table
        checked = source_contract.check(conn, AS_OF)
    engine.dispose()
    with pytest.raises(SourceError) as caught:
        extract.extract(shop.url, AS_OF)
    assert not checked.ok
    with pytest.raises(SourceError) as again:
        checked.raise_if_broken()
    assert str(caught.value) == str(again.value)


def test_text_columns_hold_only_their_own_values(tmp_path):
    """Each text column is an array of its own, not a view of everything the driver read (which
    would keep the text of every date and every probe's bits alive with the frames)."""
    shop = Shop(tmp_path / "shop.db").customer().invoice().payment("I1", 1000)
    frames = extract.extract(
        shop.consent("C1", "contact_email", True, "2025-01-01 10:00:00").url, AS_OF
    )
    for table, frame in frames.items():
        for column in frame.columns:
            if frame[column].dtype == "str" and len(frame):
                values = np.asarray(frame[column].array)
                assert values.flags["C_CONTIGUOUS"] and values.base is None, (table, column)
