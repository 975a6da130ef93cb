"""The strict age path against the public age test vectors (C2SP CCTV) and the stock `age` CLI.

The vectors in tests/testdata/age-cctv/ are copied unchanged (license in their README.md).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest
from pyrage import x25519

from handover.crypto.agecheck import MAX_SCRYPT_WORK_FACTOR, decrypt, read_header
from handover.errors import AgeFileError
from tests.conftest import AgeIdentity, make_age_identity, require_tool
from tests.support.paths import AGE_VECTORS

VECTORS = AGE_VECTORS
NAMES = sorted(p.name for p in VECTORS.iterdir() if p.name not in {"README.md", "LICENSE"})

# The vectors' `expect` values and the failure stage our error reports for each.
STAGES = {
    "header failure": "header",
    "HMAC failure": "hmac",
    "no match": "no match",
    "payload failure": "payload",
}

# Malformed post-quantum headers whose defect only shows when the ML-KEM-768 + X25519 share is
# decapsulated (a shared secret of all zeros), which needs the hybrid identity we do not support.
NEEDS_PQ_DECAPSULATION = {"hybrid_identity", "hybrid_low_order"}


@dataclass(frozen=True)
class Vector:
    """One CCTV vector: its `key: value` lines, then the age file."""

    name: str
    expect: str
    payload_sha256: str | None
    identities: tuple[str, ...]
    passphrases: tuple[str, ...]
    armored: bool
    data: bytes


def load_vector(name: str) -> Vector:
    raw = (VECTORS / name).read_bytes()
    head, data = raw.split(b"\n\n", 1)
    meta: dict[str, list[str]] = {}
    for line in head.decode("utf-8").splitlines():
        key, value = line.split(": ", 1)
        meta.setdefault(key, []).append(value)
    if meta.get("compressed") == ["zlib"]:
        data = zlib.decompress(data)
    return Vector(
        name=name,
        expect=meta["expect"][0],
        payload_sha256=meta.get("payload", [None])[0],
        identities=tuple(meta.get("identity", [])),
        passphrases=tuple(meta.get("passphrase", [])),
        armored=meta.get("armored") == ["yes"],
        data=data,
    )


def unsupported_feature(vector: Vector) -> str | None:
    """Why the agency tool cannot fully run `vector`, or None when it can."""
    if vector.armored:
        return "armor: drops are binary age files; armored input is refused as unsupported"
    if vector.passphrases:
        return "passphrase (scrypt) decryption: drops are encrypted to X25519 recipients only"
    if any(i.startswith("AGE-SECRET-KEY-PQ-") for i in vector.identities):
        return "post-quantum (mlkem768x25519) identities: not supported by the agency tool"
    return None


def test_all_vectors_are_present():
    # 144 files in C2SP/CCTV age/testdata at the copied commit; a lost file would shrink the run.
    assert len(NAMES) == 143
    assert sum(load_vector(n).expect == "success" for n in NAMES) == 26


@pytest.mark.parametrize("name", NAMES)
def test_cctv_vector(name: str):
    vector = load_vector(name)
    feature = unsupported_feature(vector)
    if feature:
        if vector.armored or vector.expect != "header failure":
            pytest.skip(f"{name}: {feature}")
        if name in NEEDS_PQ_DECAPSULATION:
            pytest.skip(f"{name}: defect found only by ML-KEM decapsulation; {feature}")
        # A malformed header is refused before any key is tried, whatever the recipient type.
        with pytest.raises(AgeFileError) as raised:
            read_header(io.BytesIO(vector.data))
        assert raised.value.failure == "header", str(raised.value)
        return

    # Vectors without an identity fail in the header; a stranger's key proves none is needed.
    identities = [x25519.Identity.from_str(i) for i in vector.identities] or [
        x25519.Identity.generate()
    ]
    sink = io.BytesIO()
    if vector.expect == "success":
        decrypt(io.BytesIO(vector.data), sink, identities)
        assert hashlib.sha256(sink.getvalue()).hexdigest() == vector.payload_sha256
    else:
        with pytest.raises(AgeFileError) as raised:
            decrypt(io.BytesIO(vector.data), sink, identities)
        assert raised.value.failure == STAGES[vector.expect], str(raised.value)
        assert str(raised.value)


@pytest.mark.parametrize("name", ["stanza_missing_body", "stanza_missing_final_line"])
def test_pyrage_alone_accepts_what_the_check_refuses(name: str):
    vector = load_vector(name)
    identities = [x25519.Identity.from_str(i) for i in vector.identities]
    pyrage.decrypt(vector.data, identities)  # the leniency the strict check exists for
    with pytest.raises(AgeFileError, match="body line") as raised:
        decrypt(io.BytesIO(vector.data), io.BytesIO(), identities)
    assert raised.value.failure == "header"


def test_scrypt_work_factor_above_the_ceiling_is_a_header_failure():
    vector = load_vector("scrypt_work_factor_23")
    with pytest.raises(AgeFileError, match=f"from 1 to {MAX_SCRYPT_WORK_FACTOR}"):
        read_header(io.BytesIO(vector.data))


@pytest.mark.parametrize(
    ("name", "match"),
    [("armor_x25519", "armored"), ("scrypt", "passphrase-encrypted")],
)
def test_unsupported_features_are_refused_by_name(name: str, match: str):
    vector = load_vector(name)
    with pytest.raises(AgeFileError, match=match) as raised:
        decrypt(io.BytesIO(vector.data), io.BytesIO(), [x25519.Identity.generate()])
    assert raised.value.failure == "unsupported"


def test_header_reports_stanzas_and_size():
    vector = load_vector("x25519_grease")
    header = read_header(io.BytesIO(vector.data))
    assert [s.type for s in header.stanzas] == ["grease", "X25519", "grease"]
    assert len(header.mac) == 32
    assert vector.data[: header.size].endswith(b"\n") and vector.data[header.size - 48 :][:3] == (
        b"---"
    )


def _stock_encrypt(recipients: list[str], plaintext: bytes) -> bytes:
    age = require_tool("age", "age")
    args = [age, "-e"]
    for recipient in recipients:
        args += ["-r", recipient]
    done = subprocess.run(args, input=plaintext, capture_output=True, check=True)
    return done.stdout


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 3 * 64 * 1024 + 17])
def test_we_decrypt_stock_age_output(tmp_path: Path, age_identity: AgeIdentity, size: int):
    other = make_age_identity(tmp_path / "other.txt")
    plaintext = os.urandom(size)
    ciphertext = _stock_encrypt([other.recipient, age_identity.recipient], plaintext)
    sink = io.BytesIO()
    header = decrypt(io.BytesIO(ciphertext), sink, [x25519.Identity.from_str(age_identity.secret)])
    assert sink.getvalue() == plaintext
    assert [s.type for s in header.stanzas] == ["X25519", "X25519"]


def test_stock_age_output_with_a_flipped_byte_is_refused(age_identity: AgeIdentity):
    ciphertext = bytearray(_stock_encrypt([age_identity.recipient], os.urandom(1000)))
    ciphertext[-20] ^= 0x01
    with pytest.raises(AgeFileError) as raised:
        decrypt(
            io.BytesIO(bytes(ciphertext)),
            io.BytesIO(),
            [x25519.Identity.from_str(age_identity.secret)],
        )
    assert raised.value.failure == "payload"
