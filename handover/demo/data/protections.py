"""Disputes, instalment plans, holds and protective flags: the records that keep an invoice or a
customer from a handover, in force or over."""

from __future__ import annotations

import numpy as np

from handover.demo.data.books import Books
from handover.demo.data.draw import DAY, NAT, pick_days, stamp
from handover.demo.data.scenarios import CANCELLED, PAID
from handover.demo.data.values import FLAGS


def record_invoice_protections(books: Books) -> None:
    """Disputes and holds of cases, and a little of the same (and completed plans) on paid and
    cancelled invoices."""
    rng, o, T = books.rng, books.orders, books.orders.T
    issued, due = o.issued, o.due
    i = o.where("disputed_open")
    opened = stamp(rng, pick_days(rng, issued[i] + DAY, T - 1, len(i)))
    books.disputes.add(invoice=i, opened_at=opened, resolved_at=NAT, outcome=None)
    closed = [
        ("disputed_withdrawn", "claim_withdrawn"),
        ("disputed_partial", "partially_upheld"),
        ("ok_dispute_upheld", "claim_upheld"),
    ]
    for name, outcome in closed:
        books.dispute(o.where(name), outcome, T - 10)
    paid = np.flatnonzero(o.cls == PAID)
    paid = paid[(rng.random(len(paid)) < 0.005) & (issued[paid] <= T - 20)]
    books.dispute(paid, rng.choice(np.array(closed, dtype=object)[:, 1], len(paid)), T - 10)
    cancelled = np.flatnonzero(o.cls == CANCELLED)
    cancelled = cancelled[(rng.random(len(cancelled)) < 0.1) & (issued[cancelled] <= T - 20)]
    books.dispute(cancelled, "claim_withdrawn", T - 10)

    i = o.where("hold_invoice", "hold_invoice_future")
    future = np.isin(i, o.where("hold_invoice_future"))
    expires = stamp(rng, pick_days(rng, T + 1, T + 60, len(i)))
    books.hold(i, -1, pick_days(rng, due[i] + DAY, T - 1, len(i)), np.where(future, expires, NAT))
    i = o.where("ok_hold_expired")
    i = np.r_[i, paid[: len(paid) // 2]]
    set_day = pick_days(rng, issued[i] + DAY, T - 10, len(i))
    books.hold(i, -1, set_day, stamp(rng, pick_days(rng, set_day + DAY, T - 1, len(i))))

    plans = np.flatnonzero(o.cls == PAID)
    plans = plans[(rng.random(len(plans)) < 0.003) & (due[plans] <= T - 30)]
    agreed = pick_days(rng, due[plans] + DAY, due[plans] + 20, len(plans))
    books.plans.add(invoice=plans, agreed_at=stamp(rng, agreed), status="completed")


def record_customer_protections(books: Books) -> None:
    """Protective flags and customer-wide holds: in force, lifted, or expired."""
    rng, o, T = books.rng, books.orders, books.orders.T
    no_case = o.case_count == 0
    noise = rng.random(o.n)

    in_force = np.flatnonzero((o.trait == "protected") | (no_case & (noise < 0.002)))
    set_day = pick_days(rng, T - 400, T - 1, len(in_force))
    books.flags.add(
        customer=in_force,
        flag=rng.choice(FLAGS, len(in_force)),
        set_at=stamp(rng, set_day),
        cleared_at=NAT,
    )
    lifted = np.flatnonzero((o.trait == "cleared_flag") | (no_case & (noise > 0.997)))
    set_day = pick_days(rng, T - 900, T - 60, len(lifted))
    books.flags.add(
        customer=lifted,
        flag=rng.choice(FLAGS, len(lifted), p=[0.1, 0.3, 0.6]),
        set_at=stamp(rng, set_day),
        cleared_at=stamp(rng, pick_days(rng, set_day + DAY, T - 1, len(lifted))),
    )

    held = np.flatnonzero((o.trait == "customer_hold") | (no_case & (noise < 0.001)))
    forever = rng.random(len(held)) < 0.6
    expires = stamp(rng, pick_days(rng, T + 1, T + 90, len(held)))
    set_day = pick_days(rng, T - 120, T - 1, len(held))
    books.hold(-1, held, set_day, np.where(forever, NAT, expires))
    expired = np.flatnonzero((o.trait == "expired_hold") | (no_case & (noise > 0.999)))
    set_day = pick_days(rng, T - 400, T - 30, len(expired))
    expires = stamp(rng, pick_days(rng, set_day + DAY, T - 1, len(expired)))
    books.hold(-1, expired, set_day, expires)
