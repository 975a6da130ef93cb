"""Extraction errors name the table and column, never a value the shop stored there."""

from __future__ import annotations

import pytest

from handover.errors import SourceError
from handover.run import extract
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
