"""Phone numbers to E.164 (`+4930123456`), the only form a drop carries.

Shops store numbers as customers typed them ("030 1234567", "+49(0)30 …"). Google's libphonenumber
(`phonenumbers`) parses each with the customer's country as the region for national numbers; a
number it cannot parse, or that is not a valid number of its region, is left out (None): the
case still goes to the agency, without a phone number, rather than being held back.
"""

from __future__ import annotations

import pandas as pd
import phonenumbers


def to_e164(phones: pd.Series, countries: pd.Series) -> pd.Series:
    """E.164 for each phone (None where missing, unparseable or invalid), same index.

    `countries` holds ISO 3166-1 alpha-2 codes aligned with `phones`. Parsing costs about 20 µs
    a number, so each distinct (phone, country) pair is parsed once and mapped back.
    """
    present = phones.notna()
    pairs = pd.DataFrame(
        {"phone": phones[present].astype(str), "country": countries[present].astype(object)}
    )
    result = pd.Series([None] * len(phones), index=phones.index, dtype=object)
    if pairs.empty:
        return result
    distinct = pairs.drop_duplicates()
    lookup = pd.Series(
        [_e164(p, c) for p, c in zip(distinct["phone"], distinct["country"], strict=True)],
        index=pd.MultiIndex.from_frame(distinct),
        dtype=object,
    )
    normalised = lookup.reindex(pd.MultiIndex.from_frame(pairs)).to_numpy()
    result[present] = normalised
    return result.where(result.notna(), None)


def _e164(text: str, country: object) -> str | None:
    region = country if isinstance(country, str) and len(country) == 2 else None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
