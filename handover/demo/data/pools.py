"""Faker pools: names, streets, places, phones, companies and IBANs, drawn once per country.

Whole columns are then sampled from the pools with numpy: per-row Faker calls would take hours
for a million invoices.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
from faker import Faker

from handover.demo.data.columns import objects
from handover.demo.data.values import COUNTRIES


@dataclass(frozen=True)
class Pool:
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


def make_pools(seed: int, customers: int) -> dict[str, Pool]:
    """One pool per country; sizes grow with the database, up to a few thousand values."""
    pools = {}
    for country, (_locale, share) in COUNTRIES.items():
        size = int(np.clip(customers * share / 4, 40, 2500))
        pools[country] = _make_pool(country, seed, size)
    return pools


def _make_pool(country: str, seed: int, size: int) -> Pool:
    fake = Faker(COUNTRIES[country][0])
    fake.seed_instance(seed)
    # Some locales (it_IT) build their city list from a set, whose order follows
    # PYTHONHASHSEED; sorted, the same seed gives the same shop in every process.
    for provider in fake.get_providers():
        if isinstance(getattr(provider, "cities", None), list):
            provider.cities = sorted(provider.cities)
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
    return Pool(
        first=objects(first),
        first_slug=objects(map(_slug, first)),
        last=objects(last),
        last_slug=objects(map(_slug, last)),
        long_last=objects(long_last),
        long_last_slug=objects(map(_slug, long_last)),
        streets=objects(streets),
        numbered=numbered,
        postcodes=objects(p for p, _ in places),
        cities=objects(c for _, c in places),
        phones=objects(fake.phone_number() for _ in range(size)),
        companies=objects(companies),
        company_slugs=objects(_slug(c)[:30].strip("-") for c in companies),
        ibans=objects(fake.iban() for _ in range(max(10, size // 4))),
    )


_TRANSLITERATE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def _slug(text: str) -> str:
    """'Müller-Lüdenscheidt' -> 'mueller-luedenscheidt', for e-mail addresses."""
    ascii_text = unicodedata.normalize("NFKD", text.lower().translate(_TRANSLITERATE))
    ascii_text = ascii_text.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-") or "kunde"
