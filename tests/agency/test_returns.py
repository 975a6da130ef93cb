"""The agency's tool for return files (`handover agency return`), run as the console script: a
file stock `age` opens and `ssh-keygen -Y verify` accepts, every row checked before anything is
written, and nothing ever replaced."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from handover.crypto.envelope import seal_signed
from handover.crypto.keys import KeyDirectory
from handover.crypto.sshsig import Signer, allowed_signers_line
from handover.errors import EnvelopeError
from handover.returns import contract
from tests.conftest import require_tool
from tests.support.cli import handover
from tests.support.returns import Agency, csv_text, event

REF = "0123456789abcdef0123456789abcdef"
ROWS = [
    event("NORD-1", REF, "payment", "2026-06-20", 2500),
    event("NORD-2", REF, "complaint", "2026-06-21"),
    event("NORD-3", REF, "closed_uncollectable", "2026-06-22"),
]


@pytest.fixture
def agency(tmp_path: Path) -> Agency:
    return Agency.make("inkasso-nord", tmp_path / "agency")


def build(agency: Agency, shop: KeyDirectory, tmp_path: Path, csv: bytes, out: Path):
    source = tmp_path / "events.csv"
    source.write_bytes(csv)
    out.mkdir(exist_ok=True)
    return handover(
        "agency",
        "return",
        "--csv",
        source,
        "--agency",
        agency.name,
        "--shop-recipient",
        shop.returns_recipient(),
        "--signing-key",
        agency.key,
        "--out",
        out,
    )


def test_a_return_file_stock_tools_open_and_verify(tmp_path, agency, shop):
    out = tmp_path / "returns"
    done = build(agency, shop, tmp_path, csv_text(*ROWS), out)
    assert done.returncode == 0, done.stderr
    assert "3 events (1 payment, 1 closed_uncollectable, 1 complaint)" in done.stdout
    (signature,) = out.glob("*" + contract.SIGNATURE_SUFFIX)
    return_id = signature.name[: -len(contract.SIGNATURE_SUFFIX)]
    assert return_id.startswith("20") and "-inkasso-nord-return-" in return_id
    payload, manifest, _ = (out / n for n in contract.file_names(return_id))
    assert sorted(p.name for p in out.iterdir()) == sorted(contract.file_names(return_id))

    age = require_tool("age", "age")
    plain = subprocess.run(
        [age, "-d", "-i", str(shop.returns_identity()), str(payload)],
        check=True,
        capture_output=True,
    ).stdout
    assert plain == csv_text(*ROWS)
    # Encrypted to the returns recipient only: the archive key does not open it.
    assert (
        subprocess.run(
            [age, "-d", "-i", str(shop.archive_identity()), str(payload)], capture_output=True
        ).returncode
        != 0
    )

    allowed = tmp_path / "allowed_signers"
    allowed.write_text(allowed_signers_line(agency.name, agency.public_key, contract.NAMESPACE))
    keygen = require_tool("ssh-keygen", "openssh-client")
    signed = out / contract.signature_name(return_id)
    command = [keygen, "-Y", "verify", "-f", allowed, "-I", agency.name, "-n", "handover-return"]
    verified = subprocess.run(
        [*command, "-s", signed],
        input=manifest.read_bytes(),
        capture_output=True,
    )
    assert verified.returncode == 0, verified.stderr
    stated = contract.parse_manifest(manifest.read_bytes(), return_id, "x")
    assert (stated.agency, stated.event_count) == (agency.name, 3)
    document = json.loads(manifest.read_text())
    assert set(document) == {
        "return_id",
        "agency",
        "schema",
        "event_count",
        "created_at",
        "generator",
        "payload",
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([ROWS[0], f"NORD-2,{REF},complaint,2026-06-21,100,EUR"], "row 2, column amount_cents"),
        ([ROWS[0], f"Müller,{REF},complaint,2026-06-21,,"], "row 2, column event_id breaks"),
        ([ROWS[0], event("NORD-2", REF, "returned", "2999-01-01")], "row 2, column event_date is"),
        ([ROWS[0], ROWS[0]], "rows 1 and 2 have the same event_id"),
    ],
)
def test_a_bad_row_writes_nothing_and_names_row_and_column(tmp_path, agency, shop, rows, message):
    out = tmp_path / "returns"
    done = build(agency, shop, tmp_path, csv_text(*rows), out)
    assert done.returncode == 1
    assert done.stderr.startswith(f"handover: error: {tmp_path / 'events.csv'}: ")
    assert message in done.stderr
    assert "Müller" not in done.stderr
    assert list(out.iterdir()) == []


def test_a_secret_given_as_recipient_is_refused_without_echo(tmp_path, agency, shop):
    secret = next(
        line
        for line in shop.returns_identity().read_text().splitlines()
        if line.startswith("AGE-SECRET-KEY-")
    )
    source = tmp_path / "events.csv"
    source.write_bytes(csv_text(*ROWS))
    done = handover(
        "agency", "return", "--csv", source, "--agency", agency.name, "--shop-recipient", secret,
        "--signing-key", agency.key, "--out", tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "--shop-recipient number 1 is not an age X25519 recipient" in done.stderr
    assert secret[20:40] not in done.stderr


def test_nothing_is_ever_replaced(tmp_path, agency, shop):
    signer = Signer.from_key_file(agency.key)
    kwargs = {
        "recipients": [shop.returns_recipient()],
        "signer": signer,
        "namespace": contract.NAMESPACE,
        "out_dir": tmp_path,
        "name": "R-1",
        "manifest": {"return_id": "R-1"},
    }
    first = seal_signed(b"one", **kwargs)
    before = [p.read_bytes() for p in first.files]
    with pytest.raises(EnvelopeError, match="already exists: it is never replaced"):
        seal_signed(b"two", **kwargs)
    assert [p.read_bytes() for p in first.files] == before
