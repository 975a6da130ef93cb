"""The support_notes table: free text with e-mail addresses, IBANs, phone numbers and health
details, the personal data that must never reach an agency."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

import numpy as np
import pandas as pd

from handover.demo.data.columns import Table, objects, with_ids
from handover.demo.data.draw import pick_days, stamp
from handover.demo.data.people import People
from handover.demo.data.values import NOTE_TEMPLATES


def notes(
    rng: np.random.Generator, people: People, customer_id: np.ndarray, T: np.datetime64
) -> Table:
    """Up to three notes for one customer in five, written since sign-up, from
    `values.NOTE_TEMPLATES` filled with the customer's own data."""
    person = people.person
    who = np.flatnonzero(rng.random(people.n) < 0.2)
    k = rng.choice([1, 2, 3], size=len(who), p=[0.6, 0.3, 0.1])
    cust = np.repeat(who, k)
    m = len(cust)
    created_day = pick_days(rng, people.created_at[cust].astype("datetime64[D]"), T - 1, m)
    last = pd.Series(person["last"][cust], dtype=object)
    last = last.fillna(pd.Series(person["company"][cust], dtype=object)).fillna("Kunde")
    iban = people.iban[cust]
    values = {
        "email": people.email_any[cust],
        "phone": people.phone_any[cust],
        "iban": iban,
        "iban_spaced": objects(" ".join(re.findall(".{1,4}", i)) for i in iban),
        "first": pd.Series(person["first"][cust], dtype=object).fillna("").to_numpy(),
        "last": last.to_numpy(),
        "day": np.datetime_as_string(created_day + 14, unit="D").astype(object),
    }
    template = rng.integers(0, len(NOTE_TEMPLATES), m)
    body = np.empty(m, dtype=object)
    for t, text in enumerate(NOTE_TEMPLATES):
        rows = np.flatnonzero(template == t)
        body[rows] = _fill(text, values, rows)
    return with_ids(
        "note_id",
        "N",
        7,
        {
            "customer_id": customer_id[cust],
            "created_at": stamp(rng, created_day),
            "body": body,
        },
        "created_at",
    )


def _fill(template: str, values: Mapping[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """`template` formatted for `rows` at once: concatenated object arrays, no per-row call."""
    text = np.full(len(rows), "", dtype=object)
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        text = text + literal
        if field:
            text = text + values[field][rows]
    return text
