"""The preconditions of a handover, numbered, with their reason codes.

`handover.run.decide` applies them to DataFrames; `explain`, the RoPA and the run's summary name
them. Kept apart from `decide` so reading them needs no pandas.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One precondition: its number, reason code, and what it demands in plain words."""

    number: int
    code: str
    demand: str


RULES: tuple[Rule, ...] = (
    Rule(1, "not_open", "something is still owed (amount minus net payments > 0)"),
    Rule(2, "below_minimum", "the open amount reaches the minimum"),
    Rule(3, "overdue_too_short", "the invoice is overdue long enough"),
    Rule(4, "dunning_incomplete", "a reminder, then an announcing Mahnung, old enough"),
    Rule(5, "disputed", "no open dispute and none withdrawn or partially upheld"),
    Rule(6, "installment_plan", "no active installment plan"),
    Rule(7, "protected_customer", "no deceased, insolvency or hardship flag in force"),
    Rule(8, "minor", "the customer was of age on the order date"),
    Rule(9, "time_barred", "the claim is not time-barred"),
    Rule(10, "already_handed_over", "the case is not at an agency, nor on its way to one"),
    Rule(11, "incomplete", "name and postal address are complete"),
    Rule(12, "not_served", "the agency serves the currency and country"),
    Rule(13, "on_hold", "no hold by support in force"),
    Rule(14, "no_agency", "an agency's route takes the case"),
    Rule(15, "ambiguous_route", "only one agency's route takes the case"),
    Rule(16, "on_review", "no dispute or complaint reported by an agency awaits release"),
    Rule(17, "unallocated_payment", "no money of the customer's awaits allocation to an invoice"),
)
REASON_CODES: tuple[str, ...] = tuple(rule.code for rule in RULES)
