"""Sealing a drop: stock `age` decrypts it (agency and archive), the signed manifest pins it,
and sealing streams instead of copying the payload in memory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from handover.crypto.envelope import seal
from handover.crypto.keys import ARCHIVE_KEY, RETURNS_KEY, KeyDirectory
from handover.crypto.sshsig import MANIFEST_NAMESPACE, Signer, allowed_signers_line, verify
from handover.errors import EnvelopeError
from tests.conftest import AgeIdentity, make_age_identity, remount, require_tool

# Looks like personal data on purpose: it must never reach the disk in plain text.
CSV = (
    "case_id;debtor_name;street;open_cents;currency\n"
    "C-1;Jürgen Müller;Hauptstraße 1;12345;EUR\n"
    "C-2;Anna Österreicher;Ringweg 7;9900;EUR\n"
).encode()


@pytest.fixture
def shop(tmp_path: Path) -> KeyDirectory:
    keys = KeyDirectory(tmp_path / "keys")
    keys.init()
    return keys


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


def _seal(shop: KeyDirectory, out_dir: Path, recipients: list[str], **kwargs: object):
    csv = kwargs.pop("csv", CSV)
    arguments: dict[str, object] = {
        "recipients": recipients,
        "archive_recipient": shop.archive_recipient(),
        "signer": Signer.from_key_file(shop.signing_key()),
        "out_dir": out_dir,
        "manifest": _manifest(),
        "drop_id": "drop-1",
        **kwargs,
    }
    return seal(csv, **arguments)


def _age_decrypt(identity: Path, payload: Path) -> bytes:
    age = require_tool("age", "age")
    done = subprocess.run([age, "-d", "-i", str(identity), str(payload)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def test_stock_age_decrypts_with_the_agency_and_the_archive_identity(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    directory = tmp_path / "outbox" / "drop-1"
    assert drop.files == (
        directory / "drop-1.csv.age",
        directory / "drop-1.manifest.json",
        directory / "drop-1.manifest.json.sig",
    )
    assert drop.case_count == 2
    assert drop.payload.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert _age_decrypt(age_identity.path, drop.payload) == CSV
    assert _age_decrypt(shop.path / ARCHIVE_KEY, drop.payload) == CSV
    stranger = make_age_identity(tmp_path / "stranger.txt")
    age = require_tool("age", "age")
    refused = subprocess.run(
        [age, "-d", "-i", str(stranger.path), str(drop.payload)], capture_output=True
    )
    assert refused.returncode != 0


def test_two_agency_recipients_during_a_key_change(tmp_path: Path, shop: KeyDirectory):
    old = make_age_identity(tmp_path / "old.txt")
    new = make_age_identity(tmp_path / "new.txt")
    drop = _seal(shop, tmp_path, [old.recipient, new.recipient])
    for identity in (old, new):
        assert _age_decrypt(identity.path, drop.payload) == CSV


def test_signed_manifest_pins_payload_and_keeps_caller_fields(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    head = {"seq": 41, "hash": "ab" * 32}
    drop = _seal(shop, tmp_path, [age_identity.recipient], manifest=_manifest(audit_head=head))
    raw = drop.manifest.read_bytes()
    document = json.loads(raw)
    ciphertext = drop.payload.read_bytes()
    assert document["payload"] == {
        "file": "drop-1.csv.age",
        "sha256": hashlib.sha256(ciphertext).hexdigest(),
        "bytes": len(ciphertext),
        "format": "age-v1",
    }
    assert drop.payload_sha256 == document["payload"]["sha256"]
    assert {k: v for k, v in document.items() if k != "payload"} == _manifest(audit_head=head)
    assert raw.decode() == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    verify(raw, drop.signature.read_bytes(), shop.signing_public_key(), MANIFEST_NAMESPACE)


def test_stock_ssh_keygen_verifies_the_manifest(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(allowed_signers_line("shop", shop.signing_public_key(), MANIFEST_NAMESPACE))
    keygen = require_tool("ssh-keygen", "openssh-client")
    command = [keygen, "-Y", "verify", "-f", str(allowed), "-I", "shop"]
    command += ["-n", MANIFEST_NAMESPACE, "-s", str(drop.signature)]
    with drop.manifest.open("rb") as stdin:
        assert subprocess.run(command, stdin=stdin, capture_output=True).returncode == 0


def test_files_are_private_and_plaintext_never_on_disk(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    assert sorted(p.name for p in drop.directory.iterdir()) == [
        "drop-1.csv.age",
        "drop-1.manifest.json",
        "drop-1.manifest.json.sig",
    ]  # no temporary files left behind
    for path in drop.files:
        assert path.stat().st_mode & 0o037 == 0, oct(path.stat().st_mode)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert b"M\xc3\xbcller" not in content and b"Hauptstra" not in content


def test_a_stream_is_sealed_like_bytes(tmp_path: Path, shop: KeyDirectory, age_identity):
    import io

    drop = _seal(shop, tmp_path, [age_identity.recipient], csv=io.BytesIO(CSV))
    assert _age_decrypt(age_identity.path, drop.payload) == CSV


def test_sealing_streams_without_a_second_copy_in_memory(tmp_path: Path, shop: KeyDirectory):
    # A child process, so the peak RSS measured is the seal's alone.
    size = 256 * 1024 * 1024
    script = textwrap.dedent(
        f"""
        import os, resource, sys
        from pathlib import Path
        from pyrage import x25519
        from handover.crypto.envelope import seal
        from handover.crypto.keys import KeyDirectory
        from handover.crypto.sshsig import Signer
        keys = KeyDirectory(Path({str(shop.path)!r}))
        payload = os.urandom({size})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        drop = seal(
            payload,
            recipients=[str(x25519.Identity.generate().to_public())],
            archive_recipient=keys.archive_recipient(),
            signer=Signer.from_key_file(keys.signing_key()),
            out_dir=Path({str(tmp_path)!r}),
            manifest={{"case_count": 0}},
            drop_id="big",
        )
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024, drop.payload.stat().st_size)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    growth_mib, written = map(int, done.stdout.split())
    assert written > size
    print(f"peak RSS growth while sealing {size >> 20} MiB: {growth_mib} MiB")
    assert growth_mib < 32, f"sealing {size >> 20} MiB grew the peak RSS by {growth_mib} MiB"


def test_a_failed_seal_leaves_nothing_behind(tmp_path: Path, shop: KeyDirectory, age_identity):
    class BrokenSigner(Signer):
        def sign(self, data: bytes, namespace: str = MANIFEST_NAMESPACE) -> bytes:
            raise OSError(28, "No space left on device")

    broken = BrokenSigner(key=Signer.from_key_file(shop.signing_key()).key)
    with pytest.raises(OSError):
        _seal(shop, tmp_path / "outbox", [age_identity.recipient], signer=broken)
    assert list((tmp_path / "outbox" / "drop-1").iterdir()) == []


def test_bad_recipient_names_its_index_never_the_key(tmp_path: Path, shop, age_identity):
    other = make_age_identity(tmp_path / "other.txt")
    with pytest.raises(EnvelopeError) as raised:
        _seal(shop, tmp_path, [age_identity.recipient, other.secret])  # a secret pasted
    message = str(raised.value)
    assert "recipients[1]" in message
    assert other.secret not in message and other.secret[15:40] not in message
    assert not (tmp_path / "drop-1").exists()


def test_archive_recipient_must_be_the_shops_own(tmp_path: Path, shop, age_identity):
    with pytest.raises(EnvelopeError, match="archive recipient is also one of the agency"):
        _seal(shop, tmp_path, [age_identity.recipient], archive_recipient=age_identity.recipient)
    with pytest.raises(EnvelopeError, match="archive recipient is not an age X25519"):
        _seal(shop, tmp_path, [age_identity.recipient], archive_recipient="age1nope")


def test_a_drop_is_sealed_once(tmp_path: Path, shop: KeyDirectory, age_identity):
    drop = _seal(shop, tmp_path, [age_identity.recipient])
    before = [p.read_bytes() for p in drop.files]
    with pytest.raises(EnvelopeError, match="sealed once"):
        _seal(shop, tmp_path, [age_identity.recipient])
    assert [p.read_bytes() for p in drop.files] == before


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
    tmp_path: Path, shop, age_identity, drop_id: str, manifest: dict[str, object], expected: str
):
    with pytest.raises(EnvelopeError, match=expected):
        _seal(shop, tmp_path, [age_identity.recipient], manifest=manifest, drop_id=drop_id)
    assert sorted(tmp_path.rglob("*.age")) == [
        tmp_path / "keys" / ARCHIVE_KEY,
        tmp_path / "keys" / RETURNS_KEY,
    ]
    assert sorted(os.listdir(tmp_path)) == ["identity.txt", "keys"]


def test_a_full_outbox_says_so_and_where(tmp_path: Path, shop, age_identity, mount_tmpfs):
    outbox = mount_tmpfs(tmp_path / "outbox", size="64k")
    csv = os.urandom(1024 * 1024)  # ciphertext does not shrink: it cannot fit

    with pytest.raises(EnvelopeError) as raised:
        _seal(shop, outbox, [age_identity.recipient], csv=csv)

    message = str(raised.value)
    assert "the outbox is full" in message, message
    assert str(outbox / "drop-1" / "drop-1.csv.age") in message
    assert f"free space on {outbox} " in message and "No space left on device" in message
    assert "recipients" not in message  # not mistaken for an encryption problem
    assert list((outbox / "drop-1").iterdir()) == []  # not even a temporary file


def test_other_write_failures_name_the_path_and_the_reason(
    tmp_path: Path, shop, age_identity, mount_tmpfs
):
    outbox = mount_tmpfs(tmp_path / "outbox", size="1m")
    (outbox / "drop-1").mkdir()
    remount(outbox, "ro")

    with pytest.raises(EnvelopeError) as raised:
        _seal(shop, outbox, [age_identity.recipient])

    message = str(raised.value)
    assert f"cannot write {outbox / 'drop-1' / 'drop-1.csv.age'}" in message, message
    assert "Read-only file system" in message and "outbox is full" not in message
