"""The console script as scripts use it: --version, --json on every command that has it, the
documented exit codes, and start-up without Prefect, pandas or Great Expectations where a
command does not need them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from handover.cli import exits
from tests.support.cli import SCRIPT, handover
from tests.support.paths import PROJECT
from tests.support.recorded_runs import Workspace, workspace
from tests.support.shopbuilder import AS_OF

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
# The personal data of the test shop's customer: no JSON document may carry any of it.
PERSONAL = ("Jürgen", "Müller", "Hauptstraße", "j.mueller@example.de", "1234567", "1980-05-17")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One recorded run that handed I1 over, and a run that held I2 back in validation."""
    ws = workspace(tmp_path_factory.mktemp("scripting"))
    (ws.root / "known_hosts").write_text(f"127.0.0.1 {HOST_KEY}\n")  # nord's pinned host key
    ws.shop.customer("C1").invoice("I1", "C1").invoice("I2", "C1", invoice_number="RE-77")
    ws.drop = ws.run(AS_OF)
    store = ws.store
    store.start_run("run-held", as_of=AS_OF, agency="nord", dry_run=False, data={})
    held = pd.DataFrame({"invoice_id": ["I2"], "reasons": ["invalid_email,too_long"]})
    store.record_quarantine("run-held", "outgoing", held, agency="nord")
    store.finish_run("run-held", status="succeeded", counts={}, event="run_finished")
    store.engine.dispose()
    return ws


def run_json(ws: Workspace, *args: str) -> object:
    done = handover(*args, "--config", ws.config_path, cwd=ws.root)
    assert done.returncode == 0, done.stderr
    assert not [word for word in PERSONAL if word in done.stdout], done.stdout
    return json.loads(done.stdout)


# --------------------------------------------------------------------------- --version, --help


def test_version_is_the_installed_distributions():
    done = handover("--version")
    assert done.returncode == 0
    assert done.stdout == f"handover {version('handover')}\n" and done.stderr == ""


def test_help_lists_the_exit_codes_and_the_json_commands():
    done = handover("--help")
    assert done.returncode == 0
    for code in (exits.OK, exits.ERROR, exits.USAGE, exits.UNVERIFIABLE, exits.WAITING):
        assert f"\n  {code}   " in done.stdout
    assert f"\n  {exits.BUG}  a bug" in done.stdout
    assert "--json (explain, status, policy check, keys show, quarantine list, audit show)" in (
        " ".join(done.stdout.split())
    )


def test_the_readme_documents_the_same_exit_codes():
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Everyday use") :]
    for code in ("0", "1", "2", "3", "4", "70"):
        assert f"| {code} |" in section, code


# --------------------------------------------------------------------------- --json


def test_explain_json(ws: Workspace):
    found = run_json(ws, "explain", "RE-77", "--json")
    assert list(found) == [
        "query",
        "invoice_id",
        "found_by",
        "in_shop",
        "instalment_cases",
        "latest",
        "history",
        "drops",
        "quarantined",
        "messages",
        "at_agency",
        "returns",
        "review",
    ]
    assert found["invoice_id"] == "I2" and found["found_by"] == "invoice_number"
    assert found["messages"] == [] and found["returns"] == [] and found["review"] is None
    assert found["instalment_cases"] == []
    assert found["quarantined"] == [
        {"run_id": "run-held", "suite": "outgoing", "reasons": ["invalid_email", "too_long"]}
    ]
    handed = run_json(ws, "explain", "I1", "--json")
    assert handed["latest"]["eligible"] is True and handed["latest"]["reasons"] == []
    assert [r["number"] for r in handed["latest"]["rules"]] == list(range(1, 18))
    assert all(r["ok"] for r in handed["latest"]["rules"])
    (drop,) = handed["drops"]
    assert drop["drop_id"] == ws.drop and drop["agency"] == "nord"
    assert drop["status"] == "delivered"
    assert handed["at_agency"] == {"agency": "nord", "drop_id": ws.drop}


def test_keys_show_json(ws: Workspace):
    keys = run_json(ws, "keys", "show", "--json")
    assert list(keys) == [
        "key_dir",
        "signing",
        "sftp_client",
        "archive",
        "returns",
        "pseudonym",
        "allowed_signers",
    ]
    assert keys["signing"]["fingerprint"].startswith("SHA256:")
    assert keys["signing"]["public_key"] == ws.keys.signing_public_key().strip()
    assert keys["archive"]["recipient"].startswith("age1")
    assert keys["returns"]["recipient"].startswith("age1")
    assert keys["returns"]["recipient"] != keys["archive"]["recipient"]
    assert keys["pseudonym"]["retired_key_ids"] == []
    assert "PRIVATE" not in json.dumps(keys) and "AGE-SECRET-KEY" not in json.dumps(keys)


def test_quarantine_list_json(ws: Workspace):
    held = run_json(ws, "quarantine", "list", "--json")
    assert held == {
        "run_id": None,
        "quarantined": [
            {
                "run_id": "run-held",
                "invoice_id": "I2",
                "suite": "outgoing",
                "reasons": ["invalid_email", "too_long"],
            }
        ],
    }
    assert run_json(ws, "quarantine", "list", "--run", "nope", "--json")["quarantined"] == []


def test_audit_show_json_is_format_json(ws: Workspace):
    entries = run_json(ws, "audit", "show", "--json")
    assert entries == run_json(ws, "audit", "show", "--format", "json")
    assert {e["event"] for e in entries} >= {"run_started", "case_handed_over", "run_finished"}


def test_policy_check_json(ws: Workspace):
    report = run_json(ws, "policy", "check", "--json")
    assert report["ok"] is True and report["policy_version"] == ws.config.policy_version
    assert [a["name"] for a in report["agencies"]] == ["nord"]


def test_a_json_command_that_fails_prints_nothing_on_stdout(ws: Workspace):
    done = handover("explain", "I404", "--json", "--config", ws.config_path, cwd=ws.root)
    assert done.returncode == exits.ERROR and done.stdout == ""
    assert done.stderr.startswith("handover: error: invoice 'I404' is unknown")


# --------------------------------------------------------------------------- exit codes


def test_usage_errors_exit_2():
    for args in (("bogus",), ("status", "--bogus"), ("explain",), ()):
        done = handover(*args)
        assert done.returncode == exits.USAGE, args
        assert done.stdout == "" and "usage: handover" in done.stderr


def test_a_bug_exits_70_and_names_type_and_place_only(tmp_path: Path):
    ws = workspace(tmp_path / "bug")
    (ws.root / "state.db").write_bytes(b"Kanarienvogel " * 100)  # not a database at all
    done = handover("explain", "I1", "--config", ws.config_path, cwd=ws.root)
    assert done.returncode == exits.BUG == 70
    assert done.stderr.startswith("handover: error: handover explain failed with DatabaseError")
    assert "Kanarienvogel" not in done.stderr and "HANDOVER_DEBUG=1" in done.stderr


# --------------------------------------------------------------------------- start-up

HEAVY = ("prefect", "pandas", "numpy", "great_expectations")


def imported_by(args: list[str], cwd: Path) -> list[str]:
    """The heavy packages a command imports, run as the console script runs it (exit 0)."""
    probe = (
        "import sys\n"
        "from handover.cli.main import main\n"
        "try:\n"
        f"    code = main({args!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"print(repr(sorted(m for m in {HEAVY!r} if m in sys.modules)), code, file=sys.stderr)\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    environ["PREFECT_HOME"] = str(cwd / "no-prefect-home")
    environ["PYTHONPATH"] = str(PROJECT)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, env=environ, capture_output=True, text=True
    )
    heavy, code = done.stderr.splitlines()[-1].rsplit(" ", 1)
    assert code in ("0", "None"), done.stderr
    return eval(heavy)  # a list literal we printed ourselves


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["--version"],
        ["status"],
        ["explain", "I1"],
        ["policy", "check"],
        ["keys", "show"],
        ["quarantine", "list"],
        ["audit", "show"],
        ["drops", "list"],
    ],
)
def test_everyday_commands_import_no_prefect_pandas_or_gx(ws: Workspace, command: list[str]):
    config = [] if command[0].startswith("--") else ["--config", str(ws.config_path)]
    assert imported_by(command + config, ws.root) == []


def test_the_probe_sees_what_a_command_imports(ws: Workspace):
    """`source check` reads the shop through the extraction, which is pandas'."""
    assert "pandas" in imported_by(["source", "check", "--config", str(ws.config_path)], ws.root)


def test_help_starts_in_well_under_a_second():
    started = dt.datetime.now()
    for _ in range(3):
        assert subprocess.run([str(SCRIPT), "--help"], capture_output=True).returncode == 0
    assert (dt.datetime.now() - started).total_seconds() / 3 < 1.0
