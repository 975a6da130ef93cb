"""The shop-side contract's rules: what a run reads, of which kind, and what is wrong with it.

`source_contract` counts; this module says what the counts mean. A finding names the view or
table, the column, what was found (a type, a count of values, never a value) and the fix. The
rules, documented in the README's shop section and in `schemas/shop_source.sql`:

- ids (invoice_id, customer_id) are text; integer ids are read as text (harmless for joins);
- dates (order_date, issued_at, due_date, date_of_birth) are dates. A timestamp with a zone
  (`timestamptz`, ISO text with an offset) gives its Europe/Berlin date; a naive timestamp at
  midnight its date; a naive timestamp with a time of day is refused (ambiguous);
- a NULL or unreadable invoice date holds its case back (`invalid_date`, by the source suite);
  a column without a single readable date, or an unreadable date of birth, stops the run;
- amounts are integers by type (no float, no numeric with decimal places), and amounts that
  look like major units (euros, not cents) stop the run: see `MAJOR_UNIT_FLOORS`;
- flags are booleans (SQLite: 0 or 1), never NULL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handover.run.source_sql import BERLIN, FIRST_DAY, LAST_DAY, STORAGE_CLASSES, ColumnSql, Kind

# What a run reads, table by table, in the contract's column order.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "invoices": (
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
    "customers": (
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
        "parent_customer_id",
    ),
    "payments": ("invoice_id", "amount_cents", "instalment_id"),
    "dunning_events": (
        "invoice_id",
        "kind",
        "sent_at",
        "fee_cents",
        "announces_handover",
        "instalment_id",
    ),
    "disputes": ("invoice_id", "resolved_at", "outcome"),
    "installment_plans": ("invoice_id", "status"),
    "customer_flags": ("customer_id", "flag", "cleared_at"),
    "consents": ("customer_id", "purpose", "granted", "recorded_at", "source"),
    "holds": ("invoice_id", "customer_id", "expires_at", "held_until"),
    "unallocated_payments": ("customer_id", "amount_cents", "received_at", "allocated_at"),
    "invoice_instalments": ("instalment_id", "invoice_id", "due_date", "amount_cents"),
}
# Tables a shop may not have at all: a run reads an absent one as empty. A shop that has one
# delivers it whole, like any other table.
OPTIONAL_TABLES = frozenset({"unallocated_payments", "invoice_instalments"})
# Columns a shop may not have: a run reads an absent one as NULL in every row.
OPTIONAL_COLUMNS = frozenset(
    {
        ("customers", "parent_customer_id"),
        ("holds", "expires_at"),
        ("holds", "held_until"),
        ("payments", "instalment_id"),
        ("dunning_events", "instalment_id"),
    }
)
# When each fact arose: a recall or update names the day it took effect (`agency_recall_v1`'s
# effective_date). Read only for the cases at an agency, by `extract.extract_invoices`.
FACT_TIMES: Mapping[str, tuple[str, ...]] = {
    "payments": ("paid_at",),
    "disputes": ("opened_at",),
    "installment_plans": ("agreed_at",),
    "customer_flags": ("set_at",),
    "holds": ("set_at",),
}
# What the comparison of the cases at an agency with the shop's facts reads, table by table.
RECALL_COLUMNS: Mapping[str, tuple[str, ...]] = {
    table: columns + FACT_TIMES.get(table, ()) for table, columns in COLUMNS.items()
}

_KINDS: dict[Kind, tuple[str, ...]] = {
    "id": (
        "invoices.invoice_id",
        "invoices.customer_id",
        "customers.customer_id",
        "customers.parent_customer_id",
        "payments.invoice_id",
        "dunning_events.invoice_id",
        "disputes.invoice_id",
        "installment_plans.invoice_id",
        "customer_flags.customer_id",
        "consents.customer_id",
        "holds.invoice_id",
        "holds.customer_id",
        "unallocated_payments.customer_id",
        "invoice_instalments.instalment_id",
        "invoice_instalments.invoice_id",
        "payments.instalment_id",
        "dunning_events.instalment_id",
    ),
    "date": (
        "invoices.order_date",
        "invoices.issued_at",
        "invoices.due_date",
        "customers.date_of_birth",
        "holds.held_until",
        "invoice_instalments.due_date",
    ),
    "timestamp": (
        "dunning_events.sent_at",
        "disputes.resolved_at",
        "customer_flags.cleared_at",
        "consents.recorded_at",
        "holds.expires_at",
        "unallocated_payments.received_at",
        "unallocated_payments.allocated_at",
        *(f"{table}.{column}" for table, columns in FACT_TIMES.items() for column in columns),
    ),
    "amount": (
        "invoices.amount_cents",
        "payments.amount_cents",
        "dunning_events.fee_cents",
        "unallocated_payments.amount_cents",
        "invoice_instalments.amount_cents",
    ),
    "flag": ("dunning_events.announces_handover", "consents.granted"),
}
KINDS: Mapping[tuple[str, str], Kind] = {
    tuple(name.split(".")): kind  # type: ignore[misc]
    for kind, names in _KINDS.items()
    for name in names
}
# Text columns whose few values repeat in every row (a country, a status): held once each.
CODES = frozenset(
    (
        ("invoices", "currency"),
        ("invoices", "status"),
        ("customers", "kind"),
        ("customers", "country"),
        ("customers", "language"),
        ("dunning_events", "kind"),
        ("disputes", "outcome"),
        ("installment_plans", "status"),
        ("customer_flags", "flag"),
        ("consents", "purpose"),
        ("consents", "source"),
    )
)
# The invoice dates whose NULL or unreadable values hold a case back (invalid_date).
CASE_DATES = frozenset(("order_date", "issued_at", "due_date"))

# Amounts that look like major units. When at least MIN_POSITIVE values of a column are positive
# and more than half of them lie below its floor (in minor units), the run stops: a shop's
# typical invoice is not below 10.00, nor its typical payment or dunning fee below 1.00. The
# demo shop's medians are about 70.00 (invoices), 19.00 (partial payments) and 5.00 (fees).
MAJOR_UNIT_FLOORS: Mapping[tuple[str, str], int] = {
    ("invoices", "amount_cents"): 1000,
    ("payments", "amount_cents"): 100,
    ("unallocated_payments", "amount_cents"): 100,
    ("invoice_instalments", "amount_cents"): 100,
    ("dunning_events", "fee_cents"): 100,
}
MIN_POSITIVE = 10
# A shop whose amounts really are that small confirms it in its configuration.
CONFIRM_MINOR_UNITS = "source.confirm_minor_units"


# How the allowed values of a code column are said in a message: the suite's rule in words, and
# the usual mapping. Columns the source suite checks against a set or pattern without a line
# here are described by the set or the pattern itself.
_VALUE_HINTS: Mapping[tuple[str, str], str] = {
    ("invoices", "currency"): "ISO 4217 codes ('EUR')",
    ("customers", "country"): "ISO 3166-1 alpha-2 codes ('DE', 'AT')",
    ("customers", "language"): (
        "ISO 639-1 codes, two small letters ('de'): lower(substr(lang, 1, 2)) turns 'de_DE' "
        "into 'de'"
    ),
}


@dataclass(frozen=True)
class AllowedValues:
    """What a code column may hold, as the source suite (`expectations/source.json`) says it:
    a set of values or a pattern, and the reason code a run holds a case back with."""

    table: str
    column: str
    reason: str
    values: tuple[str, ...] = ()
    pattern: str | None = None

    def allows(self, value: object) -> bool:
        """True for a value a run lets pass (NULL is another expectation's business)."""
        if value is None:
            return True
        if self.pattern is not None:
            return isinstance(value, str) and re.search(self.pattern, value) is not None
        return str(value) in self.values  # as text: a view's integer level 2 is the level "2"

    def described(self) -> str:
        """The allowed values in words, for a message."""
        hint = _VALUE_HINTS.get((self.table, self.column))
        if hint:
            return hint
        if self.pattern is not None:
            return f"values matching {self.pattern}"
        return "one of " + ", ".join(f"'{v}'" for v in self.values)


def allowed_values() -> tuple[AllowedValues, ...]:
    """The code columns the source suite checks against a set or a pattern, row by row."""
    from handover.run.validate import SUITES_DIR

    suite = json.loads((SUITES_DIR / "source.json").read_text(encoding="utf-8"))
    found = []
    for expectation in suite["expectations"]:
        kwargs, meta = expectation["kwargs"], expectation.get("meta", {})
        if "quarantine" not in meta:
            continue
        if expectation["type"] == "expect_column_values_to_be_in_set":
            rule: dict[str, Any] = {"values": tuple(kwargs["value_set"])}
        elif expectation["type"] == "expect_column_values_to_match_regex":
            rule = {"pattern": kwargs["regex"]}
        else:
            continue
        found.append(AllowedValues(meta["table"], kwargs["column"], meta["quarantine"], **rule))
    return tuple(found)


@dataclass(frozen=True)
class Finding:
    """One thing to fix in the shop's tables or views; `stops` a run, or holds cases back."""

    table: str
    column: str | None
    message: str
    stops: bool = True


_FIX = {
    "id": "ids are text (integer ids are read as text): deliver CAST({c} AS text)",
    "date": "dates are read by type: deliver CAST({c} AS date)",
    "timestamp": "timestamps are read by type: deliver CAST({c} AS timestamp) (UTC) or a "
    "timestamptz",
    "amount": "amounts are integer minor units (cents) by type: deliver CAST(ROUND({c} * 100) "
    "AS bigint) if it holds euros, CAST({c} AS bigint) if cents",
    "flag": "flags are booleans: deliver CAST({c} AS boolean)",
}
_SQLITE_WANTS: Mapping[Kind, tuple[str, ...]] = {
    "id": ("text", "integer"),
    "date": ("text",),
    "timestamp": ("text",),
    "amount": ("integer",),
    "flag": ("integer",),
}
_SQLITE_FIX = {
    "id": "ids are text or integers: deliver the shop's id, CAST({c} AS TEXT)",
    "date": "dates are ISO text 'YYYY-MM-DD': deliver date(…) of the shop's date "
    "(date({c}, 'unixepoch') for epoch seconds)",
    "timestamp": "timestamps are ISO text 'YYYY-MM-DD HH:MM:SS' in UTC: deliver datetime(…) "
    "(datetime({c}, 'unixepoch') for epoch seconds)",
    "amount": "amounts are integer minor units (cents): deliver CAST(ROUND({c} * 100) AS "
    "INTEGER) if it holds euros, CAST({c} AS INTEGER) if cents",
    "flag": "flags are 0 or 1: deliver CASE WHEN … THEN 1 ELSE 0 END",
}
_PLURAL = {
    "integer": "integers",
    "real": "real (floating-point) numbers",
    "text": "text",
    "blob": "blobs",
}


def _where(kind: str, table: str, column: str) -> str:
    return f"{kind} '{table}', column '{column}'"


def refusal(kind: str, table: str, column: str, sql: ColumnSql) -> str:
    """The message for a column whose declared type cannot deliver the contract's type."""
    contract_kind = KINDS[(table, column)]
    return f"{_where(kind, table, column)}: {sql.found}; {_FIX[contract_kind].format(c=column)}"


def judge(
    kind: str,
    table: str,
    column: str,
    sql: ColumnSql,
    counts: Mapping[str, int],
    rows: int,
    *,
    minor_units_confirmed: bool = False,
) -> tuple[list[Finding], list[str]]:
    """The findings and the conversions applied for one column, from its probes' counts.

    `minor_units_confirmed`: the shop confirmed that amounts that look like euros are cents.
    """
    where, contract_kind = _where(kind, table, column), KINDS[(table, column)]
    # SQLite: values of a storage class the column must not hold.
    wrong = [
        Finding(
            table,
            column,
            f"{where}: {counts[cls]} of {rows} values are {_PLURAL[cls]}; "
            f"{_SQLITE_FIX[contract_kind].format(c=column)}",
        )
        for cls in STORAGE_CLASSES
        if counts.get(cls) and cls not in _SQLITE_WANTS[contract_kind]
    ]
    if wrong:
        return wrong, []
    notes = [f"{column}: {sql.found}, {sql.conversion}"] if sql.conversion else []
    if contract_kind == "id" and counts.get("integer"):
        notes.append(f"{column}: {counts['integer']} integer ids, read as text")
    if contract_kind == "date":
        findings, more = _judge_date(where, table, column, counts, rows)
        return findings, notes + more
    problems = []
    if contract_kind == "timestamp" and counts.get("bad"):
        problems.append(
            f"{counts['bad']} of {rows} values are not ISO timestamps; fix them in "
            "the shop or in the view"
        )
    if contract_kind == "flag" and counts.get("null"):
        problems.append(f"{counts['null']} of {rows} values are NULL; flags are true or false")
    if contract_kind == "flag" and counts.get("bad"):
        problems.append(f"{counts['bad']} of {rows} values are neither 0 nor 1; flags are 0 or 1")
    if contract_kind == "amount":
        problem, note = _judge_units(table, column, counts, minor_units_confirmed)
        problems += [problem] if problem else []
        notes += [note] if note else []
    return [Finding(table, column, f"{where}: {p}") for p in problems], notes


def _judge_date(
    where: str, table: str, column: str, counts: Mapping[str, int], rows: int
) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []

    def add(problem: str, *, stops: bool = True) -> None:
        findings.append(Finding(table, column, f"{where}: {problem}", stops))

    notes = []
    if counts.get("zoned"):
        notes.append(
            f"{column}: {counts['zoned']} values with a zone offset, read as their {BERLIN} date"
        )
    if counts.get("midnight"):
        notes.append(f"{column}: {counts['midnight']} timestamps at midnight, read as dates")
    time_of_day, bad, nulls = (counts.get(k, 0) for k in ("time_of_day", "bad", "null"))
    if time_of_day:
        add(
            f"{time_of_day} of {rows} values carry a time of day without a zone, which is "
            f"ambiguous; deliver the calendar date: CAST({column} AS date) if the times are "
            f"Berlin times, CAST(({column} AT TIME ZONE 'UTC') AT TIME ZONE '{BERLIN}' AS date) "
            f"if UTC (SQLite: date({column}))"
        )
    what = f"not ISO dates 'YYYY-MM-DD' between {FIRST_DAY[:4]} and {LAST_DAY[:4]}"
    if column not in CASE_DATES:  # a date of birth: NULL is unknown, anything else is wrong
        if bad:
            add(f"{bad} of {rows} values are {what}; fix them in the shop or in the view")
    elif rows and not time_of_day and rows == nulls + bad:  # the column holds no date at all
        parts = [f"{bad} {what}"] * bool(bad) + [f"{nulls} NULL"] * bool(nulls)
        add(
            f"none of its {rows} values is a date ({', '.join(parts)}); deliver ISO dates "
            "'YYYY-MM-DD', or a date type"
        )
    else:
        held = "a run holds their cases back (invalid_date): fix them in the shop"
        if bad:
            add(f"{bad} of {rows} values are {what}; {held}", stops=False)
        if nulls:
            add(f"{nulls} of {rows} values are NULL; {held}", stops=False)
    return findings, notes


def _judge_units(
    table: str, column: str, counts: Mapping[str, int], confirmed: bool
) -> tuple[str | None, str | None]:
    """A problem when the column's amounts look like major units, or a note that it was waived."""
    floor = MAJOR_UNIT_FLOORS[(table, column)]
    positive, small = counts.get("positive", 0), counts.get("small", 0)
    if positive < MIN_POSITIVE or small * 2 <= positive:
        return None, None
    if confirmed:
        return None, f"{column}: amounts look like major units, accepted ({CONFIRM_MINOR_UNITS})"
    return (
        f"{small} of {positive} positive amounts are below {floor} ({floor / 100:.2f} in major "
        "units): they look like euros, not cents. Deliver minor units (CAST(ROUND("
        f"{column} * 100) AS INTEGER)); if they really are cents, set "
        f"{CONFIRM_MINOR_UNITS} = true in the configuration (see the README's shop section)"
    ), None
