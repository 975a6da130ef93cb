"""A second process that uses the ledger, for tests of what two real processes do at once.

    python -m tests.support.ledger_worker hold URL RUN_ID SECONDS     take the lease, hold it
    python -m tests.support.ledger_worker start URL RUN_ID WAIT       try to start a run
    python -m tests.support.ledger_worker append URL COMMAND_ID N     N closed audit entries

It prints one line per step (`started`, `finished`, `locked: …`, `appended N`) and flushes, so
the test can follow it.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from handover.errors import RunLocked
from tests.support.ledger import signed_store


def main(argv: list[str]) -> int:
    command, url, name = argv[:3]
    store = signed_store(url)
    if command == "append":
        for n in range(int(argv[3])):
            store.record_event(name, "concurrent_write", {"n": n})
        print(f"appended {argv[3]}", flush=True)
        return 0
    wait = float(argv[3]) if command == "start" else 0
    try:
        store.start_run(
            name,
            as_of=dt.date(2026, 6, 1),
            agency="*",
            dry_run=False,
            data={},
            lock_wait_seconds=wait,
        )
    except RunLocked as exc:
        print(f"locked: {exc}", flush=True)
        return 3
    print("started", flush=True)
    if command == "hold":
        time.sleep(float(argv[3]))
    store.finish_run(name, status="succeeded", counts={}, event="run_finished")
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
