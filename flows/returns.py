"""The returns flow: take the agencies' return files (agency → shop), on its own or in a run.

The logic is plain Python in `handover/returns/` (fetch, check, decrypt, ingest once, file away);
here each agency with `[agencies.NAME.returns]` is served by its own task, at the same time as
the others, and the outcome of every file is logged by its return id. The nightly run takes the
return files this way before it decides on new handovers (`flows.nightly`); `handover returns
fetch` runs this flow alone. Parameters are a config path and an agency name: no personal data.

A refused return file, or an agency whose returns folder cannot be read, never stops the other
agencies or a run's handovers; the run ends failed (exit 1) with one line naming each, so it
is seen (and alerted on, `handover alerts`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.home import config_file
from handover.config import Agency, load_config
from handover.crypto.keys import KeyDirectory
from handover.errors import ConfigError, HandoverError, ReturnRefused
from handover.ledger.store import StateStore, open_store
from handover.returns import ingest
from handover.run.preflight import preflight
from redaction.logs.log_scrubbing import scrub_logs
from redaction.logs.safe_errors import scrubbed
from redaction.logs.scrub import GENERIC

TASK_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="take-returns", task_run_name="take the return files of {agency.name}", **TASK_OPTIONS)
@scrubbed
def take(
    store: StateStore,
    run_id: str,
    agency: Agency,
    keys: KeyDirectory,
    today: dt.date,
    timeout: float,
) -> ingest.AgencyReturns:
    return ingest.take_returns(store, run_id, agency, keys, today=today, timeout=timeout)


@dataclass
class ReturnsTaken:
    """What taking the return files of a run's agencies did: counts, and what must be seen."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # one line each, naming the file or agency
    unread: int = 0  # agencies whose returns folder could not be read

    def error(self) -> HandoverError:
        """One error naming every refused file and every agency whose folder was not read."""
        text = "\n".join(self.problems)
        return HandoverError(text) if self.unread else ReturnRefused("file", text)


def take_all(
    store: StateStore,
    run_id: str,
    agencies: Sequence[Agency],
    keys: KeyDirectory,
    *,
    today: dt.date,
    timeout: float,
    logger: Any,
) -> ReturnsTaken:
    """Take the return files of every agency in `agencies` that sends them, in parallel."""
    futures = {
        agency.name: take.submit(store, run_id, agency, keys, today, timeout)
        for agency in agencies
        if agency.returns is not None
    }
    taken = ReturnsTaken()
    for name, future in futures.items():
        try:
            got = future.result()
        except HandoverError as exc:
            line = f"return files of agency {name} were not taken: {exc}"
            logger.error(line)
            taken.problems.append(line)
            taken.unread += 1
            continue
        for outcome in got.outcomes:
            if outcome.status == ingest.REFUSED:
                logger.error("%s", outcome.message)
                taken.problems.append(outcome.message)
            elif outcome.status in ingest.WARNINGS:
                logger.warning("%s", outcome.message)
            else:
                logger.info("%s", outcome.message)
        taken.counts[f"returns.new_events.{name}"] = got.new_events
        if got.refused:
            taken.counts[f"returns.refused.{name}"] = len(got.refused)
    return taken


@flow(name="returns", persist_result=False, log_prints=False)
def returns(config_path: str, agency: str | None = None) -> dict[str, int]:
    """Take the return files of every agency that sends them (or of `agency` only).

    Holds the state store's lease like a handover run. Returns the new events per agency
    (`returns.new_events.<agency>`) and the refused files (`returns.refused.<agency>`).
    """
    from handover.run.decide import today_berlin

    with scrub_logs(GENERIC, stage="flow 'returns'"):
        config = load_config(config_file(config_path))
        agencies = tuple(a for a in config.in_scope(agency) if a.returns is not None)
        if not agencies:
            which = f"agency {agency} has" if agency else "no agency has"
            raise ConfigError(
                f"{config.path}: {which} no [agencies.NAME.returns] table: there are no return "
                "files to take; add it with the agency's signing key (see README, Returns)"
            )
        preflight(config, agencies, dry_run=False)
        keys = KeyDirectory(config.key_dir)
        store = open_store(config)
        run_id = str(flow_run.id or uuid.uuid4())
        today = today_berlin()
        store.start_run(
            run_id,
            as_of=today,
            agency=agency or "*",
            dry_run=False,
            data={"flow": "returns", "agencies": [a.name for a in agencies]},
            lock_wait_seconds=config.run.lock_wait_seconds,
        )
        taken, failure = ReturnsTaken(), None
        try:
            taken = take_all(
                store,
                run_id,
                agencies,
                keys,
                today=today,
                timeout=config.run.timeout_seconds,
                logger=get_run_logger(),
            )
            counts = taken.counts
        except Exception as exc:
            # Only the error's type is recorded: a message might quote data.
            failure, counts = exc, {"error": type(exc).__name__}
        failed = failure is not None or bool(taken.problems)
        store.finish_run(
            run_id,
            status="failed" if failed else "succeeded",
            counts=counts,
            event="run_failed" if failed else "run_finished",
        )
        if failure is not None:
            raise failure
        if taken.problems:
            raise taken.error()
        return counts
