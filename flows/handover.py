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
    frames: dict[str, pd.DataFrame],
    config: Config,
    agency: Agency,
    as_of: dt.date,
    handed_over: set[str],
) -> eligibility.Decision:
    return eligibility.decide(
        frames, as_of=as_of, rules=config.rules, agency=agency, handed_over=handed_over
    )


@task(name="minimise", **TASK_OPTIONS)
def minimise_cases(
    decision: eligibility.Decision, frames: dict[str, pd.DataFrame], agency: Agency, key: bytes
) -> pd.DataFrame:
    return minimise(decision.eligible, frames["consents"], agency, key)


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
    """Hand the eligible overdue cases of one day to one agency; returns counts per reason."""
    logger = get_run_logger()
    config = load_config(config_path)
    target = config.agency(agency)
    day = eligibility.check_as_of(
        dt.date.fromisoformat(as_of) if as_of else eligibility.today_berlin()
    )
    keys = KeyDirectory(config.key_dir)
    store = StateStore(config.state_url)
    run_id = str(flow_run.id or uuid.uuid4())
    store.start_run(
        run_id,
        as_of=day,
        agency=target.name,
        dry_run=dry_run,
        data={
            "as_of": day.isoformat(),
            "agency": target.name,
            "dry_run": dry_run,
            "policy_version": config.policy_version,
            "policy_sha256": config.policy_hash(target),
        },
    )
    try:
        counts = _run(config, target, day, dry_run, keys, store, run_id, logger)
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
    agency: Agency,
    as_of: dt.date,
    dry_run: bool,
    keys: KeyDirectory,
    store: StateStore,
    run_id: str,
    logger: Any,
) -> dict[str, int]:
    if not dry_run:
        for pending in store.pending_drops(agency.name):
            logger.info("Delivering drop %s left undelivered by an earlier run", pending.drop_id)
            _deliver_and_commit(pending, agency, keys, store, run_id, logger)

    frames = extract(config, as_of)
    logger.info("Extracted %d cases due before %s", len(frames["invoices"]), as_of)
    logger.info(validate(frames, "source"))

    decision = decide(frames, config, agency, as_of, store.handed_over())
    counts = decision.reason_counts()
    store.record_decisions(run_id, decision.reasons(), counts)
    logger.info("Decisions: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))

    rows = minimise_cases(decision, frames, agency, keys.pseudonym_key())
    logger.info(validate({"outgoing": contract.for_validation(rows)}, "outgoing"))
    if dry_run:
        logger.info("Dry run: %d cases would be handed over; nothing sealed or sent", len(rows))
        return counts
    if rows.empty:
        logger.info("No eligible case today; no drop is sent")
        return counts

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
            customer_id=decision.eligible["customer_id"], columns=contract.columns_sent(rows)
        ),
        {
            "drop_id": drop.drop_id,
            "agency": agency.name,
            "as_of": as_of.isoformat(),
            "case_count": drop.case_count,
            "payload_sha256": drop.payload_sha256,
        },
    )
    logger.info("Sealed drop %s with %d cases", drop.drop_id, drop.case_count)
    counts["handed_over"] = _deliver_and_commit(prepared, agency, keys, store, run_id, logger)
    return counts


def _deliver_and_commit(
    drop: PreparedDrop,
    agency: Agency,
    keys: KeyDirectory,
    store: StateStore,
    run_id: str,
    logger: Any,
) -> int:
    receipt = deliver(drop, agency, keys)
    handed = record(store, run_id, drop, receipt)
    logger.info("Delivered drop %s to %s: %d cases", drop.drop_id, agency.name, handed)
    return handed
