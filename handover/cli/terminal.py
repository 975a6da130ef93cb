"""One line per error on the terminal while a flow runs; Prefect's tracebacks go to its log only.

Left alone, Prefect's console handler prints a failing run's error up to four times, twice under
a full traceback ("Task run failed with exception …", "Encountered exception during execution
…", "Finished in state Failed(…)"), before the console script's own `handover: error: …` line,
which names the error once. `one_line_errors()` puts two things on every handler that writes
to the terminal (stderr or stdout), and on no other:

- a filter that withholds the error reports of flow and task runs (ERROR records of
  `prefect.flow_runs` and `prefect.task_runs`, and "Finished in state Failed/Crashed"): the
  final line repeats each of them;
- a formatter that leaves out tracebacks and stack traces of the records it does show.

Nothing else changes: Prefect's API handler (the flow run's logs in the UI and database) and any
file handler the user configured still get every record, traceback included, scrubbed as before
(`redaction.logs.log_scrubbing`). The filter reads records and never changes them: the same
record object goes on to the handlers after the console's. `HANDOVER_DEBUG=1` skips all this.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
_FAILED_STATE = re.compile(r"Finished in state (Failed|Crashed)\b")


class HideRunErrors(logging.Filter):
    """Withhold the error reports of flow and task runs; the final `handover: error:` names them."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a run's ERROR record or its "Finished in state Failed" line."""
        if not record.name.startswith(RUN_LOGGERS):
            return True
        if record.levelno >= logging.ERROR:
            return False
        return not _FAILED_STATE.match(str(record.msg))


class WithoutTraceback(logging.Formatter):
    """Format with `inner`, leaving out the traceback and stack of the record (on a copy)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        """The record's line(s) as `inner` writes them, without traceback or stack."""
        if record.exc_info or record.exc_text or record.stack_info:
            # Later handlers (Prefect's API, a log file) still need the traceback: copy.
            record = copy.copy(record)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return self.inner.format(record)


def terminal_handlers() -> list[logging.StreamHandler]:
    """Every handler attached now that writes to stderr or stdout (no file handler)."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    terminals = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)}
    found: dict[int, logging.StreamHandler] = {}
    for logger in loggers:
        for handler in list(logger.handlers):
            if (
                isinstance(handler, logging.StreamHandler)
                and not isinstance(handler, logging.FileHandler)
                and id(handler.stream) in terminals
            ):
                found.setdefault(id(handler), handler)
    return list(found.values())


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Inside the block, terminal handlers show no run error reports and no tracebacks.

    Prefect sets up its handlers when it is imported, so this imports it first (set Prefect's
    environment before). With `HANDOVER_DEBUG=1` it changes nothing: Prefect prints the full
    tracebacks.
    """
    if os.environ.get("HANDOVER_DEBUG"):
        yield
        return
    import prefect  # noqa: F401  (configures Prefect's logging handlers)

    hide = HideRunErrors()
    changed = [(handler, handler.formatter) for handler in terminal_handlers()]
    for handler, formatter in changed:
        handler.addFilter(hide)
        handler.setFormatter(WithoutTraceback(formatter))
    try:
        yield
    finally:
        for handler, formatter in changed:
            handler.removeFilter(hide)
            handler.setFormatter(formatter)
