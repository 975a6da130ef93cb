"""The legal preconditions of a handover, applied to whole DataFrames.

A case is an invoice with status 'open' and a due date before `as_of` (a Europe/Berlin date), or
an instalment due before then of an open invoice (`handover.run.instalments`), keyed
`<invoice_id>#<instalment_id>`.
State facts (payments, disputes, plans, flags, holds) count as they stand at extraction; time
rules (3, 4, 8, 9) are measured at `as_of`. A case is eligible only if every rule holds; a case
that is not gets all of its failing reason codes, so support can explain the decision.

Order: the global rules (`[rules]`), then routing (exactly one agency's route must match), then
the chosen agency's own thresholds and served currencies and countries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from handover.case_keys import SEPARATOR
from handover.config import Agency, Rules
from handover.errors import EligibilityError
from handover.run.debtors import debtors, of_customers
from handover.run.facts import NUMBER, case_facts
from handover.run.instalments import per_instalment
from handover.run.rules import REASON_CODES, RULES, Rule  # noqa: F401 (re-exported)

PROTECTED_FLAGS = ("deceased", "insolvency", "hardship")
EXCLUDING_OUTCOMES = ("claim_withdrawn", "partially_upheld")


@dataclass(frozen=True)
class Decision:
    """The outcome for every case: facts, customer fields, and one failure column per rule.

    `cases` is indexed by invoice_id (an instalment's case key); its columns are the facts of
    `handover.run.facts`, the customer's fields, and a boolean column per reason code (True =
    the rule failed).
    """

    as_of: dt.date
    cases: pd.DataFrame

    def eligible_for(self, agency: str) -> pd.DataFrame:
        """The eligible cases routed to `agency`."""
        # One selection: the eligible cases of every agency are not copied on the way.
        return self.cases[self._passes() & (self.cases["agency"] == agency)]

    @property
    def failures(self) -> pd.DataFrame:
        """Boolean frame, one column per reason code."""
        return self.cases[list(REASON_CODES)]

    @property
    def eligible(self) -> pd.DataFrame:
        """The cases that pass every rule."""
        return self.cases[self._passes()]

    def _passes(self) -> pd.Series:
        """True for each case that passes every rule."""
        return ~self.failures.any(axis=1)

    def reason_counts(self) -> dict[str, int]:
        """Cases failing each rule (a case may count under several codes), plus 'eligible'."""
        counts = {code: int(n) for code, n in self.failures.sum().items()}
        counts["eligible"] = int(self._passes().sum())
        return counts

    def reasons(self) -> pd.Series:
        """Comma-separated failing codes per invoice_id; empty string = eligible."""
        failures = self.failures
        joined = failures.dot(pd.Index(REASON_CODES) + ",")
        return joined.str.rstrip(",").rename("reasons")


def today_berlin() -> dt.date:
    """Today's date in Europe/Berlin, the default `as_of`."""
    return dt.datetime.now(ZoneInfo("Europe/Berlin")).date()


def check_as_of(as_of: dt.date) -> dt.date:
    """Refuse an `as_of` in the future: rules measured then would hand over too early."""
    if as_of > today_berlin():
        raise EligibilityError(
            f"as_of {as_of.isoformat()} is in the future (today in Europe/Berlin is "
            f"{today_berlin().isoformat()}); choose today or an earlier date"
        )
    return as_of


def decide(
    frames: dict[str, pd.DataFrame],
    *,
    as_of: dt.date,
    rules: Rules,
    agencies: Sequence[Agency],
    handed_over: Iterable[str] = (),
    on_review: Iterable[str] = (),
) -> Decision:
    """Apply the rules and routing to every case in `frames` (as `source.extract` returns them).

    `handed_over` are the invoices in a drop already (rule 10), `on_review` those an agency
    reported disputed or complained about and nobody released yet (rule 16). `cases` gets an
    `agency` column: the agency the case is routed to, or None.
    """
    check_as_of(as_of)
    frames = per_instalment(frames, as_of)
    customers = debtors(frames["customers"])
    handed_over = pd.Index(list(handed_over))
    facts_by_notice_days: dict[int, pd.DataFrame] = {}

    def cases_with(notice_days: int) -> pd.DataFrame:
        # Facts depend on the notice period (rule 4) only; agencies often share it.
        if notice_days not in facts_by_notice_days:
            facts = case_facts(frames, as_of, notice_days)
            facts_by_notice_days[notice_days] = facts.join(customers, on="customer_id")
        return facts_by_notice_days[notice_days]

    # Shallow: copy-on-write copies a column only when it is written (another notice period).
    cases = cases_with(rules.notice_days).copy(deep=False)
    routed = route(cases, agencies)
    # Rule 11 reads only the customer's fields, the same whatever the notice period: once.
    incomplete = _incomplete(cases)
    # Unrouted cases are judged by the global rules against what any agency serves.
    failed = _failures(
        cases,
        frames,
        as_of,
        rules,
        currencies={c for a in agencies for c in a.currencies},
        countries={c for a in agencies for c in a.countries},
        handed_over=handed_over,
        incomplete=incomplete,
    )
    for agency in agencies:
        mine = routed == agency.name
        if not mine.any():
            continue
        agency_cases = cases_with(agency.rules.notice_days)[mine]
        if agency.rules.notice_days != rules.notice_days:  # else they are these cases' facts
            cases.loc[mine, agency_cases.columns] = agency_cases
        failed.loc[mine] = _failures(
            agency_cases,
            frames,
            as_of,
            agency.rules,
            currencies=set(agency.currencies),
            countries=set(agency.countries),
            handed_over=handed_over,
            incomplete=incomplete[mine],
        )
    failed["no_agency"] = routed == NO_AGENCY
    failed["ambiguous_route"] = routed == AMBIGUOUS
    failed["on_review"] = cases.index.isin(pd.Index(list(on_review)))
    cases["agency"] = routed.where(~routed.isin([NO_AGENCY, AMBIGUOUS]), None)
    return Decision(as_of=as_of, cases=cases.join(failed.astype(bool)))


NO_AGENCY = ""
AMBIGUOUS = "*"


def route(cases: pd.DataFrame, agencies: Sequence[Agency]) -> pd.Series:
    """Per case the one agency whose route matches, or NO_AGENCY, or AMBIGUOUS."""
    chosen = pd.Series(NO_AGENCY, index=cases.index, dtype=object)
    matches = pd.Series(0, index=cases.index)
    for agency in agencies:
        r = agency.route
        hit = cases["open_cents"] >= r.min_open_cents
        if r.max_open_cents is not None:
            hit &= cases["open_cents"] <= r.max_open_cents
        if r.countries:
            hit &= cases["country"].isin(r.countries)
        if r.debtor_kinds:
            hit &= cases["kind"].isin(r.debtor_kinds)
        chosen = chosen.where(~hit, agency.name)
        matches += hit.astype(int)
    return chosen.where(matches <= 1, AMBIGUOUS)


def _failures(
    cases: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
    as_of: dt.date,
    rules: Rules,
    *,
    currencies: set[str],
    countries: set[str],
    handed_over: pd.Index,
    incomplete: pd.Series,
) -> pd.DataFrame:
    """Rules 1–13 and 17 for `cases`: one boolean column per reason code, True = failed.

    `incomplete` is rule 11 for these cases (`_incomplete`), computed once per run.
    """
    as_of_day = pd.Timestamp(as_of)
    failed = pd.DataFrame(index=cases.index)
    failed["not_open"] = cases["open_cents"] <= 0
    failed["below_minimum"] = cases["open_cents"] < rules.minimum_open_cents
    failed["overdue_too_short"] = as_of_day < cases["due_date"] + pd.Timedelta(
        days=rules.overdue_days
    )
    failed["dunning_incomplete"] = cases["handover_notice_date"].isna()
    failed["disputed"] = cases.index.isin(_disputed(frames["disputes"]))
    failed["installment_plan"] = cases.index.isin(_active_plans(frames["installment_plans"]))
    failed["protected_customer"] = of_customers(cases, _protected(frames["customer_flags"]))
    failed["minor"] = cases["order_date"] < _coming_of_age(
        cases["date_of_birth"], rules.majority_age
    )
    failed["time_barred"] = as_of_day > _limitation_end(cases["due_date"], cases["country"])
    failed["already_handed_over"] = _at_agency(cases, handed_over)
    failed["incomplete"] = incomplete
    failed["not_served"] = ~(cases["currency"].isin(currencies) & cases["country"].isin(countries))
    failed["on_hold"] = _on_hold(frames["holds"], cases, as_of_day)
    failed["unallocated_payment"] = of_customers(
        cases, _unallocated(frames["unallocated_payments"])
    )
    return failed


def _at_agency(cases: pd.DataFrame, handed_over: pd.Index) -> np.ndarray:
    """Rule 10: the case is at an agency, or, for an instalment, the whole invoice is (handed
    over before the shop listed its instalments, and not recalled yet)."""
    at_agency = cases.index.isin(handed_over)
    if NUMBER in cases:
        instalment = cases[NUMBER].notna().to_numpy()
        invoice = cases.index.str.split(SEPARATOR, n=1).str[0]
        at_agency |= instalment & invoice.isin(handed_over)
    return at_agency


def standing(cases: pd.DataFrame, frames: dict[str, pd.DataFrame], as_of: dt.date) -> pd.DataFrame:
    """Rules 5, 6, 7, 13 and 17 for `cases` (facts with customer_id, indexed by invoice_id), as
    the facts stand: one boolean column per code, True = failed.

    What a case at an agency is compared by (`handover.run.changes`): the first three recall it,
    a hold pauses it, and so does money received and not yet allocated (it may pay this claim).
    The same helpers as the rules, so the two cannot drift apart.
    """
    as_of_day = pd.Timestamp(as_of)
    failed = pd.DataFrame(index=cases.index)
    failed["disputed"] = cases.index.isin(_disputed(frames["disputes"]))
    failed["installment_plan"] = cases.index.isin(_active_plans(frames["installment_plans"]))
    failed["protected_customer"] = of_customers(cases, _protected(frames["customer_flags"]))
    failed["on_hold"] = _on_hold(frames["holds"], cases, as_of_day)
    failed["unallocated_payment"] = of_customers(
        cases, _unallocated(frames["unallocated_payments"])
    )
    return failed


def _disputed(disputes: pd.DataFrame) -> pd.Index:
    excluding = disputes["resolved_at"].isna() | disputes["outcome"].isin(EXCLUDING_OUTCOMES)
    return pd.Index(disputes.loc[excluding, "invoice_id"].unique())


def _active_plans(plans: pd.DataFrame) -> pd.Index:
    return pd.Index(plans.loc[plans["status"] == "active", "invoice_id"].unique())


def _protected(flags: pd.DataFrame) -> pd.Index:
    in_force = flags["cleared_at"].isna() & flags["flag"].isin(PROTECTED_FLAGS)
    return pd.Index(flags.loc[in_force, "customer_id"].unique())


def _unallocated(payments: pd.DataFrame) -> pd.Index:
    """Customers with money received and not allocated: it may pay any of their invoices, so
    none is handed over until a bookkeeper allocates it (as it stands now, like payments)."""
    waiting = payments["allocated_at"].isna() & (payments["amount_cents"] > 0)
    return pd.Index(payments.loc[waiting, "customer_id"].unique())


def _coming_of_age(born: pd.Series, years: int) -> pd.Series:
    """The day a person comes of age; born on 29 February → 1 March in a common year."""
    year = born.dt.year + years
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    feb29 = (born.dt.month == 2) & (born.dt.day == 29)
    shift = feb29 & ~leap
    parts = pd.DataFrame(
        {
            "year": year,
            "month": born.dt.month.where(~shift, 3),
            "day": born.dt.day.where(~shift, 1),
        }
    )
    # NaT where the birth date is unknown: comparisons with NaT are False, so the rule holds.
    return pd.to_datetime(parts.dropna().astype("int64")).reindex(born.index)


def _limitation_end(due: pd.Series, country: pd.Series) -> pd.Series:
    """Last day a claim is enforceable: DE 31 Dec of due year + 3 (§§ 195, 199 BGB), AT due + 3y
    (§ 1486 ABGB). NaT for other countries: rule 12 keeps those cases back anyway."""
    de_end = pd.to_datetime(pd.DataFrame({"year": due.dt.year + 3, "month": 12, "day": 31}))
    at_end = due + pd.DateOffset(years=3)
    return pd.Series(
        np.where(country == "DE", de_end, np.where(country == "AT", at_end, pd.NaT)),
        index=due.index,
        dtype="datetime64[ns]",
    )


def _incomplete(cases: pd.DataFrame) -> pd.Series:
    def blank(column: str) -> pd.Series:
        return cases[column].fillna("").astype(str).str.strip() == ""

    missing_name = np.where(cases["kind"] == "business", blank("company_name"), blank("last_name"))
    return (
        blank("street")
        | blank("postal_code")
        | blank("city")
        | blank("country")
        | pd.Series(missing_name, index=cases.index)
    )


def holds_in_force(holds: pd.DataFrame, as_of_day: pd.Timestamp) -> pd.DataFrame:
    """The holds in force: those that did not expire by the start of `as_of` (Europe/Berlin)
    and whose last day (`held_until`, inclusive) is not before `as_of`."""
    expires = holds["expires_at"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
    start_of_as_of = as_of_day.tz_localize("Europe/Berlin")
    not_expired = holds["expires_at"].isna() | (expires > start_of_as_of)
    not_over = holds["held_until"].isna() | (holds["held_until"] >= as_of_day)
    return holds[not_expired & not_over]


def _on_hold(holds: pd.DataFrame, cases: pd.DataFrame, as_of_day: pd.Timestamp) -> pd.Series:
    """A hold is in force unless it expired by the start of `as_of` (Europe/Berlin)."""
    in_force = holds_in_force(holds, as_of_day)
    on_invoice = cases.index.isin(in_force["invoice_id"].dropna())
    on_customer = of_customers(cases, pd.Index(in_force["customer_id"].dropna()))
    return pd.Series(on_invoice, index=cases.index) | on_customer
