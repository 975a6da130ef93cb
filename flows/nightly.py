"""The nightly handover flow: the story of one run, stage by stage.

Prefect lives only here. Each task wraps a plain function of `handover` or `redaction`; the flow
sequences them, sets retries, and logs counts. Flow parameters are a config path, a date, an
agency name and a flag: no personal data. Task results are never persisted and never cached
(hashing a large DataFrame for a cache key costs seconds and would fingerprint personal data).

The run holds the state store's lease from start to end, so no other run prepares or delivers
meanwhile. It starts with the agencies' return files (`flows.returns`), then recalls and
updates (`flows.recalls`: the cases at the agencies compared with the shop's facts, one
recall/update drop per agency), since stopping collection is urgent; `handover recalls` runs
that step alone (`recalls_only`). Every agency is served by its own task, at the same time as
the others: drops left waiting by an earlier run first, then the new drop. One agency's fault
or retries never hold back another's; its cases wait for the next run.
"""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows import returns
from flows.home import config_file
from handover import contract
from handover.config import Agency, Config, load_config
from handover.crypto import envelope
from handover.crypto.keys import KeyDirectory, PseudonymKey, load_pseudonym_key
from handover.errors import DeliveryError, HandoverError
from handover.faults import crash_point
from handover.ledger import witness
from handover.ledger.audit import Checkpoint
from handover.ledger.store import PreparedDrop, StateStore, open_store
from handover.run import decide as rules
from handover.run import deliver as sftp
from handover.run import extract as source
from handover.run import publish, seal
from handover.run.preflight import preflight
from handover.run.quarantine import QuarantineResult, quarantine
from handover.run.validate import warm_up
from redaction.logs.log_scrubbing import scrub_logs
from redaction.logs.safe_errors import scrubbed
from redaction.logs.scrub import GENERIC, Scrubber
from redaction.rows.policy import minimise

TASK_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


def _transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a delivery only when the failure may pass (network), never a host key mismatch."""
    try:
        state.result()
    except HandoverError as exc:
        return exc.transient
    except Exception:
        return False
    return False


@task(name="extract", **TASK_OPTIONS)
@scrubbed
def extract(config: Config, as_of: dt.date) -> dict[str, pd.DataFrame]:
    return source.extract(
        config.source_url,
        as_of,
        minor_units_confirmed=config.confirm_minor_units,
        dunning_levels=config.dunning_levels,
    )


@task(name="validate", **TASK_OPTIONS)
@scrubbed
def validate(frames: dict[str, pd.DataFrame], suite: str) -> QuarantineResult:
    return quarantine(frames, suite, max_share=None)


@task(name="eligibility", **TASK_OPTIONS)
@scrubbed
def decide(
    frames: dict[str, pd.DataFrame],
    config: Config,
    as_of: dt.date,
    in_drops: set[str],
    on_review: set[str],
) -> rules.Decision:
    return rules.decide(
        frames,
        as_of=as_of,
        rules=config.rules,
        agencies=config.agencies,
        handed_over=in_drops,
        on_review=on_review,
    )


@task(name="minimise", **TASK_OPTIONS)
@scrubbed
def minimise_cases(
    decision: rules.Decision, frames: dict[str, pd.DataFrame], agency: Agency, key: bytes
) -> pd.DataFrame:
    return minimise(decision.eligible_for(agency.name), frames["consents"], agency, key)


# Sealing needs nothing from the flow but a task name: the plain function is the task.
encrypt = task(name="encrypt", **TASK_OPTIONS)(scrubbed(seal.seal_rows))


@task(name="deliver", retry_condition_fn=_transient_only, **TASK_OPTIONS)
@scrubbed
def deliver(drop: PreparedDrop, agency: Agency, keys: KeyDirectory, timeout: float) -> sftp.Receipt:
    return sftp.deliver(drop.files, agency.sftp, keys.sftp_client_key(), timeout=timeout)


@task(name="record", **TASK_OPTIONS)
@scrubbed
def record(store: StateStore, run_id: str, drop: PreparedDrop, receipt: sftp.Receipt) -> int:
    """Commit the delivered drop: its cases now count as handed over, each one audited."""
    return store.commit_drop(
        run_id,
        drop.drop_id,
        {
            "host": receipt.host,
            "port": receipt.port,
            "inbox": receipt.inbox,
            "uploaded": list(receipt.files),
            "already_there": list(receipt.skipped),
            "found_at_agency": receipt.found_at_agency,
            "host_key": receipt.host_key_fingerprint,
        },
    )


@dataclass(frozen=True)
class Run:
    """What every stage of one run needs: configuration, keys, state store, date, logger."""

    run_id: str
    config: Config
    as_of: dt.date
    keys: KeyDirectory
    store: StateStore
    logger: Any


@dataclass
class Delivered:
    """What one agency received in this run."""

    cases: int = 0
    drop_ids: list[str] = field(default_factory=list)


@flow(name="handover", persist_result=False, log_prints=False)
def handover(
    config_path: str,
    as_of: str | None = None,
    agency: str | None = None,
    dry_run: bool = False,
    recalls_only: bool = False,
) -> dict[str, int]:
    """Hand the eligible overdue cases of one day to their agencies (or to `agency` only).

    First, recalls and updates for the cases at the agencies; with `recalls_only`, nothing
    else. Returns the number of cases per reason code, `eligible`, `handed_over.<agency>`, and
    the messages per `type.reason` with `recalls_delivered.<agency>`.
    """
    with scrub_logs(GENERIC, stage="flow 'handover'"):
        if not recalls_only:
            warm_up()  # GX's import (seconds) in the background, while returns, recalls, extract
        config = load_config(config_file(config_path))
        agencies = config.in_scope(agency)
        day = rules.check_as_of(dt.date.fromisoformat(as_of) if as_of else rules.today_berlin())
        # `handover run` checked this already; a deployment started in Prefect has not.
        preflight(config, agencies, dry_run=dry_run)
        keys = KeyDirectory(config.key_dir)
        run = Run(
            run_id=str(flow_run.id or uuid.uuid4()),
            config=config,
            as_of=day,
            keys=keys,
            store=open_store(config),
            logger=get_run_logger(),
        )
        run.store.start_run(
            run.run_id,
            as_of=day,
            agency=agency or "*",
            dry_run=dry_run,
            data={
                "as_of": day.isoformat(),
                "agencies": [a.name for a in agencies],
                "dry_run": dry_run,
                **({"recalls_only": True} if recalls_only else {}),
                "policy_version": config.policy_version,
                "policy_sha256": {a.name: config.policy_hash(a) for a in agencies},
            },
            lock_wait_seconds=config.run.lock_wait_seconds,
        )
        crash_point("run_started")
        delivered: dict[str, Delivered] = {}
        taken = returns.ReturnsTaken()
        failure: Exception | None = None
        try:
            counts = _hand_over(run, agencies, dry_run, delivered, taken, recalls_only)
        except Exception as exc:
            # Only the error's type is recorded: a message might quote data.
            failure, counts = exc, {"error": type(exc).__name__}
        if failure is None and taken.problems:
            failure = taken.error()  # the handovers are done; a refused return file must be seen
        # However the run ended, its last act is to close the audit log with a signed head.
        closing = run.store.finish_run(
            run.run_id,
            status="failed" if failure else "succeeded",
            counts=counts,
            event="run_failed" if failure else ("dry_run" if dry_run else "run_finished"),
        )
        crash_point("run_closed")
        if closing is not None:
            _send_heads(run, agencies, delivered, closing)
        # SQLite folds its write-ahead log into the database when the last connection closes;
        # `handover run` ends without collecting them (`no_collection_at_exit`), so close now.
        run.store.engine.dispose()
        if failure is not None:
            raise failure
        publish.publish(
            run_id=run.run_id,
            as_of=day.isoformat(),
            agency=agency or "all",
            counts=counts,
            dry_run=dry_run,
            drop_ids=[d for got in delivered.values() for d in got.drop_ids],
            audit_head=closing.head.as_manifest() if closing else None,
        )
        return counts


def _hand_over(
    run: Run,
    agencies: tuple[Agency, ...],
    dry_run: bool,
    delivered: dict[str, Delivered],
    taken: returns.ReturnsTaken,
    recalls_only: bool = False,
) -> dict[str, int]:
    """Take the agencies' return files, send recalls and updates, then extract, decide, and
    hand each agency its waiting and new drops; returns the counts.

    A refused return file (or an agency's unreadable returns folder) holds back no recall or
    handover: the run ends failed after its deliveries, naming it, so it is seen.
    """
    from flows.recalls import send_recalls  # it imports this module's tasks

    if not dry_run:
        for drop_id in seal.abandon_unsealed(run.store, run.run_id):
            run.logger.warning("Drop %s was never sealed (its run was killed): abandoned", drop_id)
        # First: a case the agency closed tonight is not recalled, and a dispute or complaint
        # it reported holds its case back before anything is decided.
        now = returns.take_all(
            run.store,
            run.run_id,
            agencies,
            run.keys,
            today=rules.today_berlin(),
            timeout=run.config.run.timeout_seconds,
            logger=run.logger,
        )
        taken.counts.update(now.counts)
        taken.problems.extend(now.problems)
        taken.unread += now.unread
    recalled = send_recalls(run, agencies, dry_run, delivered)
    counts = dict(recalled.counts)
    if not recalls_only:
        frames = extract(run.config, run.as_of)
        with scrub_logs(Scrubber.from_frames(frames), stage="flow 'handover'"):
            try:
                counts |= _decide_and_send(run, agencies, dry_run, delivered, frames)
            except HandoverError as exc:
                if not (recalled.failures or taken.problems):
                    raise
                if recalled.failures:
                    # One error naming every agency whose recalls or cases wait.
                    first = _failed(recalled.failures, len(agencies))
                    exc = DeliveryError(f"{first}; and {exc}")
                raise _with_returns(exc, taken) from None
    if recalled.failures:
        raise _with_returns(_failed(recalled.failures, len(agencies)), taken)
    return counts | taken.counts


def _with_returns(exc: HandoverError, taken: returns.ReturnsTaken) -> HandoverError:
    """`exc`, with the refused return files of the run named after it."""
    if not taken.problems:
        return exc
    kind = type(exc) if isinstance(exc, DeliveryError) else HandoverError
    return kind("\n".join([str(exc), *taken.problems]))


def _decide_and_send(
    run: Run,
    agencies: tuple[Agency, ...],
    dry_run: bool,
    delivered: dict[str, Delivered],
    frames: dict[str, pd.DataFrame],
) -> dict[str, int]:
    max_share = run.config.max_quarantine_share
    run.logger.info("Extracted %d cases due before %s", len(frames["invoices"]), run.as_of)
    checked = validate(frames, "source")
    run.store.record_quarantine(run.run_id, "source", checked.quarantined)
    run.logger.info(checked.summary())
    checked.enforce_share(max_share)
    # Where the source suite held cases back, `kept` holds copies; the extracted frames are
    # not read again, so emptying the caller's dict frees them before the rules run.
    kept = dict(checked.kept)
    frames.clear()
    frames = kept

    decision = decide(frames, run.config, run.as_of, run.store.in_drops(), run.store.on_review())
    counts = decision.reason_counts()
    counts["quarantined.source"] = len(checked.quarantined)
    run.store.record_decisions(run.run_id, decision.reasons(), decision.cases["agency"], counts)
    run.logger.info("Decisions: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))

    pseudonym = load_pseudonym_key(run.keys, run.config.key_settings.pseudonym_secret_block)
    outgoing: dict[str, pd.DataFrame] = {}
    for agency in agencies:  # every agency's rows are checked before anything is sent
        rows = minimise_cases(decision, frames, agency, pseudonym.key)
        checked = validate({"outgoing": contract.for_validation(rows)}, "outgoing")
        run.store.record_quarantine(run.run_id, "outgoing", checked.quarantined, agency=agency.name)
        run.logger.info("%s: %s", agency.name, checked.summary())
        checked.enforce_share(max_share)
        counts[f"quarantined.outgoing.{agency.name}"] = len(checked.quarantined)
        outgoing[agency.name] = rows.drop(index=checked.quarantined["invoice_id"])
    if dry_run:
        for agency in agencies:
            cases = len(outgoing[agency.name])
            run.logger.info("%s: %d cases, nothing sent (dry run)", agency.name, cases)
        return counts

    customers = decision.cases["customer_id"]
    futures = {
        agency.name: to_agency.submit(
            run, agency, outgoing[agency.name], customers, frames["consents"], pseudonym
        )
        for agency in agencies
    }
    failures: list[tuple[str, HandoverError]] = []
    for name, future in futures.items():
        try:
            got = future.result()
        except HandoverError as exc:
            run.logger.error("%s: %s; its cases wait for the next run", name, exc)
            failures.append((name, exc))
            continue
        mine = delivered.setdefault(name, Delivered())
        mine.cases += got.cases
        mine.drop_ids += got.drop_ids
        if got.drop_ids:
            counts[f"handed_over.{name}"] = got.cases
    if failures:
        raise _failed(failures, len(agencies))
    return counts


@task(name="agency", task_run_name="hand over to {agency.name}", **TASK_OPTIONS)
def to_agency(
    run: Run,
    agency: Agency,
    rows: pd.DataFrame,
    customers: pd.Series,
    consents: pd.DataFrame,
    pseudonym: PseudonymKey,
) -> Delivered:
    """One agency's share of the run: its waiting drops in order, then its new drop."""
    got = Delivered()
    for waiting in run.store.waiting_drops(agency.name):
        run.logger.info("%s: delivering drop %s of an earlier run", agency.name, waiting.drop_id)
        missing = [path.name for path in waiting.files if not path.is_file()]
        if missing:
            raise DeliveryError(
                f"drop {waiting.drop_id} waits for delivery, but {', '.join(missing)} is missing "
                f"from {waiting.directory}; restore the outbox from backup, or, once the agency "
                f"confirms it does not hold the drop, `handover drops abandon {waiting.drop_id}`"
                " (its cases then go into the next drop)"
            )
        got.cases += _deliver_and_record(run, waiting, agency)
        got.drop_ids.append(waiting.drop_id)
    if rows.empty:
        run.logger.info("%s: no new cases", agency.name)
        return got
    drop = seal.prepare(
        run.store,
        run_id=run.run_id,
        config=run.config,
        agency=agency,
        as_of=run.as_of,
        keys=run.keys,
        rows=rows,
        customer_ids=customers.loc[rows.index],
        consents=consents,
        pseudonym_key_id=pseudonym.key_id,
        seal=encrypt,
        digest_key=run.keys.change_digest_key(),
    )
    run.logger.info("%s: sealed drop %s with %d cases", agency.name, drop.drop_id, drop.case_count)
    got.cases += _deliver_and_record(run, drop, agency)
    got.drop_ids.append(drop.drop_id)
    return got


def _deliver_and_record(run: Run, drop: PreparedDrop, agency: Agency) -> int:
    settings = run.config.run
    attempt = deliver.with_options(
        retries=len(settings.retry_delay_seconds),
        retry_delay_seconds=list(settings.retry_delay_seconds),
    )
    receipt = attempt(drop, agency, run.keys, settings.timeout_seconds)
    crash_point("files_sent")
    handed = record(run.store, run.run_id, drop, receipt)
    crash_point("drop_committed")
    run.logger.info("%s: delivered drop %s with %d cases", agency.name, drop.drop_id, handed)
    return handed


def _failed(failures: list[tuple[str, HandoverError]], of: int) -> HandoverError:
    """One error naming each agency that failed and why (messages carry no personal data)."""
    if len(failures) == 1:
        name, exc = failures[0]
        kind = type(exc) if isinstance(exc, DeliveryError) else HandoverError
        return kind(f"agency {name}: {exc}; its cases wait for the next run")
    return DeliveryError(
        f"{len(failures)} of {of} agencies failed; their cases wait for the next run: "
        + "; ".join(f"agency {name}: {exc}" for name, exc in failures)
    )


def _send_heads(
    run: Run,
    agencies: tuple[Agency, ...],
    delivered: dict[str, Delivered],
    closing: Checkpoint,
) -> None:
    """Give every agency that received a drop the signed head after this run.

    A log can always be cut back to an earlier checkpoint and look consistent; the heads the
    agencies keep are what makes that visible (`audit verify --manifests`). Best effort: a head
    that does not arrive is superseded by the next drop's manifest.
    """
    receiving = [a for a in agencies if a.name in delivered and delivered[a.name].drop_ids]
    if not receiving:
        return

    def send(agency: Agency) -> None:
        drop_id = delivered[agency.name].drop_ids[-1]
        path = run.config.outbox / agency.name / drop_id / f"{drop_id}{envelope.HEAD_SUFFIX}"
        sftp.deliver(
            [witness.write_head_file(path, drop_id, closing)],
            agency.sftp,
            run.keys.sftp_client_key(),
            timeout=run.config.run.timeout_seconds,
        )

    # Side by side: each is a connection of its own, mostly waiting for the agency's server.
    with ThreadPoolExecutor(max_workers=len(receiving), thread_name_prefix="head") as pool:
        sent = [(agency, pool.submit(send, agency)) for agency in receiving]
    for agency, future in sent:
        exc = future.exception()
        if isinstance(exc, HandoverError | OSError):
            run.logger.warning(
                "%s: the signed audit head did not reach the agency (%s); the next drop's "
                "manifest carries a later one",
                agency.name,
                type(exc).__name__,
            )
        elif exc is not None:
            raise exc
