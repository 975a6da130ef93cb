"""handover/run/quarantine.py: row-level failures hold cases back, the others stop the run."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from handover.contract import COLUMNS, for_validation
from handover.errors import ValidationFailed
from handover.run import validate
from handover.run.quarantine import DEFAULT_MAX_SHARE, QuarantineResult, _attribute, quarantine
from handover.run.validate import ExpectationOutcome
from redaction.rows.policy import minimise
from tests.run.test_validate import outgoing_frames, source_frames
from tests.support.shopbuilder import AGENCY, Shop

CANARY = "Qxjz-canary"

# --- the outgoing suite: one defect per case, every reason code in one run ---------------------

Row = dict[str, object]


def _bad(**values: object) -> Callable[[Row], None]:
    return lambda row: row.update(values)


# invoice id -> (defect, the reason codes it must earn)
OUTGOING_DEFECTS: dict[str, tuple[Callable[[Row], None], str]] = {
    "O-postal-de": (_bad(postal_code="1067"), "invalid_postal_code"),
    "O-postal-at": (_bad(country="AT", postal_code="10100"), "invalid_postal_code"),
    "O-postal-letters": (_bad(postal_code=f"D-{CANARY}"), "invalid_postal_code"),
    "O-email": (_bad(email=f"{CANARY}.example.org"), "invalid_email"),
    "O-email-formula": (_bad(email="=1+1@example.org"), "invalid_email"),
    "O-phone": (_bad(phone="0351 1234567"), "invalid_phone"),
    "O-ctrl-name": (_bad(last_name=f"{CANARY}\nMustermann"), "control_characters"),
    "O-ctrl-first": (_bad(first_name=f"Eri\x00ka{CANARY}"), "control_characters"),
    "O-ctrl-street": (_bad(street=f"{CANARY}straße\t1"), "control_characters"),
    "O-ctrl-city": (_bad(city=f"Dres\u2028den{CANARY}"), "control_characters"),
    "O-ctrl-company": (
        _bad(debtor_kind="business", last_name=None, company_name=f"{CANARY}\x7f GmbH"),
        "control_characters",
    ),
    "O-sums": (_bad(paid_cents=1_000), "inconsistent_amounts"),
    "O-negative": (_bad(paid_cents=13_000, open_cents=-1_000), "inconsistent_amounts"),
    "O-no-street": (_bad(street=None), "missing_address"),
    "O-no-city": (_bad(city=None), "missing_address"),
    "O-no-last-name": (_bad(last_name=None), "missing_name"),
    "O-no-company": (_bad(debtor_kind="business", company_name=None), "missing_name"),
    "O-date-format": (_bad(due_date="15.03.2024"), "dates_out_of_order,invalid_date"),
    "O-no-default": (_bad(default_date=None), "invalid_date"),
    "O-date-order": (_bad(default_date="2024-03-10"), "dates_out_of_order"),
    "O-country": (_bad(country="CH", postal_code="8001"), "invalid_country"),
    "O-language": (_bad(language="deu"), "invalid_language"),
    "O-currency": (_bad(currency="eur"), "invalid_currency"),
    "O-kind": (_bad(debtor_kind="person"), "invalid_debtor_kind"),
    "O-two": (_bad(email="nope", postal_code="1"), "invalid_email,invalid_postal_code"),
    "O-ctrl-number": (_bad(invoice_number="2024\r1001"), "control_characters"),
    "O-long-name": (_bad(last_name=CANARY + "x" * 10_000), "too_long"),
    "O-long-street": (_bad(street="x" * 201), "too_long"),
    "O-long-quoted": (_bad(city="'" + "=" * 200), "too_long"),  # the quote counts
    "O-long-email": (_bad(email="a" * 243 + "@example.org"), "too_long"),  # 255 characters
    "O-long-number": (_bad(invoice_number="9" * 201), "too_long"),
}


def outgoing_rows(
    defects: dict[str, tuple[Callable[[Row], None], str]], clean: int
) -> pd.DataFrame:
    """Outgoing rows (invoice_id index, contract columns): one per defect, then clean ones."""
    template = outgoing_frames()["outgoing"].iloc[0].drop(["invoice_id", "sum_check_cents"])
    records = {}
    for n, (invoice_id, (defect, _)) in enumerate(defects.items()):
        row = template.to_dict()
        row["case_ref"] = f"{n:032x}"
        defect(row)
        records[invoice_id] = row
    for n in range(clean):
        records[f"O-ok-{n}"] = {**template.to_dict(), "case_ref": f"{n + 1000:032x}"}
    rows = pd.DataFrame.from_dict(records, orient="index")[list(COLUMNS)]
    for column in COLUMNS:
        if column.endswith("_cents"):
            rows[column] = rows[column].astype("int64")
        else:  # text as minimise leaves it: object, None where missing (not float NaN)
            rows[column] = rows[column].astype(object).where(rows[column].notna(), None)
    return rows.rename_axis("invoice_id")


@pytest.fixture(scope="module")
def outgoing_result() -> QuarantineResult:
    rows = outgoing_rows(OUTGOING_DEFECTS, clean=3)
    return quarantine({"outgoing": for_validation(rows)}, "outgoing", max_share=None)


def test_each_outgoing_reason_holds_back_its_case(outgoing_result: QuarantineResult) -> None:
    held = dict(zip(*outgoing_result.quarantined.to_dict("list").values(), strict=True))
    assert held == {invoice: codes for invoice, (_, codes) in OUTGOING_DEFECTS.items()}
    assert list(outgoing_result.quarantined.columns) == ["invoice_id", "reasons"]


def test_the_clean_cases_proceed(outgoing_result: QuarantineResult) -> None:
    kept = outgoing_result.kept["outgoing"]
    assert list(kept["invoice_id"]) == ["O-ok-0", "O-ok-1", "O-ok-2"]
    assert outgoing_result.cases == len(OUTGOING_DEFECTS) + 3
    assert outgoing_result.invoice_ids == set(OUTGOING_DEFECTS)


def test_a_phone_left_empty_is_not_quarantined() -> None:
    rows = outgoing_rows({"O-no-phone": (_bad(phone=None, email=None), "")}, clean=0)
    result = quarantine({"outgoing": for_validation(rows)}, "outgoing")
    assert result.quarantined.empty
    assert result.summary() == "outgoing: 0 of 1 cases quarantined"


def test_no_value_reaches_the_result(outgoing_result: QuarantineResult) -> None:
    texts = [
        outgoing_result.quarantined.to_json(),
        outgoing_result.summary(),
        repr(outgoing_result.report),
        json.dumps(outgoing_result.reason_counts()),
    ]
    with pytest.raises(ValidationFailed) as caught:
        outgoing_result.enforce_share()
    texts.append(str(caught.value))
    for text in texts:
        assert CANARY not in text
        assert "Mustermann" not in text and "Dresden" not in text


def test_a_10000_character_last_name_is_held_back_never_cut(tmp_path: Path) -> None:
    # The stages of a run on a real SQLite shop: extract, source suite, rules, minimise, outgoing.
    long_name = "Lang" * 2_500
    shop = Shop(tmp_path / "shop.db")
    shop.customer("C1", last_name=long_name).invoice("I1", "C1")
    shop.customer("C2").invoice("I2", "C2")
    frames = shop.frames()
    source = quarantine(frames, "source", max_share=None)
    assert source.quarantined.empty
    agency = replace(AGENCY, columns=COLUMNS)
    decision = shop.decide(agency=agency)
    rows = minimise(decision.eligible_for(agency.name), frames["consents"], agency, bytes(32))
    assert rows.loc["I1", "last_name"] == long_name  # minimisation cuts nothing
    result = quarantine({"outgoing": for_validation(rows)}, "outgoing", max_share=None)
    held = dict(zip(result.quarantined["invoice_id"], result.quarantined["reasons"], strict=True))
    assert held == {"I1": "too_long"}
    assert list(result.kept["outgoing"]["invoice_id"]) == ["I2"]
    assert "Lang" not in result.summary() + repr(result.report)


# --- the stop threshold --------------------------------------------------------------------------


def _outgoing(
    bad: int, clean: int, max_share: float | None = DEFAULT_MAX_SHARE
) -> QuarantineResult:
    defects = dict(list(OUTGOING_DEFECTS.items())[:bad])
    return quarantine(
        {"outgoing": for_validation(outgoing_rows(defects, clean))}, "outgoing", max_share=max_share
    )


def test_more_than_the_share_stops_the_run() -> None:
    with pytest.raises(ValidationFailed) as caught:
        _outgoing(bad=2, clean=18)  # 10 % > 5 %
    message = str(caught.value)
    assert "2 of 20 cases (10.0%) failed row-level checks, more than the 5.0% allowed" in message
    assert "a broken extraction must not look like a quiet day" in message
    assert "invalid_postal_code 2" in message
    assert "Invoices: O-postal-at, O-postal-de." in message  # ids, so support can look


def test_exactly_the_share_proceeds() -> None:
    result = _outgoing(bad=1, clean=19)  # 5 % is not more than 5 %
    assert result.share == 0.05
    assert len(result.kept["outgoing"]) == 19


def test_a_configured_share_and_deferred_enforcement() -> None:
    assert len(_outgoing(bad=2, clean=2, max_share=0.5).quarantined) == 2
    result = _outgoing(bad=2, clean=2, max_share=None)  # to record first, then enforce
    result.enforce_share(0.5)
    with pytest.raises(ValidationFailed, match=r"more than the 25\.0% allowed"):
        result.enforce_share(0.25)


# --- table-level failures stop the run -----------------------------------------------------------


def _with_row_defect(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[0, "postal_code"] = "1"  # a row-level failure too: it must not hide the other
    return frame


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: f.drop(columns=["city"]), "column city is missing"),
        (
            lambda f: f[["invoice_id", "invoice_number", "case_ref", *f.columns[3:]]],
            "expect_table_columns_to_match_ordered_list",
        ),
        (lambda f: f.assign(invoice_id=["inv-1", "inv-1"]), "expect_column_values_to_be_unique"),
        (
            lambda f: f.assign(case_ref=["x", "y"]),
            "expect_column_values_to_match_regex on case_ref",
        ),
        (lambda f: f.assign(paid_cents=[1.5, 0.0]), "observed dtype float64"),
        (lambda f: f.drop(columns=["invoice_id"]), "column invoice_id is missing"),
        (
            lambda f: f.assign(last_name=["=1+1", None]),
            "expect_column_values_to_not_match_regex on last_name",
        ),
    ],
    ids=[
        "missing column",
        "column order",
        "duplicate ids",
        "bad pseudonym",
        "dtype",
        "no id",
        "formula cell",
    ],
)
def test_table_level_failure_stops_the_run(change: Callable, named: str) -> None:
    frame = change(_with_row_defect(outgoing_frames()["outgoing"]))
    with pytest.raises(ValidationFailed) as caught:
        quarantine({"outgoing": frame}, "outgoing", max_share=None)
    assert named in str(caught.value)
    assert "suite 'outgoing' failed" in str(caught.value)


# --- the source suite: rows of related frames hold back the invoices they concern ----------------


def source_batch() -> dict[str, pd.DataFrame]:
    """The valid source frames of test_validation, with more invoices (inv-1 … inv-6)."""
    frames = source_frames()
    invoices = frames["invoices"]
    more = pd.concat([invoices.iloc[[0]]] * 4, ignore_index=True).assign(
        invoice_id=["inv-3", "inv-4", "inv-5", "inv-6"],
        customer_id=["cus-1", "cus-2", "cus-1", "cus-1"],
    )
    frames["invoices"] = pd.concat([invoices, more], ignore_index=True)
    return frames


def test_source_rows_quarantine_their_invoices() -> None:
    frames = source_batch()
    frames["invoices"].loc[0, "currency"] = "eur"  # inv-1
    frames["invoices"].loc[2, "amount_cents"] = -5  # inv-3
    frames["invoices"].loc[3, "customer_id"] = "cus-unknown"  # inv-4: no customer extracted
    frames["payments"].loc[1, "amount_cents"] = None  # inv-2
    frames["payments"]["amount_cents"] = frames["payments"]["amount_cents"].astype("Int64")
    frames["dunning_events"].loc[1, "kind"] = f"{CANARY}-letter"  # inv-1
    frames["customers"].loc[1, "language"] = "deutsch"  # cus-2: inv-2 and inv-4 (moved away)
    result = quarantine(frames, "source", max_share=None)
    held = dict(zip(*result.quarantined.to_dict("list").values(), strict=True))
    assert held == {
        "inv-1": "invalid_currency,invalid_dunning_event",
        "inv-2": "inconsistent_amounts,invalid_language",
        "inv-3": "inconsistent_amounts",
        "inv-4": "orphan_invoice",
    }
    kept = result.kept
    assert sorted(kept["invoices"]["invoice_id"]) == ["inv-5", "inv-6"]
    assert kept["payments"].empty and kept["dunning_events"].empty
    assert list(kept["customers"]["customer_id"]) == ["cus-1"]  # cus-2 is held back whole
    assert CANARY not in repr(result.report) + result.quarantined.to_json()


def test_a_customer_flag_or_consent_holds_back_every_invoice_of_the_customer() -> None:
    frames = source_batch()
    frames["consents"].loc[0, "purpose"] = "newsletter"  # cus-1: inv-1, inv-3, inv-5, inv-6
    frames["customer_flags"].loc[0, "flag"] = "Hardship"  # cus-2: inv-2, inv-4
    result = quarantine(frames, "source", max_share=None)
    assert result.reason_counts() == {"invalid_consent": 4, "invalid_customer_flag": 2}
    assert result.kept["invoices"].empty
    assert result.kept["consents"].empty and result.kept["customer_flags"].empty


def test_source_table_level_failure_stops_the_run() -> None:
    frames = source_batch()
    frames["invoices"].loc[1, "invoice_id"] = "inv-1"
    with pytest.raises(ValidationFailed, match="invoices: expect_column_values_to_be_unique"):
        quarantine(frames, "source")


def test_a_failing_row_without_an_id_stops_the_run() -> None:
    outcome = ExpectationOutcome(
        table="holds",
        expectation="expect_column_values_to_be_in_set",
        column="kind",
        success=False,
        unexpected_count=2,
        reason="invalid_hold",
        id_columns=("invoice_id", "customer_id"),
        unexpected_ids=((None, "cus-1"), (None, None)),
    )
    with pytest.raises(ValidationFailed, match=r"1 row\(s\) of holds .* carry no invoice_id or"):
        _attribute([outcome], "source")


def test_a_quarantine_code_needs_row_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = json.loads((validate.SUITES_DIR / "outgoing.json").read_text(encoding="utf-8"))
    del suite["meta"]["row_ids"], suite["meta"]["cases"]
    (tmp_path / "broken.json").write_text(json.dumps(suite), encoding="utf-8")
    monkeypatch.setattr(validate, "SUITES_DIR", tmp_path)
    with pytest.raises(ValidationFailed, match=r"needs id columns in the suite's meta\.row_ids"):
        validate.validate(outgoing_frames(), "broken")


def test_gx_writes_nothing_under_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    validate._build.cache_clear()
    frames = source_batch()
    frames["invoices"].loc[0, "currency"] = "eur"
    assert len(quarantine(frames, "source", max_share=None).quarantined) == 1
    rows = outgoing_rows(dict(list(OUTGOING_DEFECTS.items())[:3]), clean=1)
    assert len(quarantine({"outgoing": for_validation(rows)}, "outgoing", max_share=1).kept) == 1
    assert list(tmp_path.iterdir()) == []
    assert not (validate.SUITES_DIR.parent / "gx").exists()
