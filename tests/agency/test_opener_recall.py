"""The agency's tool and recall/update drops: the signed manifest names the contract, and rows
are checked against `agency_recall_v1` (and nothing else) before the CSV gets its name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from handover import recall_contract
from handover.agency.opener import open_drops
from handover.crypto.envelope import Drop, seal
from handover.crypto.keys import KeyDirectory
from handover.crypto.sshsig import Signer
from tests.conftest import AgeIdentity

AGENCY = "inkasso-nord"
DROP = "2026-11-28-inkasso-nord-0a1b2c3d"
EMPTY = dict.fromkeys(recall_contract.COLUMNS, "")
RECALL = {
    **EMPTY,
    "case_ref": "0" * 32,
    "invoice_number": "2024-1001",
    "message_type": "recall",
    "reason_code": "paid_in_full",
    "effective_date": "2026-11-27",
}
MOVED = {
    **EMPTY,
    "case_ref": "1" * 32,
    "invoice_number": "2024-1002",
    "message_type": "update",
    "reason_code": "address_changed",
    "effective_date": "2026-11-28",
    "fields": "street;postal_code;city;country",
    "street": "Neue Straße 5",
    "postal_code": "80331",
    "city": "München",
    "country": "DE",
}
ERASE = {
    **EMPTY,
    "case_ref": "1" * 32,
    "invoice_number": "2024-1002",
    "message_type": "erase_channel",
    "reason_code": "consent_withdrawn",
    "effective_date": "2026-11-26",
    "channel": "email",
}


def seal_recall(
    shop: KeyDirectory,
    out_dir: Path,
    recipient: str,
    rows: list[dict[str, str]],
    **manifest: object,
) -> Drop:
    csv = recall_contract.to_csv_bytes(pd.DataFrame(rows, columns=list(recall_contract.COLUMNS)))
    return seal(
        csv,
        recipients=[recipient],
        archive_recipient=shop.archive_recipient(),
        signer=Signer.from_key_file(shop.signing_key()),
        out_dir=out_dir,
        manifest={
            "drop_id": DROP,
            "agency": AGENCY,
            "case_count": len({r["case_ref"] for r in rows}),
            "message_count": len(rows),
            "schema_version": recall_contract.SCHEMA_VERSION,
            **manifest,
        },
        drop_id=DROP,
    )


def open_it(shop: KeyDirectory, drop: Drop, tmp_path: Path, identity: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    for file in drop.files:
        (inbox / file.name).write_bytes(file.read_bytes())
    (outcome,) = open_drops(
        str(inbox),
        identity=identity,
        shop_key=shop.path / "signing_ed25519.pub",
        out_dir=tmp_path / "opened",
        agency=AGENCY,
    )
    return outcome, inbox


def test_a_recall_drop_opens_by_the_contract_its_manifest_names(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    rows = [RECALL, MOVED, ERASE]
    drop = seal_recall(shop, tmp_path / "outbox", age_identity.recipient, rows)
    outcome, inbox = open_it(shop, drop, tmp_path, age_identity.path)
    assert outcome.ok, outcome.message
    assert outcome.case_count == 3 and "3 messages into" in outcome.message
    assert recall_contract.read_csv_rows(outcome.output.read_bytes()) == rows
    assert (inbox / "processed" / f"{DROP}.received").is_file()


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ({**RECALL, "street": "Neue Straße 5"}, "column street breaks the schema rule 'fields'"),
        ({**RECALL, "reason_code": "address_changed"}, "column reason_code breaks the schema rule"),
        ({**MOVED, "postal_code": "1010"}, "column postal_code breaks the schema rule 'pattern'"),
        ({**MOVED, "street": "=HYPERLINK()"}, "starts like a spreadsheet formula"),
        ({**MOVED, "city": "M" * 201}, "longer than 200 characters"),
        ({**ERASE, "channel": ""}, "column channel breaks the schema rule 'enum'"),
        ({**RECALL, "invoice_number": ""}, "column invoice_number breaks the schema rule"),
    ],
)
def test_a_row_that_breaks_agency_recall_v1_is_refused_and_nothing_written(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, row, why
):
    drop = seal_recall(shop, tmp_path / "outbox", age_identity.recipient, [ERASE, row])
    outcome, inbox = open_it(shop, drop, tmp_path, age_identity.path)
    assert not outcome.ok
    assert f"drop {DROP}: row 2, " in outcome.message and why in outcome.message
    assert "agency_recall_v1" in outcome.message
    assert "Neue" not in outcome.message and "HYPERLINK" not in outcome.message  # no values
    assert not list((tmp_path / "opened").glob("*.csv"))
    assert (inbox / drop.payload.name).is_file()  # the drop stays in the inbox


@pytest.mark.parametrize(
    ("manifest", "why"),
    [
        ({"schema_version": "agency_recall_v9"}, "names the contract 'agency_recall_v9'"),
        ({"schema_version": None}, "names the contract None"),
        ({"message_count": "3"}, "message_count is not an integer"),
        (
            {"message_count": 2},
            "the payload has 3 rows but the signed manifest says message_count 2",
        ),
        # A recall drop that calls itself a handover drop: its header is not agency_case_v1's.
        ({"schema_version": "agency_case_v1"}, "the CSV header is not the agency_case_v1 header"),
    ],
)
def test_the_contract_comes_from_the_signed_manifest_and_must_fit(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, manifest, why
):
    drop = seal_recall(
        shop, tmp_path / "outbox", age_identity.recipient, [RECALL, MOVED, ERASE], **manifest
    )
    outcome, _ = open_it(shop, drop, tmp_path, age_identity.path)
    assert not outcome.ok and why in outcome.message, outcome.message
    assert not list((tmp_path / "opened").glob("*.csv"))
