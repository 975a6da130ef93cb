"""Payments and letters of the invoices that are not cases: paid, cancelled, written off, not
yet due. Most are paid on time; some late, after a reminder, in parts, or refunded."""

from __future__ import annotations

import numpy as np

from handover.demo.data.books import Books
from handover.demo.data.draw import DAY, pick_days, stamp
from handover.demo.data.scenarios import CANCELLED, NOT_DUE, PAID, WRITTEN_OFF
from handover.demo.data.values import METHOD_SHARES, METHODS


def record_history(books: Books) -> None:
    """Record the payments and letters of every invoice that is not a case."""
    _paid(books)
    _cancelled(books)
    _written_off(books)
    _not_due(books)


def _paid(books: Books) -> None:
    """On time or late (some after a reminder); in one payment or two, paid twice and refunded,
    or charged back and paid again by transfer."""
    rng, o, T = books.rng, books.orders, books.orders.T
    i = np.flatnonzero(o.cls == PAID)
    n, amount, issued, due = len(i), o.amount[i], o.issued[i], o.due[i]
    late = rng.random(n) < 0.35
    delay = np.where(late, rng.integers(3, 25, n), rng.integers(0, 4, n))
    day = np.minimum(issued + delay.astype("timedelta64[D]"), T - 1)
    # One in ten paid only after a reminder.
    reminded = (rng.random(n) < 0.10) & (due + 12 <= T)
    reminder = due + rng.integers(3, 9, n).astype("timedelta64[D]")
    after = np.minimum(reminder + rng.integers(1, 8, n).astype("timedelta64[D]"), T - 1)
    day = np.where(reminded, after, day)
    books.event(i[reminded], stamp(rng, reminder[reminded]), "reminder")

    pattern = rng.choice(4, size=n, p=[0.86, 0.08, 0.03, 0.03])
    k = pattern == 0  # one payment
    books.pay(i[k], day[k], amount[k])
    k = pattern == 1  # two instalments
    part = (amount[k] * rng.uniform(0.3, 0.7, k.sum())).astype(np.int64)
    later = np.minimum(day[k] + rng.integers(0, 20, k.sum()).astype("timedelta64[D]"), T - 1)
    books.pay(i[k], day[k], part, slot=0)
    books.pay(i[k], later, amount[k] - part, slot=2)
    k = pattern == 2  # paid twice, the second payment refunded
    back = np.minimum(day[k] + rng.integers(2, 10, k.sum()).astype("timedelta64[D]"), T - 1)
    books.pay(i[k], day[k], amount[k], slot=0)
    books.pay(i[k], day[k], amount[k], slot=1)
    books.pay(i[k], back, -amount[k], slot=2, method="paypal")
    k = pattern == 3  # a charge-back, then paid by transfer
    method = rng.choice(METHODS[:2], size=int(k.sum()))
    back = np.minimum(day[k] + rng.integers(3, 10, k.sum()).astype("timedelta64[D]"), T - 1)
    again = np.minimum(back + rng.integers(2, 15, k.sum()).astype("timedelta64[D]"), T - 1)
    books.pay(i[k], day[k], amount[k], slot=0, method=method)
    books.pay(i[k], back, -amount[k], slot=1, method=method)
    books.pay(i[k], again, amount[k], slot=2, method="invoice_transfer")


def _cancelled(books: Books) -> None:
    """Some cancelled invoices were paid first, then refunded."""
    rng, o, T = books.rng, books.orders, books.orders.T
    i = np.flatnonzero(o.cls == CANCELLED)
    i = i[(rng.random(len(i)) < 0.3) & (o.issued[i] <= T - 3)]
    paid = pick_days(rng, o.issued[i], T - 2, len(i))
    refund = pick_days(rng, paid + DAY, T - 1, len(i))
    method = rng.choice(METHODS, size=len(i), p=METHOD_SHARES)
    books.pay(i, paid, o.amount[i], method=method)
    books.pay(i, refund, -o.amount[i], method=method)


def _written_off(books: Books) -> None:
    """Dunned in full, some partly paid, then given up."""
    rng, o = books.rng, books.orders
    i = np.flatnonzero(o.cls == WRITTEN_OFF)
    books.chain(i, stamp(rng, o.due[i] + rng.integers(30, 60, len(i))))
    part = i[rng.random(len(i)) < 0.4]
    share = rng.uniform(0.1, 0.6, len(part))
    books.pay_parts(part, (o.amount[part] * share).astype(np.int64))


def _not_due(books: Books) -> None:
    """A few invoices not yet due are partly paid already."""
    rng, o, T = books.rng, books.orders, books.orders.T
    i = np.flatnonzero(o.cls == NOT_DUE)
    part = i[(rng.random(len(i)) < 0.05) & (o.issued[i] <= T - 2)]
    books.pay_parts(part, (o.amount[part] * rng.uniform(0.2, 0.6, len(part))).astype(int))
