"""Scrub log records before any handler writes them (Prefect's API, the console, a file).

`scrub_logs(scrubber)` adds a filter to every handler that exists when it is entered: the root
logger's and those of every named logger, among them Prefect's `APILogHandler` on
`prefect.flow_runs` and `prefect.task_runs`. Handlers, not loggers, get the filter: a logger's
filters do not see records that propagate up from its children. The filter renders the message
(%-style arguments included) and any traceback, scrubs the text, and leaves the record with the
scrubbed text only, so each later handler and formatter formats clean text.

The context manager also makes its scrubber the current one (`scrub.current_scrubber`), which
`redaction.safe_errors` uses for exception messages, and replaces an exception that leaves the
block by a scrubbed one: after the block the batch's values are no longer known.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from redaction.logs.safe_errors import safe_error
from redaction.logs.scrub import Scrubber, using

_FORMATTER = logging.Formatter()
_APPLIED = "handover_scrubbed_by"  # record attribute: ids of the scrubbers already applied


class ScrubbingFilter(logging.Filter):
    """A handler filter that scrubs each record's message, arguments and traceback in place."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub `record` (once per scrubber, however many handlers it passes); keep it."""
        applied: tuple[int, ...] = getattr(record, _APPLIED, ())
        if id(self.scrubber) not in applied:
            scrub_record(record, self.scrubber)
            setattr(record, _APPLIED, (*applied, id(self.scrubber)))
        return True


def scrub_record(record: logging.LogRecord, scrubber: Scrubber) -> None:
    """Replace message, arguments, traceback and stack of `record` by scrubbed text."""
    try:
        message = record.getMessage()
    except Exception:
        # Arguments that do not fit the format: keep both, scrubbed, rather than lose the line.
        message = f"{record.msg} {record.args!r}"
    record.msg = scrubber.scrub(str(message))
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = _FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrubber.scrub(record.exc_text)
    # Formatters append exc_text when it is set; without exc_info none renders the raw exception.
    record.exc_info = None
    if record.stack_info:
        record.stack_info = scrubber.scrub(record.stack_info)
    if isinstance(getattr(record, "message", None), str):
        record.message = record.msg


@contextmanager
def scrub_logs(scrubber: Scrubber, stage: str = "flow") -> Iterator[Scrubber]:
    """Scrub every log record and escaping exception with `scrubber` inside the block.

    `stage` names the block in the message of a replaced exception (see `safe_error`).
    """
    log_filter = ScrubbingFilter(scrubber)
    handlers = _all_handlers()
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        with using(scrubber):
            yield scrubber
    except Exception as exc:
        raise safe_error(exc, stage, scrubber) from None
    finally:
        for handler in handlers:
            handler.removeFilter(log_filter)


def _all_handlers() -> list[logging.Handler]:
    """Every handler attached to the root logger or to a named logger right now."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    seen: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in list(logger.handlers):
            seen.setdefault(id(handler), handler)
    return list(seen.values())
