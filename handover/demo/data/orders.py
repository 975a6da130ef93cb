"""The shop's orders: who orders how often, and each invoice's class, case scenario, dates, lines
and amount. Customers with cases get a trait and a country that suits it here too."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from handover.demo.data.draw import DAY, pick_days, years_before
from handover.demo.data.scenarios import (
    CANCELLED,
    CASE,
    CASE_SHARES,
    CLASS_SHARES,
    CUSTOMER_SHARES,
    FAILING_TRAITS,
    NOT_DUE,
    PAID,
    SCENARIO_CODE,
    WRITTEN_OFF,
    quota,
)
from handover.demo.data.values import (
    CHEAP,
    COUNTRIES,
    DESCRIPTION,
    EXPENSIVE,
    FREE_SAMPLE,
    PRICE,
    REGULAR,
    SKU,
)

SHOP_DAYS = 6 * 365  # how far back the shop's history goes


class Orders:
    """Customer and invoice columns. Indices: customers 0..n-1, invoices 0..N-1.

    Per customer: `business`, `counts` (invoices), `case_count`, `trait` (see
    `scenarios.CUSTOMER_SHARES`), `country`. Per invoice: `inv_cust` (its customer), `cls` (its
    class), `code` (its case scenario, -1 if not a case), `inv_country`, `terms`, `order`,
    `issued`, `due` (dates), `amount` (cents), `currency`. `lines` holds the invoice lines'
    columns; `dob_override` dates of birth some boundary cases need exactly.
    """

    def __init__(
        self, rng: np.random.Generator, customers: int, today: dt.date, per_customer: float
    ) -> None:
        self.rng = rng
        self.n = customers
        self.today = today
        self.T = np.datetime64(today, "D")
        self.per_customer = per_customer
        self.dob_override: dict[int, dt.date] = {}
        self._skeleton()
        self._customer_traits()
        self._case_scenarios()
        self._dates()
        self._lines()

    def where(self, *names: str) -> np.ndarray:
        """Indices of the invoices with these case scenarios."""
        return np.flatnonzero(np.isin(self.code, [SCENARIO_CODE[name] for name in names]))

    def _years_ago(self, years: int) -> np.datetime64:
        return np.datetime64(years_before(self.today, years), "D")

    # ----------------------------------------------------------------------- structure

    def _skeleton(self) -> None:
        rng, n = self.rng, self.n
        self.business = rng.random(n) < 0.10
        per = self.per_customer
        # Mean `per`; geometric for a long tail of regulars (mean below 1: some never ordered).
        counts = rng.geometric(1 / per, n) if per >= 1 else rng.poisson(per, n)
        self.counts = counts.astype(np.int64)
        self.inv_cust = np.repeat(np.arange(n), self.counts)
        self.N = len(self.inv_cust)
        self.cls = rng.choice(len(CLASS_SHARES), size=self.N, p=CLASS_SHARES).astype(np.int8)

    def _customer_traits(self) -> None:
        rng, n = self.rng, self.n
        self.case_count = np.bincount(self.inv_cust[self.cls == CASE], minlength=n)
        with_cases = np.flatnonzero(self.case_count > 0)
        self.trait = np.full(n, "", dtype=object)
        self.trait[with_cases] = quota(rng, len(with_cases), CUSTOMER_SHARES)
        # The minor rule needs a date of birth, which only consumers have here.
        self.business[(self.trait == "minor") | (self.trait == "adult_boundary")] = False

        names = list(COUNTRIES)
        shares = np.array([share for _, share in COUNTRIES.values()])
        anywhere = rng.choice(names, size=n, p=shares / shares.sum())
        served = rng.choice(names[:2], size=n, p=shares[:2] / shares[:2].sum())
        abroad = rng.choice(names[2:], size=n, p=shares[2:] / shares[2:].sum())
        country = np.where(self.case_count > 0, served, anywhere)
        country = np.where(self.trait == "foreign", abroad, country)
        self.country = country.astype(object)
        self.inv_country = self.country[self.inv_cust]

    def _case_scenarios(self) -> None:
        case_idx = np.flatnonzero(self.cls == CASE)
        labels = np.full(len(case_idx), "ok", dtype=object)
        # Customers with a failing trait keep plain cases, so each case fails one rule only.
        free = ~pd.Series(self.trait[self.inv_cust[case_idx]]).isin(FAILING_TRAITS).to_numpy()
        labels[free] = quota(self.rng, int(free.sum()), CASE_SHARES)
        self.code = np.full(self.N, -1, dtype=np.int16)
        self.code[case_idx] = [SCENARIO_CODE[label] for label in labels]

    # ----------------------------------------------------------------------- dates

    def _dates(self) -> None:
        rng, T, N, cls = self.rng, self.T, self.N, self.cls
        self.terms = np.where(self.business[self.inv_cust], 30, 14).astype("timedelta64[D]")
        ship = rng.integers(0, 3, N).astype("timedelta64[D]")
        due = np.empty(N, dtype="datetime64[D]")

        # Orders over the shop's history, recent ones more likely (the shop grew).
        i = np.flatnonzero((cls == PAID) | (cls == CANCELLED))
        age = 3 + (SHOP_DAYS * (1 - np.sqrt(rng.random(len(i))))).astype(np.int64)
        due[i] = T - age.astype("timedelta64[D]") + ship[i] + self.terms[i]
        i = np.flatnonzero(cls == NOT_DUE)
        due[i] = pick_days(rng, T, T + self.terms[i] - DAY, len(i))
        i = np.flatnonzero(cls == WRITTEN_OFF)
        due[i] = pick_days(rng, self._years_ago(5), T - 400, len(i))
        # Cases: 30 days to ~2 years overdue, so neither too recent nor time-barred by default.
        i = np.flatnonzero(cls == CASE)
        overdue = 30 + np.minimum(rng.exponential(90, len(i)), 670).astype(np.int64)
        due[i] = T - overdue.astype("timedelta64[D]")
        self.due = due
        self._case_dates()
        self.issued = self.due - self.terms
        self.order = self.issued - ship
        self._leap_day_births()

    def _case_dates(self) -> None:
        rng, T, due, today = self.rng, self.T, self.due, self.today
        due[self.where("ok_due_boundary")] = T - 30
        for name, lo, hi in (("too_short_chain", T - 29, T - 22), ("too_short", T - 29, T - 1)):
            i = self.where(name)
            due[i] = pick_days(rng, lo, hi, len(i))

        # DE claims are barred at the end of 31 Dec of due year + 3, AT ones 3 years after due.
        year = today.year
        if (today.month, today.day) == (12, 31):  # as_of would be the last day: stay clear
            de_old = (np.datetime64(f"{year - 2}-01-01"), np.datetime64(f"{year - 2}-12-31"))
        else:
            de_old = (np.datetime64(f"{year - 3}-01-01"), self._years_ago(3))
        at_old = (self._years_ago(3) + 2, self._years_ago(3) + 60)
        de_barred = (self._years_ago(5), np.datetime64(f"{year - 4}-12-31"))
        at_barred = (self._years_ago(5), self._years_ago(3) - 2)
        for name, de_range, at_range in (
            ("ok_old", de_old, at_old),
            ("time_barred", de_barred, at_barred),
        ):
            i = self.where(name)
            de = self.inv_country[i] == "DE"
            due[i] = np.where(
                de, pick_days(rng, *de_range, len(i)), pick_days(rng, *at_range, len(i))
            )

    def _leap_day_births(self) -> None:
        """Born on 29 February: still a minor on 28 February of the 18th year, of age on 1 March.

        Used when such an order date fits between 60 and 600 days before today, for one minor
        and one customer of age, each with a single case.
        """
        for year in range(self.today.year, self.today.year - 3, -1):
            if year % 4 == 2 and self.T - 600 <= np.datetime64(f"{year}-02-28") <= self.T - 60:
                break
        else:
            return
        # Plain cases only: other scenarios depend on their own dates.
        plain = self.inv_cust[self.code == SCENARIO_CODE["ok"]]
        for trait, order_day in (("minor", (2, 28)), ("adult_boundary", (3, 1))):
            single = (self.trait == trait) & (self.case_count == 1)
            candidates = np.intersect1d(np.flatnonzero(single), plain)
            if not len(candidates):
                continue
            customer = int(candidates[0])
            i = np.flatnonzero((self.inv_cust == customer) & (self.cls == CASE))
            self.order[i] = np.datetime64(dt.date(year, *order_day))
            self.issued[i] = self.order[i] + DAY
            self.due[i] = self.issued[i] + self.terms[i]
            self.dob_override[customer] = dt.date(year - 18, 2, 29)

    # ----------------------------------------------------------------------- lines, amounts

    def _lines(self) -> None:
        rng, N = self.rng, self.N
        cheap = np.zeros(N, dtype=bool)
        cheap[self.where("below_min_small")] = True
        free = np.zeros(N, dtype=bool)
        free[self.where("not_open_zero")] = True
        single = cheap | free
        n_lines = np.where(single, 1, rng.choice([1, 2, 3, 4], size=N, p=[0.45, 0.3, 0.15, 0.1]))
        start = np.cumsum(n_lines) - n_lines
        inv = np.repeat(np.arange(N), n_lines)
        line_no = np.arange(len(inv)) - np.repeat(start, n_lines) + 1
        product = rng.integers(0, REGULAR, len(inv))
        quantity = rng.choice([1, 2, 3], size=len(inv), p=[0.82, 0.14, 0.04])
        # Cases other than rule 2's start with a dearer item: 10.00 EUR can stay open.
        dear = (self.cls == CASE) & ~single
        product[start[dear]] = rng.choice(EXPENSIVE, size=int(dear.sum()))
        product[start[cheap]] = rng.choice(CHEAP, size=int(cheap.sum()))
        product[start[free]] = FREE_SAMPLE
        quantity[start[single]] = 1

        subtotal = np.bincount(inv, weights=quantity * PRICE[product], minlength=N)
        self.amount = subtotal.round().astype(np.int64)
        shipped = np.flatnonzero((self.amount < 2900) & ~single)  # free shipping from 29 EUR
        postage = np.where(self.inv_country[shipped] == "DE", 495, 695)
        self.amount[shipped] += postage
        self.lines = {
            "invoice": np.r_[inv, shipped],
            "line_no": np.r_[line_no, n_lines[shipped] + 1],
            "sku": np.r_[SKU[product], np.full(len(shipped), "VERSAND", dtype=object)],
            "description": np.r_[
                DESCRIPTION[product], np.full(len(shipped), "Versandkosten", dtype=object)
            ],
            "quantity": np.r_[quantity, np.ones(len(shipped), dtype=np.int64)],
            "unit_price": np.r_[PRICE[product], postage],
        }

        self.currency = np.full(N, "EUR", dtype=object)
        swiss = np.flatnonzero((self.inv_country == "CH") & (rng.random(N) < 0.8))
        self.currency[swiss] = "CHF"
        i = self.where("currency")
        self.currency[i] = rng.choice(np.array(["CHF", "USD", "GBP"], dtype=object), len(i))
