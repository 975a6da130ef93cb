"""The console script's exit codes, one place for the code, `handover --help` and the README."""

from __future__ import annotations

OK = 0
ERROR = 1  # a HandoverError: one line names what to fix
USAGE = 2  # argparse's own code for a bad command line
UNVERIFIABLE = 3  # `audit verify` could not check (a key or witness file is missing)
WAITING = 4  # `status --check`: a drop is waiting for delivery
BUG = 70  # an unexpected exception (sysexits' EX_SOFTWARE): report it

EPILOG = f"""\
exit codes:
  {OK}   done
  {ERROR}   an error: one line per problem, `handover: error: …`, naming what to fix
  {USAGE}   usage: an unknown command or option, a missing or malformed argument
  {UNVERIFIABLE}   `audit verify` could not check (a key or witness file is missing; not tampering)
  {WAITING}   `status --check`: a drop is waiting for delivery
  {BUG}  a bug (an unexpected exception, named by type and place; HANDOVER_DEBUG=1 shows it)

--json (explain, status, policy check, keys show, quarantine list, audit show) prints one JSON
document on stdout; on an error stdout stays empty and stderr has the error line.
"""
