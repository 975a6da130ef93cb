"""The nightly handover flow: the story of one run, stage by stage.

Prefect lives only here. Each task wraps a plain function of `handover` or `redaction`; the flow
sequences them, sets retries, and logs counts. Flow parameters are a config path, a date, an
agency name and a flag: no personal data. Task results are never persisted and never cached
(hashing a large DataFrame for a cache key costs seconds and would fingerprint personal data).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from handover import contract
from handover.config import Agency, Config, load_config
from handover.crypto.keys import KeyDirectory, PseudonymKey, load_pseudonym_key
from handover.crypto.sshsig import AUDIT_NAMESPACE, Signer
from handover.errors import HandoverError
from handover.ledger.store import PreparedDrop, StateStore
from handover.run import decide as eligibility
from handover.run import deliver as sftp
from handover.run import extract as source
from handover.run import publish
from handover.run import seal as drops
from handover.run.quarantine import QuarantineResult, quarantine
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
    return source.extract(config.source_url, as_of)


@task(name="validate", **TASK_OPTIONS)
@scrubbed
def validate(frames: dict[str, pd.DataFrame], suite: str) -> QuarantineResult:
    return quarantine(frames, suite, max_share=None)


@task(name="eligibility", **TASK_OPTIONS)
@scrubbed
def decide(
    frames: dict[str, pd.DataFrame], config: Config, as_of: dt.date, handed_over: set[str]
) -> eligibility.Decision:
    return eligibility.decide(
        frames,
        as_of=as_of,
        rules=config.rules,
        agencies=config.agencies,
        handed_over=handed_over,
    )


@task(name="minimise", **TASK_OPTIONS)
@scrubbed
def minimise_cases(
    decision: eligibility.Decision, frames: dict[str, pd.DataFrame], agency: Agency, key: bytes
) -> pd.DataFrame:
    return minimise(decision.eligible_for(agency.name), frames["consents"], agency, key)


# Sealing needs nothing from the flow but a task name: the plain function is the task.
seal = task(name="encrypt", **TASK_OPTIONS)(scrubbed(drops.seal_rows))


@task(
    name="deliver",
    retries=3,
    retry_delay_seconds=[10, 60, 300],
    retry_condition_fn=_transient_only,
    **TASK_OPTIONS,
)
@scrubbed
def deliver(drop: PreparedDrop, agency: Agency, keys: KeyDirectory) -> sftp.Receipt:
    return sftp.deliver(drop.files, agency.sftp, keys.sftp_client_key())


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


@flow(name="handover", persist_result=False, log_prints=False)
def handover(
    config_path: str,
    as_of: str | None = None,
    agency: str | None = None,
    dry_run: bool = False,
) -> dict[str, int]:
    """Hand the eligible overdue cases of one day to their agencies (or to `agency` only).

    Returns the number of cases per reason code, `eligible`, and `handed_over.<agency>`.
    """
    with scrub_logs(GENERIC, stage="flow 'handover'"):
        config = load_config(config_path)
        agencies = config.in_scope(agency)
        day = eligibility.check_as_of(
            dt.date.fromisoformat(as_of) if as_of else eligibility.today_berlin()
        )
        run = Run(
            run_id=str(flow_run.id or uuid.uuid4()),
            config=config,
            as_of=day,
            keys=KeyDirectory(config.key_dir),
            store=StateStore(config.state_url),
            logger=get_run_logger(),
        )
        signer = Signer.from_key_file(run.keys.signing_key())
        run.store.start_run(
            run.run_id,
            as_of=day,
            agency=agency or "*",
            dry_run=dry_run,
            data={
                "as_of": day.isoformat(),
                "agencies": [a.name for a in agencies],
                "dry_run": dry_run,
                "policy_version": config.policy_version,
                "policy_sha256": {a.name: config.policy_hash(a) for a in agencies},
            },
        )
        drop_ids: list[str] = []
        try:
            counts = _hand_over(run, agencies, dry_run, drop_ids)
        except Exception as exc:
            # Only the error's type is recorded: a message might quote data.
            run.store.finish_run(
                run.run_id,
                status="failed",
                counts={"error": type(exc).__name__},
                event="run_failed",
            )
            raise
        else:
            run.store.finish_run(
                run.run_id,
                status="succeeded",
                counts=counts,
                event="dry_run" if dry_run else "run_finished",
            )
        finally:
            # However the run ended, its last act is to sign the head of the audit log.
            head = run.store.checkpoint(
                signer.for_namespace(AUDIT_NAMESPACE), key_id=signer.fingerprint
            )
        publish.publish(
            run_id=run.run_id,
            as_of=day.isoformat(),
            agency=agency or "all",
            counts=counts,
            dry_run=dry_run,
            drop_ids=drop_ids,
            audit_head=head.as_manifest() if head else None,
        )
        return counts


def _hand_over(
    run: Run, agencies: tuple[Agency, ...], dry_run: bool, drop_ids: list[str]
) -> dict[str, int]:
    """Extract, decide, and seal and deliver one drop per agency; returns the counts."""
    if not dry_run:
        # Drops sealed by an earlier run but not delivered go first, so no case waits or doubles.
        for agency in agencies:
            for pending in run.store.pending_drops(agency.name):
                run.logger.info("Delivering drop %s left by an earlier run", pending.drop_id)
                _deliver_and_record(run, pending, agency)

    frames = extract(run.config, run.as_of)
    with scrub_logs(Scrubber.from_frames(frames), stage="flow 'handover'"):
        return _decide_and_send(run, agencies, dry_run, drop_ids, frames)


def _decide_and_send(
    run: Run,
    agencies: tuple[Agency, ...],
    dry_run: bool,
    drop_ids: list[str],
    frames: dict[str, pd.DataFrame],
) -> dict[str, int]:
    max_share = run.config.max_quarantine_share
    run.logger.info("Extracted %d cases due before %s", len(frames["invoices"]), run.as_of)
    checked = validate(frames, "source")
    run.store.record_quarantine(run.run_id, "source", checked.quarantined)
    run.logger.info(checked.summary())
    checked.enforce_share(max_share)
    frames = dict(checked.kept)

    decision = decide(frames, run.config, run.as_of, run.store.handed_over())
    counts = decision.reason_counts()
    counts["quarantined.source"] = len(checked.quarantined)
    run.store.record_decisions(run.run_id, decision.reasons(), decision.cases["agency"], counts)
    run.logger.info("Decisions: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))

    pseudonym = load_pseudonym_key(run.keys, run.config.key_settings.pseudonym_secret_block)
    failures: list[HandoverError] = []
    outgoing: dict[str, pd.DataFrame] = {}
    for agency in agencies:  # every agency's rows are checked before anything is sent
        rows = minimise_cases(decision, frames, agency, pseudonym.key)
        checked = validate({"outgoing": contract.for_validation(rows)}, "outgoing")
        run.store.record_quarantine(run.run_id, "outgoing", checked.quarantined, agency=agency.name)
        run.logger.info("%s: %s", agency.name, checked.summary())
        checked.enforce_share(max_share)
        counts[f"quarantined.outgoing.{agency.name}"] = len(checked.quarantined)
        outgoing[agency.name] = rows.drop(index=checked.quarantined["invoice_id"])
    for agency in agencies:
        rows = outgoing[agency.name]
        if dry_run or rows.empty:
            run.logger.info("%s: %d cases, nothing sent (dry run or none)", agency.name, len(rows))
            continue
        drop = _seal_and_prepare(run, rows, decision, frames, agency, pseudonym)
        drop_ids.append(drop.drop_id)
        try:
            counts[f"handed_over.{agency.name}"] = _deliver_and_record(run, drop, agency)
        except HandoverError as exc:
            # Other agencies still get their drops; this one is delivered by the next run.
            run.logger.error(
                "%s: delivery failed (%s); the drop waits", agency.name, type(exc).__name__
            )
            failures.append(exc)
    if failures:
        raise failures[0]
    return counts


def _seal_and_prepare(
    run: Run,
    rows: pd.DataFrame,
    decision: eligibility.Decision,
    frames: dict[str, pd.DataFrame],
    agency: Agency,
    pseudonym: PseudonymKey,
) -> PreparedDrop:
    """Audit the drop, seal it, and record it as prepared with its cases and consent log."""
    prepared = drops.prepare(
        run.store,
        run_id=run.run_id,
        config=run.config,
        agency=agency,
        as_of=run.as_of,
        keys=run.keys,
        rows=rows,
        customer_ids=decision.cases.loc[rows.index, "customer_id"],
        consents=frames["consents"],
        pseudonym_key_id=pseudonym.key_id,
        seal=seal,
    )
    run.logger.info(
        "%s: sealed drop %s with %d cases", agency.name, prepared.drop_id, prepared.case_count
    )
    return prepared


def _deliver_and_record(run: Run, drop: PreparedDrop, agency: Agency) -> int:
    receipt = deliver(drop, agency, run.keys)
    handed = record(run.store, run.run_id, drop, receipt)
    run.logger.info("%s: delivered drop %s with %d cases", agency.name, drop.drop_id, handed)
    return handed
