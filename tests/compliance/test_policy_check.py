"""`handover policy check`: problems beyond syntax are found and name the key at fault."""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pyrage
import pytest

from handover.cli.main import main
from handover.config import load_config
from handover.contract import REQUIRED_COLUMNS
from handover.crypto.keys import KeyDirectory
from handover.errors import ConfigError, KeyFileError
from handover.ledger.store import open_store
from handover.run.preflight import preflight
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


def test_a_bad_recipient_fails_at_load(config, capsys):
    config.write_text(config.read_text().replace('recipients = ["age1', 'recipients = ["age1x'))
    assert main(["policy", "check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"handover: error: {config}: agencies.inkasso-nord.recipients[0]: is not an age" in err


def test_missing_host_key_and_keys_are_named(config, capsys, tmp_path):
    (tmp_path / "known_hosts").write_text(f"other.example {HOST_KEY}\n")
    shutil.rmtree(tmp_path / "keys")
    assert main(["policy", "check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "agencies.inkasso-nord.sftp.known_hosts" in err and "pins no host key" in err
    assert "paths.key_dir" in err and "handover keys init" in err
    (tmp_path / "known_hosts").unlink()
    assert main(["policy", "check", "--config", str(config)]) == 1
    assert "known_hosts does not exist" in capsys.readouterr().err


def test_a_loose_key_directory_is_named_once_with_the_fix(config, capsys, tmp_path):
    os.chmod(tmp_path / "keys", 0o755)
    assert main(["policy", "check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("is open to group or others") == 1
    assert f"paths.key_dir: key directory {tmp_path / 'keys'}" in err
    assert f"run `chmod 700 {tmp_path / 'keys'}`" in err


def record_run(config, run_id: str) -> None:
    """A run as the flow starts one: the policy version and hash per agency in `run_started`."""
    loaded = load_config(config)
    store = open_store(loaded)
    store.start_run(
        run_id,
        as_of=dt.date(2026, 6, 15),
        agency="*",
        dry_run=True,
        data={
            "policy_version": loaded.policy_version,
            "policy_sha256": {a.name: loaded.policy_hash(a) for a in loaded.agencies},
        },
    )
    store.finish_run(run_id, status="succeeded", counts={}, event="run_finished")
    store.engine.dispose()


def test_a_policy_changed_under_the_same_version_is_warned_about(config, capsys, tmp_path):
    assert main(["policy", "check", "--config", str(config)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert not (tmp_path / "state.db").exists()  # no state store: nothing to compare, none made
    record_run(config, "run-1")
    assert main(["policy", "check", "--config", str(config)]) == 0
    assert capsys.readouterr().err == ""
    wider = 'columns = ["email", ' + ", ".join(f'"{c}"' for c in REQUIRED_COLUMNS) + "]\n"
    config.write_text(config.read_text().replace("claim_subject =", wider + "claim_subject =", 1))
    assert main(["policy", "check", "--config", str(config)]) == 0
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith(f"handover: warning: {config}: policy.version: agency inkasso-nord")
    assert "changed since the latest run" in warning and "stayed '1'" in warning
    config.write_text(config.read_text().replace('version = "1"', 'version = "2"'))
    assert main(["policy", "check", "--config", str(config)]) == 0
    assert capsys.readouterr().err == ""
    record_run(config, "run-2")  # the latest run now has version 2 and the new hash
    assert main(["policy", "check", "--config", str(config)]) == 0
    assert capsys.readouterr().err == ""


def test_policy_show_prints_each_agency(config, capsys):
    assert main(["policy", "show", "--config", str(config)]) == 0
    assert 'Policy for agency "inkasso-nord"' in capsys.readouterr().out


def test_identifier_retention_shorter_than_the_archive_is_named(config, capsys):
    config.write_text(config.read_text().replace("identifier_years = 7", "identifier_years = 3"))
    assert main(["policy", "check", "--config", str(config)]) == 1
    assert "retention.identifier_years (3) ends before archive.retention_days" in (
        capsys.readouterr().err
    )


def test_preflight_of_a_run(config, tmp_path):
    loaded = load_config(config)
    preflight(loaded, loaded.agencies, dry_run=False)
    (tmp_path / "known_hosts").unlink()
    preflight(loaded, loaded.agencies, dry_run=True)  # a dry run sends nothing
    with pytest.raises(ConfigError, match=r"inkasso-nord\.sftp\.known_hosts: .* does not exist"):
        preflight(loaded, loaded.agencies, dry_run=False)
    os.chmod(tmp_path / "keys", 0o750)
    for dry_run in (True, False):  # every run reads keys
        with pytest.raises(KeyFileError, match=r"paths\.key_dir: key directory .* `chmod 700 "):
            preflight(loaded, loaded.agencies, dry_run=dry_run)
