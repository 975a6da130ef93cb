"""Finding personal data in free text (redaction/logs/scrub.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from redaction.logs.scrub import GENERIC, MIN_VALUE_LENGTH, Scrubber


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    customers = pd.DataFrame(
        {
            "first_name": ["Jürgen", "İlker", None, "Li"],
            "last_name": ["Müller-Lüdenscheidt", "Rosen", "Berg", "Wu"],
            "company_name": [None, None, "Berg & Söhne GmbH", None],
            "street": ["Hauptstraße 1", "Am Rosenhang 3", "Bergweg 9", "Gasse 2"],
            "city": ["Berlin", "Wien", "Ulm", "Graz"],
            "email": ["j.mueller@example.de", None, "info@berg.example", None],
            "phone": ["030 1234567", None, "(0731) 98 76 54", None],
            "date_of_birth": ["1980-05-17", None, None, None],  # not a scrubbed column
        }
    )
    return Scrubber.from_frames({"customers": customers})


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("Kunde Jürgen Müller-Lüdenscheidt", "Kunde <name> <name>"),
        ("JÜRGEN MÜLLER-LÜDENSCHEIDT", "<name> <name>"),  # any case
        ("İLKER and ilker", "<name> and <name>"),  # a character that lowers to two
        ("Frau Rosen in Rosenheim", "Frau <name> in Rosenheim"),  # whole words only
        ("Hauptstraße 1, 10115 Berlin", "<address>, 10115 <address>"),
        ("Berg & Söhne GmbH (Ulm)", "<name> (<address>)"),  # the longest value wins
        ("info@berg.example wrote", "<email> wrote"),
        ("call (0731) 98 76 54 or 030 1234567", "call <phone> or <phone>"),
        ("'Müller-Lüdenscheidt'", "'<name>'"),  # as pandas quotes a value
    ],
)
def test_batch_values(scrubber: Scrubber, text: str, scrubbed: str) -> None:
    assert scrubber.scrub(text) == scrubbed


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("mail anna.berg+x@mail.example.org now", "mail <email> now"),
        ("IBAN DE89370400440532013000.", "IBAN <iban>."),
        ("IBAN DE89 3704 0044 0532 0130 00 paid", "IBAN <iban> paid"),
        ("AT611904300234573201", "<iban>"),
        ("+49 151 98765432; +49(0)30 1234567", "<phone>; <phone>"),
        ("0171-2345678 / 0043 664 1234567", "<phone>"),  # joined by " / ": one finding
        ("Tel. 0171/2345678, Fax 030-12345-67", "Tel. <phone>, Fax <phone>"),
    ],
)
def test_patterns_find_anyones_data(text: str, scrubbed: str) -> None:
    assert GENERIC.scrub(text) == scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "Extracted 1204 cases due before 2026-06-15 (as_of in Europe/Vienna)",
        "drop 2026-11-27-inkasso-demo-15574023 sealed at 10:00:00.123456",
        "View at http://127.0.0.1:4200/runs/flow-run/0b7e5c1a-0123-4567-1234-012345678901",
        "case_ref 0123456789abcdef0123456789abcdef for invoice I0004711, 0.123 s",
        "Decisions: eligible=812, below_minimum=0, on_hold=4; sha256 d2c1f0e9a8b7",
        "invalid_postal_code 3, invalid_email 1; 5.0% allowed",
    ],
)
def test_ordinary_log_lines_are_left_alone(scrubber: Scrubber, text: str) -> None:
    assert scrubber.scrub(text) == text


def test_short_values_and_other_columns_are_not_looked_for(scrubber: Scrubber) -> None:
    assert MIN_VALUE_LENGTH == 3
    assert scrubber.scrub("Li Wu") == "Li Wu"
    assert scrubber.scrub("born 1980-05-17") == "born 1980-05-17"
    assert len(scrubber) == 18  # distinct values of the scrubbed columns, 3 characters or more


def test_an_empty_batch_still_applies_the_patterns() -> None:
    empty = Scrubber.from_frames({"customers": pd.DataFrame({"last_name": []})})
    assert len(empty) == 0
    assert empty.scrub("to x@y.example") == "to <email>"
    assert empty.scrub("") == ""


def _occurrences(values: dict[str, str], text: str) -> set[tuple[int, int, str]]:
    """The reference: every value searched for on its own with str.find, whole words only."""
    from redaction.logs.scrub import _fold

    folded = _fold(text)
    spans = set()
    for value, placeholder in values.items():
        start = folded.find(value)
        while start != -1:
            end = start + len(value)
            if (start == 0 or not text[start - 1].isalnum()) and (
                end == len(text) or not text[end].isalnum()
            ):
                spans.add((start, end, placeholder))
            start = folded.find(value, start + 1)
    return spans


def test_batch_values_are_found_wherever_a_search_for_each_finds_them(scrubber: Scrubber) -> None:
    # Random texts of values, their halves and separators, in any case: the lookups find
    # exactly the whole-word occurrences (overlapping ones too) that a search per value finds.
    import random

    rng = random.Random(12)
    values = dict(scrubber._values)  # what the scrubber looks for
    pieces = [
        *values,
        *(v[: len(v) // 2] for v in values),
        *(v[len(v) // 2 :] for v in values),
        *["Rosenheim", "İ", "ß", "_", "-", "'", "(", ")", "\n", "42", "x", "&", "@", ".", "+49"],
    ]
    found = 0
    for _ in range(3000):
        parts = [rng.choice(pieces) for _ in range(rng.randint(1, 10))]
        text = rng.choice(["", " ", ", ", "_", "-", "/"]).join(parts)
        text = rng.choice([str.upper, str.lower, str.title, str])(text)
        expected = _occurrences(values, text)
        assert set(scrubber._batch_spans(text)) == expected, text
        found += len(expected)
    assert found > 1000
