"""A shop's side for flow tests: keys that log in to the `sshd` fixture, and its config text."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from handover.crypto.keys import SFTP_CLIENT_KEY, KeyDirectory
from tests.conftest import Sshd

CONFIG_HEAD = """
[shop]
name = "Test Shop"
support_contact = "support@shop.example"
[source]
url = "sqlite:///shop.db"
"""


def shop_keys(key_dir: Path, sshd: Sshd) -> KeyDirectory:
    """A full key directory whose SFTP login is the key the sshd fixture authorised."""
    keys = KeyDirectory(key_dir)
    keys.init()
    (keys.path / SFTP_CLIENT_KEY).unlink()
    shutil.copyfile(sshd.client_key, keys.path / SFTP_CLIENT_KEY)
    os.chmod(keys.path / SFTP_CLIENT_KEY, 0o600)
    return keys


def sftp_agency(name: str, recipient: str, sshd: Sshd, inbox: Path, extra: str = "") -> str:
    """The `[agencies.NAME]` tables of an agency whose inbox is on the sshd fixture."""
    return f"""
[agencies.{name}]
recipients = ["{recipient}"]
{extra}
[agencies.{name}.sftp]
host = "{sshd.host}"
port = {sshd.port}
user = "{sshd.user}"
inbox = "{inbox}"
"""
