"""The agency-side contract of recall/update drops, `agency_recall_v1`: columns, codes, CSV.

A recall/update drop tells an agency what changed about cases it holds: stop (recall), new
amounts or a new name or address (update), delete a contact channel (erase_channel), pause and
resume. The JSON Schema of one row is `schemas/agency_recall_v1.json`; this module is its
counterpart in code, and `row_problem` is the one check both the shop (before sealing) and the
agency's tool (after decrypting) apply to a row. The CSV is written like a handover drop's:
UTF-8, header, RFC 4180 quoting, CRLF; an empty cell is a column the message does not set.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handover.contract import csv_bytes

if TYPE_CHECKING:  # pandas is imported where rows are written: the agency's tool needs none
    import pandas as pd
    from jsonschema import Draft202012Validator

SCHEMA_VERSION = "agency_recall_v1"

# What the agency must do, and the reason codes each message type may carry. A recall's reasons
# are in priority order: a case with several gets the first (the others stay in the audit log).
RECALL_REASONS: tuple[str, ...] = (
    "withdrawn",
    "cancelled",
    "written_off",
    "paid_in_full",
    "disputed",
    "installment_plan",
    "protected_customer",
)
REASONS: dict[str, tuple[str, ...]] = {
    "recall": RECALL_REASONS,
    "update": ("partial_payment", "amount_corrected", "name_changed", "address_changed"),
    "erase_channel": (
        "consent_withdrawn",
        "contact_changed",
        "contact_removed",
        "no_longer_allowed",
    ),
    "pause": ("hold_set",),
    "resume": ("hold_lifted",),
}
MESSAGE_TYPES: tuple[str, ...] = tuple(REASONS)

# The columns that say which case and which message; always filled (channel for erase_channel).
KEY_COLUMNS: tuple[str, ...] = (
    "case_ref",
    "invoice_number",
    "message_type",
    "reason_code",
    "effective_date",
    "fields",
    "channel",
)
AMOUNT_COLUMNS: tuple[str, ...] = (
    "principal_cents",
    "paid_cents",
    "open_cents",
    "payment_cents",
    "payment_date",
)
NAME_COLUMNS: tuple[str, ...] = ("first_name", "last_name", "company_name")
ADDRESS_COLUMNS: tuple[str, ...] = ("street", "postal_code", "city", "country")
# Columns a message sets only when `fields` names them.
VALUE_COLUMNS: tuple[str, ...] = AMOUNT_COLUMNS + NAME_COLUMNS + ADDRESS_COLUMNS
COLUMNS: tuple[str, ...] = KEY_COLUMNS + VALUE_COLUMNS
# The debtor's personal data among them (GDPR Art. 4(1)); e-mail and phone are never columns.
PERSONAL_COLUMNS: frozenset[str] = frozenset((*NAME_COLUMNS, "street", "postal_code", "city"))

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "agency_recall_v1.json"


@cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema of one row (`schemas/agency_recall_v1.json`)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    # The format checker makes "format": "date" refuse impossible dates such as 2024-02-30.
    return Draft202012Validator(json_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass(frozen=True)
class Problem:
    """The first rule a row breaks: its column, the rule, and words that quote no value."""

    column: str
    rule: str  # the schema keyword ('pattern', 'maxLength', …), or 'fields'
    detail: str = ""

    def describe(self) -> str:
        """`column X breaks the schema rule 'Y' of agency_recall_v1 (why)`."""
        return f"column {self.column} breaks the schema rule '{self.rule}' of {SCHEMA_VERSION}" + (
            f" ({self.detail})" if self.detail else ""
        )


def row_problem(row: dict[str, str]) -> Problem | None:
    """The first rule a row (all values strings) breaks; None if it is valid.

    The schema, and what a schema cannot say: a value column is filled only when `fields`
    names it, and `fields` names only value columns, each once. No message quotes a value.
    """
    from handover.contract import FORMULA_PREFIXES

    error = next(iter(_validator().iter_errors(row)), None)
    if error is not None:
        column = str(error.path[0]) if error.path else "(row)"
        value = row.get(column) or ""
        detail = ""
        if error.validator == "maxLength":
            detail = f"longer than {error.validator_value} characters"
        elif error.validator == "pattern" and value[:1] and value[0] in FORMULA_PREFIXES:
            detail = "it starts like a spreadsheet formula, without the leading quote"
        return Problem(column, str(error.validator), detail)
    named = [f for f in row.get("fields", "").split(";") if f]
    if any(f not in VALUE_COLUMNS for f in named) or len(set(named)) != len(named):
        return Problem("fields", "fields", "it must name value columns, each once")
    stray = next((c for c in VALUE_COLUMNS if row.get(c) and c not in named), None)
    if stray is not None:
        return Problem(stray, "fields", "a value in a column that `fields` does not name")
    return None


def to_csv_bytes(rows: pd.DataFrame) -> bytes:
    """Write `rows` (exactly the recall columns, in order) as RFC 4180 CSV with CRLF, in memory."""
    if tuple(rows.columns) != COLUMNS:
        raise ValueError("rows must have exactly the agency_recall_v1 columns in contract order")
    return csv_bytes(rows)


def read_csv_rows(data: bytes) -> list[dict[str, str]]:
    """Parse a recall drop's CSV back into rows of strings (for the agency side and tests)."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError("the CSV header is not the agency_recall_v1 header")
    return list(reader)
