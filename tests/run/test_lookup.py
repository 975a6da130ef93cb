"""handover/run/lookup.py: ids and invoice numbers looked up exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from handover.errors import SourceError
from handover.run import lookup
from tests.support.pgserver import PostgresServer
from tests.support.pgshop import postgres_shop
from tests.support.shopbuilder import Shop


def _shop(path: Path) -> Shop:
    shop = Shop(path)
    shop.customer("C1").invoice("I1", "C1").invoice("I2", "C1", invoice_number="RE-X")
    shop.customer("C2").invoice("I3", "C2", invoice_number="RE-X")
    return shop


@pytest.fixture(params=["sqlite", "postgresql"])
def source_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    shop = _shop(tmp_path / "shop.db")
    if request.param == "sqlite":
        return shop.url
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    postgres_shop(shop.path, url)
    return url


def test_ids_and_numbers_are_found_exactly(source_url: str) -> None:
    assert lookup.find_invoices(source_url, "I1") == lookup.InvoiceMatches(("I1",), ())
    assert lookup.find_invoices(source_url, "RE-I1") == lookup.InvoiceMatches((), ("I1",))
    assert lookup.find_invoices(source_url, "RE-X") == lookup.InvoiceMatches((), ("I2", "I3"))
    for near_miss in ("i1", " I1", "I1 ", "re-i1", "I"):
        assert lookup.find_invoices(source_url, near_miss) == lookup.InvoiceMatches((), ())
    assert lookup.customer_exists(source_url, "C1")
    assert not lookup.customer_exists(source_url, "c1")
    assert lookup.invoices_of(source_url, "C1") == ("I1", "I2")
    assert lookup.invoices_of(source_url, "C9") == ()


def test_look_alikes_are_offered_as_a_hint_only(source_url: str) -> None:
    assert lookup.near_invoices(source_url, " i1 ") == ("I1",)
    assert lookup.near_invoices(source_url, "re-x") == ("I2", "I3")
    assert lookup.near_customers(source_url, "c2") == ("C2",)
    assert lookup.hint(("I1",), "i1") == "; did you mean 'I1'? (ids are matched exactly)"
    assert lookup.hint((), "I9") == ""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_integer_ids_of_a_view_are_compared_as_text(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'ints.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER, no TEXT, customer INTEGER)"))
        conn.execute(sa.text("CREATE TABLE people (id INTEGER)"))
        conn.execute(sa.text("INSERT INTO orders VALUES (17, 'RE-17', 4), (18, '18', 4)"))
        conn.execute(sa.text("INSERT INTO people VALUES (4)"))
        conn.execute(
            sa.text(
                "CREATE VIEW invoices AS SELECT id AS invoice_id, no AS invoice_number, "
                "customer AS customer_id FROM orders"
            )
        )
        conn.execute(sa.text("CREATE VIEW customers AS SELECT id AS customer_id FROM people"))
    engine.dispose()
    assert lookup.find_invoices(url, "17") == lookup.InvoiceMatches(("17",), ())
    assert lookup.find_invoices(url, "18") == lookup.InvoiceMatches(("18",), ("18",))
    assert lookup.find_invoices(url, "abc") == lookup.InvoiceMatches((), ())
    assert lookup.customer_exists(url, "4") and not lookup.customer_exists(url, "04")
    assert lookup.invoices_of(url, "4") == ("17", "18")


def test_a_missing_table_or_database_is_named_and_nothing_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(SourceError, match=r"the shop database .*nope.db does not exist"):
        lookup.find_invoices(f"sqlite:///{missing}", "I1")
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()
    with pytest.raises(SourceError, match=r"cannot read table 'customers' of the shop database"):
        lookup.customer_exists(f"sqlite:///{empty}", "C1")
