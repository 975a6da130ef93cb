"""The agency-side contract v1: the 26 columns of a drop and how they are written as CSV.

The JSON Schema of one row is `schemas/agency_case_v1.json`; this module is its counterpart in
code. The CSV is UTF-8 with a header, RFC 4180 quoting and CRLF line ends; an empty cell means the
policy does not allow the value, or consent for it is missing.
"""

from __future__ import annotations

import csv
import io
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where rows are written: `handover --help` needs none
    import pandas as pd

SCHEMA_VERSION = "agency_case_v1"

COLUMNS: tuple[str, ...] = (
    "case_ref",
    "invoice_number",
    "debtor_kind",
    "first_name",
    "last_name",
    "company_name",
    "street",
    "postal_code",
    "city",
    "country",
    "language",
    "email",
    "phone",
    "date_of_birth",
    "order_date",
    "invoice_date",
    "due_date",
    "default_date",
    "currency",
    "principal_cents",
    "paid_cents",
    "open_cents",
    "dunning_fees_cents",
    "claim_subject",
    "last_dunning_date",
    "handover_notice_date",
)

# Without these an agency cannot identify the debtor or the claim, nor tell the debtor what
# § 13a RDG demands; a policy must allow them. Only first_name, email, phone and
# date_of_birth are the policy's to withhold.
REQUIRED_COLUMNS: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in {"first_name", "email", "phone", "date_of_birth"}
)

# Columns that carry personal data of the debtor (GDPR Art. 4(1)).
PERSONAL_COLUMNS: frozenset[str] = frozenset(
    {
        "first_name",
        "last_name",
        "company_name",
        "street",
        "postal_code",
        "city",
        "email",
        "phone",
        "date_of_birth",
    }
)

CENTS_COLUMNS: tuple[str, ...] = (
    "principal_cents",
    "paid_cents",
    "open_cents",
    "dunning_fees_cents",
)

DATE_COLUMNS: tuple[str, ...] = (
    "date_of_birth",
    "order_date",
    "invoice_date",
    "due_date",
    "default_date",
    "last_dunning_date",
    "handover_notice_date",
)

# Text from customers or the shop's own free text: a spreadsheet could run it as a formula
# (redaction/rows/csv_injection.py neutralises it), and its length is bounded.
FREE_TEXT_COLUMNS: tuple[str, ...] = (
    "invoice_number",
    "first_name",
    "last_name",
    "company_name",
    "street",
    "city",
    "claim_subject",
)

# The first characters that make a spreadsheet run a cell as a formula: = + - @, tab, carriage
# return, and the full-width forms some spreadsheets fold to ASCII. A free-text cell that starts
# with one is sent with a single quote in front; the schema refuses one without it.
FORMULA_PREFIXES = "=+-@\t\r\uff1d\uff0b\uff0d\uff20"

# The longest cell each unbounded text column may have, counted in characters as sent (a
# neutralising quote included). The schema's maxLength and the outgoing suite's `too_long`
# expectations carry the same numbers (tests/test_contract.py holds them together). An address
# is at most 254 characters (RFC 5321). Every other column has a pattern that bounds it.
MAX_TEXT_LENGTH = 200
MAX_EMAIL_LENGTH = 254
LENGTH_LIMITS: dict[str, int] = {
    **dict.fromkeys(FREE_TEXT_COLUMNS, MAX_TEXT_LENGTH),
    "email": MAX_EMAIL_LENGTH,
}

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "agency_case_v1.json"


@cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema of one row (`schemas/agency_case_v1.json`)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def to_csv_bytes(rows: pd.DataFrame) -> bytes:
    """Write `rows` (exactly the v1 columns) as RFC 4180 CSV with CRLF, in memory."""
    if tuple(rows.columns) != COLUMNS:
        raise ValueError("rows must have exactly the agency_case_v1 columns in contract order")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    # Empty string for missing values; integers without a decimal point.
    text = rows.astype(object).where(rows.notna(), "")
    writer.writerows(text.itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


def read_csv_rows(data: bytes) -> list[dict[str, str]]:
    """Parse a drop's CSV back into rows of strings (for the agency side and tests)."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError("the CSV header is not the agency_case_v1 header")
    return list(reader)


def columns_sent(rows: pd.DataFrame) -> pd.Series:
    """Per row, the comma-separated names of the columns that carry a value (for the audit)."""
    import pandas as pd

    present = rows[list(COLUMNS)].notna() & (rows[list(COLUMNS)] != "")
    return present.dot(pd.Index(COLUMNS) + ",").str.rstrip(",")


def for_validation(rows: pd.DataFrame) -> pd.DataFrame:
    """`invoice_id` (from the index), the outgoing rows, and `sum_check_cents`.

    The invoice id lets GX name a failing row without its values (quarantine); it is never a
    column of the drop. GX has no arithmetic expectation, so the outgoing suite checks the
    derived sum_check_cents (principal − paid − open, expected 0).
    """
    check = rows["principal_cents"] - rows["paid_cents"] - rows["open_cents"]
    frame = rows[list(COLUMNS)].rename_axis("invoice_id").reset_index()
    return frame.assign(sum_check_cents=check.to_numpy())
