"""The key directory: created owner-only, loose permissions refused, fingerprints only shown."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from conftest import require_tool

from handover.errors import KeyFileError
from handover.keys import PSEUDONYM_KEY, SFTP_CLIENT_KEY, KeyDirectory, pseudonym_key_id


def test_init_creates_owner_only_keys_once(tmp_path):
    keys = KeyDirectory(tmp_path / "keys")
    created = keys.init()
    assert {p.name for p in created} == {PSEUDONYM_KEY, SFTP_CLIENT_KEY}
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o700
    for name in (PSEUDONYM_KEY, SFTP_CLIENT_KEY):
        assert stat.S_IMODE((keys.path / name).stat().st_mode) == 0o600
    key = keys.pseudonym_key()
    assert len(key) == 32
    assert keys.init() == []
    assert keys.pseudonym_key() == key


def test_group_readable_key_is_refused(tmp_path):
    keys = KeyDirectory(tmp_path / "keys")
    keys.init()
    os.chmod(keys.path / PSEUDONYM_KEY, 0o640)
    with pytest.raises(KeyFileError, match=r"readable by group or others \(mode 0640\).*chmod 600"):
        keys.pseudonym_key()
    os.chmod(keys.path / SFTP_CLIENT_KEY, 0o604)
    with pytest.raises(KeyFileError, match="sftp_client_ed25519"):
        keys.sftp_client_key()


def test_missing_key_says_how_to_create_it(tmp_path):
    with pytest.raises(KeyFileError, match="handover keys init"):
        KeyDirectory(tmp_path).pseudonym_key()


def test_fingerprints_match_ssh_keygen_and_hide_the_keys(tmp_path):
    keys = KeyDirectory(tmp_path / "keys")
    keys.init()
    shown = keys.fingerprints()
    keygen = require_tool("ssh-keygen", "openssh-client")
    listed = subprocess.run(
        [keygen, "-l", "-f", str(keys.path / f"{SFTP_CLIENT_KEY}.pub")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert shown[SFTP_CLIENT_KEY] == listed
    assert shown[PSEUDONYM_KEY] == "key id " + pseudonym_key_id(keys.pseudonym_key())
    assert keys.pseudonym_key().hex() not in repr(shown)
