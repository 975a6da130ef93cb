"""The key directory: secrets that never go into the TOML file or onto the command line.

Layout (directory mode 0700, private files 0600):
  pseudonym.key            32 random bytes, hex: the HMAC key behind case_ref
  sftp_client_ed25519      OpenSSH private key the shop logs in to agencies with
  sftp_client_ed25519.pub  its public half, to give to the agencies

Like OpenSSH, we refuse a private key that group or others can read.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from handover.errors import KeyFileError

PSEUDONYM_KEY = "pseudonym.key"
SFTP_CLIENT_KEY = "sftp_client_ed25519"
PSEUDONYM_KEY_BYTES = 32


@dataclass(frozen=True)
class KeyDirectory:
    """Paths and loaders for the keys in one key directory."""

    path: Path

    def private_file(self, name: str) -> Path:
        """The path of a private key file, after checking it exists and is owner-only."""
        file = self.path / name
        if not file.is_file():
            raise KeyFileError(
                f"key file {file} is missing; create the keys with `handover keys init`"
            )
        mode = stat.S_IMODE(file.stat().st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"key file {file} is readable by group or others (mode {mode:04o}); "
                f"run `chmod 600 {file}`"
            )
        return file

    def pseudonym_key(self) -> bytes:
        """The HMAC key for case_ref."""
        file = self.private_file(PSEUDONYM_KEY)
        try:
            key = bytes.fromhex(file.read_text(encoding="ascii").strip())
        except ValueError:
            raise KeyFileError(f"key file {file} is not hex; restore it from backup") from None
        if len(key) < PSEUDONYM_KEY_BYTES:
            raise KeyFileError(f"key file {file} holds fewer than {PSEUDONYM_KEY_BYTES} bytes")
        return key

    def sftp_client_key(self) -> Path:
        """The SFTP client's private key file."""
        return self.private_file(SFTP_CLIENT_KEY)

    def sftp_client_public_key(self) -> str:
        """The SFTP client's public key line, to register with an agency."""
        return (self.path / f"{SFTP_CLIENT_KEY}.pub").read_text(encoding="ascii").strip()

    def init(self) -> list[Path]:
        """Create the keys that are missing; never overwrite one. Returns the files created."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        created = []
        pseudonym = self.path / PSEUDONYM_KEY
        if not pseudonym.exists():
            write_private(pseudonym, secrets.token_hex(PSEUDONYM_KEY_BYTES) + "\n")
            created.append(pseudonym)
        client = self.path / SFTP_CLIENT_KEY
        if not client.exists():
            private, public = openssh_ed25519_pair("handover-shop")
            write_private(client, private)
            client.with_suffix(".pub").write_text(public, encoding="ascii")
            created.append(client)
        return created

    def fingerprints(self) -> dict[str, str]:
        """Fingerprints (never key material) of the keys present."""
        result = {}
        pseudonym = self.path / PSEUDONYM_KEY
        if pseudonym.exists():
            result[PSEUDONYM_KEY] = "key id " + pseudonym_key_id(self.pseudonym_key())
        public = self.path / f"{SFTP_CLIENT_KEY}.pub"
        if public.exists():
            result[SFTP_CLIENT_KEY] = openssh_fingerprint(public.read_text(encoding="ascii"))
        return result


def pseudonym_key_id(key: bytes) -> str:
    """A short, public name for a pseudonym key (first 8 hex digits of its SHA-256)."""
    return hashlib.sha256(key).hexdigest()[:8]


def openssh_ed25519_pair(comment: str) -> tuple[str, str]:
    """A new Ed25519 key pair as (OpenSSH private key text, public key line)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode('ascii')} {comment}\n"


def openssh_fingerprint(public_line: str) -> str:
    """`SHA256:…` fingerprint of an OpenSSH public key line, as `ssh-keygen -l` prints it."""
    blob = base64.b64decode(public_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def write_private(path: Path, text: str) -> None:
    """Create `path` with owner-only permissions (never replacing a file) and write `text`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
