"""The key directory: secrets that never go into the TOML file or onto the command line.

Layout (directory mode 0700, private files 0600):
  signing_ed25519          OpenSSH Ed25519 key that signs manifests (SSHSIG) and audit checkpoints
  signing_ed25519.pub      its public half, for the agencies' allowed_signers files
  archive.age              age X25519 identity of the shop's archive; every payload is encrypted
                           to its recipient too, so the shop can prove what it sent
  returns.age              age X25519 identity that opens the agencies' return files; agencies
                           encrypt to its recipient (one job per key: it never opens a drop)
  pseudonym-<id>.key       HMAC keys behind case_ref, 32 random bytes as hex; <id> is the first
                           8 hex digits of the key's SHA-256, so a file cannot carry a wrong id
  pseudonym.active         the id of the key new case_refs are made with
  sftp_client_ed25519      OpenSSH private key the shop logs in to agencies with (and its .pub)
  change_digest.key        HMAC key of the digests of names and addresses sent to agencies, by
                           which a run sees what changed since (recalls and updates); never rotated

A directory made before key rotation existed holds one `pseudonym.key`: it stays valid, and
active until the first `handover keys rotate-pseudonym`. Like OpenSSH, we refuse a private key
that group or others can read, and a key directory that group or others can open.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pyrage
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyrage import x25519

from handover.errors import KeyFileError

SIGNING_KEY = "signing_ed25519"
ARCHIVE_KEY = "archive.age"
RETURNS_KEY = "returns.age"
PSEUDONYM_KEY = "pseudonym.key"  # the single key of directories made before rotation
PSEUDONYM_ACTIVE = "pseudonym.active"
PSEUDONYM_PREFIX = "pseudonym-"
SFTP_CLIENT_KEY = "sftp_client_ed25519"
CHANGE_DIGEST_KEY = "change_digest.key"
PSEUDONYM_KEY_BYTES = 32

_KEY_ID = re.compile(r"[0-9a-f]{8}")


@dataclass(frozen=True)
class PseudonymKey:
    """A pseudonym (case_ref) key and its public id; the key itself never appears in a repr."""

    key_id: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class KeyDirectory:
    """Paths and loaders for the keys in one key directory."""

    path: Path

    def private_file(self, name: str) -> Path:
        """The path of a private key file, after checking it and its directory are owner-only."""
        self.check_directory()
        return check_private_file(self.path / name)

    def check_directory(self) -> Path:
        """The key directory, after checking that group and others cannot open it.

        As strict as its files (and as OpenSSH is with ~/.ssh): whoever may list or enter the
        directory may learn or swap what is in it. A directory not made yet is left to the
        loaders, which say to run `handover keys init`.
        """
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except FileNotFoundError:
            return self.path
        if mode & 0o077:
            raise KeyFileError(
                f"key directory {self.path} is open to group or others (mode {mode:04o}); run "
                f"`chmod 700 {self.path}`"
            )
        return self.path

    # ------------------------------------------------------------------ pseudonym keys

    def pseudonym_key(self) -> bytes:
        """The active HMAC key for case_ref."""
        return self.active_pseudonym_key().key

    def active_pseudonym_key(self) -> PseudonymKey:
        """The key new case_refs are made with, and its id."""
        pointer = self.check_directory() / PSEUDONYM_ACTIVE
        if pointer.exists():
            key_id = pointer.read_text(encoding="ascii").strip()
            if not _KEY_ID.fullmatch(key_id):
                raise KeyFileError(
                    f"{pointer} must hold one pseudonym key id (8 hex digits); restore it "
                    "from backup or run `handover keys rotate-pseudonym`"
                )
            return self.pseudonym_key_by_id(key_id)
        if (self.path / PSEUDONYM_KEY).exists():
            return self._legacy_pseudonym_key()
        present = self.pseudonym_key_ids()
        if present:
            raise KeyFileError(
                f"{pointer} is missing: it names the active pseudonym key; restore it from "
                f"backup (key ids present: {', '.join(present)})"
            )
        raise KeyFileError(
            f"no pseudonym key in {self.path}; create the keys with `handover keys init`"
        )

    def pseudonym_key_by_id(self, key_id: str) -> PseudonymKey:
        """The pseudonym key with id `key_id` (active or retired), to recompute old case_refs."""
        if not _KEY_ID.fullmatch(str(key_id)):
            raise KeyFileError(f"pseudonym key id {key_id!r} is not 8 lowercase hex digits")
        file = self.path / f"{PSEUDONYM_PREFIX}{key_id}.key"
        if file.exists():
            key = _read_hex_key(self.private_file(file.name))
            if pseudonym_key_id(key) != key_id:
                raise KeyFileError(
                    f"key file {file} holds a key whose id is not {key_id}: a file was "
                    "renamed or overwritten; restore it from backup"
                )
            return PseudonymKey(key_id, key)
        if (self.path / PSEUDONYM_KEY).exists():
            legacy = self._legacy_pseudonym_key()
            if legacy.key_id == key_id:
                return legacy
        raise KeyFileError(
            f"no pseudonym key with id {key_id} in {self.path}; restore "
            f"{PSEUDONYM_PREFIX}{key_id}.key from backup"
        )

    def pseudonym_key_ids(self) -> tuple[str, ...]:
        """Ids of every pseudonym key present, sorted; the active one is among them."""
        self.check_directory()
        ids = {
            p.name[len(PSEUDONYM_PREFIX) : -len(".key")]
            for p in self.path.glob(f"{PSEUDONYM_PREFIX}*.key")
        }
        ids = {i for i in ids if _KEY_ID.fullmatch(i)}
        if (self.path / PSEUDONYM_KEY).exists():
            ids.add(self._legacy_pseudonym_key().key_id)
        return tuple(sorted(ids))

    def rotate_pseudonym(self) -> PseudonymKey:
        """Make a new active pseudonym key; the old ones stay, for cases already handed over."""
        self._ensure_directory()
        existing = set(self.pseudonym_key_ids())
        while True:  # a 32-bit id may collide, however rarely; a new key fixes that
            key = secrets.token_bytes(PSEUDONYM_KEY_BYTES)
            key_id = pseudonym_key_id(key)
            if key_id not in existing:
                break
        write_private(self.path / f"{PSEUDONYM_PREFIX}{key_id}.key", key.hex() + "\n")
        _replace_text(self.path / PSEUDONYM_ACTIVE, key_id + "\n")
        return PseudonymKey(key_id, key)

    def _legacy_pseudonym_key(self) -> PseudonymKey:
        key = _read_hex_key(self.private_file(PSEUDONYM_KEY))
        return PseudonymKey(pseudonym_key_id(key), key)

    # ------------------------------------------------------------------ other keys

    def signing_key(self) -> Path:
        """The shop's SSHSIG signing key file (load it with `handover.crypto.sshsig.Signer`)."""
        return self.private_file(SIGNING_KEY)

    def signing_public_key(self) -> str:
        """The signing key's public line, for the agencies' allowed_signers files."""
        return _read_public(self.check_directory() / f"{SIGNING_KEY}.pub")

    def archive_identity(self) -> Path:
        """The archive's age identity file (`age -d -i` it to open any archived payload)."""
        return self.private_file(ARCHIVE_KEY)

    def archive_recipient(self) -> str:
        """The archive's age recipient (`age1…`), derived from its identity."""
        return str(_one_identity(self.archive_identity()).to_public())

    def returns_identity(self) -> Path:
        """The age identity file that opens the agencies' return files."""
        return self.private_file(RETURNS_KEY)

    def returns_recipient(self) -> str:
        """The recipient (`age1…`) agencies encrypt return files to, derived from its identity."""
        return str(_one_identity(self.returns_identity()).to_public())

    def sftp_client_key(self) -> Path:
        """The SFTP client's private key file."""
        return self.private_file(SFTP_CLIENT_KEY)

    def sftp_client_public_key(self) -> str:
        """The SFTP client's public key line, to register with an agency."""
        return _read_public(self.check_directory() / f"{SFTP_CLIENT_KEY}.pub")

    def change_digest_key(self) -> PseudonymKey:
        """The HMAC key of the change digests (recalls and updates), and its id.

        Its id is stored with every digest, so a replaced key is named instead of making every
        name and address look changed.
        """
        key = _read_hex_key(self.private_file(CHANGE_DIGEST_KEY))
        return PseudonymKey(pseudonym_key_id(key), key)

    # ------------------------------------------------------------------ creation and display

    def init(self) -> list[Path]:
        """Create the keys that are missing; never overwrite one. Returns the files created."""
        self._ensure_directory()
        created = []
        if not self.pseudonym_key_ids():
            key_id = self.rotate_pseudonym().key_id
            created.append(self.path / f"{PSEUDONYM_PREFIX}{key_id}.key")
        pairs = ((SIGNING_KEY, "handover-signing"), (SFTP_CLIENT_KEY, "handover-shop"))
        for name, comment in pairs:
            file = self.path / name
            if not file.exists():
                private, public = openssh_ed25519_pair(comment)
                write_private(file, private)
                file.with_name(f"{name}.pub").write_text(public, encoding="ascii")
                created.append(file)
        digest = self.path / CHANGE_DIGEST_KEY
        if not digest.exists():
            write_private(digest, secrets.token_bytes(PSEUDONYM_KEY_BYTES).hex() + "\n")
            created.append(digest)
        for name in (ARCHIVE_KEY, RETURNS_KEY):
            file = self.path / name
            if not file.exists():
                identity = x25519.Identity.generate()
                created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                write_private(
                    file,
                    f"# created: {created_at}\n# public key: {identity.to_public()}\n{identity}\n",
                )
                created.append(file)
        return created

    def fingerprints(self) -> dict[str, str]:
        """Fingerprints and public keys (never key material) of the keys present."""
        result = {}
        public = self.check_directory() / f"{SIGNING_KEY}.pub"
        if public.exists():
            result[SIGNING_KEY] = openssh_fingerprint(public.read_text(encoding="ascii"))
        if (self.path / ARCHIVE_KEY).exists():
            result[ARCHIVE_KEY] = "recipient " + self.archive_recipient()
        if (self.path / RETURNS_KEY).exists():
            result[RETURNS_KEY] = "recipient " + self.returns_recipient()
        ids = self.pseudonym_key_ids()
        if ids:
            active = self.active_pseudonym_key().key_id
            retired = [i for i in ids if i != active]
            result["pseudonym"] = f"active key id {active}" + (
                f" (retired: {', '.join(retired)})" if retired else ""
            )
        public = self.path / f"{SFTP_CLIENT_KEY}.pub"
        if public.exists():
            result[SFTP_CLIENT_KEY] = openssh_fingerprint(public.read_text(encoding="ascii"))
        return result

    def _ensure_directory(self) -> None:
        """Make the directory owner-only (whatever the umask); refuse one others can open."""
        if self.check_directory().exists():
            return
        self.path.mkdir(mode=0o700, parents=True)
        os.chmod(self.path, 0o700)


def load_pseudonym_key(keys: KeyDirectory, secret_block: str | None = None) -> PseudonymKey:
    """The active pseudonym key: from the Prefect Secret block when one is named, else `keys`."""
    if secret_block:
        return pseudonym_key_from_secret_block(secret_block)
    return keys.active_pseudonym_key()


def pseudonym_key_from_secret_block(block_name: str) -> PseudonymKey:
    """The pseudonym key held as hex in the Prefect Secret block `block_name` (deployments)."""
    from prefect.blocks.system import Secret

    where = f"Prefect Secret block '{block_name}'"
    try:
        block = Secret.load(block_name)
    except ValueError:
        raise KeyFileError(
            f"{where} not found; create it with the hex key (`Secret(value=...).save(...)` or "
            "the Prefect UI), or remove keys.pseudonym_secret_block from the configuration"
        ) from None
    except Exception as exc:
        raise KeyFileError(f"{where} cannot be loaded ({type(exc).__name__})") from None
    # The raw value, not `.get()`: that parses JSON, and a hex key like "12e4…" is a number.
    value = block.value.get_secret_value()
    try:
        key = bytes.fromhex(value.strip()) if isinstance(value, str) else b""
    except ValueError:
        key = b""
    if len(key) < PSEUDONYM_KEY_BYTES:
        raise KeyFileError(
            f"{where} must hold at least {PSEUDONYM_KEY_BYTES} bytes as hex (64 hex digits, "
            "as in a pseudonym-<id>.key file)"
        )
    return PseudonymKey(pseudonym_key_id(key), key)


def check_private_file(file: Path) -> Path:
    """`file`, after checking it exists and that group and others cannot read it."""
    file = Path(file)
    if not file.is_file():
        raise KeyFileError(f"key file {file} is missing; create the keys with `handover keys init`")
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"key file {file} is readable by group or others (mode {mode:04o}); "
            f"run `chmod 600 {file}`"
        )
    return file


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


def _one_identity(file: Path) -> x25519.Identity:
    """The single age X25519 identity in `file` (comments aside)."""
    lines = file.read_text(encoding="ascii").splitlines()
    keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    try:
        if len(keys) != 1:
            raise ValueError
        return x25519.Identity.from_str(keys[0])
    except (pyrage.IdentityError, ValueError):
        raise KeyFileError(
            f"key file {file} must hold exactly one age X25519 identity "
            "('AGE-SECRET-KEY-1…'); restore it from backup"
        ) from None


def _read_hex_key(file: Path) -> bytes:
    try:
        key = bytes.fromhex(file.read_text(encoding="ascii").strip())
    except ValueError:
        raise KeyFileError(f"key file {file} is not hex; restore it from backup") from None
    if len(key) < PSEUDONYM_KEY_BYTES:
        raise KeyFileError(f"key file {file} holds fewer than {PSEUDONYM_KEY_BYTES} bytes")
    return key


def _read_public(file: Path) -> str:
    try:
        return file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(
            f"public key {file} is missing; recreate it with `ssh-keygen -y -f "
            f"{file.with_suffix('')} > {file}`"
        ) from None


def _replace_text(path: Path, text: str) -> None:
    """Replace `path` atomically (owner-only), so a crash leaves the old or the new content."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_private(tmp, text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
