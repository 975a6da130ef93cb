"""`handover run` ends without Python's final garbage collection (about a second of every run)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from handover.cli.common import no_collection_at_exit

class Cycle:
    def __del__(self):
        print("collected", flush=True)

gc.disable()  # nothing is collected before the process ends
first = Cycle(); first.me = first
del first
{register}
"""


def _output(register: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(register=register)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_objects_of_the_run_are_not_collected_at_exit() -> None:
    # Without it, the shutdown collects the cycle (and every other object of the process).
    assert _output("") == "collected\n"
    assert _output("no_collection_at_exit()") == ""
