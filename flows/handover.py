"""The nightly handover flow: the story of one run, stage by stage.

Prefect lives only here. Each task wraps a plain function of `handover` or `redaction`; the flow
sequences them, sets retries, and logs counts. Flow parameters are a config path, a date, an
agency name and a flag: no personal data. Task results are never persisted and never cached
(hashing a large DataFrame for a cache key costs seconds and would fingerprint personal data).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from handover import contract, eligibility, envelope, sftp, source, validation
from handover.config import Agency, Config, load_config
from handover.errors import HandoverError
from handover.keys import KeyDirectory
from handover.manifest import build_manifest
from handover.state import PreparedDrop, StateStore
from redaction.policy import minimise

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
def extract(config: Config, as_of: dt.date) -> dict[str, pd.DataFrame]:
    return source.extract(config.source_url, as_of)


@task(name="validate", **TASK_OPTIONS)
def validate(frames: dict[str, pd.DataFrame], suite: str) -> str:
    return validation.check(frames, suite).summary()


@task(name="eligibility", **TASK_OPTIONS)
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
def minimise_cases(
    decision: eligibility.Decision, frames: dict[str, pd.DataFrame], agency: Agency, key: bytes
) -> pd.DataFrame:
    return minimise(decision.eligible_for(agency.name), frames["consents"], agency, key)


@task(name="encrypt", **TASK_OPTIONS)
def seal(rows: pd.DataFrame, config: Config, agency: Agency, as_of: dt.date) -> envelope.Drop:
    drop_id = f"{as_of.isoformat()}-{agency.name}-{uuid.uuid4().hex[:8]}"
    manifest = build_manifest(
        rows,
        drop_id=drop_id,
        agency=agency.name,
        as_of=as_of,
        shop_name=config.shop_name,
        support_contact=config.support_contact,
        policy_version=config.policy_version,
        policy_hash=config.policy_hash(agency),
    )
    return envelope.seal(
        contract.to_csv_bytes(rows[list(contract.COLUMNS)]),
        recipients=agency.recipients,
        out_dir=config.outbox / agency.name,
        manifest=manifest,
        drop_id=drop_id,
    )


@task(
    name="deliver",
    retries=3,
    retry_delay_seconds=[10, 60, 300],
    retry_condition_fn=_transient_only,
    **TASK_OPTIONS,
)
def deliver(drop: PreparedDrop, agency: Agency, keys: KeyDirectory) -> sftp.Receipt:
    return sftp.deliver(drop.files, agency.sftp, keys.sftp_client_key())


@task(name="record", **TASK_OPTIONS)
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
    logger = get_run_logger()
    config = load_config(config_path)
    agencies = config.in_scope(agency)
    day = eligibility.check_as_of(
        dt.date.fromisoformat(as_of) if as_of else eligibility.today_berlin()
    )
    keys = KeyDirectory(config.key_dir)
    store = StateStore(config.state_url)
    run_id = str(flow_run.id or uuid.uuid4())
    store.start_run(
        run_id,
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
    try:
        counts = _run(config, agencies, day, dry_run, keys, store, run_id, logger)
    except Exception as exc:
        # Only the error's type is recorded: a message might quote data.
        store.finish_run(
            run_id, status="failed", counts={"error": type(exc).__name__}, event="run_failed"
        )
        raise
    store.finish_run(
        run_id, status="succeeded", counts=counts, event="dry_run" if dry_run else "run_finished"
    )
    return counts


def _run(
    config: Config,
    agencies: tuple[Agency, ...],
    as_of: dt.date,
    dry_run: bool,
    keys: KeyDirectory,
    store: StateStore,
    run_id: str,
    logger: Any,
) -> dict[str, int]:
    if not dry_run:
        # Drops sealed by an earlier run but not delivered go first, so no case waits or doubles.
        for agency in agencies:
            for pending in store.pending_drops(agency.name):
                logger.info("Delivering drop %s left by an earlier run", pending.drop_id)
                _deliver_and_record(pending, agency, keys, store, run_id, logger)

    frames = extract(config, as_of)
    logger.info("Extracted %d cases due before %s", len(frames["invoices"]), as_of)
    logger.info(validate(frames, "source"))

    decision = decide(frames, config, as_of, store.handed_over())
    counts = decision.reason_counts()
    store.record_decisions(run_id, decision.reasons(), decision.cases["agency"], counts)
    logger.info("Decisions: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))

    key = keys.pseudonym_key()
    failures: list[HandoverError] = []
    for agency in agencies:
        rows = minimise_cases(decision, frames, agency, key)
        logger.info(validate({"outgoing": contract.for_validation(rows)}, "outgoing"))
        if dry_run or rows.empty:
            logger.info("%s: %d cases, nothing sent (dry run or none)", agency.name, len(rows))
            continue
        drop = _seal_and_prepare(rows, decision, config, agency, as_of, store, run_id)
        logger.info("%s: sealed drop %s with %d cases", agency.name, drop.drop_id, len(rows))
        try:
            handed = _deliver_and_record(drop, agency, keys, store, run_id, logger)
        except HandoverError as exc:
            # Other agencies still get their drops; this one is delivered by the next run.
            logger.error(
                "%s: delivery failed (%s); the drop waits", agency.name, type(exc).__name__
            )
            failures.append(exc)
            continue
        counts[f"handed_over.{agency.name}"] = handed
    if failures:
        raise failures[0]
    return counts


def _seal_and_prepare(
    rows: pd.DataFrame,
    decision: eligibility.Decision,
    config: Config,
    agency: Agency,
    as_of: dt.date,
    store: StateStore,
    run_id: str,
) -> PreparedDrop:
    drop = seal(rows, config, agency, as_of)
    prepared = PreparedDrop(
        drop_id=drop.drop_id,
        run_id=run_id,
        agency=agency.name,
        directory=drop.directory,
        files=drop.files,
        case_count=drop.case_count,
    )
    store.prepare_drop(
        prepared,
        rows.assign(
            customer_id=decision.cases.loc[rows.index, "customer_id"],
            columns=contract.columns_sent(rows),
        ),
        {
            "drop_id": drop.drop_id,
            "agency": agency.name,
            "as_of": as_of.isoformat(),
            "case_count": drop.case_count,
            "payload_sha256": drop.payload_sha256,
            "policy_version": config.policy_version,
            "policy_sha256": config.policy_hash(agency),
        },
    )
    return prepared


def _deliver_and_record(
    drop: PreparedDrop,
    agency: Agency,
    keys: KeyDirectory,
    store: StateStore,
    run_id: str,
    logger: Any,
) -> int:
    receipt = deliver(drop, agency, keys)
    handed = record(store, run_id, drop, receipt)
    logger.info("%s: delivered drop %s with %d cases", agency.name, drop.drop_id, handed)
    return handed
