"""Sealing a drop: stock `age` decrypts it, the manifest pins it, tampering is caught."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import AgeIdentity, make_age_identity, require_tool

from handover.envelope import open_drop, seal, verify_manifest
from handover.errors import EnvelopeError

# Looks like personal data on purpose: it must never reach the disk in plain text.
CSV = (
    "case_id;debtor_name;street;open_cents;currency\n"
    "C-1;Jürgen Müller;Hauptstraße 1;12345;EUR\n"
    "C-2;Anna Österreicher;Ringweg 7;9900;EUR\n"
).encode()


def _manifest(drop_id: str = "drop-1", **extra: object) -> dict[str, object]:
    return {
        "drop_id": drop_id,
        "agency": "inkasso-sued",
        "as_of": "2025-03-31",
        "created_at": "2025-04-01T06:00:00+00:00",
        "case_count": 2,
        "sums": {"EUR": 22245},
        "schema_version": "agency_case_v1",
        "policy_version": "1",
        "support_contact": "Datenschutz-Team, Tel. +49 0000 000",
        **extra,
    }


def _age_decrypt(identity: Path, payload: Path) -> bytes:
    age = require_tool("age", "age")
    done = subprocess.run([age, "-d", "-i", str(identity), str(payload)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def test_stock_age_decrypts_payload_to_exact_csv(tmp_path: Path, age_identity: AgeIdentity):
    drop = seal(
        CSV,
        recipients=[age_identity.recipient],
        out_dir=tmp_path / "outbox",
        manifest=_manifest(),
        drop_id="drop-1",
    )
    assert drop.payload == tmp_path / "outbox" / "drop-1" / "drop-1.csv.age"
    assert drop.manifest == tmp_path / "outbox" / "drop-1" / "drop-1.manifest.json"
    assert drop.case_count == 2
    assert drop.payload.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert _age_decrypt(age_identity.path, drop.payload) == CSV


def test_each_of_two_recipients_can_decrypt(tmp_path: Path):
    first = make_age_identity(tmp_path / "first.txt")
    second = make_age_identity(tmp_path / "second.txt")
    drop = seal(
        CSV,
        recipients=[first.recipient, second.recipient],
        out_dir=tmp_path,
        manifest=_manifest(),
        drop_id="drop-1",
    )
    for identity in (first, second):
        assert _age_decrypt(identity.path, drop.payload) == CSV
        assert open_drop(drop.payload, identity.secret) == CSV
        assert open_drop(drop.payload, identity.path.read_text()) == CSV  # whole identity file


def test_manifest_pins_payload_and_keeps_caller_fields(tmp_path: Path, age_identity):
    drop = seal(
        CSV,
        recipients=[age_identity.recipient],
        out_dir=tmp_path,
        manifest=_manifest(),
        drop_id="drop-1",
    )
    raw = drop.manifest.read_text(encoding="utf-8")
    document = json.loads(raw)
    ciphertext = drop.payload.read_bytes()
    assert document["payload"] == {
        "file": "drop-1.csv.age",
        "sha256": hashlib.sha256(ciphertext).hexdigest(),
        "bytes": len(ciphertext),
        "format": "age-v1",
    }
    assert drop.payload_sha256 == document["payload"]["sha256"]
    assert {k: v for k, v in document.items() if k != "payload"} == _manifest()
    assert raw == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert verify_manifest(drop.manifest) == document


def test_files_are_private_and_plaintext_never_on_disk(tmp_path: Path, age_identity):
    drop = seal(
        CSV,
        recipients=[age_identity.recipient],
        out_dir=tmp_path,
        manifest=_manifest(),
        drop_id="drop-1",
    )
    assert sorted(p.name for p in drop.directory.iterdir()) == [
        "drop-1.csv.age",
        "drop-1.manifest.json",
    ]  # no temporary files left behind
    for path in (drop.payload, drop.manifest):
        assert path.stat().st_mode & 0o037 == 0, oct(path.stat().st_mode)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert b"M\xc3\xbcller" not in content and b"Hauptstra" not in content


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_tampered_payload_fails_verification(tmp_path: Path, age_identity, damage: str):
    drop = seal(
        CSV,
        recipients=[age_identity.recipient],
        out_dir=tmp_path,
        manifest=_manifest(),
        drop_id="drop-1",
    )
    data = bytearray(drop.payload.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        del data[-1]
    drop.payload.write_bytes(bytes(data))
    with pytest.raises(EnvelopeError, match="altered or truncated"):
        verify_manifest(drop.manifest)
    with pytest.raises(EnvelopeError):
        open_drop(drop.payload, age_identity.secret)


def test_bad_recipient_names_its_index_never_the_key(tmp_path: Path, age_identity):
    other = make_age_identity(tmp_path / "other.txt")
    with pytest.raises(EnvelopeError) as raised:
        seal(
            CSV,
            recipients=[age_identity.recipient, other.secret],  # a secret pasted by mistake
            out_dir=tmp_path,
            manifest=_manifest(),
            drop_id="drop-1",
        )
    message = str(raised.value)
    assert "recipients[1]" in message
    assert other.secret not in message and other.secret[15:40] not in message
    assert not (tmp_path / "drop-1").exists()


def test_wrong_identity_cannot_open(tmp_path: Path, age_identity):
    drop = seal(
        CSV,
        recipients=[age_identity.recipient],
        out_dir=tmp_path,
        manifest=_manifest(),
        drop_id="drop-1",
    )
    stranger = make_age_identity(tmp_path / "stranger.txt")
    with pytest.raises(EnvelopeError, match="recipients"):
        open_drop(drop.payload, stranger.secret)
    with pytest.raises(EnvelopeError, match="AGE-SECRET-KEY"):
        open_drop(drop.payload, "not a key")


def test_a_drop_is_sealed_once(tmp_path: Path, age_identity):
    kwargs = {
        "recipients": [age_identity.recipient],
        "out_dir": tmp_path,
        "manifest": _manifest(),
        "drop_id": "drop-1",
    }
    drop = seal(CSV, **kwargs)
    before = drop.payload.read_bytes()
    with pytest.raises(EnvelopeError, match="sealed once"):
        seal(CSV, **kwargs)
    assert drop.payload.read_bytes() == before


@pytest.mark.parametrize(
    ("drop_id", "manifest", "expected"),
    [
        ("../escape", _manifest("../escape"), "file name"),
        (".hidden", _manifest(".hidden"), "file name"),
        ("drop-1", _manifest("drop-2"), "drop_id"),
        ("drop-1", {**_manifest(), "case_count": "2"}, "case_count"),
        ("drop-1", {**_manifest(), "payload": {}}, "payload"),
        ("drop-1", {**_manifest(), "as_of": object()}, "'as_of'"),
    ],
)
def test_unusable_input_is_refused_with_a_reason(
    tmp_path: Path, age_identity, drop_id: str, manifest: dict[str, object], expected: str
):
    with pytest.raises(EnvelopeError, match=expected):
        seal(
            CSV,
            recipients=[age_identity.recipient],
            out_dir=tmp_path,
            manifest=manifest,
            drop_id=drop_id,
        )
    assert list(tmp_path.rglob("*.age")) == []
