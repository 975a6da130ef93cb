"""A realistic demo database of a German/Austrian online shop, for trying handover out.

`generate` writes a fresh SQLite file that follows the shop-side contract
(`schemas/shop_source.sql`). Most invoices are paid; the overdue open ones are a deliberate mix:
cases a handover on `today` may take, and cases that each fail exactly one eligibility rule,
boundary cases included (a notice sent at 23:30 UTC has the next day's Berlin date, an open amount
of exactly 10.00 EUR, a due date exactly 30 days back, a birthday on 29 February, …). So every
reason code shows up in a demo, whichever way reasons are reported.

Speed: Faker fills small pools (names, streets, places, phone numbers, companies) once; whole
columns are then sampled from the pools with numpy and bulk-inserted, so a million invoices take
seconds, not the hours that per-row Faker calls would.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import string
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from faker import Faker

from handover.errors import HandoverError

__all__ = ["DDL_PATH", "DemoSummary", "generate"]

BERLIN = ZoneInfo("Europe/Berlin")
DDL_PATH = Path(__file__).resolve().parent.parent / "schemas" / "shop_source.sql"

Table = dict[str, np.ndarray]  # column name -> values, in the DDL's column order
DAY = np.timedelta64(1, "D")
NAT = np.datetime64("NaT", "s")
SHOP_DAYS = 6 * 365  # how far back the shop's history goes

# --------------------------------------------------------------------------- the public API


@dataclass(frozen=True)
class DemoSummary:
    """Where the demo database was written, its reference date, and the rows per table."""

    path: Path
    today: dt.date
    customers: int
    customer_flags: int
    invoices: int
    invoice_lines: int
    payments: int
    dunning_events: int
    disputes: int
    installment_plans: int
    consents: int
    support_notes: int
    holds: int


def generate(
    out: Path,
    customers: int,
    seed: int,
    *,
    today: dt.date | None = None,
    invoices_per_customer: float = 2.0,
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> DemoSummary:
    """Write a demo shop database to `out`, the same for the same arguments.

    `today` (default: today in Europe/Berlin) is the date a handover run is meant to use as
    `as_of`. `progress` receives short lines such as "invoices: 1000000", never personal data.
    An existing `out` is replaced only with `overwrite=True`.
    """
    out = Path(out)
    if customers < 1:
        raise HandoverError(f"customers must be at least 1, not {customers}")
    if not invoices_per_customer > 0:
        raise HandoverError("invoices_per_customer must be greater than 0")
    if out.exists() and not overwrite:
        raise HandoverError(f"{out} exists; choose another path or pass overwrite=True")
    today = today or dt.datetime.now(BERLIN).date()
    report = progress or (lambda _line: None)

    tables = _build(customers, seed, today, invoices_per_customer)
    _write(out, tables, report)
    counts = {name: len(next(iter(table.values()))) for name, table in tables.items()}
    return DemoSummary(path=out, today=today, **counts)


def _build(customers: int, seed: int, today: dt.date, per_customer: float) -> dict[str, Table]:
    # The builder's working arrays are freed on return, before the load needs its memory.
    shop = _Shop(customers, seed, today, per_customer)
    shop.build(_make_pools(seed, customers))
    return shop.tables()


# --------------------------------------------------------------------------- what is generated

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

# country -> (Faker locale, share among customers without cases)
COUNTRIES: dict[str, tuple[str, float]] = {
    "DE": ("de_DE", 0.85),
    "AT": ("de_AT", 0.12),
    "CH": ("de_CH", 0.012),
    "NL": ("nl_NL", 0.006),
    "FR": ("fr_FR", 0.006),
    "IT": ("it_IT", 0.006),
}
LANGUAGES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "DE": (("de", "en", "tr"), (0.97, 0.02, 0.01)),
    "AT": (("de", "en"), (0.98, 0.02)),
    "CH": (("de", "fr"), (0.7, 0.3)),
    "NL": (("nl", "en"), (0.8, 0.2)),
    "FR": (("fr",), (1.0,)),
    "IT": (("it",), (1.0,)),
}
# Reserved domains (RFC 2606/6761): realistic-looking addresses that reach nobody.
EMAIL_DOMAINS = np.array(
    ["example.com", "example.net", "example.org", "mail.example", "post.example", "web.example"],
    dtype=object,
)

# (sku, description, unit price in cents). Some are health-related on purpose: a purchase
# history can reveal health data (CJEU C-21/23), which is why handover never reads the lines.
PRODUCTS: tuple[tuple[str, str, int], ...] = (
    ("GES-1001", "Blutdruckmessgerät Oberarm", 4999),
    ("GES-1002", "Schwangerschaftstest (2 Stück)", 899),
    ("GES-1003", "Inkontinenzeinlagen extra (30 Stück)", 1299),
    ("GES-1004", "Blutzucker-Teststreifen (50 Stück)", 2499),
    ("GES-1005", "Fieberthermometer digital", 999),
    ("GES-1006", "Kompressionsstrümpfe Klasse 2", 3990),
    ("GES-1007", "Nikotinpflaster 21 mg (7 Stück)", 2795),
    ("GES-1008", "Hörgerätebatterien Größe 312 (60 Stück)", 1899),
    ("GES-1009", "Pulsoximeter", 2999),
    ("GES-1010", "Kondome sensitiv (12 Stück)", 995),
    ("GES-1011", "Läusekamm mit Lupe", 695),
    ("GES-1012", "Rollator Leichtgewicht", 12900),
    ("HAU-2001", "Bettwäsche Satin 135×200 cm", 4995),
    ("HAU-2002", "Spülmaschinentabs (60 Stück)", 1199),
    ("HAU-2003", "Staubsaugerbeutel (10 Stück)", 999),
    ("HAU-2004", "Handtuch-Set Frottee", 2999),
    ("HAU-2005", "LED-Leuchtmittel E27 (4er-Pack)", 1299),
    ("HAU-2006", "Schreibtischlampe", 3499),
    ("ELE-3001", "USB-C-Ladekabel 2 m", 1299),
    ("ELE-3002", "Bluetooth-Kopfhörer", 5999),
    ("ELE-3003", "Druckerpatronen schwarz XL", 3499),
    ("ELE-3004", "Smartphone-Hülle", 1999),
    ("ELE-3005", "Akkuschrauber 18 V", 8999),
    ("MOD-4001", "Jeans Slim Fit", 6995),
    ("MOD-4002", "Winterjacke Herren", 14900),
    ("MOD-4003", "Laufshirt Damen", 2499),
    ("MOD-4004", "Wanderschuhe Gr. 43", 11990),
    ("LEB-5001", "Kaffeebohnen Espresso 1 kg", 1799),
    ("LEB-5002", "Grüner Tee Sencha 100 g", 799),
    ("LEB-5003", "Müsli Nuss & Früchte 750 g", 549),
    ("FRE-6001", "Yogamatte", 2999),
    ("FRE-6002", "Brettspiel »Die Siedler«", 3499),
    ("FRE-6003", "Kinderfahrradhelm", 3999),
    ("TIE-7001", "Katzenfutter nass (24 × 85 g)", 1799),
    ("GRA-0001", "Gratisprobe Handcreme", 0),  # last: only for the 0.00 invoices
)
SKU = np.array([p[0] for p in PRODUCTS], dtype=object)
DESCRIPTION = np.array([p[1] for p in PRODUCTS], dtype=object)
PRICE = np.array([p[2] for p in PRODUCTS], dtype=np.int64)
REGULAR = len(PRODUCTS) - 1
FREE_SAMPLE = REGULAR
CHEAP = np.flatnonzero((PRICE < 1000) & (PRICE > 0))
EXPENSIVE = np.flatnonzero(PRICE >= 1490)  # any case but rule 2's can keep 10.00 EUR open

METHODS = np.array(["sepa_debit", "card", "paypal", "invoice_transfer"], dtype=object)
METHOD_SHARES = (0.3, 0.2, 0.3, 0.2)
FLAGS = np.array(["deceased", "insolvency", "hardship"], dtype=object)
STAFF = np.array(["m.schulz", "a.yilmaz", "j.becker", "k.novak", "t.huber", "s.öztürk"], object)
HOLD_REASONS = np.array(
    [
        "Zahlung telefonisch zugesagt",
        "Reklamation in Bearbeitung",
        "Rücksendung unterwegs",
        "Ratenzahlung wird geprüft",
        "Brief kam zurück, Adresse wird geklärt",
        "Kulanzprüfung durch Teamleitung",
    ],
    dtype=object,
)
# Support notes: the personal and health data that must never reach an agency.
NOTE_TEMPLATES = (
    "Kunde ist im Krankenhaus, bittet um Zahlungsaufschub. Rückruf unter {phone}.",
    "Neue E-Mail-Adresse laut Telefonat: {email}",
    "Lastschrift zurückgegangen, neue IBAN {iban} notiert.",
    "Erstattung der Retoure bitte auf {iban_spaced} (Kontoinhaber {first} {last}).",
    "Kundin schwanger, bittet um diskreten Versand. Rückfragen an {email}.",
    "Diagnose Diabetes Typ 2, bestellt Teststreifen künftig monatlich.",
    "{last} nach Schlaganfall in Reha bis {day}, Angehörige erreichbar unter {phone}.",
    "Beschwerde über Mahngebühren per E-Mail von {email}, Kopie an Buchhaltung.",
    "Paket laut Zusteller abgegeben, {first} {last} bestreitet den Empfang.",
    "Kunde hat telefonisch Zahlung bis {day} zugesagt.",
    "Depression laut Betreuerin, Post bitte nur an {email}; Betreuerin Tel. {phone}.",
    "Inkontinenzeinlagen in falscher Größe, Umtausch veranlasst.",
    "Zahlung per Überweisung von IBAN {iban} angekündigt.",
    "Bitte keine Werbung mehr an {email} senden.",
)

# --------------------------------------------------------------------------- Faker pools


@dataclass(frozen=True)
class _Pool:
    """Values of one country drawn once with Faker; columns are sampled from them."""

    first: np.ndarray
    first_slug: np.ndarray
    last: np.ndarray
    last_slug: np.ndarray
    long_last: np.ndarray  # double-barrelled names longer than 40 characters
    long_last_slug: np.ndarray
    streets: np.ndarray  # street names (a house number is added) or, abroad, whole lines
    numbered: bool
    postcodes: np.ndarray
    cities: np.ndarray
    phones: np.ndarray
    companies: np.ndarray
    company_slugs: np.ndarray
    ibans: np.ndarray


def _make_pools(seed: int, customers: int) -> dict[str, _Pool]:
    """One pool per country; sizes grow with the database, up to a few thousand values."""
    pools = {}
    for country, (_locale, share) in COUNTRIES.items():
        size = int(np.clip(customers * share / 4, 40, 2500))
        pools[country] = _make_pool(country, seed, size)
    return pools


def _make_pool(country: str, seed: int, size: int) -> _Pool:
    fake = Faker(COUNTRIES[country][0])
    fake.seed_instance(seed)
    first = [fake.first_name() for _ in range(size)]
    # Double first names ("Anna-Lena") are common in German-speaking countries.
    first += [f"{fake.first_name_female()}-{fake.first_name_female()}" for _ in range(size // 10)]
    last = [fake.last_name() for _ in range(size)]
    long_last = []
    for _ in range(20 if country in ("DE", "AT") else 0):
        name = f"{fake.last_name()}-{fake.last_name()} von {fake.last_name()}"
        while len(name) <= 40:
            name += f"-{fake.last_name()}"
        long_last.append(name)
    numbered = country in ("DE", "AT")
    streets = [fake.street_name() if numbered else fake.street_address() for _ in range(size)]
    places = [(fake.postcode(), fake.city()) for _ in range(size)]
    companies = [fake.company() for _ in range(max(10, size // 2))]
    return _Pool(
        first=_objects(first),
        first_slug=_objects(map(_slug, first)),
        last=_objects(last),
        last_slug=_objects(map(_slug, last)),
        long_last=_objects(long_last),
        long_last_slug=_objects(map(_slug, long_last)),
        streets=_objects(streets),
        numbered=numbered,
        postcodes=_objects(p for p, _ in places),
        cities=_objects(c for _, c in places),
        phones=_objects(fake.phone_number() for _ in range(size)),
        companies=_objects(companies),
        company_slugs=_objects(_slug(c)[:30].strip("-") for c in companies),
        ibans=_objects(fake.iban() for _ in range(max(10, size // 4))),
    )


_TRANSLITERATE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def _slug(text: str) -> str:
    """'Müller-Lüdenscheidt' -> 'mueller-luedenscheidt', for e-mail addresses."""
    ascii_text = unicodedata.normalize("NFKD", text.lower().translate(_TRANSLITERATE))
    ascii_text = ascii_text.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-") or "kunde"


def _objects(values: Iterable[object]) -> np.ndarray:
    """A 1-d object array (of Python str, which sqlite3 binds as they are)."""
    return np.array(list(values), dtype=object)


# --------------------------------------------------------------------------- small helpers


def _quota(rng: np.random.Generator, n: int, shares: Mapping[str, float]) -> np.ndarray:
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


def _pick_days(rng: np.random.Generator, lo: object, hi: object, n: int) -> np.ndarray:
    """Uniform random dates in [lo, hi], element-wise; an empty range gives `lo`."""
    lo_days = np.broadcast_to(np.asarray(lo, dtype="datetime64[D]"), (n,))
    hi_days = np.broadcast_to(np.asarray(hi, dtype="datetime64[D]"), (n,))
    span = np.maximum((hi_days - lo_days).astype(np.int64), 0)
    return lo_days + (rng.random(n) * (span + 1)).astype(np.int64).astype("timedelta64[D]")


def _stamp(
    rng: np.random.Generator, days: np.ndarray, *, slot: int | None = None, late: bool = False
) -> np.ndarray:
    """UTC timestamps on `days`.

    Daytime (06:00-19:59 UTC) keeps the Berlin date equal to the UTC date. `slot` 0/1/2 narrows
    it to 06-10/10-14/14-18 h, so steps on one day stay in order. `late` (23:05-23:55 UTC) is
    already the next day in Berlin, in winter (UTC+1) and summer (UTC+2) alike.
    """
    n = len(days)
    if late:
        seconds = 23 * 3600 + 300 + rng.integers(0, 50 * 60, n)
    elif slot is not None:
        seconds = (6 + 4 * slot) * 3600 + rng.integers(0, 4 * 3600, n)
    else:
        seconds = 6 * 3600 + rng.integers(0, 14 * 3600, n)
    return np.asarray(days, "datetime64[D]").astype("datetime64[s]") + seconds.astype(
        "timedelta64[s]"
    )


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def _ids(prefix: str, width: int, n: int) -> np.ndarray:
    """'C000001', 'C000002', … (more digits once `width` is exhausted)."""
    return np.strings.add(prefix, _zfill(np.arange(1, n + 1), width))


def _zfill(numbers: np.ndarray, width: int) -> np.ndarray:
    if not len(numbers):  # np.strings.zfill cannot size an empty array
        return np.empty(0, dtype=f"U{width}")
    return np.strings.zfill(numbers.astype(str), width)


def _fill(template: str, values: Mapping[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """`template` formatted for `rows` at once: concatenated object arrays, no per-row call."""
    text = np.full(len(rows), "", dtype=object)
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        text = text + literal
        if field:
            text = text + values[field][rows]
    return text


class _Rows:
    """One table built from column chunks (typed; scalars are broadcast)."""

    def __init__(self, **dtypes: str) -> None:
        self._dtypes = dtypes
        self._chunks: dict[str, list[np.ndarray]] = {column: [] for column in dtypes}

    def add(self, **values: object) -> None:
        n = max(len(v) for v in values.values() if np.ndim(v) == 1)  # type: ignore[arg-type]
        for column, dtype in self._dtypes.items():
            value = values[column]
            if np.ndim(value) == 0:
                chunk = np.empty(n, dtype=dtype)
                chunk[...] = value
            else:
                chunk = np.asarray(value, dtype=dtype)
            self._chunks[column].append(chunk)

    def build(self) -> Table:
        return {
            column: np.concatenate(chunks) if chunks else np.empty(0, self._dtypes[column])
            for column, chunks in self._chunks.items()
        }


# --------------------------------------------------------------------------- the shop


class _Shop:
    """Builds every table as numpy columns. Indices: customers 0..n-1, invoices 0..N-1."""

    def __init__(self, customers: int, seed: int, today: dt.date, per_customer: float) -> None:
        self.n = customers
        self.today = today
        self.T = np.datetime64(today, "D")
        self.rng = np.random.default_rng(seed)
        self.per_customer = per_customer
        self.payments = _Rows(invoice="i8", paid_at="M8[s]", amount="i8", method="O")
        self.events = _Rows(
            invoice="i8", kind="O", sent_at="M8[s]", channel="O", fee="f8", announces="i8"
        )
        self.disputes = _Rows(invoice="i8", opened_at="M8[s]", resolved_at="M8[s]", outcome="O")
        self.plans = _Rows(invoice="i8", agreed_at="M8[s]", status="O")
        self.holds = _Rows(
            invoice="i8", customer="i8", reason="O", set_by="O", set_at="M8[s]", expires_at="M8[s]"
        )
        self.flags = _Rows(customer="i8", flag="O", set_at="M8[s]", cleared_at="M8[s]")
        self.dob_override: dict[int, dt.date] = {}

    def build(self, pools: Mapping[str, _Pool]) -> None:
        self._skeleton()
        self._customer_traits()
        self._case_scenarios()
        self._dates()
        self._lines()
        self._history()
        self._case_payments()
        self._case_dunning()
        self._case_records()
        self._customer_records()
        self._people(pools)
        self._birth_dates()
        self._incomplete()

    def where(self, *names: str) -> np.ndarray:
        """Indices of the invoices with these case scenarios."""
        return np.flatnonzero(np.isin(self.code, [SCENARIO_CODE[name] for name in names]))

    def _years_ago(self, years: int) -> np.datetime64:
        return np.datetime64(_years_before(self.today, years), "D")

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
        self.trait[with_cases] = _quota(rng, len(with_cases), CUSTOMER_SHARES)
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
        labels[free] = _quota(self.rng, int(free.sum()), CASE_SHARES)
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
        due[i] = _pick_days(rng, T, T + self.terms[i] - DAY, len(i))
        i = np.flatnonzero(cls == WRITTEN_OFF)
        due[i] = _pick_days(rng, self._years_ago(5), T - 400, len(i))
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
            due[i] = _pick_days(rng, lo, hi, len(i))

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
                de, _pick_days(rng, *de_range, len(i)), _pick_days(rng, *at_range, len(i))
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

    # ----------------------------------------------------------------------- money and letters

    def _pay(
        self,
        inv: np.ndarray,
        days: np.ndarray,
        amounts: object,
        *,
        slot: int | None = None,
        method: object = None,
    ) -> None:
        if not len(inv):
            return
        if method is None:
            method = self.rng.choice(METHODS, size=len(inv), p=METHOD_SHARES)
        stamps = _stamp(self.rng, days, slot=slot)
        self.payments.add(invoice=inv, paid_at=stamps, amount=amounts, method=method)

    def _pay_parts(self, inv: np.ndarray, totals: np.ndarray) -> None:
        """Pay `totals` in one or two payments between the invoice date and yesterday."""
        rng, n = self.rng, len(inv)
        two = (rng.random(n) < 0.4) & (totals >= 200)
        first = np.where(two, totals // 2 + rng.integers(-50, 50, n), totals)
        day1 = _pick_days(rng, self.issued[inv] + DAY, self.T - 1, n)
        day2 = _pick_days(rng, day1, self.T - 1, n)
        self._pay(inv, day1, first, slot=0)
        self._pay(inv[two], day2[two], (totals - first)[two], slot=2)

    def _event(
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

    def _chain(
        self, inv: np.ndarray, notice: np.ndarray | None = None, *, announces: int = 1
    ) -> None:
        """The usual dunning: a reminder after the due date, sometimes a plain Mahnung, then a
        notice (default 14-45 days after due, at the latest 14 days before today)."""
        rng, n = self.rng, len(inv)
        if not n:
            return
        due = self.due[inv]
        if notice is None:
            days = np.minimum(self.T - 14, due + rng.integers(14, 46, n).astype("timedelta64[D]"))
            notice = _stamp(rng, days)
        notice_day = notice.astype("datetime64[D]")  # the UTC date; the reminder lies before it
        reminder = _pick_days(rng, due + DAY, np.minimum(due + 10, notice_day - DAY), n)
        self._event(inv, _stamp(rng, reminder), "reminder")
        middle = (notice_day - reminder >= 2 * DAY) & (rng.random(n) < 0.5)
        between = _pick_days(rng, reminder + DAY, notice_day - DAY, n)
        self._event(inv[middle], _stamp(rng, between[middle]), "dunning")
        kind = np.where(rng.random(n) < 0.7, "final_notice", "dunning")
        self._event(inv, notice, kind, announces)

    def _history(self) -> None:
        """Payments and letters of invoices that are not cases."""
        rng, T = self.rng, self.T
        i = np.flatnonzero(self.cls == PAID)
        n, amount, issued, due = len(i), self.amount[i], self.issued[i], self.due[i]
        late = rng.random(n) < 0.35
        delay = np.where(late, rng.integers(3, 25, n), rng.integers(0, 4, n))
        day = np.minimum(issued + delay.astype("timedelta64[D]"), T - 1)
        # One in ten paid only after a reminder.
        reminded = (rng.random(n) < 0.10) & (due + 12 <= T)
        reminder = due + rng.integers(3, 9, n).astype("timedelta64[D]")
        after = np.minimum(reminder + rng.integers(1, 8, n).astype("timedelta64[D]"), T - 1)
        day = np.where(reminded, after, day)
        self._event(i[reminded], _stamp(rng, reminder[reminded]), "reminder")

        pattern = rng.choice(4, size=n, p=[0.86, 0.08, 0.03, 0.03])
        k = pattern == 0  # one payment
        self._pay(i[k], day[k], amount[k])
        k = pattern == 1  # two instalments
        part = (amount[k] * rng.uniform(0.3, 0.7, k.sum())).astype(np.int64)
        later = np.minimum(day[k] + rng.integers(0, 20, k.sum()).astype("timedelta64[D]"), T - 1)
        self._pay(i[k], day[k], part, slot=0)
        self._pay(i[k], later, amount[k] - part, slot=2)
        k = pattern == 2  # paid twice, the second payment refunded
        back = np.minimum(day[k] + rng.integers(2, 10, k.sum()).astype("timedelta64[D]"), T - 1)
        self._pay(i[k], day[k], amount[k], slot=0)
        self._pay(i[k], day[k], amount[k], slot=1)
        self._pay(i[k], back, -amount[k], slot=2, method="paypal")
        k = pattern == 3  # a charge-back, then paid by transfer
        method = rng.choice(METHODS[:2], size=int(k.sum()))
        back = np.minimum(day[k] + rng.integers(3, 10, k.sum()).astype("timedelta64[D]"), T - 1)
        again = np.minimum(back + rng.integers(2, 15, k.sum()).astype("timedelta64[D]"), T - 1)
        self._pay(i[k], day[k], amount[k], slot=0, method=method)
        self._pay(i[k], back, -amount[k], slot=1, method=method)
        self._pay(i[k], again, amount[k], slot=2, method="invoice_transfer")

        i = np.flatnonzero(self.cls == CANCELLED)
        i = i[(rng.random(len(i)) < 0.3) & (self.issued[i] <= T - 3)]  # paid, then refunded
        paid = _pick_days(rng, self.issued[i], T - 2, len(i))
        refund = _pick_days(rng, paid + DAY, T - 1, len(i))
        method = rng.choice(METHODS, size=len(i), p=METHOD_SHARES)
        self._pay(i, paid, self.amount[i], method=method)
        self._pay(i, refund, -self.amount[i], method=method)

        i = np.flatnonzero(self.cls == WRITTEN_OFF)
        self._chain(i, _stamp(rng, self.due[i] + rng.integers(30, 60, len(i))))
        part = i[rng.random(len(i)) < 0.4]
        share = rng.uniform(0.1, 0.6, len(part))
        self._pay_parts(part, (self.amount[part] * share).astype(np.int64))

        i = np.flatnonzero(self.cls == NOT_DUE)
        part = i[(rng.random(len(i)) < 0.05) & (self.issued[i] <= T - 2)]
        self._pay_parts(part, (self.amount[part] * rng.uniform(0.2, 0.6, len(part))).astype(int))

    def _case_payments(self) -> None:
        rng, T, amount = self.rng, self.T, self.amount

        def keep_ten_euros_open(i: np.ndarray) -> np.ndarray:
            return rng.integers(100, amount[i] - 999)

        i = self.where("ok_partial")
        self._pay_parts(i, keep_ten_euros_open(i))
        i = self.where(*PART_PAYABLE)
        i = i[rng.random(len(i)) < 0.15]
        self._pay_parts(i, keep_ten_euros_open(i))
        i = self.where("ok_open_1000")
        self._pay_parts(i, amount[i] - 1000)
        i = self.where("not_open_paid")
        self._pay_parts(i, amount[i])
        i = self.where("not_open_overpaid")
        self._pay_parts(i, amount[i] + rng.integers(1, 2000, len(i)))
        i = self.where("below_min_rest")
        rest = rng.integers(1, 1000, len(i))
        rest[:1] = 999  # the largest remainder that is still below the minimum
        self._pay_parts(i, amount[i] - rest)

        i = self.where("ok_refund")
        back = rng.random(len(i)) < 0.5
        a, b = i[back], i[~back]
        method = rng.choice(METHODS[:3], size=len(a))  # paid in full, then charged back
        paid = _pick_days(rng, self.issued[a] + DAY, T - 8, len(a))
        self._pay(a, paid, amount[a], slot=0, method=method)
        self._pay(a, _pick_days(rng, paid + 3, T - 1, len(a)), -amount[a], slot=2, method=method)
        paid_b = keep_ten_euros_open(b)  # part paid, part of that refunded (a return)
        refund = np.maximum(1, (paid_b * rng.uniform(0.2, 1.0, len(b))).astype(np.int64))
        method = rng.choice(METHODS, size=len(b), p=METHOD_SHARES)
        day = _pick_days(rng, self.issued[b] + DAY, T - 2, len(b))
        self._pay(b, day, paid_b, slot=0, method=method)
        self._pay(b, _pick_days(rng, day, T - 1, len(b)), -refund, slot=2, method=method)

        # Instalment plans: monthly instalments after the agreement, 10.00 EUR always left open.
        for name, status, latest in (
            ("plan_active", "active", 2),
            ("ok_plan_defaulted", "defaulted", 60),
        ):
            i = self.where(name)
            agreed = _pick_days(rng, self.due[i] + DAY, T - latest, len(i))
            self.plans.add(invoice=i, agreed_at=_stamp(rng, agreed), status=status)
            rate = np.minimum(amount[i] // 6, (amount[i] - 1000) // 3)
            paid_months = rng.integers(0, 4, len(i))
            for month in range(3):
                day = agreed + 1 + 30 * month
                k = (month < paid_months) & (day <= T - 1)
                self._pay(i[k], day[k], rate[k], method="invoice_transfer")

    def _case_dunning(self) -> None:
        rng, T, due = self.rng, self.T, self.due

        def days(lo: object, hi: object, i: np.ndarray) -> np.ndarray:
            return _pick_days(rng, lo, hi, len(i))

        self._chain(self.where(*FULL_CHAIN))
        i = self.where("ok_due_boundary", "ok_notice_boundary")
        self._chain(i, _stamp(rng, np.full(len(i), T - 14)))
        i = self.where("ok_notice_tz_boundary")
        self._chain(i, _stamp(rng, np.full(len(i), T - 15), late=True))
        i = self.where("ok_reminder_tz")
        self._event(i, _stamp(rng, due[i], late=True), "reminder")
        self._event(i, _stamp(rng, days(due[i] + 14, T - 14, i)), "final_notice", 1)
        i = self.where("too_short_chain")
        self._chain(i, _stamp(rng, days(due[i] + 3, T - 14, i)))
        i = self.where("too_short")
        i = i[(due[i] <= T - 2) & (rng.random(len(i)) < 0.5)]
        self._event(i, _stamp(rng, days(due[i] + 1, np.minimum(due[i] + 5, T - 1), i)), "reminder")

        i = self.where("dun_reminder_only")
        first = days(due[i] + 1, np.minimum(due[i] + 10, T - 1), i)
        self._event(i, _stamp(rng, first), "reminder")
        again = (rng.random(len(i)) < 0.3) & (first + 14 <= T - 1)
        second = days(first[again] + 7, T - 1, i[again])
        self._event(i[again], _stamp(rng, second), "reminder")
        i = self.where("dun_no_reminder")
        self._event(i, _stamp(rng, days(due[i] + 14, T - 14, i)), "final_notice", 1)
        i = self.where("dun_not_announcing")
        self._chain(i, announces=0)
        i = self.where("dun_too_recent")
        self._chain(i, _stamp(rng, days(T - 13, T - 1, i)))
        i = self.where("dun_tz_too_recent")
        self._chain(i, _stamp(rng, np.full(len(i), T - 14), late=True))
        i = self.where("dun_notice_first")
        notice = days(due[i] + 1, np.minimum(due[i] + 10, T - 20), i)
        self._event(i, _stamp(rng, notice), "final_notice", 1)
        self._event(i, _stamp(rng, days(notice + 1, T - 14, i)), "reminder")
        i = self.where("dun_same_time")
        both = _stamp(rng, days(due[i] + 2, np.minimum(due[i] + 40, T - 14), i))
        self._event(i, both, "reminder")
        self._event(i, both, "final_notice", 1)
        i = self.where("dun_reminder_before_due")
        self._event(i, _stamp(rng, days(due[i] - 3, due[i], i)), "reminder")
        self._event(i, _stamp(rng, days(due[i] + 14, T - 14, i)), "final_notice", 1)

    def _case_records(self) -> None:
        """Disputes and holds of cases, and a little of the same on paid/cancelled invoices."""
        rng, T, issued, due = self.rng, self.T, self.issued, self.due
        i = self.where("disputed_open")
        opened = _stamp(rng, _pick_days(rng, issued[i] + DAY, T - 1, len(i)))
        self.disputes.add(invoice=i, opened_at=opened, resolved_at=NAT, outcome=None)
        closed = [
            ("disputed_withdrawn", "claim_withdrawn"),
            ("disputed_partial", "partially_upheld"),
            ("ok_dispute_upheld", "claim_upheld"),
        ]
        for name, outcome in closed:
            self._dispute(self.where(name), outcome, T - 10)
        paid = np.flatnonzero(self.cls == PAID)
        paid = paid[(rng.random(len(paid)) < 0.005) & (issued[paid] <= T - 20)]
        self._dispute(paid, rng.choice(np.array(closed, dtype=object)[:, 1], len(paid)), T - 10)
        cancelled = np.flatnonzero(self.cls == CANCELLED)
        cancelled = cancelled[(rng.random(len(cancelled)) < 0.1) & (issued[cancelled] <= T - 20)]
        self._dispute(cancelled, "claim_withdrawn", T - 10)

        i = self.where("hold_invoice", "hold_invoice_future")
        future = np.isin(i, self.where("hold_invoice_future"))
        expires = _stamp(rng, _pick_days(rng, T + 1, T + 60, len(i)))
        self._hold(
            i, -1, _pick_days(rng, due[i] + DAY, T - 1, len(i)), np.where(future, expires, NAT)
        )
        i = self.where("ok_hold_expired")
        i = np.r_[i, paid[: len(paid) // 2]]
        set_day = _pick_days(rng, issued[i] + DAY, T - 10, len(i))
        self._hold(i, -1, set_day, _stamp(rng, _pick_days(rng, set_day + DAY, T - 1, len(i))))

        plans = np.flatnonzero(self.cls == PAID)
        plans = plans[(rng.random(len(plans)) < 0.003) & (due[plans] <= T - 30)]
        agreed = _pick_days(rng, due[plans] + DAY, due[plans] + 20, len(plans))
        self.plans.add(invoice=plans, agreed_at=_stamp(rng, agreed), status="completed")

    def _dispute(self, inv: np.ndarray, outcome: object, latest: np.datetime64) -> None:
        rng, n = self.rng, len(inv)
        opened = _pick_days(rng, self.issued[inv] + DAY, latest, n)
        resolved = _pick_days(rng, opened + DAY, self.T - 1, n)
        self.disputes.add(
            invoice=inv,
            opened_at=_stamp(rng, opened),
            resolved_at=_stamp(rng, resolved),
            outcome=outcome,
        )

    def _hold(
        self, inv: object, customer: object, set_day: np.ndarray, expires: np.ndarray
    ) -> None:
        rng, n = self.rng, len(set_day)
        if not n:
            return
        self.holds.add(
            invoice=inv,
            customer=customer,
            reason=rng.choice(HOLD_REASONS, n),
            set_by=rng.choice(STAFF, n),
            set_at=_stamp(rng, set_day),
            expires_at=expires,
        )

    def _customer_records(self) -> None:
        """Protective flags and customer-wide holds: in force, lifted, or expired."""
        rng, T, n = self.rng, self.T, self.n
        no_case = self.case_count == 0
        noise = rng.random(n)

        in_force = np.flatnonzero((self.trait == "protected") | (no_case & (noise < 0.002)))
        set_day = _pick_days(rng, T - 400, T - 1, len(in_force))
        self.flags.add(
            customer=in_force,
            flag=rng.choice(FLAGS, len(in_force)),
            set_at=_stamp(rng, set_day),
            cleared_at=NAT,
        )
        lifted = np.flatnonzero((self.trait == "cleared_flag") | (no_case & (noise > 0.997)))
        set_day = _pick_days(rng, T - 900, T - 60, len(lifted))
        self.flags.add(
            customer=lifted,
            flag=rng.choice(FLAGS, len(lifted), p=[0.1, 0.3, 0.6]),
            set_at=_stamp(rng, set_day),
            cleared_at=_stamp(rng, _pick_days(rng, set_day + DAY, T - 1, len(lifted))),
        )

        held = np.flatnonzero((self.trait == "customer_hold") | (no_case & (noise < 0.001)))
        forever = rng.random(len(held)) < 0.6
        expires = _stamp(rng, _pick_days(rng, T + 1, T + 90, len(held)))
        set_day = _pick_days(rng, T - 120, T - 1, len(held))
        self._hold(-1, held, set_day, np.where(forever, NAT, expires))
        expired = np.flatnonzero((self.trait == "expired_hold") | (no_case & (noise > 0.999)))
        set_day = _pick_days(rng, T - 400, T - 30, len(expired))
        expires = _stamp(rng, _pick_days(rng, set_day + DAY, T - 1, len(expired)))
        self._hold(-1, expired, set_day, expires)

    # ----------------------------------------------------------------------- people

    def _people(self, pools: Mapping[str, _Pool]) -> None:
        rng, n = self.rng, self.n
        columns = ("first", "last", "company", "street", "postal", "city", "phone", "email")
        person = {name: np.full(n, None, dtype=object) for name in columns}
        self.language = np.full(n, "de", dtype=object)
        self.iban = np.full(n, None, dtype=object)
        for country, pool in pools.items():
            idx = np.flatnonzero(self.country == country)
            if len(idx):
                self._fill_people(country, pool, idx, person)
        self.person = person
        # Notes may repeat contact data the customer record no longer holds.
        self.email_any, self.phone_any = person["email"].copy(), person["phone"].copy()
        person["email"][rng.random(n) < np.where(self.business, 0.05, 0.10)] = None
        person["phone"][rng.random(n) < 0.4] = None

    def _fill_people(
        self, country: str, pool: _Pool, idx: np.ndarray, person: dict[str, np.ndarray]
    ) -> None:
        rng, k = self.rng, len(idx)
        business = self.business[idx]
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

    def _birth_dates(self) -> None:
        """Account creation after the first order, and dates of birth that fit it."""
        rng, T, n = self.rng, self.T, self.n
        first_order = np.full(n, T - SHOP_DAYS, dtype="datetime64[D]")
        buyers = self.counts > 0
        start = (np.cumsum(self.counts) - self.counts)[buyers]
        first_order[buyers] = np.minimum.reduceat(self.order, start)
        before = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 700, n))
        created = first_order - before.astype("timedelta64[D]")
        created[~buyers] = _pick_days(rng, T - SHOP_DAYS, T - 1, int((~buyers).sum()))
        self.created_at = _stamp(rng, created)

        # Adults when they opened the account (18 years + a month at least), so at every order.
        dob = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        known = ~self.business & (rng.random(n) < 0.4)
        age = (18 * 365.25 + 31 + rng.random(n) * 62 * 365.25).astype(np.int64)
        dob[known] = created[known] - age[known].astype("timedelta64[D]")
        # A few born on 29 February of an earlier leap year (older, so still adults).
        for c in np.flatnonzero(known & (rng.random(n) < 0.01)):
            year = dob[c].astype("datetime64[Y]").astype(int) + 1970 - 1
            dob[c] = np.datetime64(f"{year - year % 4}-02-29")

        case_orders = pd.Series(self.order[self.cls == CASE]).groupby(
            self.inv_cust[self.cls == CASE]
        )
        latest, earliest = case_orders.max(), case_orders.min()
        for c in np.flatnonzero(self.trait == "minor"):
            # 16 years to 17 years 9 months old at the latest order.
            days = int(16 * 365.25 + rng.integers(0, 650))
            dob[c] = np.datetime64(latest[c].date(), "D") - days
        for c in np.flatnonzero(self.trait == "adult_boundary"):
            dob[c] = np.datetime64(_years_before(earliest[c].date(), 18), "D")
        for c, born in self.dob_override.items():
            dob[c] = np.datetime64(born, "D")
        self.dob = dob

    def _incomplete(self) -> None:
        """Blank, whitespace-only or missing address fields and names (rule 11)."""
        person, rng = self.person, self.rng
        for c in np.flatnonzero(self.trait == "incomplete"):
            field = ("street", "postal", "city", "name")[rng.integers(0, 4)]
            blank = (None, "", "   ", "\t")[rng.integers(0, 4)]
            if field == "name":
                field = "company" if self.business[c] else "last"
            person[field][c] = blank

    # ----------------------------------------------------------------------- the tables

    def tables(self) -> dict[str, Table]:
        """Every table in the DDL's column order, with ids, sorted as a shop would store it."""
        rng, N, p = self.rng, self.N, self.person
        customer_order = np.argsort(self.created_at, kind="stable")
        customer_id = np.empty(self.n, dtype=object)
        customer_id[customer_order] = _ids("C", 6, self.n)
        invoice_order = np.argsort(self.issued, kind="stable")
        invoice_id = np.empty(N, dtype=object)
        invoice_id[invoice_order] = _ids("I", 7, N)
        rank = np.empty(N, dtype=np.int64)
        rank[invoice_order] = np.arange(N)

        # Invoice numbers count per year of the invoice date; some orders never got invoiced.
        year = self.issued[invoice_order].astype("datetime64[Y]").astype(np.int64) + 1970
        number = np.arange(N) - np.searchsorted(year, year, side="left") + 1
        order_no = np.cumsum(1 + (rng.random(N) < 0.04))
        number_text = _zfill(number, 6)
        o = invoice_order
        tables: dict[str, Table] = {}
        tables["customers"] = _take(
            {
                "customer_id": customer_id,
                "kind": np.where(self.business, "business", "consumer").astype(object),
                "first_name": p["first"],
                "last_name": p["last"],
                "company_name": p["company"],
                "date_of_birth": self.dob,
                "email": p["email"],
                "phone": p["phone"],
                "street": p["street"],
                "postal_code": p["postal"],
                "city": p["city"],
                "country": self.country,
                "language": self.language,
                "created_at": self.created_at,
            },
            customer_order,
        )
        flags = self.flags.build()
        tables["customer_flags"] = _take(
            {
                "customer_id": customer_id[flags["customer"]],
                "flag": flags["flag"],
                "set_at": flags["set_at"],
                "cleared_at": flags["cleared_at"],
            },
            np.argsort(flags["set_at"], kind="stable"),
        )
        tables["invoices"] = {
            "invoice_id": invoice_id[o],
            "invoice_number": np.strings.add(
                np.strings.add("RE-", year.astype(str)), np.strings.add("-", number_text)
            ),
            "customer_id": customer_id[self.inv_cust[o]],
            "order_id": _ids("O", 7, int(order_no[-1]) if N else 0)[order_no - 1],
            "order_date": self.order[o],
            "issued_at": self.issued[o],
            "due_date": self.due[o],
            "amount_cents": self.amount[o],
            "currency": self.currency[o],
            "status": STATUS[self.cls[o]],
        }
        lines = self.lines
        tables["invoice_lines"] = _take(
            {
                "invoice_id": invoice_id[lines["invoice"]],
                "line_no": lines["line_no"],
                "sku": lines["sku"],
                "description": lines["description"],
                "quantity": lines["quantity"],
                "unit_price_cents": lines["unit_price"],
            },
            np.lexsort((lines["line_no"], rank[lines["invoice"]])),
        )
        pay = self.payments.build()
        # The payer's IBAN is known for direct debits and for most bank transfers.
        with_iban = (pay["method"] == "sepa_debit") | (
            (pay["method"] == "invoice_transfer") & (rng.random(len(pay["method"])) < 0.7)
        )
        payer_iban = self.iban[self.inv_cust[pay["invoice"]]]
        tables["payments"] = _with_ids(
            "payment_id",
            "P",
            7,
            {
                "invoice_id": invoice_id[pay["invoice"]],
                "paid_at": pay["paid_at"],
                "amount_cents": pay["amount"],
                "method": pay["method"],
                "iban": np.where(with_iban, payer_iban, None),
            },
            "paid_at",
        )
        ev = self.events.build()
        tables["dunning_events"] = _with_ids(
            "event_id",
            "E",
            7,
            {
                "invoice_id": invoice_id[ev["invoice"]],
                "kind": ev["kind"],
                "sent_at": ev["sent_at"],
                "channel": ev["channel"],
                "fee_cents": ev["fee"],
                "announces_handover": ev["announces"],
            },
            "sent_at",
        )
        disputes = self.disputes.build()
        tables["disputes"] = _with_ids(
            "dispute_id",
            "D",
            6,
            {
                "invoice_id": invoice_id[disputes["invoice"]],
                "opened_at": disputes["opened_at"],
                "resolved_at": disputes["resolved_at"],
                "outcome": disputes["outcome"],
            },
            "opened_at",
        )
        plans = self.plans.build()
        tables["installment_plans"] = _with_ids(
            "plan_id",
            "IP",
            6,
            {
                "invoice_id": invoice_id[plans["invoice"]],
                "agreed_at": plans["agreed_at"],
                "status": plans["status"],
            },
            "agreed_at",
        )
        tables["consents"] = self._consents(customer_id)
        tables["support_notes"] = self._notes(customer_id)
        holds = self.holds.build()
        tables["holds"] = _with_ids(
            "hold_id",
            "H",
            6,
            {
                "invoice_id": _nullable(invoice_id, holds["invoice"]),
                "customer_id": _nullable(customer_id, holds["customer"]),
                "reason": holds["reason"],
                "set_by": holds["set_by"],
                "set_at": holds["set_at"],
                "expires_at": holds["expires_at"],
            },
            "set_at",
        )
        return tables

    def _consents(self, customer_id: np.ndarray) -> Table:
        """A history per customer and purpose; the latest record decides."""
        rng, n = self.rng, self.n
        end = (self.T - 1).astype("datetime64[s]") + np.timedelta64(86399, "s")
        parts: list[Table] = []
        for purpose, share in (("contact_email", 0.7), ("contact_phone", 0.4)):
            who = np.flatnonzero(rng.random(n) < share)
            k = rng.choice([1, 2, 3, 4], size=len(who), p=[0.55, 0.3, 0.1, 0.05])
            cust = np.repeat(who, k)
            j = np.arange(len(cust)) - np.repeat(np.cumsum(k) - k, k)
            start = self.created_at[cust]
            span = np.maximum((end - start).astype(np.int64), 0)
            # Record j lies in the j-th of k slices of the time since sign-up: strictly later.
            offset = (span * (j + rng.random(len(cust))) / np.repeat(k, k)).astype(np.int64)
            offset = np.where(j == 0, 0, offset + j)
            later_source = rng.choice(
                np.array(["account", "letter", "phone", "checkout"], dtype=object),
                len(cust),
                p=[0.5, 0.2, 0.2, 0.1],
            )
            parts.append(
                {
                    "customer_id": customer_id[cust],
                    "purpose": np.full(len(cust), purpose, dtype=object),
                    "granted": np.where(
                        j == 0, rng.random(len(cust)) < 0.7, rng.random(len(cust)) < 0.45
                    ),
                    "recorded_at": start + offset.astype("timedelta64[s]"),
                    "source": np.where(
                        j == 0,
                        np.where(rng.random(len(cust)) < 0.8, "checkout", "account"),
                        later_source,
                    ).astype(object),
                }
            )
        table = {column: np.concatenate([part[column] for part in parts]) for column in parts[0]}
        return _take(table, np.argsort(table["recorded_at"], kind="stable"))

    def _notes(self, customer_id: np.ndarray) -> Table:
        """Free text with e-mail addresses, IBANs, phone numbers and health details."""
        rng, n, T, person = self.rng, self.n, self.T, self.person
        who = np.flatnonzero(rng.random(n) < 0.2)
        k = rng.choice([1, 2, 3], size=len(who), p=[0.6, 0.3, 0.1])
        cust = np.repeat(who, k)
        m = len(cust)
        created_day = _pick_days(rng, self.created_at[cust].astype("datetime64[D]"), T - 1, m)
        last = pd.Series(person["last"][cust], dtype=object)
        last = last.fillna(pd.Series(person["company"][cust], dtype=object)).fillna("Kunde")
        iban = self.iban[cust]
        values = {
            "email": self.email_any[cust],
            "phone": self.phone_any[cust],
            "iban": iban,
            "iban_spaced": _objects(" ".join(re.findall(".{1,4}", i)) for i in iban),
            "first": pd.Series(person["first"][cust], dtype=object).fillna("").to_numpy(),
            "last": last.to_numpy(),
            "day": np.datetime_as_string(created_day + 14, unit="D").astype(object),
        }
        template = rng.integers(0, len(NOTE_TEMPLATES), m)
        body = np.empty(m, dtype=object)
        for t, text in enumerate(NOTE_TEMPLATES):
            rows = np.flatnonzero(template == t)
            body[rows] = _fill(text, values, rows)
        return _with_ids(
            "note_id",
            "N",
            7,
            {
                "customer_id": customer_id[cust],
                "created_at": _stamp(rng, created_day),
                "body": body,
            },
            "created_at",
        )


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
    return _objects(
        f"{country}{c:02d}{b:0{bank_digits}d}{a:0{account_digits}d}"
        for c, b, a in zip(check.tolist(), bank.tolist(), account.tolist(), strict=True)
    )


def _take(table: Table, order: np.ndarray) -> Table:
    return {column: values[order] for column, values in table.items()}


def _with_ids(column: str, prefix: str, width: int, table: Table, by: str) -> Table:
    """`table` sorted by `by`, with ids counting up in that order as the first column."""
    ordered = _take(table, np.argsort(table[by], kind="stable"))
    return {column: _ids(prefix, width, len(table[by])), **ordered}


def _nullable(ids: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`ids[index]`, None where index is -1."""
    return np.where(index >= 0, ids[np.maximum(index, 0)] if len(ids) else None, None)


# --------------------------------------------------------------------------- writing


def _ddl_statements() -> tuple[list[str], list[str]]:
    """The contract's DDL split on ';' into (tables, indexes).

    Comments go first: several contain ';'. Indexes are created after the bulk load (faster).
    """
    text = re.sub(r"--[^\n]*", "", DDL_PATH.read_text(encoding="utf-8"))
    statements = [s.strip() for s in text.split(";") if s.strip()]
    indexes = [s for s in statements if s.upper().startswith("CREATE INDEX")]
    return [s for s in statements if s not in indexes], indexes


def _sql_values(values: np.ndarray) -> list[object]:
    """A column as Python values sqlite3 can bind; float columns are nullable integers."""
    if not len(values):
        return []
    if values.dtype.kind == "M":
        unit = "D" if np.datetime_data(values.dtype)[0] == "D" else "s"
        text = np.datetime_as_string(values, unit=unit)
        if unit == "s":
            text = np.strings.replace(text, "T", " ")
        out = text.astype(object)
        out[np.isnat(values)] = None
        return out.tolist()
    if values.dtype.kind == "f":
        return [None if v != v else int(v) for v in values.tolist()]
    if values.dtype.kind == "b":
        return values.astype(np.int64).tolist()
    return values.tolist()


CHUNK_ROWS = 200_000


def _write(out: Path, tables: Mapping[str, Table], report: Callable[[str], None]) -> None:
    """Bulk-load into `<out>.partial` without journal, index, then rename over `out`."""
    creates, indexes = _ddl_statements()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    con = sqlite3.connect(partial, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-262144"):
            con.execute(f"PRAGMA {pragma}")
        for statement in creates:
            con.execute(statement)
        con.execute("BEGIN")
        for name, table in tables.items():
            columns = list(table)
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"
            total = len(table[columns[0]])
            # In chunks: Python values for a whole table would double the peak memory.
            for start in range(0, total, CHUNK_ROWS):
                chunk = (_sql_values(table[c][start : start + CHUNK_ROWS]) for c in columns)
                con.executemany(sql, zip(*chunk, strict=True))
            report(f"{name}: {total}")
        con.execute("COMMIT")
        for statement in indexes:
            con.execute(statement)
        report(f"indexes: {len(indexes)}")
    except BaseException:
        con.close()
        partial.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(partial, out)
