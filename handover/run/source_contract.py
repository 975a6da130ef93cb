"""The shop-side contract (`schemas/shop_source.sql`), checked before a row is read.

Every table or view and every column a run reads is checked, with one grouped query per table
over exactly the rows a run reads (on PostgreSQL most of it from the catalog). A finding names
the view or table, the column, what was found (a type, a count of values, never a value) and the
fix. The rules, documented in the README's shop section:

- ids (invoice_id, customer_id) are text; integer ids are read as text (harmless for joins);
- dates (order_date, issued_at, due_date, date_of_birth) are dates. A timestamp with a zone
  (`timestamptz`, ISO text with an offset) gives its Europe/Berlin date; a naive timestamp at
  midnight its date; a naive timestamp with a time of day is refused (ambiguous);
- a NULL or unreadable invoice date holds its case back (`invalid_date`, by the source suite);
  a column without a single readable date, or an unreadable date of birth, stops the run;
- amounts are integers by type (no float, no numeric with decimal places), and amounts that
  look like major units (euros, not cents) stop the run: see `MAJOR_UNIT_FLOORS`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from handover.errors import SourceError
from handover.run import source_sql
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
    ),
    "payments": ("invoice_id", "amount_cents"),
    "dunning_events": ("invoice_id", "kind", "sent_at", "fee_cents", "announces_handover"),
    "disputes": ("invoice_id", "resolved_at", "outcome"),
    "installment_plans": ("invoice_id", "status"),
    "customer_flags": ("customer_id", "flag", "cleared_at"),
    "consents": ("customer_id", "purpose", "granted", "recorded_at", "source"),
    "holds": ("invoice_id", "customer_id", "expires_at"),
}

_KINDS: dict[Kind, tuple[str, ...]] = {
    "id": (
        "invoices.invoice_id",
        "invoices.customer_id",
        "customers.customer_id",
        "payments.invoice_id",
        "dunning_events.invoice_id",
        "disputes.invoice_id",
        "installment_plans.invoice_id",
        "customer_flags.customer_id",
        "consents.customer_id",
        "holds.invoice_id",
        "holds.customer_id",
    ),
    "date": (
        "invoices.order_date",
        "invoices.issued_at",
        "invoices.due_date",
        "customers.date_of_birth",
    ),
    "timestamp": (
        "dunning_events.sent_at",
        "disputes.resolved_at",
        "customer_flags.cleared_at",
        "consents.recorded_at",
        "holds.expires_at",
    ),
    "amount": ("invoices.amount_cents", "payments.amount_cents", "dunning_events.fee_cents"),
    "flag": ("dunning_events.announces_handover", "consents.granted"),
}
KINDS: Mapping[tuple[str, str], Kind] = {
    tuple(name.split(".")): kind  # type: ignore[misc]
    for kind, names in _KINDS.items()
    for name in names
}
# The invoice dates whose NULL or unreadable values hold a case back (invalid_date).
CASE_DATES = frozenset(("order_date", "issued_at", "due_date"))

# Amounts that look like major units. When at least MIN_POSITIVE values of a column are positive
# and more than half of them lie below its floor (in minor units), the run stops: a shop's
# typical invoice is not below 10.00, nor its typical payment or dunning fee below 1.00. The
# demo shop's medians are about 60.00 (invoices), 20.00 (payments) and 5.00 (fees).
MAJOR_UNIT_FLOORS: Mapping[tuple[str, str], int] = {
    ("invoices", "amount_cents"): 1000,
    ("payments", "amount_cents"): 100,
    ("dunning_events", "fee_cents"): 100,
}
MIN_POSITIVE = 10
# A shop whose amounts really are that small confirms it here (env), as the message says.
CONFIRM_MINOR_UNITS = "HANDOVER_CONFIRM_MINOR_UNITS"


@dataclass(frozen=True)
class Finding:
    """One thing to fix in the shop's tables or views; `stops` a run, or holds cases back."""

    table: str
    column: str | None
    message: str
    stops: bool = True


@dataclass(frozen=True)
class TableCheck:
    """The outcome for one table or view: rows a run reads, findings, conversions applied."""

    table: str
    kind: str  # "table", "view" or "missing"
    rows: int | None  # None: not counted (the table could not be queried yet)
    findings: tuple[Finding, ...] = ()
    conversions: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is to fix."""
        return not self.findings


@dataclass(frozen=True)
class ContractReport:
    """The checked contract: per table what to fix, and the SQL that reads each column."""

    tables: tuple[TableCheck, ...]
    reads: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no table has anything to fix."""
        return all(t.ok for t in self.tables)

    def stopping(self) -> list[Finding]:
        """The findings that stop a run (the others hold cases back)."""
        return [f for t in self.tables for f in t.findings if f.stops]

    def kind(self, table: str) -> str:
        """'table' or 'view', as the shop database has it."""
        return next((t.kind for t in self.tables if t.table == table), "table or view")

    def read(self, table: str, column: str) -> str:
        """The SQL expression that reads `column` of `table` as the contract's type."""
        return self.reads.get((table, column), column)

    def raise_if_broken(self) -> None:
        """Raise SourceError naming the first finding that stops a run (and how many more)."""
        stopping = self.stopping()
        if stopping:
            more = len(stopping) - 1
            raise SourceError(
                stopping[0].message
                + (f" (and {more} more: see `handover source check`)" if more else "")
            )


def scopes(report: ContractReport | None = None) -> dict[str, str]:
    """Per table, the SQL condition on the rows a run reads (bind `:as_of`, a date).

    The cases are the open invoices due before `as_of`, and those whose due date is NULL or
    unreadable (the source suite holds them back); the other tables are limited to them.
    """

    def expr(table: str, column: str) -> str:
        return report.read(table, column) if report else column

    due = expr("invoices", "due_date")
    cases = f"status = 'open' AND ({due} < :as_of OR {due} IS NULL)"
    case_ids = f"SELECT {expr('invoices', 'invoice_id')} FROM invoices WHERE {cases}"
    case_customers = f"SELECT {expr('invoices', 'customer_id')} FROM invoices WHERE {cases}"

    def of_cases(table: str) -> str:
        return f"{expr(table, 'invoice_id')} IN ({case_ids})"

    def of_customers(table: str) -> str:
        return f"{expr(table, 'customer_id')} IN ({case_customers})"

    return {
        "invoices": cases,
        "customers": of_customers("customers"),
        "payments": of_cases("payments"),
        "dunning_events": of_cases("dunning_events"),
        "disputes": of_cases("disputes"),
        "installment_plans": of_cases("installment_plans"),
        "customer_flags": of_customers("customer_flags"),
        "consents": of_customers("consents"),
        "holds": f"{of_cases('holds')} OR {of_customers('holds')}",
    }


def check(conn: sa.Connection, as_of: dt.date) -> ContractReport:
    """Check every table, column and type a run on `as_of` reads; nothing is read but counts."""
    inspector = sa.inspect(conn)
    views = set(inspector.get_view_names())
    present = set(inspector.get_table_names()) | views
    declared = {
        table: {c["name"]: c["type"] for c in inspector.get_columns(table)}
        for table in COLUMNS
        if table in present
    }
    columns = {
        table: _describe(conn.dialect.name, table, types) for table, types in declared.items()
    }
    reads = {(t, c): sql.read for t, described in columns.items() for c, sql in described.items()}
    scope = scopes(ContractReport(tables=(), reads=reads))
    usable = _usable(declared, columns)
    tables = [
        _check_table(
            conn,
            table,
            _kind(table, views),
            declared[table],
            columns[table],
            scope[table] if usable(table) else None,
            as_of,
        )
        if table in present
        else _missing(table)
        for table in COLUMNS
    ]
    return ContractReport(tables=tuple(tables), reads=reads)


def _describe(
    dialect: str, table: str, types: Mapping[str, sa.types.TypeEngine]
) -> dict[str, ColumnSql]:
    """How each present column of `table` that the contract types is read and probed."""
    return {
        column: source_sql.describe(
            dialect,
            column,
            KINDS[(table, column)],
            None if dialect == "sqlite" else types[column],
            MAJOR_UNIT_FLOORS.get((table, column), 0),
        )
        for column in COLUMNS[table]
        if (table, column) in KINDS and column in types
    }


def _usable(
    declared: Mapping[str, Mapping[str, object]], columns: Mapping[str, Mapping[str, ColumnSql]]
) -> Callable[[str], bool]:
    """Whether the rows of a table that a run reads can be selected (the case filter's columns)."""

    def readable(table: str, column: str) -> bool:
        if column not in declared.get(table, {}):
            return False
        return column not in columns[table] or not columns[table][column].refused

    cases = all(
        readable("invoices", c) for c in ("status", "due_date", "invoice_id", "customer_id")
    )

    def usable(table: str) -> bool:
        ids = [c for c in ("invoice_id", "customer_id") if c in COLUMNS[table]]
        return cases and all(readable(table, c) for c in ids)

    return usable


def _check_table(
    conn: sa.Connection,
    table: str,
    kind: str,
    declared: Mapping[str, object],
    columns: Mapping[str, ColumnSql],
    where: str | None,
    as_of: dt.date,
) -> TableCheck:
    findings = []
    missing = [c for c in COLUMNS[table] if c not in declared]
    if missing:
        findings.append(
            Finding(
                table,
                None,
                f"{kind} '{table}' lacks column(s) "
                f"{', '.join(missing)} required by schemas/shop_source.sql; "
                "add them or map them in a view",
            )
        )
    findings += [
        Finding(table, c, _refusal(kind, table, c, sql))
        for c, sql in columns.items()
        if sql.refused
    ]
    rows, counted = None, {}
    if where is not None:
        rows, counted, failure = _count(conn, table, kind, columns, where, as_of)
        findings += [failure] if failure else []
    conversions = []
    for column, sql in columns.items():
        if rows is None or sql.refused:
            continue
        found, notes = _judge(kind, table, column, sql, counted[column], rows)
        findings += found
        conversions += notes
    return TableCheck(table, kind, rows, tuple(findings), tuple(conversions))


def _kind(table: str, views: set[str]) -> str:
    return "view" if table in views else "table"


def _missing(table: str) -> TableCheck:
    message = (
        f"the shop database has no table or view '{table}'; create it or a view with that "
        "name as described in schemas/shop_source.sql"
    )
    return TableCheck(table, "missing", None, (Finding(table, None, message),))


def _count(
    conn: sa.Connection,
    table: str,
    kind: str,
    columns: Mapping[str, ColumnSql],
    where: str,
    as_of: dt.date,
) -> tuple[int | None, dict[str, dict[str, int]], Finding | None]:
    """One grouped query: the rows a run reads and, per column, the rows meeting each probe."""
    labels = [(c, label) for c, sql in columns.items() for label in sql.probes]
    sums = [f"SUM(CASE WHEN {columns[c].probes[label]} THEN 1 ELSE 0 END)" for c, label in labels]
    query = sa.text(
        f"SELECT {', '.join(['COUNT(*)', *sums])} FROM {table} WHERE {where}"
    ).bindparams(sa.bindparam("as_of", type_=sa.Date))
    try:
        values = conn.execute(query, {"as_of": as_of}).one()
    except sa.exc.DBAPIError as exc:
        conn.rollback()
        return None, {}, Finding(table, None, query_failed(kind, table, COLUMNS[table], exc))
    counted: dict[str, dict[str, int]] = {c: {} for c in columns}
    for (column, label), value in zip(labels, values[1:], strict=True):
        counted[column][label] = int(value or 0)
    return int(values[0]), counted, None


def query_failed(kind: str, table: str, columns: tuple[str, ...], exc: sa.exc.DBAPIError) -> str:
    """The message for a query the database refused: the table and column, never its text.

    Drivers quote row values in their messages (SQLite: "Could not decode to UTF-8 column
    'first_name' with text '…'"; PostgreSQL: 'invalid input syntax for type date: "…"').
    """
    text = str(exc.orig)
    column = next((c for c in columns if f"'{c}'" in text or f'"{c}"' in text), None)
    where = f"{kind} '{table}'" + (f", column '{column}'" if column else "")
    if "decode" in text.lower():
        hint = "it holds text that is not UTF-8 (a Latin-1 import?); convert it to UTF-8"
    else:
        hint = "check it against schemas/shop_source.sql"
    return (
        f"cannot read {where} of the shop database ({type(exc.orig).__name__}; the driver's "
        f"message is withheld because it may quote row values): {hint}"
    )


# --------------------------------------------------------------------------- judgement

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


def _refusal(kind: str, table: str, column: str, sql: ColumnSql) -> str:
    contract_kind = KINDS[(table, column)]
    return f"{_where(kind, table, column)}: {sql.found}; {_FIX[contract_kind].format(c=column)}"


def _judge(
    kind: str,
    table: str,
    column: str,
    sql: ColumnSql,
    counts: Mapping[str, int],
    rows: int,
) -> tuple[list[Finding], list[str]]:
    """The findings and the conversions applied for one column, from its probes' counts."""
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
        problem, note = _judge_units(table, column, counts)
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
    table: str, column: str, counts: Mapping[str, int]
) -> tuple[str | None, str | None]:
    """A problem when the column's amounts look like major units, or a note that it was waived."""
    floor = MAJOR_UNIT_FLOORS[(table, column)]
    positive, small = counts.get("positive", 0), counts.get("small", 0)
    if positive < MIN_POSITIVE or small * 2 <= positive:
        return None, None
    if os.environ.get(CONFIRM_MINOR_UNITS) == "1":
        return None, f"{column}: amounts look like major units, accepted ({CONFIRM_MINOR_UNITS}=1)"
    return (
        f"{small} of {positive} positive amounts are below {floor} ({floor / 100:.2f} in major "
        "units): they look like euros, not cents. Deliver minor units (CAST(ROUND("
        f"{column} * 100) AS INTEGER)); if they really are cents, set "
        f"{CONFIRM_MINOR_UNITS}=1 for the run (see the README's shop section)"
    ), None
