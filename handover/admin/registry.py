"""Register an agency in the shop's TOML configuration, and rotate its age recipients.

The file is edited with tomlkit, so the operator's comments and layout survive. The agency's
host key is pinned in its known_hosts file at registration; the fingerprints printed then are
what the operator confirms with the agency out of band (phone, signed letter).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import pyrage
import tomlkit
from pyrage import x25519
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Array, Table

from handover.config import load_config
from handover.crypto.keys import openssh_fingerprint
from handover.errors import ConfigError
from handover.host_keys import parse_host_key

# An agency name ends up in drop ids, file names and TOML keys.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9.:-]+")


@dataclass(frozen=True)
class Registration:
    """What `add_agency` wrote, with the fingerprints to confirm out of band."""

    name: str
    config: Path
    known_hosts: Path
    host_entry: str
    host_key_type: str
    host_key_fingerprint: str
    recipient: str


def add_agency(
    config_path: Path,
    name: str,
    *,
    recipient: str,
    host: str,
    port: int,
    user: str,
    host_key: str,
    inbox: str = "inbox",
    known_hosts: str = "known_hosts",
) -> Registration:
    """Append `[agencies.NAME]` and its `.sftp` table, and pin the host key in `known_hosts`.

    `known_hosts` is relative to the configuration file. Refuses a name already configured and
    a host that known_hosts already pins to a different key of the same type.
    """
    config_path = Path(config_path).resolve()
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"agency name {name!r} must be 1-64 letters, digits, '-' or '_', starting with a "
            "letter or digit (it becomes part of drop ids and file names)"
        )
    _parse_recipient(recipient, "--recipient")
    if not _HOST.fullmatch(host):
        raise ConfigError(f"--host {host!r} must be a host name or IP address")
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} must be between 1 and 65535")
    if not user or any(c.isspace() for c in user):
        raise ConfigError("--user must be a non-empty SFTP user name without spaces")
    key_type, key_data = _parse_host_key(host_key)

    document = _read(config_path)
    agencies = document.get("agencies")
    if agencies is None:
        agencies = tomlkit.table(is_super_table=True)
        document.add("agencies", agencies)
    if not isinstance(agencies, Table):
        raise ConfigError(f"{config_path}: [agencies] must be a table")
    if name in agencies:
        raise ConfigError(
            f"{config_path}: agency '{name}' already exists; change its recipients with "
            "`handover agency rotate-recipient`, anything else by editing the file"
        )

    fingerprint = openssh_fingerprint(f"{key_type} {key_data}")
    table = tomlkit.table()
    table.add(
        tomlkit.comment(
            f"added by `handover agency add` on {dt.date.today().isoformat()}; host key "
            f"{fingerprint} confirmed out of band"
        )
    )
    table.add("recipients", tomlkit.array([recipient]).multiline(True))
    sftp = tomlkit.table()
    sftp.add("host", host)
    sftp.add("port", port)
    sftp.add("user", user)
    sftp.add("inbox", inbox)
    sftp.add("known_hosts", known_hosts)
    sftp.add(tomlkit.nl())
    table.add("sftp", sftp)
    agencies.add(name, table)

    hosts_file = config_path.parent / known_hosts
    entry = host if port == 22 else f"[{host}]:{port}"
    line = f"{entry} {key_type} {key_data}\n"
    pinned = _pin_host_key(hosts_file, entry, key_type, key_data, line)
    try:
        _write_checked(config_path, tomlkit.dumps(document))
    except BaseException:
        if pinned:  # take our pin back: the agency it was for does not exist
            _unpin(hosts_file, line)
        raise
    return Registration(
        name=name,
        config=config_path,
        known_hosts=hosts_file,
        host_entry=entry,
        host_key_type=key_type,
        host_key_fingerprint=fingerprint,
        recipient=recipient,
    )


def rotate_recipient(
    config_path: Path, name: str, *, add: str | None = None, remove: str | None = None
) -> tuple[str, ...]:
    """Add and/or remove one age recipient of agency `name`; returns the recipients now set.

    During a key change the agency has two recipients: add the new one, and remove the old one
    once the agency confirms it opens drops with the new identity.
    """
    config_path = Path(config_path).resolve()
    if add is None and remove is None:
        raise ConfigError("give --add age1… and/or --remove age1…")
    document = _read(config_path)
    agencies = document.get("agencies")
    table = agencies.get(name) if isinstance(agencies, Table) else None
    if not isinstance(table, Table):
        raise ConfigError(f"{config_path}: no agency '{name}' in [agencies]")
    recipients = table.get("recipients")
    if not isinstance(recipients, Array):
        raise ConfigError(f"{config_path}: agencies.{name}.recipients must be a list")
    current = [str(r) for r in recipients]
    if add is not None:
        _parse_recipient(add, "--add")
        if add in current:
            raise ConfigError(f"{config_path}: the --add recipient is already in agencies.{name}")
        recipients.append(add)
        current.append(add)
    if remove is not None:
        if remove not in current:
            raise ConfigError(
                f"{config_path}: the --remove recipient is not in agencies.{name}.recipients"
            )
        if len(current) == 1:
            raise ConfigError(
                f"{config_path}: cannot remove the only recipient of agency '{name}'; add the "
                "new one first"
            )
        del recipients[current.index(remove)]
        current.remove(remove)
    _write_checked(config_path, tomlkit.dumps(document))
    return tuple(current)


def _parse_recipient(recipient: str, option: str) -> None:
    try:
        x25519.Recipient.from_str(recipient)
    except (pyrage.RecipientError, TypeError, ValueError):
        # Never echo it: a secret key pasted by mistake must not land in a terminal log.
        raise ConfigError(
            f"{option} is not an age X25519 recipient ('age1…', as `age-keygen -y` prints it); "
            "ask the agency for its public key"
        ) from None


def _parse_host_key(host_key: str) -> tuple[str, str]:
    """(key type, base64 key) of a host key line, as paramiko (and so delivery) reads it."""
    key = parse_host_key(host_key, "--host-key")
    return key.get_name(), key.get_base64()


def _read(config_path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: configuration file not found") from None
    except TOMLKitError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None


def _pin_host_key(file: Path, entry: str, key_type: str, key_data: str, line: str) -> bool:
    """Append `line` unless already there; refuse a different key of the same type for `entry`."""
    existing = file.read_text(encoding="ascii").splitlines() if file.exists() else []
    for number, known in enumerate(existing, 1):
        fields = known.split()
        if len(fields) < 3 or known.startswith("#") or entry not in fields[0].split(","):
            continue
        if fields[1] == key_type and fields[2] == key_data:
            return False
        if fields[1] == key_type:
            raise ConfigError(
                f"{file}:{number} already pins a different {key_type} key for {entry}; if the "
                "agency changed its host key, confirm the new one out of band and replace that "
                "line by hand"
            )
    with file.open("a", encoding="ascii") as handle:
        if existing and not file.read_text(encoding="ascii").endswith("\n"):
            handle.write("\n")
        handle.write(line)
    return True


def _unpin(file: Path, line: str) -> None:
    with contextlib.suppress(OSError):
        text = file.read_text(encoding="ascii")
        if text.endswith(line):
            file.write_text(text[: -len(line)], encoding="ascii")


def _write_checked(config_path: Path, text: str) -> None:
    """Replace the file atomically, after `load_config` accepted the new text beside it."""
    tmp = config_path.with_name(f".{config_path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        with contextlib.suppress(OSError):
            os.chmod(tmp, config_path.stat().st_mode & 0o777)
        try:
            load_config(tmp)
        except ConfigError as exc:
            raise ConfigError(
                *(
                    "nothing written, the result would be invalid: "
                    + line.replace(str(tmp), str(config_path))
                    for line in str(exc).splitlines()
                )
            ) from None
        os.replace(tmp, config_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
