"""What is generated: invoice classes, customer traits and case scenarios, with their shares.

A case is an open invoice whose due date has passed. Each case is made for one scenario: it
either passes every eligibility rule (the "ok…" ones, often on a boundary) or fails exactly the
rule named; a customer trait makes all of that customer's cases fail one rule instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Invoice classes; a CASE is an open invoice whose due date has passed.
PAID, CANCELLED, WRITTEN_OFF, NOT_DUE, CASE = range(5)
CLASS_SHARES = (0.78, 0.03, 0.01, 0.05, 0.13)
STATUS = np.array(["paid", "cancelled", "written_off", "open", "open"], dtype=object)

# Traits of customers with cases. The first five fail all their cases (rules 7, 13, 8, 11, 12);
# the others change nothing but sit on a boundary or leave a harmless record.
CUSTOMER_SHARES: dict[str, float] = {
    "": 0.0,  # no trait: takes whatever the others leave
    "protected": 0.02,  # a deceased/insolvency/hardship flag in force
    "customer_hold": 0.01,  # a hold on all invoices, not expired
    "minor": 0.01,  # under 18 on the order date
    "incomplete": 0.015,  # a blank (or whitespace-only) address field or name
    "foreign": 0.02,  # a country outside DE/AT
    "adult_boundary": 0.005,  # exactly 18 on the order date of the first case
    "cleared_flag": 0.02,  # a protective flag that was lifted
    "expired_hold": 0.01,  # a customer hold that expired
}
FAILING_TRAITS = ("protected", "customer_hold", "minor", "incomplete", "foreign")

# What happens to a case. "ok…" cases pass every rule; the others fail exactly the rule named.
CASE_SHARES: dict[str, float] = {
    "ok": 0.0,  # plainly eligible: takes whatever the others leave
    "ok_partial": 0.06,  # partly paid, at least 10.00 EUR still open
    "ok_refund": 0.02,  # a charge-back or refund (negative payment)
    "ok_open_1000": 0.005,  # exactly 10.00 EUR open
    "ok_due_boundary": 0.005,  # due exactly 30 days ago, notice exactly 14 days ago
    "ok_notice_boundary": 0.005,  # the notice's Berlin date is exactly today - 14
    "ok_notice_tz_boundary": 0.005,  # notice at 23:xx UTC on today - 15: Berlin date today - 14
    "ok_reminder_tz": 0.005,  # reminder at 23:xx UTC on the due date: Berlin date is the day after
    "ok_old": 0.01,  # DE: over 3 years old but the limitation ends on 31 Dec; AT: just under 3
    "ok_dispute_upheld": 0.01,  # a dispute resolved in the shop's favour
    "ok_plan_defaulted": 0.01,  # an instalment plan the debtor defaulted on
    "ok_hold_expired": 0.01,  # an invoice hold that expired
    "not_open_paid": 0.015,  # rule 1: fully paid, status still 'open'
    "not_open_overpaid": 0.005,
    "not_open_zero": 0.003,  # a free sample invoiced at 0.00
    "below_min_small": 0.01,  # rule 2: a cheap order
    "below_min_rest": 0.01,  # rule 2: a remainder of 0.01-9.99 left
    "too_short_chain": 0.01,  # rule 3: overdue 22-29 days, dunning otherwise complete
    "too_short": 0.06,  # rule 3 (and 4): recently due
    "dun_none": 0.06,  # rule 4: never dunned
    "dun_reminder_only": 0.04,
    "dun_no_reminder": 0.01,  # a notice without a reminder before it
    "dun_not_announcing": 0.03,  # the notice does not announce the handover
    "dun_too_recent": 0.03,  # the notice is less than 14 days old
    "dun_tz_too_recent": 0.005,  # 23:xx UTC on today - 14 is today - 13 in Berlin
    "dun_notice_first": 0.01,  # the reminder came after the notice
    "dun_same_time": 0.003,  # reminder and notice with the same timestamp (not strictly later)
    "dun_reminder_before_due": 0.01,  # the only reminder was sent on or before the due date
    "disputed_open": 0.02,  # rule 5
    "disputed_withdrawn": 0.005,
    "disputed_partial": 0.005,
    "plan_active": 0.02,  # rule 6
    "time_barred": 0.03,  # rule 9: 3-5 years old
    "currency": 0.01,  # rule 12: CHF, USD or GBP
    "hold_invoice": 0.01,  # rule 13: until lifted
    "hold_invoice_future": 0.005,  # rule 13: expires in the future
}
SCENARIOS = tuple(CASE_SHARES)
SCENARIO_CODE = {name: code for code, name in enumerate(SCENARIOS)}
# Cases whose dunning is the usual complete chain (the others have their own below).
FULL_CHAIN = (
    "ok",
    "ok_partial",
    "ok_refund",
    "ok_open_1000",
    "ok_old",
    "ok_dispute_upheld",
    "ok_plan_defaulted",
    "ok_hold_expired",
    "not_open_paid",
    "not_open_overpaid",
    "not_open_zero",
    "below_min_small",
    "below_min_rest",
    "disputed_open",
    "disputed_withdrawn",
    "disputed_partial",
    "plan_active",
    "time_barred",
    "currency",
    "hold_invoice",
    "hold_invoice_future",
)
# Cases where a small extra part payment (at least 10.00 EUR stays open) changes nothing.
PART_PAYABLE = tuple(
    name
    for name in SCENARIOS
    if not name.startswith(("not_open", "below_min", "plan_", "ok_partial", "ok_refund"))
    and name not in ("ok_open_1000", "ok_plan_defaulted")
)


def quota(rng: np.random.Generator, n: int, shares: Mapping[str, float]) -> np.ndarray:
    """`n` labels in random order: each label but the first at least once and about its share,
    the first label the rest. Too few rows for that: labels are drawn by share."""
    names = list(shares)
    counts = np.array([max(1, int(shares[name] * n)) for name in names[1:]], dtype=np.int64)
    rest = n - int(counts.sum())
    labels = np.array(names, dtype=object)
    if rest >= 0.2 * n:
        return rng.permutation(np.repeat(labels, np.r_[rest, counts]))
    weights = np.array([max(0.05, 1 - sum(shares.values()))] + [shares[k] for k in names[1:]])
    return rng.choice(labels, size=n, p=weights / weights.sum())
