"""Recalls and updates: the first step of every run, and all of `handover recalls`.

Before any new case is handed over (stopping collection is urgent), every case at an agency is
compared with the shop's facts now (`handover.run.changes`), and each agency gets one
recall/update drop with what changed (`handover.run.recall_drop`): its waiting recall drops
first, then the new one, delivered and recorded exactly like a handover drop, by the same tasks.
The flow parameters and task results carry no personal data; the facts live in DataFrames only,
and every log line is scrubbed against this batch's names and addresses.

`flows.nightly` imports this module inside its run (this module imports the tasks of that one).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
from prefect import task

from flows.nightly import TASK_OPTIONS, Delivered, Run, _deliver_and_record
from handover.config import Agency, Config
from handover.crypto.keys import PseudonymKey
from handover.errors import DeliveryError, HandoverError
from handover.run import changes as compare
from handover.run import extract as source
from handover.run import recall_drop
from redaction.logs.log_scrubbing import scrub_logs
from redaction.logs.safe_errors import scrubbed
from redaction.logs.scrub import Scrubber


@dataclass
class Recalled:
    """What the step did: counts (no personal data), and the agencies whose drops wait."""

    counts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, HandoverError]] = field(default_factory=list)


@task(name="extract cases at agencies", **TASK_OPTIONS)
@scrubbed
def extract_open(config: Config, invoice_ids: list[str], as_of: dt.date) -> dict[str, pd.DataFrame]:
    return source.extract_invoices(
        config.source_url,
        invoice_ids,
        as_of,
        minor_units_confirmed=config.confirm_minor_units,
        dunning_levels=config.dunning_levels,
    )


@task(name="compare with the shop", **TASK_OPTIONS)
@scrubbed
def compare_cases(
    open_cases: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
    config: Config,
    as_of: dt.date,
    digest_key: PseudonymKey,
) -> tuple[compare.Changes, pd.DataFrame]:
    found = compare.compare(
        open_cases,
        frames,
        as_of=as_of,
        rules=config.rules,
        agencies={a.name: a for a in config.agencies},
        digest_key=digest_key,
    )
    return compare.check(found)


encrypt = task(name="encrypt recalls", **TASK_OPTIONS)(scrubbed(recall_drop.seal_messages))


@task(name="recalls", task_run_name="recalls to {agency.name}", **TASK_OPTIONS)
def recalls_to_agency(
    run: Run, agency: Agency, messages: pd.DataFrame, cases: pd.DataFrame
) -> Delivered:
    """One agency's recalls and updates: its waiting recall drops in order, then the new one."""
    got = Delivered()
    for waiting in run.store.waiting_drops(agency.name, kind="recall"):
        run.logger.info(
            "%s: delivering recall drop %s of an earlier run", agency.name, waiting.drop_id
        )
        missing = [path.name for path in waiting.files if not path.is_file()]
        if missing:
            raise DeliveryError(
                f"recall drop {waiting.drop_id} waits for delivery, but {', '.join(missing)} is "
                f"missing from {waiting.directory}; restore the outbox from backup, or, once the "
                f"agency confirms it does not hold the drop, `handover drops abandon "
                f"{waiting.drop_id}` (its messages then go into the next drop)"
            )
        got.cases += _deliver_and_record(run, waiting, agency)
        got.drop_ids.append(waiting.drop_id)
    if messages.empty:
        return got
    drop = recall_drop.prepare(
        run.store,
        run_id=run.run_id,
        config=run.config,
        agency=agency,
        as_of=run.as_of,
        keys=run.keys,
        messages=messages,
        cases=cases,
        seal=encrypt,
    )
    run.logger.info(
        "%s: sealed recall drop %s: %d messages about %d cases",
        agency.name,
        drop.drop_id,
        len(messages),
        drop.case_count,
    )
    got.cases += _deliver_and_record(run, drop, agency)
    got.drop_ids.append(drop.drop_id)
    return got


def send_recalls(
    run: Run, agencies: tuple[Agency, ...], dry_run: bool, delivered: dict[str, Delivered]
) -> Recalled:
    """Compare the cases at `agencies` with the shop and tell each agency what changed.

    A comparison that cannot be made stops the run (raises): nothing is handed over while it
    is unknown what must be recalled. An agency whose drop does not arrive is named in
    `failures`; its messages are made again by the next run.
    """
    open_cases = run.store.open_cases([agency.name for agency in agencies])
    waiting = {a.name for a in agencies if run.store.waiting_drops(a.name, kind="recall")}
    run.logger.info("Recalls: %d cases at agencies to compare", len(open_cases))
    if open_cases.empty and not waiting:
        return Recalled()
    if open_cases.empty:  # only drops of an earlier run to deliver
        return _send(run, agencies, dry_run, delivered, waiting, None, Recalled())
    frames = extract_open(run.config, list(open_cases.index), run.as_of)
    with scrub_logs(Scrubber.from_frames(frames), stage="flow 'handover' (recalls)"):
        changes, held = compare_cases(
            open_cases, frames, run.config, run.as_of, run.keys.change_digest_key()
        )
        run.store.record_quarantine(run.run_id, "recall", held)
        result = Recalled({**changes.counts(), "recalls_held_back": len(held)})
        run.logger.info("Recalls: %s", ", ".join(f"{k}={v}" for k, v in result.counts.items()))
        return _send(run, agencies, dry_run, delivered, waiting, changes, result)


def _send(
    run: Run,
    agencies: tuple[Agency, ...],
    dry_run: bool,
    delivered: dict[str, Delivered],
    waiting: set[str],
    changes: compare.Changes | None,
    result: Recalled,
) -> Recalled:
    """Each agency with something to receive gets it, in its own task, at the same time."""
    if dry_run:
        run.logger.info("Recalls: nothing sent (dry run)")
        return result
    if changes is not None and not changes.baselines.empty:
        result.counts["baselines_recorded"] = run.store.record_baselines(
            run.run_id, changes.baselines
        )
    futures = {}
    for agency in agencies:
        messages, cases = changes.of_agency(agency.name) if changes else (_none(), _none())
        if messages.empty and agency.name not in waiting:
            continue
        futures[agency.name] = recalls_to_agency.submit(run, agency, messages, cases)
    for name, future in futures.items():
        try:
            got = future.result()
        except HandoverError as exc:
            run.logger.error("%s: %s; its recalls and updates wait for the next run", name, exc)
            result.failures.append((f"{name} (recalls and updates)", exc))
            continue
        if got.drop_ids:
            result.counts[f"recalls_delivered.{name}"] = got.cases
            mine = delivered.setdefault(name, Delivered())
            mine.drop_ids += got.drop_ids
    return result


def _none() -> pd.DataFrame:
    return pd.DataFrame()
