"""`handover demo`: a fresh workspace, two agencies on the embedded SFTP server, real drops."""

from __future__ import annotations

import subprocess

from handover.contract import COLUMNS, read_csv_rows
from handover.demo.workspace import AGENCIES, Workspace, run_demo
from tests.conftest import require_tool


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
