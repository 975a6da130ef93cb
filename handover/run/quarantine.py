"""Hold back the cases whose rows fail a row-level check; stop the run on anything else.

An expectation whose `meta.quarantine` holds a reason code is row-level (see the suites' meta):
a failing row holds back the case it belongs to, by invoice_id, with that code, and the other
cases proceed. Rows of a frame keyed by customer_id (customers, customer_flags, consents, or a
hold on a customer) hold back every case of that customer. The suite's meta.references are
checked here too (an invoice whose customer was not extracted: `orphan_invoice`), with pandas.
Every other failure is table-level
(a missing or extra column, a dtype, duplicate or missing ids) and stops the run, and so does a
row-level failure whose row carries no id to attribute it to.

If more than `max_share` of the batch's cases would be held back, the run stops as well: a
broken extraction must not look like a quiet day. Nothing here carries a value: invoice ids,
customer ids (internally, for the mapping), reason codes and counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from handover.errors import ValidationFailed
from handover.run import validate
from handover.run.debtors import PARENT
from handover.run.instalments import check_instalments
from handover.run.validate import ExpectationOutcome, Reference, SuiteLayout, ValidationReport

DEFAULT_MAX_SHARE = 0.05
QUARANTINE_COLUMNS = ("invoice_id", "reasons")
_SHOWN_IDS = 10


@dataclass(frozen=True, eq=False)
class QuarantineResult:
    """The outcome of one suite with quarantine: what proceeds, what is held back and why."""

    suite: str
    kept: Mapping[str, pd.DataFrame]  # the frames without the held-back cases' rows
    quarantined: pd.DataFrame  # invoice_id, reasons (comma-separated codes), by invoice_id
    cases: int  # the number of cases in the batch
    report: ValidationReport

    @property
    def invoice_ids(self) -> frozenset[str]:
        """The held-back invoice ids."""
        return frozenset(self.quarantined["invoice_id"])

    @property
    def share(self) -> float:
        """The held-back share of the batch's cases (0 for an empty batch)."""
        return len(self.quarantined) / self.cases if self.cases else 0.0

    def reason_counts(self) -> dict[str, int]:
        """Held-back cases per reason code (a case may count under several)."""
        codes = Counter(c for r in self.quarantined["reasons"] for c in r.split(","))
        return dict(sorted(codes.items()))

    def summary(self) -> str:
        """One line for the log, for example 'outgoing: 2 of 120 cases quarantined (…)'."""
        counts = ", ".join(f"{code}={n}" for code, n in self.reason_counts().items())
        held = f"{len(self.quarantined)} of {self.cases} cases quarantined"
        return f"{self.suite}: {held}" + (f" ({counts})" if counts else "")

    def enforce_share(self, max_share: float = DEFAULT_MAX_SHARE) -> None:
        """Raise ValidationFailed when more than `max_share` of the cases are held back."""
        if self.share <= max_share:
            return
        counts = ", ".join(f"{code} {n}" for code, n in self.reason_counts().items())
        ids = sorted(self.invoice_ids)
        shown = ", ".join(ids[:_SHOWN_IDS]) + (", …" if len(ids) > _SHOWN_IDS else "")
        raise ValidationFailed(
            f"suite '{self.suite}': {len(self.quarantined)} of {self.cases} cases "
            f"({self.share:.1%}) failed row-level checks, more than the {max_share:.1%} "
            "allowed (max_quarantine_share). The run stops before anything is sent: a broken "
            f"extraction must not look like a quiet day. Reasons: {counts}. Invoices: {shown}. "
            "Check the extraction and the shop data behind these invoices; if the share is "
            "expected, raise max_quarantine_share in the configuration."
        )


def quarantine(
    frames: Mapping[str, pd.DataFrame],
    suite: str,
    *,
    max_share: float | None = DEFAULT_MAX_SHARE,
) -> QuarantineResult:
    """Validate `frames` with `suite`, hold back the cases of failing rows, return the rest.

    Raises ValidationFailed on a table-level failure, on a failing row without an id, and when
    more than `max_share` of the cases are held back (`None`: the caller calls
    `enforce_share` itself, for example after recording the quarantine).
    """
    layout = validate.layout(suite)
    if layout.cases is None:
        raise ValidationFailed(
            f"suite '{suite}' has no meta.cases: name the frame whose rows are the cases in "
            f"{validate.SUITES_DIR / (suite + '.json')}"
        )
    report = validate.validate(frames, suite)
    if not any(o.raised or not o.success for o in report.outcomes if o.reason is None):
        # Columns and dtypes are sound, so the references can be looked up.
        references = tuple(_check_reference(frames, r, layout) for r in layout.references)
        # What no expectation can say row by row: whose debtor, which instalments.
        pandas_checks = (
            (*check_companies(frames), *check_instalments(frames)) if suite == "source" else ()
        )
        outcomes = report.outcomes + references + pandas_checks
        report = ValidationReport(suite=suite, outcomes=outcomes)
    row_level = [o for o in report.failures() if _row_level(o)]
    table_level = [o for o in report.failures() if not _row_level(o)]
    if table_level:
        message = validate.failure_message(report, table_level)
        if row_level:
            message += f"\n({len(row_level)} row-level failures were not considered)"
        raise ValidationFailed(message)

    cases = frames[layout.cases]
    by_invoice, by_customer = _attribute(row_level, suite)
    customer_of = cases.set_index("invoice_id")["customer_id"] if "customer_id" in cases else None
    if by_customer and customer_of is not None:
        company_of = _company_of(frames)
        for invoice_id, customer_id in customer_of.items():
            for held_by in (customer_id, company_of.get(customer_id)):
                if held_by in by_customer:
                    by_invoice[str(invoice_id)].update(by_customer[held_by])
    in_batch = set(cases["invoice_id"].astype(str))
    held = {i: codes for i, codes in by_invoice.items() if i in in_batch}
    quarantined = pd.DataFrame(
        {
            "invoice_id": sorted(held),
            "reasons": [",".join(sorted(held[i])) for i in sorted(held)],
        },
        columns=list(QUARANTINE_COLUMNS),
    )
    result = QuarantineResult(
        suite=suite,
        kept=_without(frames, set(held), set(by_customer)),
        quarantined=quarantined,
        cases=len(cases),
        report=report,
    )
    if max_share is not None:
        result.enforce_share(max_share)
    return result


def _check_reference(
    frames: Mapping[str, pd.DataFrame], reference: Reference, layout: SuiteLayout
) -> ExpectationOutcome:
    """The rows of reference.table whose value is missing from the target column, by id."""
    frame = frames[reference.table]
    values = frame[reference.column]
    dangling = frame[
        values.notna() & ~values.isin(frames[reference.target][reference.target_column])
    ]
    id_columns = layout.row_ids[reference.table]
    ids = dangling[list(id_columns)].astype(object)
    return ExpectationOutcome(
        table=reference.table,
        expectation=f"reference to {reference.target}.{reference.target_column}",
        column=reference.column,
        success=dangling.empty,
        unexpected_count=len(dangling),
        reason=reference.reason,
        id_columns=id_columns,
        unexpected_ids=tuple(
            tuple(None if pd.isna(v) else str(v) for v in row)
            for row in ids.itertuples(index=False, name=None)
        ),
    )


def _company_of(frames: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """Each contact's company (`handover.run.debtors`): a failing row of the company holds
    back the contacts' cases too."""
    customers = frames.get("customers")
    if customers is None or PARENT not in customers:
        return {}
    contacts = customers[customers[PARENT].notna()]
    return dict(zip(contacts["customer_id"], contacts[PARENT], strict=True))


def check_companies(frames: Mapping[str, pd.DataFrame]) -> tuple[ExpectationOutcome, ...]:
    """Contacts whose company is a consumer or a contact itself (`invalid_company`, by the
    contact's id): the debtor of their cases is unclear. An unknown company is a reference."""
    customers = frames.get("customers")
    if customers is None or PARENT not in customers:
        return ()
    parents = customers.set_index("customer_id")
    named = customers[customers[PARENT].notna() & customers[PARENT].isin(parents.index)]
    company = parents.reindex(named[PARENT].to_numpy())
    bad = named[(company["kind"].to_numpy() != "business") | company[PARENT].notna().to_numpy()]
    return (
        ExpectationOutcome(
            table="customers",
            expectation="parent_customer_id names a business that is no contact itself",
            column=PARENT,
            success=bad.empty,
            unexpected_count=len(bad),
            reason="invalid_company",
            id_columns=("customer_id",),
            unexpected_ids=tuple((str(c),) for c in bad["customer_id"]),
        ),
    )


def _row_level(outcome: ExpectationOutcome) -> bool:
    """A failure that names its rows: a reason code, evaluated, and one id per failing row."""
    return (
        outcome.reason is not None
        and not outcome.raised
        and bool(outcome.id_columns)
        and outcome.unexpected_count is not None
        and len(outcome.unexpected_ids) == outcome.unexpected_count
    )


def _attribute(
    outcomes: Iterable[ExpectationOutcome], suite: str
) -> tuple[defaultdict[str, set[str]], dict[str, set[str]]]:
    """Reason codes per invoice id and per customer id; raise for rows with neither."""
    by_invoice: defaultdict[str, set[str]] = defaultdict(set)
    by_customer: defaultdict[str, set[str]] = defaultdict(set)
    for outcome in outcomes:
        reason = str(outcome.reason)
        anonymous = 0
        for ids in outcome.unexpected_ids:
            row = dict(zip(outcome.id_columns, ids, strict=True))
            if row.get("invoice_id") is not None:
                by_invoice[row["invoice_id"]].add(reason)
            elif row.get("customer_id") is not None:
                by_customer[row["customer_id"]].add(reason)
            else:
                anonymous += 1
        if anonymous:
            raise ValidationFailed(
                f"suite '{suite}': {anonymous} row(s) of {outcome.table} fail "
                f"{outcome.expectation} on {outcome.column} but carry no "
                f"{' or '.join(outcome.id_columns)}, so no case can be held back for them; "
                "fix those rows in the shop data, then run again. Nothing was handed over."
            )
    return by_invoice, dict(by_customer)


def _without(
    frames: Mapping[str, pd.DataFrame], invoices: set[str], customers: set[str]
) -> dict[str, pd.DataFrame]:
    """The frames without the rows of held-back invoices and of customers held back whole."""
    kept = {}
    for name, frame in frames.items():
        drop = pd.Series(False, index=frame.index)
        if invoices and "invoice_id" in frame:
            drop |= frame["invoice_id"].isin(invoices)
        if customers and "customer_id" in frame:
            drop |= frame["customer_id"].isin(customers)
        kept[name] = frame[~drop] if drop.any() else frame
    return kept
