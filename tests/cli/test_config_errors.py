"""Bad configurations as an operator meets them: `handover policy check` and `handover run`,
run as the console script, refuse each one before any work, name the file and the key, and
suggest the key that was meant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handover.crypto.keys import CHANGE_DIGEST_KEY, KeyDirectory
from tests.support.paths import EXAMPLE_CONFIG

HANDOVER = Path(sys.executable).with_name("handover")  # the console script of this venv
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
RECIPIENT = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"


def workspace(tmp_path: Path) -> Path:
    """The example configuration with its key directory and a pinned host key: it passes."""
    config = tmp_path / "handover.toml"
    config.write_text(EXAMPLE_CONFIG.read_text())
    (tmp_path / "known_hosts").write_text(f"sftp.inkasso-nord.example {HOST_KEY}\n")
    KeyDirectory(tmp_path / "keys").init()
    return config


def edit(old: str, new: str):
    def apply(config: Path) -> None:
        text = config.read_text()
        assert old in text
        config.write_text(text.replace(old, new, 1))

    return apply


def append(extra: str):
    return lambda config: config.write_text(config.read_text() + "\n" + extra + "\n")


def broken_known_hosts(config: Path) -> None:
    hosts = config.parent / "known_hosts"
    hosts.write_text(hosts.read_text() + "sftp.inkasso-nord.example ssh-ed25519 AAAAbroken\n")


def no_known_hosts(config: Path) -> None:
    (config.parent / "known_hosts").unlink()


def loose_key_directory(config: Path) -> None:
    os.chmod(config.parent / "keys", 0o755)


CASES = {
    "top-level table": (edit("[shop]", "[shopp]"), "shopp", "did you mean `shop`?"),
    "validation": (
        edit("max_quarantine_share =", "max_quarantine_shar ="),
        "validation.max_quarantine_shar",
        "did you mean `max_quarantine_share`?",
    ),
    "rules": (edit("overdue_days =", "overdue_day ="), "rules.overdue_day", "`overdue_days`?"),
    "agency columns": (
        edit("claim_subject =", 'colums = ["case_ref"]\nclaim_subject ='),
        "agencies.inkasso-nord.colums",
        "did you mean `columns`?",
    ),
    "agency claim subject": (
        edit("claim_subject =", "claim_subjct ="),
        "agencies.inkasso-nord.claim_subjct",
        "did you mean `claim_subject`?",
    ),
    "agency recipients": (
        edit("recipients =", "recipents ="),
        "agencies.inkasso-nord.recipents",
        "did you mean `recipients`?",
    ),
    "sftp": (
        edit("known_hosts =", "know_hosts ="),
        "agencies.inkasso-nord.sftp.know_hosts",
        "did you mean `known_hosts`?",
    ),
    "route": (
        append('[agencies.inkasso-nord.route]\ndebtor_kind = ["consumer"]'),
        "agencies.inkasso-nord.route.debtor_kind",
        "did you mean `debtor_kinds`?",
    ),
    "agency rules": (
        append("[agencies.inkasso-nord.rules]\nminimum_open_cent = 5000"),
        "agencies.inkasso-nord.rules.minimum_open_cent",
        "did you mean `minimum_open_cents`?",
    ),
    "bad recipient": (
        edit(RECIPIENT, "age1typo"),
        "agencies.inkasso-nord.recipients[0]",
        "is not an age X25519 recipient",
    ),
    "bad host key": (
        broken_known_hosts,
        "agencies.inkasso-nord.sftp.known_hosts",
        "known_hosts line 2: the key does not parse",
    ),
    "no known_hosts": (
        no_known_hosts,
        "agencies.inkasso-nord.sftp.known_hosts",
        "known_hosts does not exist",
    ),
    "key directory mode": (loose_key_directory, "paths.key_dir", "run `chmod 700 "),
}


def handover(*args: str, cwd: Path) -> subprocess.Popen[str]:
    # A Prefect server nobody runs: a run that got as far as Prefect would fail differently.
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    return subprocess.Popen(
        [str(HANDOVER), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def both(config: Path) -> dict[str, tuple[int, str]]:
    """`policy check` and `run`, side by side: exit status and stderr of each."""
    started = {
        "policy check": handover("policy", "check", "--config", str(config), cwd=config.parent),
        "run": handover("run", "--config", str(config), cwd=config.parent),
    }
    results = {}
    for name, process in started.items():
        _, err = process.communicate(timeout=120)
        results[name] = (process.returncode, err)
    return results


def test_the_workspace_passes_as_it_is(tmp_path):
    done = subprocess.run(
        [str(HANDOVER), "policy", "check", "--config", str(workspace(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("mistake", "key", "says"), CASES.values(), ids=list(CASES))
def test_a_bad_configuration_is_refused_by_policy_check_and_run(tmp_path, mistake, key, says):
    config = workspace(tmp_path)
    mistake(config)
    for command, (status, err) in both(config).items():
        assert status == 1, (command, err)
        lines = err.splitlines()
        assert lines and all(line.startswith("handover: error: ") for line in lines), err
        (line,) = [ln for ln in lines if f": {key}: " in ln]
        assert says in line and str(config) in line, (command, line)
        assert "missing" not in err  # a misspelt required key is named as the typo, once
    # Refused before any work: no state store, no Prefect.
    assert not (tmp_path / "state.db").exists()
    assert "prefect" not in err.lower()


def test_every_problem_of_a_file_comes_at_once(tmp_path):
    config = workspace(tmp_path)
    edit("recipients =", "recipents =")(config)
    edit("[shop]", "[shopp]")(config)
    for command, (status, err) in both(config).items():
        assert status == 1
        lines = err.splitlines()
        assert len(lines) == 2, (command, err)
        assert any("agencies.inkasso-nord.recipents: unknown key" in ln for ln in lines)
        assert any(": shopp: unknown key; did you mean `shop`?" in ln for ln in lines)


@pytest.mark.parametrize(
    "host_key",
    ["garbage", "ssh-ed25519 AAAAbroken", f"ssh-rsa {HOST_KEY.split()[1]}", "ssh-foo AAAA"],
)
def test_agency_add_refuses_a_host_key_paramiko_cannot_read(tmp_path, host_key):
    config = workspace(tmp_path)
    before = config.read_text(), (tmp_path / "known_hosts").read_text()
    argv = ["agency", "add", "sued", "--config", str(config), "--recipient", RECIPIENT]
    argv += ["--host", "sftp.sued.example", "--user", "shop", "--host-key", host_key]
    done = subprocess.run([str(HANDOVER), *argv], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("handover: error: --host-key must be 'ssh-ed25519 AAAA…'")
    assert "paramiko cannot read this one" in done.stderr
    assert (config.read_text(), (tmp_path / "known_hosts").read_text()) == before


def test_a_run_without_the_change_digest_key_is_refused_before_any_work(tmp_path):
    config = workspace(tmp_path)
    (tmp_path / "keys" / CHANGE_DIGEST_KEY).unlink()
    for command in (("run",), ("recalls",)):
        done = subprocess.run(
            [str(HANDOVER), *command, "--config", str(config)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 1, done.stderr
        assert "paths.key_dir" in done.stderr and CHANGE_DIGEST_KEY in done.stderr
        assert "handover keys init" in done.stderr
        assert not (tmp_path / "state.db").exists()
    status, err = both(config)["policy check"]
    assert status == 1 and f"paths.key_dir: key file {tmp_path / 'keys' / CHANGE_DIGEST_KEY}" in err
