"""SSH host keys and known_hosts files, read with paramiko's own classes, as delivery reads them.

A line that paramiko cannot read is one delivery would silently skip (`paramiko.HostKeys.load`
drops it), so the agency's server would then look unknown. Here such a line is a problem naming
the file, the line number and the configuration key; paramiko's parse errors are mapped in this
one place. Neither the line nor the key is ever quoted.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey
from paramiko.pkey import UnknownKeyType

from handover.errors import ConfigError

# What paramiko raises on a malformed key (found by feeding it truncated and random key bytes):
# its own errors, and those of the byte parsing beneath them.
_PARSE_ERRORS = (
    paramiko.SSHException,
    InvalidHostKey,
    UnknownKeyType,
    ValueError,  # binascii.Error and UnicodeDecodeError among them
    ArithmeticError,
    IndexError,
    TypeError,
    struct.error,
)
HOST_KEY_FORM = "'ssh-ed25519 AAAA…' (the server's public host key line)"


def parse_host_key(text: str, what: str) -> paramiko.PKey:
    """The public key in `text` ('TYPE BASE64 [comment]'); ConfigError naming `what` if none."""
    parts = text.split()
    if len(parts) >= 2:
        try:
            return paramiko.PKey.from_type_string(
                parts[0], base64.b64decode(parts[1], validate=True)
            )
        except (*_PARSE_ERRORS, binascii.Error):
            pass
    raise ConfigError(
        f"{what} must be {HOST_KEY_FORM}, e.g. from the agency or from "
        "/etc/ssh/ssh_host_ed25519_key.pub on its server; paramiko cannot read this one"
    )


def known_hosts_problems(file: Path, key: str) -> list[str]:
    """Every line of the known_hosts `file` that paramiko cannot read, naming `key` (the setting).

    Blank lines and comments are skipped as paramiko skips them; an empty file is no problem
    here (whether it pins the agency's host is checked by `handover policy check`).
    """
    where = f"{key}: {file}"
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return [f"{where} is not UTF-8 text; it must be an OpenSSH known_hosts file"]
    except OSError as exc:
        return [f"{where} cannot be read ({type(exc).__name__}); it must be a readable file"]
    problems = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        why = _unreadable(line, number)
        if why:
            problems.append(
                f"{where} line {number}: {why}; each line must be 'HOSTS KEYTYPE BASE64' as "
                "`ssh-keyscan` prints it. Fix or delete the line, and confirm the agency's key "
                "out of band"
            )
    return problems


def _unreadable(line: str, number: int) -> str | None:
    """Why paramiko cannot read `line` as a host key entry, or None when it can."""
    if line.startswith("@"):
        return "markers such as @cert-authority or @revoked are not supported"
    fields = re.split(" |\t", line)  # as paramiko splits it
    if "" in fields[:3]:
        return "its fields must be separated by one space (paramiko reads it so)"
    if len(fields) < 3:
        return "it needs host names, a key type and a key"
    try:
        entry = HostKeyEntry.from_line(line, number)
    except _PARSE_ERRORS:
        return "the key does not parse as its key type"
    return None if entry is not None else "paramiko cannot use its key type"
