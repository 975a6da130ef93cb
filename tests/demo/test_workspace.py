"""`handover demo`: a fresh workspace, two agencies on the embedded SFTP server, real drops."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

from handover.contract import COLUMNS, read_csv_rows
from handover.demo.workspace import AGENCIES, Workspace, run_demo
from tests.conftest import require_tool
from tests.support.cli import SCRIPT


def test_demo_delivers_a_drop_per_agency_and_nothing_twice(prefect, tmp_path, capsys):
    ws = Workspace(tmp_path / "demo")
    assert run_demo(ws.root, customers=400, seed=3) == 0
    out = capsys.readouterr().out
    assert "handed_over.inkasso-demo" in out and "ssh-keygen -Y verify" in out
    age = require_tool("age", "age")
    kinds = {}
    for agency in AGENCIES:
        (payload,) = ws.inbox(agency).glob("*.csv.age")
        assert payload.with_name(payload.name.replace(".csv.age", ".manifest.json.sig")).exists()
        plain = subprocess.run(
            [age, "-d", "-i", str(ws.identity(agency)), str(payload)],
            check=True,
            capture_output=True,
        ).stdout
        rows = read_csv_rows(plain)
        assert list(rows[0]) == list(COLUMNS)
        kinds[agency] = {r["debtor_kind"] for r in rows}
    # Routing: consumers to one agency, businesses to the other.
    assert kinds == {"inkasso-demo": {"consumer"}, "inkasso-b2b": {"business"}}

    assert run_demo(ws.root, customers=400, seed=3) == 0
    for agency in AGENCIES:
        assert len(list(ws.inbox(agency).glob("*.csv.age"))) == 1


def test_the_printed_commands_work_pasted_into_a_new_shell(prefect, tmp_path):
    """`handover demo` as the user runs it; each command it prints, in `env -i bash -c` from
    another folder: no venv activated, no PATH beyond the system's, no HANDOVER_* variables."""
    from prefect.settings import PREFECT_API_URL

    require_tool("age", "age")  # the printed lines run the system's tools from a bare PATH
    require_tool("ssh-keygen", "openssh-client")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOVER_", "PREFECT_"))}
    env.update(PREFECT_API_URL=PREFECT_API_URL.value(), PREFECT_HOME=str(tmp_path / "ph"))
    ws = Workspace(tmp_path / "my demo")  # a space in the path: every path must be quoted
    done = subprocess.run(
        [str(SCRIPT), "demo", "--workspace", str(ws.root), "--customers", "300", "--seed", "5"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "opens every complete drop" in line)
    tool, stock = lines[start + 1].strip(), [line.strip() for line in lines[start + 3 : start + 6]]
    assert lines[start + 2] == "or with stock tools alone:"
    assert tool.startswith(f"{shlex.quote(str(SCRIPT))} agency open ")
    elsewhere = tmp_path / "new-shell"
    elsewhere.mkdir()

    def pasted(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["env", "-i", "bash", "-c", command],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=120,
        )

    verify, checksum, decrypt = (pasted(command) for command in stock)
    assert verify.returncode == 0, verify.stderr
    assert 'Good "handover-manifest" signature' in verify.stdout + verify.stderr
    (payload,) = ws.inbox(AGENCIES[0]).glob("*.csv.age")
    manifest = json.loads(
        payload.with_name(payload.name.replace(".csv.age", ".manifest.json")).read_text()
    )
    assert checksum.returncode == 0 and checksum.stdout.split()[0] == manifest["payload"]["sha256"]
    assert decrypt.returncode == 0, decrypt.stderr
    assert (elsewhere / "cases.csv").read_text(encoding="utf-8").startswith("case_ref,")

    opened = pasted(tool)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert f"opened {payload.name.removesuffix('.csv.age')}" in opened.stdout
    assert list(ws.opened(AGENCIES[0]).glob("*.csv"))

    # The hint for a plain `handover` works as printed, too.
    (hint,) = [line for line in lines if line.startswith("(To call it plain `handover`: ")]
    activate = hint.removeprefix("(To call it plain `handover`: ").removesuffix(")")
    assert pasted(f"{activate} && handover --version").stdout.startswith("handover ")
