"""The agency-side contract v1: the 26 columns of a drop and how they are written as CSV.

The JSON Schema of one row is `schemas/agency_case_v1.json`; this module is its counterpart in
code. The CSV is UTF-8 with a header, RFC 4180 quoting and CRLF line ends; an empty cell means the
policy does not allow the value, or consent for it is missing.

Minor version 1.1 (`schemas/agency_case_v1_1.json`) adds one last column, `instalment_number`,
for a drop that holds an instalment of an invoice (`handover.run.instalments`); every other drop
stays v1, byte for byte. Rows say which they are by carrying the column or not (`version_of`).
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

# agency_case_v1_1: the v1 columns, then the number of the instalment a row claims (empty for a
# whole invoice). A number the run counts, not shop data: the policy has no say over it.
INSTALMENTS_VERSION = "agency_case_v1_1"
INSTALMENT_COLUMN = "instalment_number"
COLUMNS_V1_1: tuple[str, ...] = (*COLUMNS, INSTALMENT_COLUMN)
VERSIONS: dict[str, tuple[str, ...]] = {
    SCHEMA_VERSION: COLUMNS,
    INSTALMENTS_VERSION: COLUMNS_V1_1,
}

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

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
SCHEMA_PATH = SCHEMAS_DIR / "agency_case_v1.json"


@cache
def json_schema(version: str = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of one row of `version` (`schemas/<version>.json`)."""
    if version not in VERSIONS:
        raise ValueError(f"unknown contract version {version!r}")
    return json.loads((SCHEMAS_DIR / f"{version}.json").read_text(encoding="utf-8"))


def version_of(rows: pd.DataFrame) -> str:
    """The contract `rows` follow: v1.1 when they carry `instalment_number`, else v1."""
    return INSTALMENTS_VERSION if INSTALMENT_COLUMN in rows.columns else SCHEMA_VERSION


def columns_of(rows: pd.DataFrame) -> tuple[str, ...]:
    """The contract columns of `rows`, in contract order (`version_of`)."""
    return VERSIONS[version_of(rows)]


def to_csv_bytes(rows: pd.DataFrame) -> bytes:
    """Write `rows` (exactly the columns of v1 or v1.1) as RFC 4180 CSV with CRLF, in memory."""
    if tuple(rows.columns) not in VERSIONS.values():
        raise ValueError(
            "rows must have exactly the agency_case_v1 (or _v1_1) columns in contract order"
        )
    return csv_bytes(rows)


def csv_bytes(rows: pd.DataFrame) -> bytes:
    """`rows` with a header, as the `csv` module writes them (QUOTE_MINIMAL, CRLF), byte for byte.

    Built column by column with `str.join`: the module's writer takes about a microsecond per
    cell, most of what sealing a drop cost. A frame with values other than text and integers
    (missing values aside) is left to the module.
    """
    cells = [_cells(rows.iloc[:, i]) for i in range(rows.shape[1])]
    if not cells or any(column is None for column in cells):
        return _csv_module_bytes(rows)
    header = [str(name) for name in rows.columns]
    text = _joined(header, cells)
    lines = len(rows) + 1
    if (
        text.count(",") != (len(header) - 1) * lines
        or text.count("\n") != lines
        or text.count("\r") != lines
        or '"' in text
    ):
        # A cell holds a comma, quote or line break: quote the cells of the columns that need it.
        text = _joined([_quoted(name) for name in header], [_quoted_cells(c) for c in cells])
    return text.encode("utf-8")


def _cells(column: pd.Series) -> list[str] | None:
    """The column's values as text (missing: empty), unquoted; None unless text or integers."""
    import numpy as np
    import pandas as pd

    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu":
        return list(map(str, column.tolist()))
    values = column.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) != "string":
        values = column.to_numpy(dtype=object, na_value="")
        if len(values) and pd.api.types.infer_dtype(values, skipna=False) != "string":
            return None  # floats, dates, booleans: the `csv` module has its own ways with them
    return values.tolist()


def _joined(header: list[str], cells: list[list[str]]) -> str:
    return "\r\n".join([",".join(header), *map(",".join, zip(*cells, strict=True)), ""])


# What makes the `csv` module quote a cell (QUOTE_MINIMAL): the delimiter, the quote character
# and the characters of the line terminator.
_NEEDS_QUOTES = (",", '"', "\r", "\n")


def _quoted_cells(column: list[str]) -> list[str]:
    text = "".join(column)
    if not any(c in text for c in _NEEDS_QUOTES):
        return column
    return [_quoted(value) for value in column]


def _quoted(value: str) -> str:
    if any(c in value for c in _NEEDS_QUOTES):
        return '"' + value.replace('"', '""') + '"'
    return value


def _csv_module_bytes(rows: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(rows.columns)
    # Empty string for missing values; integers without a decimal point.
    text = rows.astype(object).where(rows.notna(), "")
    writer.writerows(text.itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


def read_csv_rows(data: bytes) -> list[dict[str, str]]:
    """Parse a drop's CSV back into rows of strings (for the agency side and tests)."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    if tuple(reader.fieldnames or ()) not in VERSIONS.values():
        raise ValueError("the CSV header is not the agency_case_v1 (or _v1_1) header")
    return list(reader)


def columns_sent(rows: pd.DataFrame) -> pd.Series:
    """Per row, the comma-separated names of the columns that carry a value (for the audit)."""
    import pandas as pd

    columns = list(columns_of(rows))
    present = rows[columns].notna() & (rows[columns] != "")
    return present.dot(pd.Index(columns) + ",").str.rstrip(",")


def for_validation(rows: pd.DataFrame) -> pd.DataFrame:
    """`invoice_id` (from the index), the outgoing rows, and `sum_check_cents`.

    The invoice id lets GX name a failing row without its values (quarantine); it is never a
    column of the drop. GX has no arithmetic expectation, so the outgoing suite checks the
    derived sum_check_cents (principal − paid − open, expected 0). The suite checks the v1
    columns: v1.1's instalment_number is a number the run counted, not shop data.
    """
    check = rows["principal_cents"] - rows["paid_cents"] - rows["open_cents"]
    frame = rows[list(COLUMNS)].rename_axis("invoice_id").reset_index()
    return frame.assign(sum_check_cents=check.to_numpy())
