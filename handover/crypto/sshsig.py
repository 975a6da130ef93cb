"""Ed25519 signatures in OpenSSH's SSHSIG format, so stock `ssh-keygen -Y verify` checks them.

The format is OpenSSH's PROTOCOL.sshsig: the signature covers the magic "SSHSIG", a namespace
(which keeps a manifest signature from passing as an audit checkpoint's), and the data's SHA-512.
An agency verifies a manifest with

    ssh-keygen -Y verify -f allowed_signers -I <shop> -n handover-manifest -s x.sig < x

where allowed_signers holds `allowed_signers_line(...)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from handover.crypto.keys import check_private_file, openssh_fingerprint
from handover.errors import KeyFileError, SignatureError

MANIFEST_NAMESPACE = "handover-manifest"
# Audit checkpoints are signed with the same key in their own namespace, so a checkpoint
# signature can never pass for a manifest signature or the other way round.
AUDIT_NAMESPACE = "handover-audit"
MAGIC = b"SSHSIG"
VERSION = 1
KEY_TYPE = "ssh-ed25519"
HASH_ALGORITHM = "sha512"  # what ssh-keygen -Y sign uses; sha256 is accepted when verifying
HASHES = {"sha512": hashlib.sha512, "sha256": hashlib.sha256}
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
ARMOR_COLUMNS = 70  # as ssh-keygen wraps it
MAX_SIGNATURE_BYTES = 16 * 1024  # an Ed25519 SSHSIG is ~300 bytes armored


@dataclass(frozen=True)
class Signer:
    """An Ed25519 key that signs in SSHSIG format."""

    key: Ed25519PrivateKey = field(repr=False)
    comment: str = ""

    @classmethod
    def from_key_file(cls, path: Path) -> Signer:
        """Load an unencrypted OpenSSH Ed25519 private key that only its owner can read."""
        file = check_private_file(Path(path))
        try:
            key = serialization.load_ssh_private_key(file.read_bytes(), password=None)
        except TypeError:
            raise KeyFileError(
                f"key file {file} is passphrase-protected; unattended signing needs an "
                "unencrypted key (protect it by file permissions instead)"
            ) from None
        except (ValueError, binascii.Error):
            raise KeyFileError(
                f"key file {file} is not an OpenSSH private key; create the keys with "
                "`handover keys init`"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"key file {file} must hold an Ed25519 key (ssh-keygen -t ed25519)")
        public = file.with_name(file.name + ".pub")
        comment = ""
        if public.exists():
            parts = public.read_text(encoding="ascii").split(maxsplit=2)
            comment = parts[2].strip() if len(parts) > 2 else ""
        return cls(key=key, comment=comment)

    @property
    def public_key_line(self) -> str:
        """The OpenSSH public key line (`ssh-ed25519 AAAA… comment`)."""
        line = _public_blob_line(self.key.public_key())
        return f"{line} {self.comment}" if self.comment else line

    @property
    def fingerprint(self) -> str:
        """`SHA256:…` as `ssh-keygen -l` prints it."""
        return openssh_fingerprint(self.public_key_line)

    def sign(self, data: bytes, namespace: str = MANIFEST_NAMESPACE) -> bytes:
        """The armored SSHSIG signature of `data` in `namespace`, as `ssh-keygen -Y sign` writes."""
        _check_namespace(namespace)
        digest = HASHES[HASH_ALGORITHM](data).digest()
        signature = self.key.sign(_signed_data(namespace, b"", HASH_ALGORITHM, digest))
        blob = b"".join(
            [
                MAGIC,
                struct.pack(">I", VERSION),
                _string(_public_blob(self.key.public_key())),
                _string(namespace.encode()),
                _string(b""),
                _string(HASH_ALGORITHM.encode()),
                _string(_string(KEY_TYPE.encode()) + _string(signature)),
            ]
        )
        text = base64.b64encode(blob).decode("ascii")
        lines = [text[i : i + ARMOR_COLUMNS] for i in range(0, len(text), ARMOR_COLUMNS)]
        return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END, ""]).encode("ascii")

    def for_namespace(self, namespace: str) -> Callable[[bytes], bytes]:
        """A `sign(data) -> signature` callable bound to `namespace` (e.g. for the audit log)."""
        _check_namespace(namespace)
        return lambda data: self.sign(data, namespace)


def verify(data: bytes, signature: bytes, public_key_line: str, namespace: str) -> None:
    """Check that `signature` (armored SSHSIG) is `public_key_line`'s over `data` in `namespace`.

    Raises SignatureError saying what is wrong; returns None when the signature holds.
    """
    expected = _parse_public_key(public_key_line)
    blob = _dearmor(signature)
    reader = _Reader(blob)
    if reader.take(len(MAGIC)) != MAGIC:
        raise SignatureError("not an SSHSIG signature (magic 'SSHSIG' missing)")
    version = struct.unpack(">I", reader.take(4))[0]
    if version != VERSION:
        raise SignatureError(f"SSHSIG version {version} is not supported (expected {VERSION})")
    public_blob = reader.string()
    signed_namespace = reader.string()
    reserved = reader.string()
    hash_algorithm = reader.string()
    signature_blob = reader.string()
    reader.end()
    if signed_namespace != namespace.encode():
        raise SignatureError(
            f"signature is for namespace '{signed_namespace.decode(errors='replace')}', "
            f"expected '{namespace}'"
        )
    algorithm = hash_algorithm.decode(errors="replace")
    if algorithm not in HASHES:
        raise SignatureError(f"signature hash algorithm '{algorithm}' is not sha256 or sha512")
    if public_blob != _public_blob(expected):
        raise SignatureError(
            f"signed by another key ({_fingerprint_of_blob(public_blob)}), not by "
            f"{openssh_fingerprint(_public_blob_line(expected))}: do not trust the data"
        )
    inner = _Reader(signature_blob)
    key_type = inner.string()
    raw = inner.string()
    inner.end()
    if key_type != KEY_TYPE.encode() or len(raw) != 64:
        raise SignatureError(f"signature is not an {KEY_TYPE} signature")
    digest = HASHES[algorithm](data).digest()
    try:
        expected.verify(raw, _signed_data(namespace, reserved, algorithm, digest))
    except InvalidSignature:
        raise SignatureError(
            "signature does not match the data: it was altered after signing; do not trust it"
        ) from None


def verifier(public_key_line: str, namespace: str) -> Callable[[bytes, bytes], None]:
    """A `verify(data, signature)` callable bound to a public key and namespace."""
    _parse_public_key(public_key_line)
    return lambda data, signature: verify(data, signature, public_key_line, namespace)


def public_key_line(line: str) -> str:
    """`line` (an OpenSSH Ed25519 public key line) as `ssh-ed25519 AAAA…`, without its comment.

    Raises SignatureError for anything else (never quoting it: it may be a pasted secret).
    """
    parts = str(line).split()
    if len(parts) < 2 or parts[0] != KEY_TYPE:
        raise SignatureError(f"not an OpenSSH '{KEY_TYPE} AAAA…' public key line")
    return _public_blob_line(_parse_public_key(line))


def allowed_signers_line(principal: str, public_key_line: str, namespace: str) -> str:
    """The `allowed_signers` line that lets `ssh-keygen -Y verify -I principal` accept the key."""
    if not principal or any(c.isspace() or c in '",' for c in principal):
        raise SignatureError(f"signer identity {principal!r} must be one word without quotes")
    _check_namespace(namespace)
    key = _public_blob_line(_parse_public_key(public_key_line))
    return f'{principal} namespaces="{namespace}" {key}\n'


def _check_namespace(namespace: str) -> None:
    if not namespace or not namespace.isascii() or any(c.isspace() for c in namespace):
        raise SignatureError(f"namespace {namespace!r} must be non-empty ASCII without spaces")


def _signed_data(namespace: str, reserved: bytes, algorithm: str, digest: bytes) -> bytes:
    return b"".join(
        [
            MAGIC,
            _string(namespace.encode()),
            _string(reserved),
            _string(algorithm.encode()),
            _string(digest),
        ]
    )


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _public_blob(key: Ed25519PublicKey) -> bytes:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _string(KEY_TYPE.encode()) + _string(raw)


def _public_blob_line(key: Ed25519PublicKey) -> str:
    return f"{KEY_TYPE} {base64.b64encode(_public_blob(key)).decode('ascii')}"


def _fingerprint_of_blob(blob: bytes) -> str:
    return openssh_fingerprint(f"x {base64.b64encode(blob).decode('ascii')}")


def _parse_public_key(line: str) -> Ed25519PublicKey:
    parts = str(line).split()
    if len(parts) < 2 or parts[0] != KEY_TYPE:
        raise SignatureError(
            f"the shop's public key must be an OpenSSH '{KEY_TYPE} AAAA…' line (its .pub file)"
        )
    try:
        key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode("ascii"))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise SignatureError(f"the shop's public key is not a valid {KEY_TYPE} key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"the shop's public key is not a valid {KEY_TYPE} key")
    return key


def _dearmor(signature: bytes) -> bytes:
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise SignatureError("signature file is too large to be an SSHSIG signature")
    try:
        lines = signature.decode("ascii").strip().splitlines()
    except UnicodeDecodeError:
        raise SignatureError("signature is not ASCII armor") from None
    if len(lines) < 3 or lines[0].strip() != ARMOR_BEGIN or lines[-1].strip() != ARMOR_END:
        raise SignatureError(f"signature is not armored SSHSIG ('{ARMOR_BEGIN}' … '{ARMOR_END}')")
    try:
        return base64.b64decode("".join(line.strip() for line in lines[1:-1]), validate=True)
    except binascii.Error:
        raise SignatureError("signature armor is not valid base64") from None


class _Reader:
    """Reads SSH wire-format fields, with a clear error on truncation."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise SignatureError("signature is truncated")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def string(self) -> bytes:
        return self.take(struct.unpack(">I", self.take(4))[0])

    def end(self) -> None:
        if self.offset != len(self.data):
            raise SignatureError("signature has trailing bytes")
