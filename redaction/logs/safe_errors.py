"""Exceptions that may leave a task or flow: scrubbed HandoverErrors, never a raw library message.

Prefect keeps an exception's message in task and flow run states and in events, where no log
filter reaches. `@scrubbed` (put it under `@task`) re-raises whatever the body raises, `from
None`, so neither the original nor its cause or context travels along:

- a HandoverError keeps its class, `transient` and simple attributes; its message is scrubbed;
- any other exception becomes `UnexpectedError`, naming the stage, the exception's type and where
  it was raised, without its message: a library error (pandas echoing a row) may quote data the
  scrubber cannot recognise, such as a birth date, an amount or a note.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from handover.errors import HandoverError, UnexpectedError
from redaction.logs.scrub import Scrubber, current_scrubber

P = ParamSpec("P")
R = TypeVar("R")

_PROJECT = Path(__file__).resolve().parents[2]


def safe_error(exc: BaseException, stage: str, scrubber: Scrubber | None = None) -> HandoverError:
    """The exception to raise instead of `exc`, which was raised in `stage`."""
    if scrubber is None:
        scrubber = current_scrubber()
    if isinstance(exc, HandoverError):
        return _rebuilt(exc, scrubber)
    return UnexpectedError(
        f"{stage} failed with {type(exc).__name__} {_origin(exc)}; its message is withheld "
        "because it may quote personal data. Call the stage's function outside the flow on "
        "the same data to see it, or report this line."
    )


def scrubbed(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a task body so that only scrubbed HandoverErrors leave it (sync or async).

    For a flow, use `log_scrubbing.scrub_logs` inside its body instead: it replaces escaping
    exceptions the same way, and Prefect derives a flow's version from its function's file.
    """
    stage = f"task '{fn.__name__}'"

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                error = safe_error(exc, stage)
            # Raised outside the except block, so the original is not even its __context__.
            raise error from None

        run_async.__prefect_task_source__ = fn  # type: ignore[attr-defined]
        return cast(Callable[P, R], run_async)

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = safe_error(exc, stage)
        raise error from None

    # Prefect then keys and hashes the task by `fn`, not by this wrapper's code.
    run.__prefect_task_source__ = fn  # type: ignore[attr-defined]
    return run


def _rebuilt(exc: HandoverError, scrubber: Scrubber) -> HandoverError:
    """A copy of `exc` of the same class, made without calling its __init__, message scrubbed."""
    cls = type(exc)
    copy = cls.__new__(cls)
    copy.args = (scrubber.scrub(str(exc)),)
    for name, value in vars(exc).items():
        # Flags and codes such as `transient` or `failure`; objects could hold anything.
        if value is None or isinstance(value, bool | int | float):
            setattr(copy, name, value)
        elif isinstance(value, str):
            setattr(copy, name, scrubber.scrub(value))
    return copy


def _origin(exc: BaseException) -> str:
    """Where `exc` was raised, and the innermost project frame it passed: files and lines only."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "(no traceback)"
    ours = [
        f
        for f in frames
        if f.filename.startswith(str(_PROJECT))
        and "site-packages" not in f.filename
        and f.filename != __file__  # the wrapper's own frame says nothing
    ]
    text = f"raised at {_where(frames[-1])}"
    if ours and ours[-1] is not frames[-1]:
        text += f", called from {_where(ours[-1])}"
    return text


def _where(frame: traceback.FrameSummary) -> str:
    path = Path(frame.filename)
    return f"{path.parent.name}/{path.name}:{frame.lineno} in {frame.name}"
