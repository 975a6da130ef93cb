"""Find personal data in free text (log lines, exception messages) and replace it.

Two kinds of finder work in one pass over the text:

- patterns for e-mail addresses, IBANs and phone numbers, whoever they belong to;
- the current batch's own values (names, company, street, city, e-mail, phone of
  `frames["customers"]`), found by one Aho-Corasick automaton (`ahocorasick_rs`, Rust): its cost
  per line does not grow with the number of values. Values match case-insensitively and only as
  whole words ("Rosen" is scrubbed in "Frau Rosen", not in "Rosenheim").

Each hit becomes a placeholder naming its kind: `<email>`, `<iban>`, `<phone>`, `<name>`,
`<address>`. Measured with bench/bench_scrub.py on 100,000 demo customers (166,000 distinct
values): building takes about 0.6 s and 35 MiB, scrubbing a log line 5-12 µs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

import ahocorasick_rs
import pandas as pd

PLACEHOLDERS: Mapping[str, str] = {
    "email": "<email>",
    "iban": "<iban>",
    "phone": "<phone>",
    "name": "<name>",
    "address": "<address>",
}

# The columns of frames["customers"] whose values are scrubbed, and the kind each one is.
BATCH_COLUMNS: Mapping[str, str] = {
    "first_name": "name",
    "last_name": "name",
    "company_name": "name",
    "street": "address",
    "city": "address",
    "email": "email",
    "phone": "phone",
}

# Shorter values ("Li", "Au") would turn common words of every log line into placeholders;
# on their own they identify nobody, and the other values of the same person still match.
MIN_VALUE_LENGTH = 3

_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
# Two capital letters, two check digits, then 11 to 30 characters, optionally in groups of four.
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
# International (+49 …) or national (0…, (0…) numbers with the usual separators, 7 digits or more.
# Dates, counts and ids do not start with 0 or +; a digit run inside another token (an id, the
# seconds of a time) is left alone. Two numbers joined by " / " become one finding.
_PHONE = re.compile(r"(?<![\w+/.:-])(?:\+\d|\(0|0\d)[\d ()/.-]{4,}\d(?!\w)")
_PHONE_MIN_DIGITS = 7

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", _EMAIL),
    ("iban", _IBAN),
    ("phone", _PHONE),
)


class Scrubber:
    """Replaces e-mail addresses, IBANs, phone numbers and a batch's own values in text."""

    def __init__(self, values: Iterable[tuple[object, str]] = ()) -> None:
        """`values` are (value, kind) pairs, kind a key of PLACEHOLDERS; first kind wins."""
        folded: dict[str, str] = {}
        for value, kind in values:
            key = _fold(str(value).strip())
            if len(key) >= MIN_VALUE_LENGTH:
                folded.setdefault(key, PLACEHOLDERS[kind])
        self._placeholders = tuple(folded.values())
        self._automaton = ahocorasick_rs.AhoCorasick(list(folded)) if folded else None

    @classmethod
    def from_frames(cls, frames: Mapping[str, pd.DataFrame]) -> Scrubber:
        """A scrubber for the batch in `frames` (its `customers` frame)."""
        customers = frames["customers"]
        return cls.from_columns({c: customers[c] for c in BATCH_COLUMNS if c in customers})

    @classmethod
    def from_columns(cls, columns: Mapping[str, pd.Series]) -> Scrubber:
        """A scrubber for the values of `columns` (names as in BATCH_COLUMNS)."""
        # unique() first: a plain loop over distinct values beats pandas string methods here.
        return cls(
            (value, BATCH_COLUMNS[column])
            for column, values in columns.items()
            for value in pd.Series(values).dropna().unique()
        )

    def __len__(self) -> int:
        """The number of distinct batch values it looks for."""
        return len(self._placeholders)

    def scrub(self, text: str) -> str:
        """`text` with every finding replaced by its placeholder."""
        if not text:
            return text
        spans: list[tuple[int, int, str]] = []
        if self._automaton is not None:
            folded = _fold(text)
            for index, start, end in self._automaton.find_matches_as_indexes(
                folded, overlapping=True
            ):
                if _whole_word(text, start, end):
                    spans.append((start, end, self._placeholders[index]))
        for kind, pattern in _PATTERNS:
            for match in pattern.finditer(text):
                if kind == "phone" and sum(c.isdigit() for c in match[0]) < _PHONE_MIN_DIGITS:
                    continue
                spans.append((match.start(), match.end(), PLACEHOLDERS[kind]))
        return _replace(text, spans) if spans else text


GENERIC = Scrubber()
"""Patterns only, for text outside a batch (before extraction, or no batch at hand)."""

_CURRENT: ContextVar[Scrubber | None] = ContextVar("handover_scrubber", default=None)


def current_scrubber() -> Scrubber:
    """The scrubber of the innermost `using` block (task runs inherit it), or GENERIC."""
    scrubber = _CURRENT.get()
    return GENERIC if scrubber is None else scrubber


@contextmanager
def using(scrubber: Scrubber) -> Iterator[Scrubber]:
    """Make `scrubber` the current one inside the block."""
    token = _CURRENT.set(scrubber)
    try:
        yield scrubber
    finally:
        _CURRENT.reset(token)


def _fold(text: str) -> str:
    """Lower case, one character for one, so that positions in the folded text are valid."""
    folded = text.lower()
    if len(folded) == len(text):
        return folded
    # A few characters lower to two ("İ" to "i" and a combining dot); keep the letter.
    return "".join(c.lower()[0] for c in text)


def _whole_word(text: str, start: int, end: int) -> bool:
    return (start == 0 or not text[start - 1].isalnum()) and (
        end == len(text) or not text[end].isalnum()
    )


def _replace(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Replace overlapping spans by one placeholder: the longest span's, at the earliest start."""
    spans.sort(key=lambda s: (s[0], s[0] - s[1]))
    out: list[str] = []
    position = 0
    current_start, current_end, placeholder = spans[0]
    for start, end, kind in spans[1:]:
        if start < current_end:
            current_end = max(current_end, end)
            continue
        out += [text[position:current_start], placeholder]
        position = current_end
        current_start, current_end, placeholder = start, end, kind
    out += [text[position:current_start], placeholder, text[current_end:]]
    return "".join(out)
