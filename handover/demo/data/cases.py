"""Payments and dunning of the cases, each as its scenario needs (`scenarios.CASE_SHARES`):
part payments that leave at least or less than 10.00 EUR open, refunds, instalments, and dunning
chains that are complete, on a boundary, or broken in one way."""

from __future__ import annotations

import numpy as np

from handover.demo.data.books import Books
from handover.demo.data.draw import DAY, pick_days, stamp
from handover.demo.data.scenarios import FULL_CHAIN, PART_PAYABLE
from handover.demo.data.values import METHOD_SHARES, METHODS


def record_case_payments(books: Books) -> None:
    """Record the cases' payments and instalment plans."""
    _part_payments(books)
    _refunds(books)
    _instalment_plans(books)


def record_case_dunning(books: Books) -> None:
    """Record the cases' dunning events."""
    _usual_and_boundary_dunning(books)
    _incomplete_dunning(books)


def _keep_ten_euros_open(rng: np.random.Generator, amounts: np.ndarray) -> np.ndarray:
    return rng.integers(100, amounts - 999)


def _part_payments(books: Books) -> None:
    rng, o = books.rng, books.orders
    amount = o.amount
    i = o.where("ok_partial")
    books.pay_parts(i, _keep_ten_euros_open(rng, amount[i]))
    i = o.where(*PART_PAYABLE)
    i = i[rng.random(len(i)) < 0.15]
    books.pay_parts(i, _keep_ten_euros_open(rng, amount[i]))
    i = o.where("ok_open_1000")
    books.pay_parts(i, amount[i] - 1000)
    i = o.where("not_open_paid")
    books.pay_parts(i, amount[i])
    i = o.where("not_open_overpaid")
    books.pay_parts(i, amount[i] + rng.integers(1, 2000, len(i)))
    i = o.where("below_min_rest")
    rest = rng.integers(1, 1000, len(i))
    rest[:1] = 999  # the largest remainder that is still below the minimum
    books.pay_parts(i, amount[i] - rest)


def _refunds(books: Books) -> None:
    """Half charged back after paying in full, half part paid with part of that refunded."""
    rng, o, T = books.rng, books.orders, books.orders.T
    amount = o.amount
    i = o.where("ok_refund")
    back = rng.random(len(i)) < 0.5
    a, b = i[back], i[~back]
    method = rng.choice(METHODS[:3], size=len(a))  # paid in full, then charged back
    paid = pick_days(rng, o.issued[a] + DAY, T - 8, len(a))
    books.pay(a, paid, amount[a], slot=0, method=method)
    books.pay(a, pick_days(rng, paid + 3, T - 1, len(a)), -amount[a], slot=2, method=method)
    paid_b = _keep_ten_euros_open(rng, amount[b])  # part paid, part of that refunded (a return)
    refund = np.maximum(1, (paid_b * rng.uniform(0.2, 1.0, len(b))).astype(np.int64))
    method = rng.choice(METHODS, size=len(b), p=METHOD_SHARES)
    day = pick_days(rng, o.issued[b] + DAY, T - 2, len(b))
    books.pay(b, day, paid_b, slot=0, method=method)
    books.pay(b, pick_days(rng, day, T - 1, len(b)), -refund, slot=2, method=method)


def _instalment_plans(books: Books) -> None:
    """Monthly instalments after the agreement, 10.00 EUR always left open."""
    rng, o, T = books.rng, books.orders, books.orders.T
    amount = o.amount
    for name, status, latest in (
        ("plan_active", "active", 2),
        ("ok_plan_defaulted", "defaulted", 60),
    ):
        i = o.where(name)
        agreed = pick_days(rng, o.due[i] + DAY, T - latest, len(i))
        books.plans.add(invoice=i, agreed_at=stamp(rng, agreed), status=status)
        rate = np.minimum(amount[i] // 6, (amount[i] - 1000) // 3)
        paid_months = rng.integers(0, 4, len(i))
        for month in range(3):
            day = agreed + 1 + 30 * month
            k = (month < paid_months) & (day <= T - 1)
            books.pay(i[k], day[k], rate[k], method="invoice_transfer")


def _days(rng: np.random.Generator, lo: object, hi: object, i: np.ndarray) -> np.ndarray:
    return pick_days(rng, lo, hi, len(i))


def _usual_and_boundary_dunning(books: Books) -> None:
    """The usual chain, chains on a time or time-zone boundary, and recently due cases."""
    rng, o, T = books.rng, books.orders, books.orders.T
    due = o.due
    books.chain(o.where(*FULL_CHAIN))
    i = o.where("ok_due_boundary", "ok_notice_boundary")
    books.chain(i, stamp(rng, np.full(len(i), T - 14)))
    i = o.where("ok_notice_tz_boundary")
    books.chain(i, stamp(rng, np.full(len(i), T - 15), late=True))
    i = o.where("ok_reminder_tz")
    books.event(i, stamp(rng, due[i], late=True), "reminder")
    books.event(i, stamp(rng, _days(rng, due[i] + 14, T - 14, i)), "final_notice", 1)
    i = o.where("too_short_chain")
    books.chain(i, stamp(rng, _days(rng, due[i] + 3, T - 14, i)))
    i = o.where("too_short")
    i = i[(due[i] <= T - 2) & (rng.random(len(i)) < 0.5)]
    reminder = _days(rng, due[i] + 1, np.minimum(due[i] + 5, T - 1), i)
    books.event(i, stamp(rng, reminder), "reminder")


def _incomplete_dunning(books: Books) -> None:
    """Rule 4: no notice, no reminder before it, not announcing, too recent, or out of order."""
    rng, o, T = books.rng, books.orders, books.orders.T
    due = o.due
    i = o.where("dun_reminder_only")
    first = _days(rng, due[i] + 1, np.minimum(due[i] + 10, T - 1), i)
    books.event(i, stamp(rng, first), "reminder")
    again = (rng.random(len(i)) < 0.3) & (first + 14 <= T - 1)
    second = _days(rng, first[again] + 7, T - 1, i[again])
    books.event(i[again], stamp(rng, second), "reminder")
    i = o.where("dun_no_reminder")
    books.event(i, stamp(rng, _days(rng, due[i] + 14, T - 14, i)), "final_notice", 1)
    i = o.where("dun_not_announcing")
    books.chain(i, announces=0)
    i = o.where("dun_too_recent")
    books.chain(i, stamp(rng, _days(rng, T - 13, T - 1, i)))
    i = o.where("dun_tz_too_recent")
    books.chain(i, stamp(rng, np.full(len(i), T - 14), late=True))
    i = o.where("dun_notice_first")
    notice = _days(rng, due[i] + 1, np.minimum(due[i] + 10, T - 20), i)
    books.event(i, stamp(rng, notice), "final_notice", 1)
    books.event(i, stamp(rng, _days(rng, notice + 1, T - 14, i)), "reminder")
    i = o.where("dun_same_time")
    both = stamp(rng, _days(rng, due[i] + 2, np.minimum(due[i] + 40, T - 14), i))
    books.event(i, both, "reminder")
    books.event(i, both, "final_notice", 1)
    i = o.where("dun_reminder_before_due")
    books.event(i, stamp(rng, _days(rng, due[i] - 3, due[i], i)), "reminder")
    books.event(i, stamp(rng, _days(rng, due[i] + 14, T - 14, i)), "final_notice", 1)
