"""`handover policy check`: problems beyond syntax are found and name the key at fault."""

from __future__ import annotations

import shutil

import pyrage
import pytest

from handover.cli.main import main
from handover.crypto.keys import KeyDirectory
from tests.support.paths import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
SECOND = """
[agencies.b2b]
recipients = ["{recipient}"]
[agencies.b2b.route]
debtor_kinds = ["business"]
[agencies.b2b.sftp]
host = "sftp.inkasso-nord.example"
user = "shop"
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "handover.toml"
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    text = EXAMPLE.read_text().replace(
        "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq", recipient
    )
    path.write_text(text)
    (tmp_path / "known_hosts").write_text(f"sftp.inkasso-nord.example {HOST_KEY}\n")
    KeyDirectory(tmp_path / "keys").init()
    return path


def test_a_consistent_config_passes(config, capsys):
    assert main(["policy", "check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "is consistent" in out and "inkasso-nord: sha256 " in out


def test_overlapping_routes_are_named(config, capsys):
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    config.write_text(config.read_text() + SECOND.format(recipient=recipient))
    assert main(["policy", "check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "agencies.inkasso-nord.route and agencies.b2b.route both take some cases" in err
    # Narrowing the first route to consumers resolves it.
    config.write_text(
        config.read_text().replace(
            "[agencies.inkasso-nord.sftp]",
            '[agencies.inkasso-nord.route]\ndebtor_kinds = ["consumer"]\n\n'
            "[agencies.inkasso-nord.sftp]",
        )
    )
    assert main(["policy", "check", "--config", str(config)]) == 0


def test_bad_recipient_missing_host_key_and_keys_are_named(config, capsys, tmp_path):
    config.write_text(config.read_text().replace('recipients = ["age1', 'recipients = ["age1x'))
    (tmp_path / "known_hosts").write_text(f"other.example {HOST_KEY}\n")
    shutil.rmtree(tmp_path / "keys")
    assert main(["policy", "check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "agencies.inkasso-nord.recipients[0] is not a valid age recipient" in err
    assert "agencies.inkasso-nord.sftp.known_hosts" in err and "pins no host key" in err
    assert "paths.key_dir" in err and "handover keys init" in err


def test_policy_show_prints_each_agency(config, capsys):
    assert main(["policy", "show", "--config", str(config)]) == 0
    assert 'Policy for agency "inkasso-nord"' in capsys.readouterr().out


def test_identifier_retention_shorter_than_the_archive_is_named(config, capsys):
    config.write_text(config.read_text().replace("identifier_years = 7", "identifier_years = 3"))
    assert main(["policy", "check", "--config", str(config)]) == 1
    assert "retention.identifier_years (3) ends before archive.retention_days" in (
        capsys.readouterr().err
    )
