"""bench/pandas_suite.py: validation's baseline does the checks GX does, and finds the same."""

from __future__ import annotations

import pandas as pd
import pytest

from bench import pandas_suite
from handover.contract import for_validation
from handover.errors import ValidationFailed
from handover.run.quarantine import quarantine
from tests.run.test_quarantine import OUTGOING_DEFECTS, outgoing_rows, source_batch


def _same(frames: dict[str, pd.DataFrame], suite: str) -> pandas_suite.Quarantined:
    gx = quarantine(frames, suite, max_share=None)
    ours = pandas_suite.quarantine(frames, suite)
    assert pandas_suite.agreement(ours, gx.report) == []
    assert ours.held.to_dict("list") == gx.quarantined.to_dict("list")
    for name, frame in gx.kept.items():
        pd.testing.assert_frame_equal(ours.kept[name], frame)
    return ours


def test_every_outgoing_defect_is_held_back_for_the_same_reasons_as_gx() -> None:
    rows = outgoing_rows(OUTGOING_DEFECTS, clean=3)
    ours = _same({"outgoing": for_validation(rows)}, "outgoing")
    held = dict(zip(ours.held["invoice_id"], ours.held["reasons"], strict=True))
    assert held == {invoice: codes for invoice, (_, codes) in OUTGOING_DEFECTS.items()}


def test_source_rows_hold_back_their_invoices_and_customers_as_in_gx() -> None:
    frames = source_batch()
    frames["invoices"].loc[0, "currency"] = "eur"
    frames["invoices"].loc[2, "amount_cents"] = -5
    frames["invoices"].loc[3, "customer_id"] = "cus-unknown"  # orphan: the suite's reference
    frames["dunning_events"].loc[1, "kind"] = "letter"
    frames["customers"].loc[1, "language"] = "deutsch"
    frames["consents"].loc[0, "purpose"] = "newsletter"
    ours = _same(frames, "source")
    assert set(ours.held["invoice_id"]) == {f"inv-{n}" for n in range(1, 7)}


def test_clean_frames_pass_in_both() -> None:
    assert _same(source_batch(), "source").held.empty


def test_a_table_level_failure_stops_the_baseline_too() -> None:
    frames = source_batch()
    frames["invoices"].loc[1, "invoice_id"] = "inv-1"  # duplicate ids
    with pytest.raises(ValidationFailed):
        pandas_suite.quarantine(frames, "source")


def test_an_expectation_it_does_not_know_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(pandas_suite._CHECKS, "expect_column_values_to_match_regex")
    with pytest.raises(NotImplementedError, match="expect_column_values_to_match_regex"):
        pandas_suite.quarantine(source_batch(), "source")
