"""The shop-side contract (`schemas/shop_source.sql`), checked before a row is read.

Every table or view and every column a run reads is checked, with one grouped query per table
over exactly the rows a run reads (on PostgreSQL the types from the catalog, on SQLite from the
values: `source_sql`); `source_rules` says what the counts mean. Nothing is read but counts.
The report also says how each column is read (`reads`), so extraction selects exactly what was
checked, with the same case filter.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from handover.errors import SourceError
from handover.run import source_sql
from handover.run.source_rules import (
    COLUMNS,
    KINDS,
    MAJOR_UNIT_FLOORS,
    OPTIONAL_COLUMNS,
    OPTIONAL_TABLES,
    RECALL_COLUMNS,
    Finding,
    allowed_values,
    judge,
    refusal,
)
from handover.run.source_sql import ColumnSql


@dataclass(frozen=True)
class TableCheck:
    """The outcome for one table or view: rows a run reads, findings, conversions applied."""

    table: str
    kind: str  # "table", "view", "missing" or "absent" (an optional table the shop lacks)
    rows: int | None  # None: not counted (the table could not be queried yet)
    findings: tuple[Finding, ...] = ()
    conversions: tuple[str, ...] = ()
    # What is legal but likely wrong in a mapping (`source check` only): never stops a run.
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is to fix."""
        return not self.findings


@dataclass(frozen=True)
class ContractReport:
    """The checked contract: per table what to fix, and the SQL that reads each column."""

    tables: tuple[TableCheck, ...]
    reads: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # The rows checked, per table (a SQL condition), and the values it binds: extraction reads
    # exactly these rows.
    where: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every table was checked and none has anything to fix."""
        return all(t.ok and t.rows is not None for t in self.tables)

    def stopping(self) -> list[Finding]:
        """The findings that stop a run (the others hold cases back)."""
        return [f for t in self.tables for f in t.findings if f.stops]

    def kind(self, table: str) -> str:
        """'table' or 'view', as the shop database has it."""
        return next((t.kind for t in self.tables if t.table == table), "table or view")

    def read(self, table: str, column: str) -> str:
        """The SQL expression that reads `column` of `table` as the contract's type."""
        return self.reads.get((table, column), column)

    def listing(self, invoices: Any) -> Plan:
        """SQLite: this plan with the other tables' rows selected by the ids in `invoices` (the
        frame read by this plan's `where`), bound once, instead of a subquery that selects the
        cases again in every statement. The same rows: the ids are those the subquery gives."""
        ids = {
            "case_ids": json.dumps(list(invoices["invoice_id"].dropna().unique())),
            "case_customers": json.dumps(list(invoices["customer_id"].dropna().unique())),
        }
        where = scopes(self.reads, self.where["invoices"], dialect=self.dialect, listed=True)
        return replace(self, where=where, params={**self.params, **ids})

    def raise_if_broken(self) -> None:
        """Raise SourceError naming the first finding that stops a run (and how many more)."""
        stopping = self.stopping()
        if stopping:
            more = len(stopping) - 1
            raise SourceError(
                stopping[0].message
                + (f" (and {more} more: see `handover source check`)" if more else "")
            )


def scopes(
    reads: Mapping[tuple[str, str], str],
    cases: str | None = None,
    *,
    dialect: str = "",
    listed: bool = False,
    debtors_listed: bool = False,
) -> dict[str, str]:
    """Per table, the SQL condition on the rows a run reads (bind `:as_of`, a date).

    The cases are the open invoices due before `as_of`, and those whose due date is NULL or
    unreadable (the source suite holds them back); the other tables are limited to them.
    `cases` replaces that condition on `invoices` (`invoice_list`: given invoices, whatever their
    status). Columns are compared as `reads` reads them (integer ids as text, dates as dates).
    `listed` (SQLite): the cases' ids and their customers' are bound as JSON arrays,
    `:case_ids` and `:case_customers`, as read from `invoices` (`Plan.listing`);
    `debtors_listed`, the debtors too, `:debtor_ids`, as read from `customers`
    (`Plan.debtor_listing`).
    """

    def expr(table: str, column: str) -> str:
        return reads.get((table, column), column)

    due = expr("invoices", "due_date")
    # An invoice paid in instalments is a case once its first instalment is due, whatever the
    # invoice's own due date (Odoo: the last instalment's) says (`handover.run.instalments`).
    instalment_due = ""
    if ("invoice_instalments", "invoice_id") in reads:
        instalment_due = (
            f" OR {expr('invoices', 'invoice_id')} IN (SELECT "
            f"{expr('invoice_instalments', 'invoice_id')} FROM invoice_instalments WHERE "
            f"{expr('invoice_instalments', 'due_date')} < :as_of)"
        )
    if cases is None and dialect == "sqlite" and due == source_sql.sqlite_date("due_date"):
        # The same condition, without reading every open invoice's due date as a date.
        due_before = source_sql.sqlite_due_before("due_date", ":as_of")
        cases = f"status = 'open' AND ({due_before}{instalment_due})"
    elif cases is None:
        cases = f"status = 'open' AND ({due} < :as_of OR {due} IS NULL{instalment_due})"
    case_ids = f"SELECT {expr('invoices', 'invoice_id')} FROM invoices WHERE {cases}"
    case_customers = f"SELECT {expr('invoices', 'customer_id')} FROM invoices WHERE {cases}"
    if listed:
        case_ids = "SELECT value FROM json_each(:case_ids)"
        case_customers = "SELECT value FROM json_each(:case_customers)"

    # The cases' customers and the companies they are contacts of (`handover.run.debtors`):
    # facts on a company hold back its contacts' cases.
    parent = reads.get(("customers", "parent_customer_id"), "NULL")  # NULL: not checked yet
    debtors = case_customers
    if parent != "NULL":
        debtors = (
            f"{case_customers} UNION SELECT {parent} FROM customers "
            f"WHERE {expr('customers', 'customer_id')} IN ({case_customers}) "
            f"AND {parent} IS NOT NULL"
        )

    if debtors_listed:
        debtors = "SELECT value FROM json_each(:debtor_ids)"

    def of_cases(table: str) -> str:
        return f"{expr(table, 'invoice_id')} IN ({case_ids})"

    def of_customers(table: str, customers: str = debtors) -> str:
        return f"{expr(table, 'customer_id')} IN ({customers})"

    return {
        "invoices": cases,
        "customers": of_customers("customers"),
        "payments": of_cases("payments"),
        "dunning_events": of_cases("dunning_events"),
        "disputes": of_cases("disputes"),
        "installment_plans": of_cases("installment_plans"),
        "customer_flags": of_customers("customer_flags"),
        # Consent is the contact's own: their e-mail address and phone number are what leaves.
        "consents": of_customers("consents", case_customers),
        "holds": f"{of_cases('holds')} OR {of_customers('holds')}",
        "unallocated_payments": of_customers("unallocated_payments"),
        "invoice_instalments": of_cases("invoice_instalments"),
    }


def invoice_list(dialect: str, reads: Mapping[tuple[str, str], str]) -> str:
    """The condition on `invoices`: its id is one of `:ids`, a JSON array bound as one value.

    One bound value whatever the number of ids (SQLite limits the parameters of a statement).
    """
    invoice_id = reads.get(("invoices", "invoice_id"), "invoice_id")
    if dialect == "sqlite":
        return f"{invoice_id} IN (SELECT value FROM json_each(:ids))"
    if dialect == "postgresql":
        return f"{invoice_id} IN (SELECT jsonb_array_elements_text(CAST(:ids AS jsonb)))"
    raise SourceError(
        f"the shop database's dialect {dialect} is not supported (SQLite, PostgreSQL)"
    )


def statement(sql: str, params: Mapping[str, Any]) -> tuple[sa.TextClause, dict[str, Any]]:
    """`sql` as a text clause, with the values of `params` it binds (`:as_of` typed as a date)."""
    used = {name: value for name, value in params.items() if f":{name}" in sql}
    clause = sa.text(sql)
    if "as_of" in used:
        clause = clause.bindparams(sa.bindparam("as_of", type_=sa.Date))
    return clause, used


Counted = tuple[int | None, dict[str, dict[str, int]], Finding | None]


@dataclass(frozen=True)
class Plan:
    """What the catalog says about the tables a read needs, before a row is counted: how each
    column is read and probed, and which rows are read (`where`, binding `params`)."""

    dialect: str
    columns: Mapping[str, tuple[str, ...]]
    kinds: Mapping[str, str]  # "table", "view", "missing" or "absent" (optional, read empty)
    declared: Mapping[str, Mapping[str, Any]]
    described: Mapping[str, Mapping[str, ColumnSql]]
    reads: Mapping[tuple[str, str], str]
    where: Mapping[str, str]
    params: Mapping[str, Any]
    usable: frozenset[str]  # the tables whose rows can be selected
    # The columns that may be missing (read as NULL): OPTIONAL_COLUMNS and the configuration's.
    optional: frozenset[tuple[str, str]] = OPTIONAL_COLUMNS

    def countable(self) -> bool:
        """True when the catalog finds nothing: every table and column there, none refused,
        every table's rows selectable (an absent optional table has none). Then counting
        alone decides the contract."""
        return all(
            self.kinds[table] == "absent"
            or (
                self.kinds[table] != "missing"
                and table in self.usable
                and all(c in self.declared[table] or (table, c) in self.optional for c in wanted)
                and not any(sql.refused for sql in self.described[table].values())
            )
            for table, wanted in self.columns.items()
        )

    def read(self, table: str, column: str) -> str:
        """The SQL expression that reads `column` of `table` as the contract's type."""
        return self.reads.get((table, column), column)

    def listing(self, invoices: Any) -> Plan:
        """SQLite: this plan with the other tables' rows selected by the ids in `invoices` (the
        frame read by this plan's `where`), bound once, instead of a subquery that selects the
        cases again in every statement. The same rows: the ids are those the subquery gives."""
        ids = {
            "case_ids": json.dumps(list(invoices["invoice_id"].dropna().unique())),
            "case_customers": json.dumps(list(invoices["customer_id"].dropna().unique())),
        }
        where = scopes(self.reads, self.where["invoices"], dialect=self.dialect, listed=True)
        return replace(self, where=where, params={**self.params, **ids})

    def debtor_listing(self, customers: Any) -> Plan:
        """SQLite, after `listing`: this plan with the rows of the debtors' tables (flags,
        holds, unallocated money) selected by ids bound once, the cases' customers and the
        companies they are contacts of, as `customers` (the frame read by this plan's `where`)
        names them, instead of a union that finds the companies again in every statement. The
        same rows: the ids are those the union gives."""
        parent = ("customers", "parent_customer_id")
        if "case_customers" not in self.params or self.reads.get(parent, "NULL") == "NULL":
            return self  # no companies to find: the case customers are the debtors
        case_customers = json.loads(self.params["case_customers"])
        contacts = customers[customers["customer_id"].isin(case_customers)]
        companies = contacts["parent_customer_id"].dropna().unique().tolist()
        ids = {"debtor_ids": json.dumps(list(dict.fromkeys(case_customers + companies)))}
        where = scopes(
            self.reads,
            self.where["invoices"],
            dialect=self.dialect,
            listed=True,
            debtors_listed=True,
        )
        return replace(self, where=where, params={**self.params, **ids})

    def probes(self, table: str) -> list[tuple[str, str, str]]:
        """(column, label, condition) of every probe of `table`, in the order counted."""
        found = self.described[table]
        return [(c, label, cond) for c, sql in found.items() for label, cond in sql.probes.items()]

    def report(
        self, counted: Mapping[str, Counted], *, minor_units_confirmed: bool = False
    ) -> ContractReport:
        """The contract judged from the counts of each usable table (`count` or a read's)."""
        tables = [
            _check_table(
                table,
                self.kinds[table],
                self.declared[table],
                self.described[table],
                self.columns[table],
                counted.get(table),
                minor_units_confirmed,
                self.optional,
            )
            if self.kinds[table] not in ("missing", "absent")
            else _missing(table, self.kinds[table])
            for table in self.columns
        ]
        return ContractReport(
            tables=tuple(tables), reads=self.reads, where=self.where, params=self.params
        )


def plan(
    conn: sa.Connection,
    as_of: dt.date,
    *,
    columns: Mapping[str, tuple[str, ...]] = COLUMNS,
    invoice_ids: Sequence[str] | None = None,
    optional: frozenset[tuple[str, str]] = frozenset(),
) -> Plan:
    """What a check of `columns` on `as_of` (or of `invoice_ids`) reads and probes: the catalog
    only, no row. `optional` adds columns that may be missing to `OPTIONAL_COLUMNS`."""
    optional = OPTIONAL_COLUMNS | optional
    inspector = sa.inspect(conn)
    views = set(inspector.get_view_names())
    present = set(inspector.get_table_names()) | views
    declared = {
        table: {c["name"]: c["type"] for c in inspector.get_columns(table)}
        for table in columns
        if table in present
    }
    described = {
        table: _describe(conn.dialect.name, table, types, columns[table])
        for table, types in declared.items()
    }
    reads = {(t, c): sql.read for t, found in described.items() for c, sql in found.items()}
    # An optional column the shop lacks is read as NULL in every row.
    reads |= {
        (t, c): "NULL"
        for t, c in optional
        if t in declared and c in columns.get(t, ()) and c not in declared[t]
    }
    params: dict[str, Any] = {"as_of": as_of}
    cases = None
    if invoice_ids is not None:
        cases = invoice_list(conn.dialect.name, reads)
        params["ids"] = json.dumps([str(i) for i in invoice_ids])
    usable = _usable(declared, described)
    return Plan(
        dialect=conn.dialect.name,
        columns=columns,
        kinds={t: _kind(t, views, present) for t in columns},
        declared=declared,
        described=described,
        reads=reads,
        where=scopes(reads, cases, dialect=conn.dialect.name),
        params=params,
        usable=frozenset(t for t in columns if t in present and usable(t)),
        optional=optional,
    )


def check(
    conn: sa.Connection,
    as_of: dt.date,
    *,
    minor_units_confirmed: bool = False,
    columns: Mapping[str, tuple[str, ...]] = COLUMNS,
    invoice_ids: Sequence[str] | None = None,
    optional: frozenset[tuple[str, str]] = frozenset(),
    levels: Collection[str] = (),
    birth_dates_expected: bool = True,
) -> ContractReport:
    """Check every table, column and type a run on `as_of` reads; nothing is read but counts.

    `minor_units_confirmed` (`[source] confirm_minor_units`) accepts amounts that look like euros.
    `columns` is what is read per table; with `invoice_ids`, the rows are those of these
    invoices (whatever their status or due date) instead of the cases due before `as_of`.
    `optional`: columns that may be missing besides `OPTIONAL_COLUMNS`. In every table whose
    columns read soundly, code values outside the allowed ones are counted too (`_values`;
    `levels`: the configured dunning levels). `birth_dates_expected` false: the shop keeps no
    dates of birth, so their absence is not warned about.
    """
    planned = plan(conn, as_of, columns=columns, invoice_ids=invoice_ids, optional=optional)
    counted = {
        table: _count(
            conn,
            table,
            planned.kinds[table],
            planned.described[table],
            planned.where[table],
            planned.params,
        )
        for table in columns
        if table in planned.usable
    }
    report = planned.report(counted, minor_units_confirmed=minor_units_confirmed)
    # Values are counted in the tables whose columns read soundly, even where another table
    # has something to fix: one check names all there is to fix.
    held = _values(conn, planned, report, levels)
    warned = _warnings(conn, planned, birth_dates_expected) if report.ok else {}
    tables = tuple(
        replace(t, findings=t.findings + held.get(t.table, ()), warnings=warned.get(t.table, ()))
        for t in report.tables
    )
    return replace(report, tables=tables)


def _values(
    conn: sa.Connection, planned: Plan, report: ContractReport, levels: Collection[str]
) -> dict[str, tuple[Finding, ...]]:
    """Code values a run would hold cases back for (a kind, a language, a dunning kind the
    contract does not know), counted per column: found now, not as reason codes after a run.

    The values are grouped in SQL and judged by the source suite's own sets and patterns; the
    message counts them and says what is allowed, never what was found (a view that maps the
    wrong column would print a name). `levels`: the dunning levels of the configuration, which
    the view's dunning kinds are then (`[source.dunning_levels]`).
    """
    held: dict[str, tuple[Finding, ...]] = {}
    rows = {t.table: t.rows for t in report.tables}
    sound = {t.table for t in report.tables if t.ok and t.rows is not None and t.kind != "absent"}
    for rule in allowed_values():
        if rule.table not in sound:
            continue
        if rule.table == "dunning_events" and rule.column == "kind" and levels:
            rule = replace(rule, values=tuple(levels), pattern=None)
        value = planned.read(rule.table, rule.column)
        query, bound = statement(
            f"SELECT {value}, COUNT(*) FROM {rule.table} WHERE {planned.where[rule.table]} "
            f"GROUP BY {value}",
            planned.params,
        )
        bad = sum(n for found, n in conn.execute(query, bound) if not rule.allows(found))
        if bad:
            where = f"{planned.kinds[rule.table]} '{rule.table}', column '{rule.column}'"
            finding = Finding(
                rule.table,
                rule.column,
                f"{where}: {bad} of {rows[rule.table]} values are not {rule.described()}; "
                f"a run holds their cases back ({rule.reason}): map them in the view",
                stops=False,
            )
            held[rule.table] = (*held.get(rule.table, ()), finding)
    return held


# Below these, a pattern is as likely chance as a mapping's mistake.
_MIN_DUNNING_DAYS = 3
_MIN_CONSUMERS = 10


def _warnings(
    conn: sa.Connection, planned: Plan, birth_dates_expected: bool
) -> dict[str, tuple[str, ...]]:
    """Warnings on a contract that holds: a dunning event's time that looks like the dunning
    run's rather than the letter's, and consumers of whom no birth date is known (unless the
    shop said it keeps none: `birth_dates_expected` false)."""
    warned: dict[str, tuple[str, ...]] = {}
    sent = planned.read("dunning_events", "sent_at")
    if planned.dialect == "sqlite":
        day, midnight = f"substr({sent}, 1, 10)", f"substr({sent}, 12, 8) IN ('', '00:00:00')"
    else:
        day, midnight = f"CAST({sent} AS date)", f"CAST({sent} AS time) = '00:00:00'"
    query, bound = statement(
        f"SELECT COUNT(*), SUM(CASE WHEN times > 1 THEN 1 ELSE 0 END), SUM(midnight) "
        f"FROM (SELECT COUNT(DISTINCT {sent}) AS times, "
        f"SUM(CASE WHEN {midnight} THEN 1 ELSE 0 END) AS midnight, COUNT(*) AS events "
        f"FROM dunning_events WHERE {planned.where['dunning_events']} GROUP BY {day}) AS days "
        "WHERE events > 1",
        planned.params,
    )
    days, varied, at_midnight = conn.execute(query, bound).one()
    if days >= _MIN_DUNNING_DAYS and not varied and not at_midnight:
        warned["dunning_events"] = (
            f"on each of the {days} days with several dunning events, every event has the "
            "same time: is sent_at the dunning run's time rather than when the letter left? "
            "sent_at is when it left (a date is enough): the notice period counts from it",
        )
    if not birth_dates_expected:
        return warned
    born, kind = planned.read("customers", "date_of_birth"), planned.read("customers", "kind")
    query, bound = statement(
        f"SELECT COUNT(*), COUNT({born}) FROM customers "
        f"WHERE ({planned.where['customers']}) AND {kind} = 'consumer'",
        planned.params,
    )
    consumers, known = conn.execute(query, bound).one()
    if consumers >= _MIN_CONSUMERS and not known:
        warned["customers"] = (
            f"none of the {consumers} consumers has a date_of_birth, so rule 8 (minor on the "
            "order date) never holds a case back: deliver the birth dates the shop has, or "
            "set [source] keeps_birth_dates = false if it keeps none",
        )
    return warned


def _describe(
    dialect: str,
    table: str,
    types: Mapping[str, sa.types.TypeEngine],
    columns: tuple[str, ...],
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
        for column in columns
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
    table: str,
    kind: str,
    declared: Mapping[str, object],
    columns: Mapping[str, ColumnSql],
    wanted: tuple[str, ...],
    counted: Counted | None,
    minor_units_confirmed: bool,
    optional: frozenset[tuple[str, str]],
) -> TableCheck:
    findings = []
    missing = [c for c in wanted if c not in declared and (table, c) not in optional]
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
        Finding(table, c, refusal(kind, table, c, sql)) for c, sql in columns.items() if sql.refused
    ]
    rows, counts = None, {}
    if counted is not None:
        rows, counts, failure = counted
        findings += [failure] if failure else []
    # An optional column the view leaves out is read as NULL: say so, the feature is off.
    conversions = [
        f"{c}: not delivered, read as NULL (optional)"
        for c in wanted
        if c not in declared and (table, c) in optional
    ]
    for column, sql in columns.items():
        if rows is None or sql.refused:
            continue
        found, notes = judge(
            kind,
            table,
            column,
            sql,
            counts[column],
            rows,
            minor_units_confirmed=minor_units_confirmed,
        )
        findings += found
        conversions += notes
    return TableCheck(table, kind, rows, tuple(findings), tuple(conversions))


def _kind(table: str, views: set[str], present: set[str]) -> str:
    if table not in present:
        return "absent" if table in OPTIONAL_TABLES else "missing"
    return "view" if table in views else "table"


def _missing(table: str, kind: str) -> TableCheck:
    if kind == "absent":
        return TableCheck(table, kind, 0)
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
    params: Mapping[str, Any],
) -> Counted:
    """One grouped query: the rows a run reads and, per column, the rows meeting each probe."""
    labels = [(c, label) for c, sql in columns.items() for label in sql.probes]
    sums = [f"SUM(CASE WHEN {columns[c].probes[label]} THEN 1 ELSE 0 END)" for c, label in labels]
    query, bound = statement(
        f"SELECT {', '.join(['COUNT(*)', *sums])} FROM {table} WHERE {where}", params
    )
    try:
        values = conn.execute(query, bound).one()
    except sa.exc.DBAPIError as exc:
        conn.rollback()
        return None, {}, Finding(table, None, query_failed(kind, table, RECALL_COLUMNS[table], exc))
    counted: dict[str, dict[str, int]] = {c: {} for c in columns}
    for (column, label), value in zip(labels, values[1:], strict=True):
        counted[column][label] = int(value or 0)
    return int(values[0]), counted, None


# Probes per bitmask column: a SQL integer has 64 bits, PostgreSQL's bigint a sign among them.
MASK_BITS = 62


def probe_masks(plan: Plan, table: str) -> list[str]:
    """SQL expressions that carry the probes of `table` per row as bits (`MASK_BITS` each), so
    a read counts them in the same pass (`counted_from_masks`).

    Per column, a value that meets its `quick` condition gets the bits of its `quick_probes`
    without the other probes being tested; SQLite's storage-class probes are one `typeof()`.
    """
    bits = {(c, label): n for n, (c, label, _) in enumerate(plan.probes(table))}
    terms: list[list[str]] = [[] for _ in range(0, len(bits), MASK_BITS)]
    for column, sql in plan.described[table].items():
        by_mask: dict[int, list[str]] = {}
        classes: dict[int, list[str]] = {}
        for label, cond in sql.probes.items():
            mask, bit = divmod(bits[(column, label)], MASK_BITS)
            if label in source_sql.STORAGE_CLASSES and cond == f"typeof({column}) = '{label}'":
                classes.setdefault(mask, []).append(f"WHEN '{label}' THEN {1 << bit}")
            else:
                term = f"(CASE WHEN {cond} THEN {1 << bit} ELSE 0 END)"
                by_mask.setdefault(mask, []).append(term)
        for mask, whens in classes.items():
            by_mask.setdefault(mask, []).insert(
                0, f"(CASE typeof({column}) {' '.join(whens)} ELSE 0 END)"
            )
        for mask, parts in by_mask.items():
            full = " + ".join(parts)
            if sql.quick:
                whens = " ".join(
                    f"WHEN {cond} THEN {_bits_of(bits, column, holding, mask)}"
                    for cond, holding in sql.quick
                )
                full = f"(CASE {whens} ELSE {full} END)"
            terms[mask].append(full)
    return [" + ".join(["CAST(0 AS BIGINT)", *parts]) for parts in terms]


def _bits_of(
    bits: Mapping[tuple[str, str], int], column: str, labels: Sequence[str], mask: int
) -> int:
    """The bits of `column`'s probes `labels` that fall in bitmask `mask`."""
    return sum(
        1 << (bits[(column, label)] % MASK_BITS)
        for label in labels
        if bits[(column, label)] // MASK_BITS == mask
    )


def counted_from_masks(plan: Plan, table: str, rows: int, masks: Sequence[Any]) -> Counted:
    """What `_count` counts, from the `rows` read and their bitmasks of `probe_masks` (int64
    arrays, one per mask expression)."""
    counted: dict[str, dict[str, int]] = {c: {} for c in plan.described[table]}
    for n, (column, label, _) in enumerate(plan.probes(table)):
        bits = masks[n // MASK_BITS] & (1 << (n % MASK_BITS))
        counted[column][label] = int(bits.astype(bool).sum())
    return rows, counted, None


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
