"""bench/e2e.py as `make bench` runs it, on a 10,000-invoice shop for two nights.

It asserts that the benchmark completes and prints every stage with a baseline ratio, the time
outside tasks and the nights side by side; never a time (the machines that run the tests are
shared). The growth table across sizes is tested on recorded numbers in test_report.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.timeline import ORDER
from tests.conftest import require_tool
from tests.support.paths import PROJECT

BASELINES = {
    "extract": "sqlite3 CLI export",
    "source GX": "same checks in pandas",
    "outgoing GX": "same checks in pandas",
    "seal": "age CLI",
    "deliver": "OpenSSH sftp",
}
NUMBER = r"[\d,]+(?:\.\d+)?"


def test_the_benchmark_prints_every_stage_and_a_ratio_per_baseline(tmp_path: Path) -> None:
    for tool, package in (("sqlite3", "sqlite3"), ("age", "age"), ("sftp", "openssh-client")):
        require_tool(tool, package)
    require_tool("sshd", "openssh-server")
    command = [sys.executable, "-m", "bench.e2e", "--sizes", "10k", "--nights", "2"]
    done = subprocess.run(
        [*command, "--shops", str(tmp_path / "shops")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout
    assert done.returncode == 0, output[-3000:] + done.stderr[-3000:]
    size = output[output.index("== 10k invoices") :]

    for stage in ORDER:
        row = re.search(rf"^{re.escape(stage)} +({NUMBER}) +({NUMBER}) +({NUMBER}) ", size, re.M)
        assert row, f"no row for stage {stage}:\n{size}"
        if stage in BASELINES:
            ratio = rf"^{re.escape(stage)} .*{re.escape(BASELINES[stage])} +{NUMBER} +{NUMBER}×$"
            assert re.search(ratio, size, re.M), f"no ratio for {stage}:\n{size}"
    assert re.search(rf"^  → extract +{NUMBER} ", size, re.M)  # start-up, outside tasks
    assert re.search(rf"^inside tasks {NUMBER} s, outside tasks {NUMBER} s \(\d+% ", size, re.M)
    assert "pandas baseline and GX agree on every expectation" in size
    # The nights side by side, the second measured against the first.
    assert re.search(rf"^handover run s +{NUMBER} +{NUMBER} +{NUMBER}$", size, re.M)
    assert re.search(r"^state\.db MiB after +", size, re.M)
