"""The shop's books: payments, dunning events, disputes, instalment plans, holds and protective
flags, as rows, recorded with the shop's habits (payment methods, fees, channels, the usual
dunning chain, times of day). `history`, `cases` and `protections` decide what to record."""

from __future__ import annotations

import numpy as np

from handover.demo.data.columns import Rows
from handover.demo.data.draw import DAY, pick_days, stamp
from handover.demo.data.orders import Orders
from handover.demo.data.values import HOLD_REASONS, METHOD_SHARES, METHODS, STAFF


class Books:
    """Rows per table; invoices and customers are indices into `orders` (-1: none)."""

    def __init__(self, rng: np.random.Generator, orders: Orders) -> None:
        self.rng = rng
        self.orders = orders
        self.payments = Rows(invoice="i8", paid_at="M8[s]", amount="i8", method="O")
        self.events = Rows(
            invoice="i8", kind="O", sent_at="M8[s]", channel="O", fee="f8", announces="i8"
        )
        self.disputes = Rows(invoice="i8", opened_at="M8[s]", resolved_at="M8[s]", outcome="O")
        self.plans = Rows(invoice="i8", agreed_at="M8[s]", status="O")
        self.holds = Rows(
            invoice="i8", customer="i8", reason="O", set_by="O", set_at="M8[s]", expires_at="M8[s]"
        )
        self.flags = Rows(customer="i8", flag="O", set_at="M8[s]", cleared_at="M8[s]")

    def pay(
        self,
        inv: np.ndarray,
        days: np.ndarray,
        amounts: object,
        *,
        slot: int | None = None,
        method: object = None,
    ) -> None:
        """Payments of `inv` on `days` (a random method by the usual shares if none given)."""
        if not len(inv):
            return
        if method is None:
            method = self.rng.choice(METHODS, size=len(inv), p=METHOD_SHARES)
        stamps = stamp(self.rng, days, slot=slot)
        self.payments.add(invoice=inv, paid_at=stamps, amount=amounts, method=method)

    def pay_parts(self, inv: np.ndarray, totals: np.ndarray) -> None:
        """Pay `totals` in one or two payments between the invoice date and yesterday."""
        rng, n, T = self.rng, len(inv), self.orders.T
        two = (rng.random(n) < 0.4) & (totals >= 200)
        first = np.where(two, totals // 2 + rng.integers(-50, 50, n), totals)
        day1 = pick_days(rng, self.orders.issued[inv] + DAY, T - 1, n)
        day2 = pick_days(rng, day1, T - 1, n)
        self.pay(inv, day1, first, slot=0)
        self.pay(inv[two], day2[two], (totals - first)[two], slot=2)

    def event(
        self, inv: np.ndarray, stamps: np.ndarray, kind: object, announces: object = 0
    ) -> None:
        """Dunning events with the shop's usual fees and channels per kind."""
        n = len(inv)
        if not n:
            return
        kinds = np.broadcast_to(np.asarray(kind, dtype=object), (n,))
        r = self.rng.random(n)
        reminder, dunning = kinds == "reminder", kinds == "dunning"
        fee = np.select(
            [reminder, dunning],
            [
                np.where(r < 0.5, np.nan, 0.0),
                np.where(r < 0.45, 250.0, np.where(r < 0.85, 500.0, np.nan)),
            ],
            np.where(r < 0.6, 500.0, np.where(r < 0.8, 1000.0, np.nan)),
        )
        letter = self.rng.random(n) < np.select([reminder, dunning], [0.25, 0.6], 0.85)
        self.events.add(
            invoice=inv,
            kind=kinds,
            sent_at=stamps,
            channel=np.where(letter, "letter", "email").astype(object),
            fee=fee,
            announces=announces,
        )

    def chain(
        self, inv: np.ndarray, notice: np.ndarray | None = None, *, announces: int = 1
    ) -> None:
        """The usual dunning: a reminder after the due date, sometimes a plain Mahnung, then a
        notice (default 14-45 days after due, at the latest 14 days before today)."""
        rng, n, T = self.rng, len(inv), self.orders.T
        if not n:
            return
        due = self.orders.due[inv]
        if notice is None:
            days = np.minimum(T - 14, due + rng.integers(14, 46, n).astype("timedelta64[D]"))
            notice = stamp(rng, days)
        notice_day = notice.astype("datetime64[D]")  # the UTC date; the reminder lies before it
        reminder = pick_days(rng, due + DAY, np.minimum(due + 10, notice_day - DAY), n)
        self.event(inv, stamp(rng, reminder), "reminder")
        middle = (notice_day - reminder >= 2 * DAY) & (rng.random(n) < 0.5)
        between = pick_days(rng, reminder + DAY, notice_day - DAY, n)
        self.event(inv[middle], stamp(rng, between[middle]), "dunning")
        kind = np.where(rng.random(n) < 0.7, "final_notice", "dunning")
        self.event(inv, notice, kind, announces)

    def dispute(self, inv: np.ndarray, outcome: object, latest: np.datetime64) -> None:
        """Disputes opened after the invoice date, by `latest`, and resolved since."""
        rng, n = self.rng, len(inv)
        opened = pick_days(rng, self.orders.issued[inv] + DAY, latest, n)
        resolved = pick_days(rng, opened + DAY, self.orders.T - 1, n)
        self.disputes.add(
            invoice=inv,
            opened_at=stamp(rng, opened),
            resolved_at=stamp(rng, resolved),
            outcome=outcome,
        )

    def hold(self, inv: object, customer: object, set_day: np.ndarray, expires: np.ndarray) -> None:
        """Holds on invoices or on customers (the other index -1), set by staff on `set_day`."""
        rng, n = self.rng, len(set_day)
        if not n:
            return
        self.holds.add(
            invoice=inv,
            customer=customer,
            reason=rng.choice(HOLD_REASONS, n),
            set_by=rng.choice(STAFF, n),
            set_at=stamp(rng, set_day),
            expires_at=expires,
        )
