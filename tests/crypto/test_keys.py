"""The key directory: created owner-only, loose permissions refused, fingerprints only shown,
pseudonym keys rotated without losing the old ones."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from handover.cli.main import main
from handover.crypto.keys import (
    ARCHIVE_KEY,
    CHANGE_DIGEST_KEY,
    PSEUDONYM_ACTIVE,
    PSEUDONYM_KEY,
    RETURNS_KEY,
    SFTP_CLIENT_KEY,
    SIGNING_KEY,
    KeyDirectory,
    load_pseudonym_key,
    pseudonym_key_from_secret_block,
    pseudonym_key_id,
)
from handover.crypto.sshsig import Signer
from handover.errors import KeyFileError
from tests.conftest import require_tool
from tests.support.paths import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG


@pytest.fixture
def keys(tmp_path: Path) -> KeyDirectory:
    directory = KeyDirectory(tmp_path / "keys")
    directory.init()
    return directory


def test_init_creates_every_key_owner_only_and_once(tmp_path: Path):
    keys = KeyDirectory(tmp_path / "keys")
    created = keys.init()
    active = keys.active_pseudonym_key()
    assert {p.name for p in created} == {
        SIGNING_KEY,
        ARCHIVE_KEY,
        RETURNS_KEY,
        f"pseudonym-{active.key_id}.key",
        SFTP_CLIENT_KEY,
        CHANGE_DIGEST_KEY,
    }
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o700
    for path in created:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert len(active.key) == 32 and pseudonym_key_id(active.key) == active.key_id
    assert keys.init() == []
    assert keys.active_pseudonym_key() == active
    assert keys.signing_public_key().startswith("ssh-ed25519 AAAA")
    assert Signer.from_key_file(keys.signing_key()).public_key_line == keys.signing_public_key()


@pytest.mark.parametrize(
    ("name", "load"),
    [
        (SIGNING_KEY, lambda k: Signer.from_key_file(k.signing_key())),
        (ARCHIVE_KEY, KeyDirectory.archive_recipient),
        ("pseudonym", KeyDirectory.pseudonym_key),
        (SFTP_CLIENT_KEY, KeyDirectory.sftp_client_key),
        (CHANGE_DIGEST_KEY, KeyDirectory.change_digest_key),
    ],
)
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_group_or_others_can_read_is_refused(keys: KeyDirectory, name, load, mode: int):
    file = keys.path / name
    if name == "pseudonym":
        file = keys.path / f"pseudonym-{keys.active_pseudonym_key().key_id}.key"
    os.chmod(file, mode)
    with pytest.raises(KeyFileError, match=rf"{file.name} is readable by group or others") as e:
        load(keys)
    assert f"chmod 600 {file}" in str(e.value)


def test_missing_key_says_how_to_create_it(tmp_path: Path):
    with pytest.raises(KeyFileError, match="handover keys init"):
        KeyDirectory(tmp_path).pseudonym_key()


def test_a_key_directory_from_before_recalls_gets_its_change_digest_key(keys: KeyDirectory):
    (keys.path / CHANGE_DIGEST_KEY).unlink()
    with pytest.raises(KeyFileError, match=rf"{CHANGE_DIGEST_KEY} is missing.*keys init"):
        keys.change_digest_key()
    assert [p.name for p in keys.init()] == [CHANGE_DIGEST_KEY]
    digest = keys.change_digest_key()
    assert len(digest.key) == 32 and digest.key_id == pseudonym_key_id(digest.key)
    assert digest.key != keys.pseudonym_key()


def test_fingerprints_match_stock_tools_and_hide_the_keys(keys: KeyDirectory):
    shown = keys.fingerprints()
    keygen = require_tool("ssh-keygen", "openssh-client")
    for name in (SIGNING_KEY, SFTP_CLIENT_KEY):
        listed = subprocess.run(
            [keygen, "-l", "-f", str(keys.path / f"{name}.pub")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[1]
        assert shown[name] == listed
    age_keygen = require_tool("age-keygen", "age")
    recipient = subprocess.run(
        [age_keygen, "-y", str(keys.path / ARCHIVE_KEY)], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert shown[ARCHIVE_KEY] == f"recipient {recipient}" == f"recipient {keys.archive_recipient()}"
    assert shown["pseudonym"] == f"active key id {keys.active_pseudonym_key().key_id}"
    secrets_on_disk = [
        (keys.path / ARCHIVE_KEY).read_text().split()[-1],
        keys.pseudonym_key().hex(),
        (keys.path / SIGNING_KEY).read_text().splitlines()[1],
    ]
    assert not any(secret in repr(shown) for secret in secrets_on_disk)
    assert keys.pseudonym_key().hex() not in repr(keys.active_pseudonym_key())


def test_rotation_keeps_old_keys_for_lookup_by_id(keys: KeyDirectory):
    first = keys.active_pseudonym_key()
    second = keys.rotate_pseudonym()
    assert second.key_id != first.key_id and second.key != first.key
    assert keys.active_pseudonym_key() == second
    assert keys.pseudonym_key() == second.key
    assert keys.pseudonym_key_by_id(first.key_id) == first
    assert keys.pseudonym_key_ids() == tuple(sorted([first.key_id, second.key_id]))
    assert keys.fingerprints()["pseudonym"] == (
        f"active key id {second.key_id} (retired: {first.key_id})"
    )
    assert stat.S_IMODE((keys.path / PSEUDONYM_ACTIVE).stat().st_mode) == 0o600
    with pytest.raises(KeyFileError, match="no pseudonym key with id 00000000"):
        keys.pseudonym_key_by_id("00000000")
    (keys.path / PSEUDONYM_ACTIVE).unlink()
    with pytest.raises(KeyFileError, match=r"pseudonym\.active is missing.*restore it from backup"):
        keys.pseudonym_key()


def test_a_key_file_under_a_wrong_id_is_refused(keys: KeyDirectory):
    first = keys.active_pseudonym_key()
    second = keys.rotate_pseudonym()
    # An operator "restores" the old key by copying the new file over it.
    old_file = keys.path / f"pseudonym-{first.key_id}.key"
    os.chmod(old_file, 0o600)
    shutil.copyfile(keys.path / f"pseudonym-{second.key_id}.key", old_file)
    with pytest.raises(KeyFileError, match=f"whose id is not {first.key_id}"):
        keys.pseudonym_key_by_id(first.key_id)


def test_a_directory_from_before_rotation_keeps_working(tmp_path: Path):
    keys = KeyDirectory(tmp_path / "keys")
    keys.path.mkdir(mode=0o700)
    legacy = bytes(range(32))
    (keys.path / PSEUDONYM_KEY).write_text(legacy.hex() + "\n")
    os.chmod(keys.path / PSEUDONYM_KEY, 0o600)
    created = {p.name for p in keys.init()}
    assert not any(name.startswith("pseudonym") for name in created)  # the legacy key suffices
    assert keys.active_pseudonym_key().key == legacy
    new = keys.rotate_pseudonym()
    assert keys.pseudonym_key() == new.key
    assert keys.pseudonym_key_by_id(pseudonym_key_id(legacy)).key == legacy


def test_cli_show_prints_fingerprints_and_the_allowed_signers_line(tmp_path: Path, capsys):
    config = tmp_path / "handover.toml"
    shutil.copyfile(EXAMPLE, config)
    assert main(["keys", "init", "--config", str(config)]) == 0
    keys = KeyDirectory(tmp_path / "keys")
    out = capsys.readouterr().out
    assert f"created {keys.path / SIGNING_KEY}" in out
    assert f"{ARCHIVE_KEY}: recipient {keys.archive_recipient()}" in out
    public = keys.signing_public_key().split()
    # The example shop is "Beispiel Shop GmbH": its default signer identity is the slug.
    assert f'beispiel-shop-gmbh namespaces="handover-manifest" {public[0]} {public[1]}\n' in out
    assert main(["keys", "rotate-pseudonym", "--config", str(config)]) == 0
    assert f"new active pseudonym key id {keys.active_pseudonym_key().key_id}" in (
        capsys.readouterr().out
    )
    assert keys.pseudonym_key().hex() not in out


def test_pseudonym_key_from_a_prefect_secret_block(prefect, keys: KeyDirectory):
    from prefect.blocks.system import Secret

    key = bytes.fromhex("12e4" + "5" * 60)  # "12e4…" also parses as a JSON number
    Secret(value=key.hex()).save("handover-test-pseudonym", overwrite=True)
    loaded = pseudonym_key_from_secret_block("handover-test-pseudonym")
    assert loaded.key == key and loaded.key_id == pseudonym_key_id(key)
    assert load_pseudonym_key(keys, "handover-test-pseudonym") == loaded
    assert load_pseudonym_key(keys, None) == keys.active_pseudonym_key()

    with pytest.raises(KeyFileError, match="'handover-missing' not found"):
        pseudonym_key_from_secret_block("handover-missing")
    Secret(value="too short").save("handover-test-bad", overwrite=True)
    with pytest.raises(KeyFileError, match="at least 32 bytes as hex") as raised:
        pseudonym_key_from_secret_block("handover-test-bad")
    assert "too short" not in str(raised.value)


@pytest.mark.parametrize(
    "load",
    [
        KeyDirectory.signing_key,
        KeyDirectory.signing_public_key,
        KeyDirectory.archive_recipient,
        KeyDirectory.pseudonym_key,
        KeyDirectory.pseudonym_key_ids,
        KeyDirectory.sftp_client_key,
        KeyDirectory.fingerprints,
        KeyDirectory.init,
        KeyDirectory.rotate_pseudonym,
    ],
)
@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701, 0o710])
def test_a_key_directory_group_or_others_can_open_is_refused(keys: KeyDirectory, load, mode):
    os.chmod(keys.path, mode)
    with pytest.raises(KeyFileError, match="is open to group or others") as error:
        load(keys)
    assert f"(mode {mode:04o}); run `chmod 700 {keys.path}`" in str(error.value)
    os.chmod(keys.path, 0o700)
    load(keys)


def test_init_makes_the_directory_owner_only_whatever_the_umask(tmp_path: Path):
    previous = os.umask(0)
    try:
        KeyDirectory(tmp_path / "deep" / "keys").init()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "deep" / "keys").stat().st_mode) == 0o700


def test_cli_refuses_a_loose_key_directory_with_the_fix(tmp_path: Path, capsys):
    config = tmp_path / "handover.toml"
    shutil.copyfile(EXAMPLE, config)
    assert main(["keys", "init", "--config", str(config)]) == 0
    os.chmod(tmp_path / "keys", 0o755)
    capsys.readouterr()
    assert main(["keys", "show", "--config", str(config)]) == 1
    assert f"run `chmod 700 {tmp_path / 'keys'}`" in capsys.readouterr().err


def test_a_directory_from_before_returns_gets_only_its_returns_key(keys: KeyDirectory):
    (keys.path / RETURNS_KEY).unlink()
    with pytest.raises(KeyFileError, match=r"returns\.age is missing; create the keys with"):
        keys.returns_recipient()
    archive = keys.archive_recipient()
    assert [p.name for p in keys.init()] == [RETURNS_KEY]
    assert keys.archive_recipient() == archive  # nothing else was touched
    assert keys.returns_recipient().startswith("age1") and keys.returns_recipient() != archive
    assert stat.S_IMODE((keys.path / RETURNS_KEY).stat().st_mode) == 0o600
