"""HANDOVER_HOME: where a deployment's runs find handover.toml on a worker, and the pull step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.home import config_file, enter_handover_home, handover_home
from handover.errors import ConfigError


def test_an_absolute_config_path_needs_no_handover_home(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("HANDOVER_HOME", raising=False)
    assert config_file(str(tmp_path / "handover.toml")) == str(tmp_path / "handover.toml")


def test_a_relative_config_path_is_relative_to_handover_home(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path))
    monkeypatch.chdir("/")  # not the working directory
    assert config_file("handover.toml") == str(tmp_path / "handover.toml")
    assert config_file("shops/nord.toml") == str(tmp_path / "shops" / "nord.toml")


def test_a_relative_config_path_without_handover_home_names_both(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("HANDOVER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "handover.toml").write_text("")  # the working directory is never the answer
    with pytest.raises(ConfigError) as caught:
        config_file("handover.toml")
    message = str(caught.value)
    assert message.startswith(
        "config_path 'handover.toml' is relative to HANDOVER_HOME, but HANDOVER_HOME is not set"
    )
    assert "or give the deployment an absolute config_path" in message


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("", "HANDOVER_HOME is not set on this worker"),
        ("  ", "HANDOVER_HOME is not set on this worker"),
        ("srv/handover", "HANDOVER_HOME=srv/handover is not an absolute path"),
        ("/nonexistent/handover", "HANDOVER_HOME=/nonexistent/handover is not a directory"),
    ],
)
def test_a_missing_or_wrong_handover_home_is_refused(monkeypatch, value: str, complaint: str):
    monkeypatch.setenv("HANDOVER_HOME", value)
    with pytest.raises(ConfigError, match=complaint) as caught:
        handover_home()
    assert "set HANDOVER_HOME in the worker's environment" in str(caught.value)


def test_the_pull_step_enters_handover_home(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path))
    monkeypatch.chdir("/")
    assert enter_handover_home() == {"directory": str(tmp_path)}
    assert Path.cwd() == tmp_path


def test_the_pull_step_without_handover_home_stays_put_and_raises(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("HANDOVER_HOME", raising=False)
    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)  # not in a worker: no run to fail
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="HANDOVER_HOME is not set"):
        enter_handover_home()
    assert Path.cwd() == tmp_path


def test_the_nightly_flow_refuses_a_relative_config_path_without_handover_home(
    prefect, monkeypatch, tmp_path: Path
):
    from flows.nightly import handover

    monkeypatch.delenv("HANDOVER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"config_path 'handover\.toml' is relative to HANDOVER"):
        handover(config_path="handover.toml", dry_run=True)
    assert os.listdir(tmp_path) == []
