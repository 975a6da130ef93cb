"""The customers' personal data: names, addresses, contact data, languages, IBANs, when they
opened their account, and dates of birth that fit their traits (a minor, exactly 18, …)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from handover.demo.data.columns import objects
from handover.demo.data.draw import pick_days, stamp, years_before
from handover.demo.data.orders import SHOP_DAYS, Orders
from handover.demo.data.pools import Pool
from handover.demo.data.scenarios import CASE
from handover.demo.data.values import EMAIL_DOMAINS, LANGUAGES


class People:
    """Customer columns (index 0..n-1): `person` (first, last, company, street, postal, city,
    phone, email; None where unknown), `language`, `iban`, `created_at`, `dob`; and
    `email_any`/`phone_any`, the contact data before some was dropped (notes may repeat it)."""

    def __init__(self, rng: np.random.Generator, orders: Orders, pools: Mapping[str, Pool]) -> None:
        self.rng = rng
        self.n = orders.n
        self._names_and_contacts(orders, pools)
        self._birth_dates(orders)
        self._incomplete(orders)

    def _names_and_contacts(self, orders: Orders, pools: Mapping[str, Pool]) -> None:
        rng, n = self.rng, self.n
        columns = ("first", "last", "company", "street", "postal", "city", "phone", "email")
        person = {name: np.full(n, None, dtype=object) for name in columns}
        self.language = np.full(n, "de", dtype=object)
        self.iban = np.full(n, None, dtype=object)
        for country, pool in pools.items():
            idx = np.flatnonzero(orders.country == country)
            if len(idx):
                self._fill_country(orders, country, pool, idx, person)
        self.person = person
        # Notes may repeat contact data the customer record no longer holds.
        self.email_any, self.phone_any = person["email"].copy(), person["phone"].copy()
        person["email"][rng.random(n) < np.where(orders.business, 0.05, 0.10)] = None
        person["phone"][rng.random(n) < 0.4] = None

    def _fill_country(
        self,
        orders: Orders,
        country: str,
        pool: Pool,
        idx: np.ndarray,
        person: dict[str, np.ndarray],
    ) -> None:
        rng, k = self.rng, len(idx)
        business = orders.business[idx]
        fi = rng.integers(0, len(pool.first), k)
        li = rng.integers(0, len(pool.last), k)
        first, first_slug = pool.first[fi], pool.first_slug[fi]
        last, last_slug = pool.last[li], pool.last_slug[li]
        if len(pool.long_last):
            long = (rng.random(k) < 0.003) & ~business
            if country == "DE" and long.sum() < 2:  # a few always, even in small databases
                long[
                    rng.choice(np.flatnonzero(~business), min(2, int((~business).sum())), False)
                ] = True
            pick = rng.integers(0, len(pool.long_last), k)
            last = np.where(long, pool.long_last[pick], last)
            last_slug = np.where(long, pool.long_last_slug[pick], last_slug)

        local = np.select(
            [rng.random(k) < 0.4, rng.random(k) < 0.5, rng.random(k) < 0.5],
            [
                first_slug + "." + last_slug,
                last_slug + "." + first_slug,
                first_slug + last_slug + rng.integers(1, 99, k).astype(str).astype(object),
            ],
            first_slug.astype(str).astype("U1").astype(object) + "." + last_slug,
        )
        email = local + "@" + rng.choice(EMAIL_DOMAINS, k)

        ci = rng.integers(0, len(pool.companies), k)
        company = np.where(business, pool.companies[ci], None)
        role = rng.choice(np.array(["buchhaltung", "info", "rechnung", "office"], object), k)
        email = np.where(business, role + "@" + pool.company_slugs[ci] + ".example", email)
        contact = ~business | (rng.random(k) < 0.8)  # some businesses name no contact person

        pi = rng.integers(0, len(pool.postcodes), k)
        street = pool.streets[rng.integers(0, len(pool.streets), k)]
        if pool.numbered:
            house = 1 + np.minimum(rng.geometric(1 / 18, k), 250)
            letter = np.where(rng.random(k) < 0.06, rng.choice(["a", "b", "c"], k), "")
            street = street + " " + np.strings.add(house.astype(str), letter).astype(object)

        person["first"][idx] = np.where(contact, first, None)
        person["last"][idx] = np.where(contact, last, None)
        person["company"][idx] = company
        person["street"][idx] = street
        person["postal"][idx] = pool.postcodes[pi]
        person["city"][idx] = pool.cities[pi]
        person["phone"][idx] = pool.phones[rng.integers(0, len(pool.phones), k)]
        person["email"][idx] = email
        languages, shares = LANGUAGES[country]
        self.language[idx] = rng.choice(np.array(languages, dtype=object), k, p=shares)
        if country in ("DE", "AT"):
            self.iban[idx] = _ibans(rng, country, k)
        else:
            self.iban[idx] = pool.ibans[rng.integers(0, len(pool.ibans), k)]

    def _birth_dates(self, orders: Orders) -> None:
        """Account creation after the first order, and dates of birth that fit it."""
        rng, T, n = self.rng, orders.T, self.n
        first_order = np.full(n, T - SHOP_DAYS, dtype="datetime64[D]")
        buyers = orders.counts > 0
        start = (np.cumsum(orders.counts) - orders.counts)[buyers]
        first_order[buyers] = np.minimum.reduceat(orders.order, start)
        before = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 700, n))
        created = first_order - before.astype("timedelta64[D]")
        created[~buyers] = pick_days(rng, T - SHOP_DAYS, T - 1, int((~buyers).sum()))
        self.created_at = stamp(rng, created)

        # Adults when they opened the account (18 years + a month at least), so at every order.
        dob = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        known = ~orders.business & (rng.random(n) < 0.4)
        age = (18 * 365.25 + 31 + rng.random(n) * 62 * 365.25).astype(np.int64)
        dob[known] = created[known] - age[known].astype("timedelta64[D]")
        # A few born on 29 February of an earlier leap year (older, so still adults).
        for c in np.flatnonzero(known & (rng.random(n) < 0.01)):
            year = dob[c].astype("datetime64[Y]").astype(int) + 1970 - 1
            dob[c] = np.datetime64(f"{year - year % 4}-02-29")

        case_orders = pd.Series(orders.order[orders.cls == CASE]).groupby(
            orders.inv_cust[orders.cls == CASE]
        )
        latest, earliest = case_orders.max(), case_orders.min()
        for c in np.flatnonzero(orders.trait == "minor"):
            # 16 years to 17 years 9 months old at the latest order.
            days = int(16 * 365.25 + rng.integers(0, 650))
            dob[c] = np.datetime64(latest[c].date(), "D") - days
        for c in np.flatnonzero(orders.trait == "adult_boundary"):
            dob[c] = np.datetime64(years_before(earliest[c].date(), 18), "D")
        for c, born in orders.dob_override.items():
            dob[c] = np.datetime64(born, "D")
        self.dob = dob

    def _incomplete(self, orders: Orders) -> None:
        """Blank, whitespace-only or missing address fields and names (rule 11)."""
        person, rng = self.person, self.rng
        for c in np.flatnonzero(orders.trait == "incomplete"):
            field = ("street", "postal", "city", "name")[rng.integers(0, 4)]
            blank = (None, "", "   ", "\t")[rng.integers(0, 4)]
            if field == "name":
                field = "company" if orders.business[c] else "last"
            person[field][c] = blank


def _ibans(rng: np.random.Generator, country: str, k: int) -> np.ndarray:
    """Random IBANs with valid mod-97 check digits: DE (8-digit bank code, 10-digit account)
    or AT (5 + 11 digits)."""
    bank_digits, account_digits, letters = {"DE": (8, 10, 1314), "AT": (5, 11, 1029)}[country]
    bank = rng.integers(10 ** (bank_digits - 1), 9 * 10 ** (bank_digits - 1), k)
    account = rng.integers(0, 10**account_digits, k)
    # The check digits make BBAN + country letters as digits + check digits ≡ 1 (mod 97).
    rest = (
        (bank % 97) * pow(10, account_digits + 6, 97)
        + (account % 97) * pow(10, 6, 97)
        + letters * 100 % 97
    ) % 97
    check = 98 - rest
    return objects(
        f"{country}{c:02d}{b:0{bank_digits}d}{a:0{account_digits}d}"
        for c, b, a in zip(check.tolist(), bank.tolist(), account.tolist(), strict=True)
    )
