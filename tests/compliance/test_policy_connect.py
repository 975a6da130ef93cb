"""`handover policy check --connect` against a real sshd: it logs in as delivery does, checks
each inbox takes a file, leaves nothing behind, and names a changed host key and a read-only
inbox with the agency, the server, the inbox and what to do; and lists the returns folder of
an agency that sends return files, naming a missing one or a file in its place.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyrage
import pytest

from tests.conftest import Sshd, remount, ssh_keygen
from tests.support.cli import handover
from tests.support.returns import Agency
from tests.support.workspaces import CONFIG_HEAD, sftp_agency, shop_keys

AGENCIES = ("nord", "sued")


@pytest.fixture
def shop(tmp_path: Path, sshd: Sshd) -> tuple[Path, dict[str, Path]]:
    """A config whose two agencies have their own inbox on the real sshd: (config, inboxes)."""
    shop_keys(tmp_path / "keys", sshd)
    sshd.write_known_hosts(tmp_path / "known_hosts")
    inboxes = {name: sshd.new_inbox() for name in AGENCIES}
    routes = {"nord": 'countries = ["DE"]', "sued": 'countries = ["AT"]'}
    tables = "".join(
        sftp_agency(
            name,
            str(pyrage.x25519.Identity.generate().to_public()),
            sshd,
            inboxes[name],
            extra=f"[agencies.{name}.route]\n{routes[name]}\n",
        )
        for name in AGENCIES
    )
    config = tmp_path / "handover.toml"
    config.write_text(CONFIG_HEAD + "[delivery]\ntimeout_seconds = 10\n" + tables)
    return config, inboxes


def logins_so_far(sshd: Sshd) -> int:
    """Public-key logins sshd accepted (its log at LogLevel VERBOSE)."""
    return sshd.log.read_text(errors="replace").count("Accepted publickey")


def listing(inbox: Path) -> dict[str, bytes]:
    """Every file in `inbox`, hidden ones included, with its content."""
    return {p.name: p.read_bytes() for p in sorted(inbox.iterdir())}


def test_good_inboxes_pass_and_are_left_as_they_were(shop, sshd):
    config, inboxes = shop
    # What the agency already has there stays untouched: nothing is read, moved or sent.
    (inboxes["nord"] / "2026-06-01-nord-abc.csv.age").write_bytes(b"an earlier drop")
    before = {name: listing(inbox) for name, inbox in inboxes.items()}
    logins = logins_so_far(sshd)
    done = handover("policy", "check", "--connect", "--config", config)
    assert done.returncode == 0, done.stderr
    for name in AGENCIES:
        login = f"  {name}: logged in to {sshd.user}@{sshd.host}:{sshd.port}, host key SHA256:"
        assert login in done.stdout
        assert f"inbox '{inboxes[name]}' takes a file" in done.stdout
    assert {name: listing(inbox) for name, inbox in inboxes.items()} == before
    assert logins_so_far(sshd) == logins + 2  # one login per agency, with the shop's key


def test_a_changed_host_key_is_named_and_nothing_is_written(shop, sshd, tmp_path):
    config, inboxes = shop
    other = ssh_keygen(tmp_path / "other_host_key")
    sshd.write_known_hosts(tmp_path / "known_hosts", other.with_suffix(".pub"))
    done = handover("policy", "check", "--connect", "--config", config)
    assert done.returncode == 1
    assert done.stdout == ""
    errors = done.stderr.splitlines()
    assert len(errors) == 2, done.stderr  # one line per agency
    for name, line in zip(AGENCIES, errors, strict=True):
        assert line.startswith(
            f"handover: error: agency {name} (sftp {sshd.user}@{sshd.host}:{sshd.port}, "
            f"inbox '{inboxes[name]}'): host key of {sshd.host}:{sshd.port} CHANGED"
        )
        assert "Nothing was sent" in line and "confirm the presented fingerprint" in line
        assert str(tmp_path / "known_hosts") in line
    assert all(listing(inbox) == {} for inbox in inboxes.values())


def test_a_read_only_inbox_is_named_and_the_other_agency_passes(shop, sshd, mount_tmpfs):
    config, inboxes = shop
    # Root writes through any chmod: a read-only file system is what stops root.
    mount_tmpfs(inboxes["sued"])
    remount(inboxes["sued"], "ro")
    done = handover("policy", "check", "--connect", "--json", "--config", config)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    by_name = {a["name"]: a["connection"] for a in report["agencies"]}
    assert by_name["nord"]["ok"] is True and by_name["nord"]["problem"] is None
    assert by_name["nord"]["host_key_fingerprint"].startswith("SHA256:")
    sued = by_name["sued"]
    assert sued["ok"] is False and sued["inbox"] == str(inboxes["sued"])
    assert sued["host_key_fingerprint"] is None
    assert sued["problem"].startswith(
        f"agency sued (sftp {sshd.user}@{sshd.host}:{sshd.port}, inbox '{inboxes['sued']}'): "
        f"the inbox {sshd.host}:{sshd.port}:{inboxes['sued']} does not take a file from user "
        f"'{sshd.user}'"
    )
    assert "read-only, full or over quota; ask the agency to let" in sued["problem"]
    assert report["problems"] == [sued["problem"]]
    assert listing(inboxes["nord"]) == {}

    # The text form names the same problem in one line, and only that one.
    text = handover("policy", "check", "--connect", "--config", config)
    assert text.returncode == 1 and text.stdout == ""
    assert text.stderr == f"handover: error: {sued['problem']}\n"

    # Made writable again, both pass, and the inbox is as empty as before.
    remount(inboxes["sued"], "rw")
    again = handover("policy", "check", "--connect", "--config", config)
    assert again.returncode == 0, again.stderr
    assert listing(inboxes["sued"]) == {}


def test_a_missing_inbox_and_a_refused_login_are_named(shop, sshd, tmp_path):
    config, inboxes = shop
    inboxes["nord"].rmdir()
    wrong_key = ssh_keygen(tmp_path / "wrong_client_key")
    done = handover("policy", "check", "--connect", "--config", config)
    assert done.returncode == 1
    assert f"agency nord (sftp {sshd.user}@" in done.stderr
    assert f"inbox '{inboxes['nord']}' does not exist on {sshd.host}:{sshd.port}" in done.stderr
    # The shop's key replaced by one the agency never authorised: the login is refused.
    key = tmp_path / "keys" / "sftp_client_ed25519"
    key.write_bytes(wrong_key.read_bytes())
    refused = handover("policy", "check", "--connect", "--config", config)
    assert refused.returncode == 1
    assert f"refused user '{sshd.user}' with client key {key}" in refused.stderr
    assert "ask the agency to authorise the public key" in refused.stderr


def test_without_connect_no_connection_is_made(shop, sshd):
    config, _ = shop
    logins = logins_so_far(sshd)
    done = handover("policy", "check", "--json", "--config", config)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["problems"] == [] and report["warnings"] == []
    assert [a["connection"] for a in report["agencies"]] == [None, None]
    assert [a["name"] for a in report["agencies"]] == list(AGENCIES)
    assert logins_so_far(sshd) == logins


# --- the returns folder of an agency that sends return files ------------------------------------


@pytest.fixture
def returns_folders(shop, sshd, tmp_path) -> dict[str, Path]:
    """nord and sued send return files, each to a folder of its own on the real sshd."""
    config, _ = shop
    folders = {name: sshd.new_inbox() for name in AGENCIES}
    tables = "".join(
        Agency.make(name, tmp_path / "agency-keys").config(str(folders[name])) for name in AGENCIES
    )
    config.write_text(config.read_text() + tables)
    return folders


def test_a_returns_folder_is_listed_and_left_as_it_was(shop, sshd, returns_folders):
    config, inboxes = shop
    waiting = returns_folders["nord"] / "R-1.manifest.json"
    waiting.write_bytes(b"a return file the agency is still writing")
    before = {name: listing(folder) for name, folder in returns_folders.items()}
    logins = logins_so_far(sshd)
    done = handover("policy", "check", "--connect", "--config", config)
    assert done.returncode == 0, done.stderr
    for name in AGENCIES:
        assert f"  {name}: returns folder '{returns_folders[name]}' can be listed\n" in done.stdout
    # Nothing in it was read, moved or written; one more login per agency, with the shop's key.
    assert {name: listing(folder) for name, folder in returns_folders.items()} == before
    assert all(listing(inbox) == {} for inbox in inboxes.values())
    assert logins_so_far(sshd) == logins + 4

    report = json.loads(
        handover("policy", "check", "--connect", "--json", "--config", config).stdout
    )
    by_name = {a["name"]: a["connection"] for a in report["agencies"]}
    assert by_name["nord"]["returns"] == {
        "folder": str(returns_folders["nord"]),
        "ok": True,
        "problem": None,
    }


def test_an_agency_without_returns_has_no_returns_check(shop, sshd):
    config, _ = shop
    done = handover("policy", "check", "--connect", "--json", "--config", config)
    assert done.returncode == 0, done.stderr
    assert [a["connection"]["returns"] for a in json.loads(done.stdout)["agencies"]] == [None, None]
    text = handover("policy", "check", "--connect", "--config", config)
    assert "returns folder" not in text.stdout


def test_a_missing_returns_folder_and_a_file_in_its_place_are_named(shop, sshd, returns_folders):
    config, inboxes = shop
    returns_folders["nord"].rmdir()
    returns_folders["sued"].rmdir()
    returns_folders["sued"].write_bytes(b"not a folder")
    done = handover("policy", "check", "--connect", "--json", "--config", config)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    by_name = {a["name"]: a["connection"] for a in report["agencies"]}
    server = f"sftp {sshd.user}@{sshd.host}:{sshd.port}"
    for name in AGENCIES:
        connection = by_name[name]
        assert connection["ok"] is True and connection["problem"] is None  # the inbox is fine
        returns = connection["returns"]
        assert returns["ok"] is False and returns["folder"] == str(returns_folders[name])
        assert returns["problem"].startswith(
            f"agency {name} ({server}, returns folder '{returns_folders[name]}'): "
        )
        assert f"correct [agencies.{name}.returns] folder in {config}" in returns["problem"]
    assert "cannot open the folder (it does not exist)" in by_name["nord"]["returns"]["problem"]
    assert ": is a regular file, not a folder; " in by_name["sued"]["returns"]["problem"]
    assert report["problems"] == [by_name[name]["returns"]["problem"] for name in AGENCIES]
    assert all(listing(inbox) == {} for inbox in inboxes.values())

    # The text form: one line for each, and nothing on stdout.
    text = handover("policy", "check", "--connect", "--config", config)
    assert text.returncode == 1 and text.stdout == ""
    assert text.stderr == "".join(
        f"handover: error: {by_name[name]['returns']['problem']}\n" for name in AGENCIES
    )


def test_a_changed_host_key_is_named_once_per_agency_with_returns(
    shop, sshd, returns_folders, tmp_path
):
    config, _ = shop
    other = ssh_keygen(tmp_path / "other_host_key")
    sshd.write_known_hosts(tmp_path / "known_hosts", other.with_suffix(".pub"))
    done = handover("policy", "check", "--connect", "--config", config)
    assert done.returncode == 1
    errors = done.stderr.splitlines()
    assert len(errors) == 2, done.stderr  # the inbox's line; the same cause is not named again
    assert all("host key of" in line and "CHANGED" in line for line in errors)
