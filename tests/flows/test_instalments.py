"""An invoice in instalments, end to end with the real `handover` command: the instalment that
is due and announced leaves alone, in an `agency_case_v1_1` drop the agency's tool opens, and is
recalled by its own case_ref once the money for it arrives. The other agency's drop stays v1."""

from __future__ import annotations

import csv
import io
import json

from handover import contract, recall_contract
from tests.flows.test_exactly_once import Night, build
from tests.support.shopbuilder import Shop


def add_invoice_in_instalments(night: Night) -> None:
    """I8 of C8 (DE, nord's): 60.00 in two instalments; the first fully dunned with notice,
    the second reminded only."""
    shop = Shop(night.root / "shop.db", first_id=800).customer("C8")
    shop.invoice("I8", "C8", dunned=False, amount_cents=6000, due_date="2026-05-10")
    shop.instalment("I8", "I8-1", "2026-03-15", 3000).instalment("I8", "I8-2", "2026-05-10", 3000)
    shop.event("I8", "reminder", "2026-03-25 08:00:00", announces=False, instalment="I8-1")
    shop.event("I8", "dunning", "2026-04-10 08:00:00", fee=500, instalment="I8-1")
    shop.event("I8", "final_notice", "2026-05-01 08:00:00", fee=700, instalment="I8-1")
    shop.event("I8", "reminder", "2026-05-25 08:00:00", announces=False, instalment="I8-2")


def rows_of(night: Night, agency: str) -> tuple[tuple[str, ...], list[dict[str, str]]]:
    """The header and rows of the handover CSVs the agency's tool wrote."""
    header: tuple[str, ...] = ()
    rows: list[dict[str, str]] = []
    for path in sorted(night.out(agency).glob("*.csv")):
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
        if tuple(reader.fieldnames or ()) != recall_contract.COLUMNS:
            header = tuple(reader.fieldnames or ())
            rows += list(reader)
    return header, rows


def test_an_announced_instalment_leaves_alone_and_is_recalled_when_paid(tmp_path, sshd, prefect):
    from prefect.settings import PREFECT_API_URL

    night = build(tmp_path / "night", sshd, PREFECT_API_URL.value())
    add_invoice_in_instalments(night)
    code, out = night.run()
    assert code == 0, out[-3000:]

    versions = {
        agency: {
            json.loads(m.read_text())["schema_version"]
            for m in night.inboxes[agency].glob("*.manifest.json")
        }
        for agency in ("nord", "sued")
    }
    assert versions == {"nord": {"agency_case_v1_1"}, "sued": {"agency_case_v1"}}

    night.agency_opens()
    header, nord = rows_of(night, "nord")
    assert header == contract.COLUMNS_V1_1
    by_number = {r["invoice_number"]: r for r in nord}
    assert sorted(by_number) == ["RE-I1", "RE-I2", "RE-I3", "RE-I4", "RE-I8"]
    first = by_number["RE-I8"]
    assert (first["instalment_number"], first["due_date"], first["default_date"]) == (
        "1",
        "2026-03-15",
        "2026-04-10",
    )
    assert (first["principal_cents"], first["open_cents"], first["dunning_fees_cents"]) == (
        "3000",
        "3000",
        "700",
    )
    assert first["handover_notice_date"] == "2026-05-01"
    assert first["invoice_date"] == "2026-03-01"  # the invoice's
    assert all(by_number[n]["instalment_number"] == "" for n in ("RE-I1", "RE-I2"))
    sued_header, sued = rows_of(night, "sued")
    assert sued_header == contract.COLUMNS and len(sued) == 2

    # 30.00 on the invoice pays instalment 1 (the oldest due): the agency recalls exactly it.
    Shop(night.root / "shop.db", first_id=900).payment("I8", 3000, paid_at="2026-06-12 10:00:00")
    code, out = night.run()
    assert code == 0, out[-3000:]
    night.agency_opens()
    recalls = []
    for path in sorted(night.out("nord").glob("*.csv")):
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
        if tuple(reader.fieldnames or ()) == recall_contract.COLUMNS:
            recalls += list(reader)
    assert [(r["case_ref"], r["message_type"], r["reason_code"]) for r in recalls] == [
        (first["case_ref"], "recall", "paid_in_full")
    ]
    assert recalls[0]["effective_date"] == "2026-06-12"
    # Instalment 2 is still not announced: nothing more left for I8.
    _, nord = rows_of(night, "nord")
    assert [r["invoice_number"] for r in nord].count("RE-I8") == 1
