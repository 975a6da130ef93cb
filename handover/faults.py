"""Named crash points, so tests can kill a real run at an exact stage boundary.

`crash_point(name)` does nothing unless the environment variable `HANDOVER_STOP_AT` names it
(comma-separated names allowed). Then the process stops itself with SIGSTOP at that point, and
the test, seeing it stopped, sends SIGKILL (a crash) or SIGCONT (a pause, e.g. to start a
second run meanwhile). Production never sets the variable.

The points, in the order a run passes them:
  run_started     the lease is taken, nothing extracted yet
  drop_prepared   a drop, its cases and consent log are recorded; nothing sealed yet
  payload_sealed  the encrypted payload is on disk; manifest and signature are not
  drop_sealed     all files on disk, before they are recorded as sealed
  drop_recorded   recorded as sealed, before delivery
  payload_sent    the payload is in the agency's inbox; manifest and signature are not
  files_sent      all files are in the inbox, before the drop is recorded as delivered
  drop_committed  recorded as delivered, before the run ends
  run_closed      the run has ended and signed the log, before the head files go out
"""

from __future__ import annotations

import os
import signal

VARIABLE = "HANDOVER_STOP_AT"


def crash_point(name: str) -> None:
    """Stop this process here if the test asked for it; otherwise nothing."""
    wanted = os.environ.get(VARIABLE)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGSTOP)
