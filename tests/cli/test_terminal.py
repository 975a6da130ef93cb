"""One line per error on the terminal (handover/cli/terminal.py); tracebacks stay in the logs.

The acceptance test runs the console script as a subprocess against the real sshd with a wrong
pinned host key: the error then fails the deliver task, the agency's task and the flow, which
Prefect reports with two tracebacks and three more lines. The terminal must show it once; the
Prefect database and a DEBUG log file must still hold the tracebacks.
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest
import yaml

from handover.cli.terminal import HideRunErrors, WithoutTraceback, one_line_errors
from tests.conftest import Sshd
from tests.support.shopbuilder import AS_OF, Shop
from tests.support.workspaces import CONFIG_HEAD, sftp_agency, shop_keys

STRANGER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x\n"


def _record(name: str, level: int, msg: str, *, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, msg, None, exc_info)


def test_run_error_reports_are_withheld_and_other_records_kept() -> None:
    hide = HideRunErrors()
    assert not hide.filter(_record("prefect.task_runs", logging.ERROR, "Task run failed with"))
    assert not hide.filter(_record("prefect.flow_runs", logging.ERROR, "Encountered exception"))
    failed = "Finished in state Failed('Flow run encountered an exception: X')"
    assert not hide.filter(_record("prefect.flow_runs", logging.INFO, failed))
    assert hide.filter(_record("prefect.flow_runs", logging.INFO, "Finished in state Completed()"))
    assert hide.filter(_record("prefect.flow_runs", logging.WARNING, "Drop d was never sealed"))
    assert hide.filter(_record("paramiko.transport", logging.ERROR, "a library's error"))


def test_the_terminal_line_has_no_traceback_and_the_record_keeps_it() -> None:
    record = _record("prefect.flow_runs", logging.WARNING, "retrying", exc=True)
    line = WithoutTraceback(logging.Formatter("%(levelname)s %(message)s")).format(record)
    assert line == "WARNING retrying"
    assert record.exc_info is not None  # a later handler (API, file) still formats it
    assert "Traceback" in logging.Formatter().format(record)


def test_only_terminal_handlers_change_and_only_inside_the_block() -> None:
    logger = logging.getLogger("tests.terminal")
    logger.propagate = False
    terminal = logging.StreamHandler(sys.stderr)
    buffer = io.StringIO()
    elsewhere = logging.StreamHandler(buffer)
    logger.handlers = [terminal, elsewhere]
    try:
        with one_line_errors():
            assert isinstance(terminal.formatter, WithoutTraceback)
            assert any(isinstance(f, HideRunErrors) for f in terminal.filters)
            assert elsewhere.formatter is None and elsewhere.filters == []
        assert terminal.formatter is None and terminal.filters == []
    finally:
        logger.handlers = []


def test_handover_debug_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOVER_DEBUG", "1")
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(handler)
    try:
        with one_line_errors():
            assert handler.formatter is None and handler.filters == []
    finally:
        logging.getLogger().removeHandler(handler)


# --------------------------------------------------------------------------- the real run


def _workspace(root: Path, sshd: Sshd) -> Path:
    """One eligible case for an agency on the real sshd whose pinned host key is a stranger's."""
    root.mkdir(parents=True, exist_ok=True)
    Shop(root / "shop.db").customer("C1").invoice("I1", "C1")
    shop_keys(root / "keys", sshd)
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    (root / "known_hosts").write_text(f"{sshd.host_entry} {STRANGER}")
    config = root / "handover.toml"
    config.write_text(CONFIG_HEAD + sftp_agency("nord", recipient, sshd, sshd.new_inbox()))
    return config


def _logging_settings(root: Path, log_file: Path) -> Path:
    """Prefect's own logging.yml at DEBUG, plus a file handler for every logger."""
    import prefect.logging

    settings = yaml.safe_load((Path(prefect.logging.__file__).parent / "logging.yml").read_text())
    settings["handlers"]["file"] = {
        "level": 0,
        "class": "logging.FileHandler",
        "formatter": "debug",
        "filename": str(log_file),
        "encoding": "utf-8",
    }
    for logger in settings["loggers"].values():
        if logger.get("propagate", True) is False:
            logger["handlers"].append("file")
    settings["root"]["handlers"].append("file")
    settings["loggers"]["aiosqlite"] = {"level": "INFO"}
    path = root / "logging.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _run(config: Path, root: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "HANDOVER_DEBUG"},
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "PREFECT_LOGGING_SETTINGS_PATH": str(_logging_settings(root, root / "handover.log")),
        **extra_env,
    }
    for name in ("PREFECT_API_URL", "PREFECT_PROFILES_PATH", "PREFECT_API_DATABASE_CONNECTION_URL"):
        env.pop(name, None)
    command = [sys.executable, "-m", "handover.cli.main", "run", "--config", str(config)]
    return subprocess.run(
        [*command, "--as-of", AS_OF.isoformat()],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_a_failing_run_prints_its_error_once_and_logs_the_traceback(
    tmp_path: Path, sshd: Sshd
) -> None:
    config = _workspace(tmp_path, sshd)
    result = _run(config, tmp_path)
    terminal = result.stdout + result.stderr
    assert result.returncode == 1, terminal
    error = [line for line in result.stderr.splitlines() if line.startswith("handover: error: ")]
    assert len(error) == 1, terminal
    assert "agency nord" in error[0] and "host key" in error[0], terminal
    # The error's own words (after the agency's name) appear on that line and nowhere else.
    words = error[0].split("agency nord: ", 1)[1].split(";")[0]
    assert len(words) > 20 and terminal.count(words) == 1, terminal
    assert "Traceback" not in terminal and "HostKeyMismatch" not in terminal, terminal
    assert "Beginning flow run" in terminal  # the run's ordinary lines still show

    # Prefect's database and the log file still hold the failure with its traceback.
    with sqlite3.connect(tmp_path / "prefect-home" / "prefect.db") as db:
        logged = "\n".join(m for (m,) in db.execute("SELECT message FROM log"))
    assert "Traceback" in logged and "HostKeyMismatch" in logged and words in logged
    log_file = (tmp_path / "handover.log").read_text(encoding="utf-8")
    assert "Traceback" in log_file and "HostKeyMismatch" in log_file

    # HANDOVER_DEBUG=1 shows Prefect's full tracebacks on the terminal again.
    debug = _run(config, tmp_path, HANDOVER_DEBUG="1")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "HostKeyMismatch" in debug.stderr
