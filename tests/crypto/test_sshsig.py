"""SSHSIG signatures: stock `ssh-keygen -Y` and our code accept each other's, nothing else."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from handover.crypto.sshsig import (
    ARMOR_COLUMNS,
    MANIFEST_NAMESPACE,
    Signer,
    allowed_signers_line,
    verifier,
    verify,
)
from handover.errors import KeyFileError, SignatureError
from tests.conftest import require_tool, ssh_keygen

DATA = b'{\n  "case_count": 2,\n  "drop_id": "2026-11-27-inkasso-nord-1a2b3c4d"\n}\n'


@pytest.fixture
def key(tmp_path: Path) -> Path:
    """An Ed25519 key pair made by stock ssh-keygen."""
    return ssh_keygen(tmp_path / "shop_ed25519")


def _keygen_verify(tmp_path: Path, signer: Signer, data: bytes, signature: bytes) -> int:
    keygen = require_tool("ssh-keygen", "openssh-client")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(
        allowed_signers_line("demo-shop", signer.public_key_line, MANIFEST_NAMESPACE)
    )
    (tmp_path / "x").write_bytes(data)
    (tmp_path / "x.sig").write_bytes(signature)
    with (tmp_path / "x").open("rb") as stdin:
        command = [keygen, "-Y", "verify", "-f", str(allowed), "-I", "demo-shop"]
        done = subprocess.run(
            [*command, "-n", MANIFEST_NAMESPACE, "-s", str(tmp_path / "x.sig")],
            stdin=stdin,
            capture_output=True,
            text=True,
        )
    return done.returncode


def _keygen_sign(key: Path, data: bytes, namespace: str, *extra: str) -> bytes:
    keygen = require_tool("ssh-keygen", "openssh-client")
    message = key.parent / f"message-{os.urandom(4).hex()}"
    message.write_bytes(data)
    subprocess.run(
        [keygen, "-Y", "sign", "-f", str(key), "-n", namespace, *extra, str(message)],
        check=True,
        capture_output=True,
    )
    return message.with_name(message.name + ".sig").read_bytes()


def test_stock_ssh_keygen_accepts_ours_and_rejects_one_changed_byte(tmp_path: Path, key: Path):
    signer = Signer.from_key_file(key)
    signature = signer.sign(DATA, MANIFEST_NAMESPACE)
    assert _keygen_verify(tmp_path, signer, DATA, signature) == 0
    changed = bytearray(DATA)
    changed[20] ^= 0x01
    assert _keygen_verify(tmp_path, signer, bytes(changed), signature) != 0


def test_ours_is_byte_identical_to_ssh_keygen_sign(key: Path):
    # Ed25519 is deterministic, so the same key, data and namespace give the same armor.
    assert Signer.from_key_file(key).sign(DATA, MANIFEST_NAMESPACE) == _keygen_sign(
        key, DATA, MANIFEST_NAMESPACE
    )


def test_armor_is_wrapped_like_ssh_keygen(key: Path):
    lines = Signer.from_key_file(key).sign(DATA).decode("ascii").splitlines()
    assert lines[0] == "-----BEGIN SSH SIGNATURE-----"
    assert lines[-1] == "-----END SSH SIGNATURE-----"
    assert {len(line) for line in lines[1:-2]} == {ARMOR_COLUMNS}
    assert len(lines[-2]) <= ARMOR_COLUMNS


@pytest.mark.parametrize("hash_option", [[], ["-O", "hashalg=sha256"]])
def test_we_verify_ssh_keygen_signatures(key: Path, hash_option: list[str]):
    signature = _keygen_sign(key, DATA, MANIFEST_NAMESPACE, *hash_option)
    public = key.with_suffix(".pub").read_text()
    assert verify(DATA, signature, public, MANIFEST_NAMESPACE) is None
    with pytest.raises(SignatureError, match="altered"):
        verify(DATA + b" ", signature, public, MANIFEST_NAMESPACE)


def test_foreign_key_is_refused_naming_both_fingerprints(tmp_path: Path, key: Path):
    stranger = ssh_keygen(tmp_path / "stranger_ed25519")
    signature = _keygen_sign(stranger, DATA, MANIFEST_NAMESPACE)
    shop = Signer.from_key_file(key)
    with pytest.raises(SignatureError, match="signed by another key") as raised:
        verify(DATA, signature, shop.public_key_line, MANIFEST_NAMESPACE)
    assert shop.fingerprint in str(raised.value)
    assert Signer.from_key_file(stranger).fingerprint in str(raised.value)


def test_namespace_binds_the_signature(key: Path):
    signer = Signer.from_key_file(key)
    signature = signer.sign(DATA, "handover-audit-checkpoint")
    with pytest.raises(SignatureError, match="namespace 'handover-audit-checkpoint'"):
        verify(DATA, signature, signer.public_key_line, MANIFEST_NAMESPACE)


def test_callables_for_the_audit_log(key: Path):
    signer = Signer.from_key_file(key)
    sign = signer.for_namespace("handover-audit-checkpoint")
    check = verifier(signer.public_key_line, "handover-audit-checkpoint")
    signature = sign(b"checkpoint 7")
    assert check(b"checkpoint 7", signature) is None
    with pytest.raises(SignatureError):
        check(b"checkpoint 8", signature)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda s: s.replace(b"BEGIN SSH SIGNATURE", b"BEGIN PGP SIGNATURE"), "not armored"),
        (lambda s: s[:62] + b"\n" + s[-28:], "truncated"),
        (lambda s: s.replace(s.splitlines()[1][:8], b"!!!!!!!!"), "base64"),
        (lambda s: s.replace(b"U1NIU0lH", b"U1NIU0lI", 1), "magic"),
        (lambda s: b"", "not armored"),
    ],
)
def test_malformed_signatures_are_refused(key: Path, damage, match: str):
    signer = Signer.from_key_file(key)
    with pytest.raises(SignatureError, match=match):
        verify(DATA, damage(signer.sign(DATA)), signer.public_key_line, MANIFEST_NAMESPACE)


def test_group_readable_or_protected_keys_are_refused(tmp_path: Path, key: Path):
    os.chmod(key, 0o640)
    with pytest.raises(KeyFileError, match="readable by group or others"):
        Signer.from_key_file(key)
    keygen = require_tool("ssh-keygen", "openssh-client")
    protected = tmp_path / "protected_ed25519"
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "secret-pass", "-f", str(protected)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(KeyFileError, match="passphrase-protected"):
        Signer.from_key_file(protected)
    rsa = ssh_keygen(tmp_path / "rsa_key", "rsa")
    with pytest.raises(KeyFileError, match="Ed25519"):
        Signer.from_key_file(rsa)


def test_allowed_signers_line_refuses_a_principal_with_spaces(key: Path):
    public = Signer.from_key_file(key).public_key_line
    assert allowed_signers_line("demo-shop", public, MANIFEST_NAMESPACE).startswith(
        'demo-shop namespaces="handover-manifest" ssh-ed25519 AAAA'
    )
    with pytest.raises(SignatureError, match="one word"):
        allowed_signers_line("Demo Shop", public, MANIFEST_NAMESPACE)
    assert repr(Signer.from_key_file(key)) == "Signer(comment='handover-test')"  # no key inside
