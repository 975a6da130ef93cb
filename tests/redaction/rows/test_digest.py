"""Change digests: the column-wise build gives exactly the per-row definition."""

from __future__ import annotations

import hashlib
import hmac
import json

import pandas as pd
import pytest

from handover.errors import KeyFileError
from redaction.rows.digest import GROUPS, digests

KEY = bytes(range(32))


def _reference(key: bytes, group: str, cells: tuple[object, ...]) -> str:
    """The definition, one row at a time (as the digests stored by earlier versions)."""
    text = ["" if pd.isna(cell) else str(cell) for cell in cells]
    message = (
        b"handover change digest v1\x00" + group.encode() + b"\x00" + json.dumps(text).encode()
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "first_name": ["Jörg", 'Anna "Ann"', None, "Zoë\\", "李"],
            "last_name": ["Müller", "O'Brien", "GmbH-Kontakt", "", "小龙"],
            "company_name": [None, None, "Bäckerei 🥨 GmbH", None, None],
            "street": ["Hauptstr. 1", "Line\nbreak", "Weg 2\t", None, "路 3"],
            "postal_code": ["10115", "01067", None, "80331", "99999"],
            "city": ["Berlin", "Dresden", "Köln", "München", "Ort"],
            "country": ["DE", "DE", "DE", "AT", "DE"],
            "email": ["a@example.org", None, "", "z@example.org", "x@example.org"],
            "phone": ["+49301234567", "+49351", None, "", "+4930"],
        },
        index=pd.Index(["i1", "i2", "i3", "i4", "i5"], name="invoice_id"),
    ).astype({"postal_code": "string", "city": "string"})


def test_digests_equal_the_per_row_definition() -> None:
    rows = _rows()
    found = digests(rows, KEY)
    for column, fields in GROUPS.items():
        expected = [
            _reference(KEY, column, cells) for cells in rows[list(fields)].itertuples(index=False)
        ]
        sent = {"email_digest": "email", "phone_digest": "phone"}.get(column)
        if sent:
            expected = [
                e if isinstance(v, str) and v else None
                for e, v in zip(expected, rows[sent], strict=True)
            ]
        assert found[column].tolist() == expected, column
    assert found.index.equals(rows.index)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(KeyFileError, match="at least 32 bytes"):
        digests(_rows(), b"short")
