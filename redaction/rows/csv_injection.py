"""Neutralise spreadsheet formulas in free-text cells (CSV injection, OWASP).

Agencies open drops in spreadsheets, which run a cell that starts with `=`, `+`, `-` or `@` as a
formula (`=HYPERLINK(…)`, DDE payloads), and so do a leading tab or carriage return. As OWASP
recommends, such a cell gets a single quote in front: a spreadsheet shows the text as text, and a
reader strips the quote. The full-width forms (＝ ＋ － ＠) get it too, since some spreadsheets
fold them to the ASCII ones. The CSV writer quotes cells with separators and quotes (RFC 4180).
Which columns are free text, and which characters start a formula, is the contract's to say
(`handover.contract`): the agency's schema refuses such a cell without the quote.
"""

from __future__ import annotations

import pandas as pd

from handover.contract import FORMULA_PREFIXES, FREE_TEXT_COLUMNS

__all__ = ["FORMULA_PREFIXES", "FREE_TEXT_COLUMNS", "neutralise"]

_STARTS_LIKE_FORMULA = "[" + FORMULA_PREFIXES.replace("-", r"\-") + "]"


def neutralise(values: pd.Series) -> pd.Series:
    """`values` with a `'` in front of each text that a spreadsheet would run as a formula."""
    text = values.astype(object)
    text = text.where(text.notna(), None)
    risky = text.str.match(_STARTS_LIKE_FORMULA, na=False).astype(bool)
    if risky.any():
        text[risky] = "'" + text[risky].astype(str)
    return text
