"""Assemble one agency's recall/update drop: record it, seal it, and record it as sealed.

The same steps, order and crash points as a handover drop (`handover.run.seal`): the drop, its
cases and messages and `drop_prepared` in one transaction; the payload sealed (CSV of
`agency_recall_v1`, age-encrypted to the agency and the archive) with a signed manifest naming
the contract; recorded as sealed. Delivery and its record are the caller's, as for a handover
drop; what a delivered recall changes is the store's (`StateStore._commit_recall`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd

from handover import recall_contract
from handover.config import Agency, Config
from handover.crypto import envelope
from handover.crypto.keys import KeyDirectory
from handover.crypto.sshsig import Signer
from handover.faults import crash_point
from handover.ledger.audit import Head
from handover.ledger.store import PreparedDrop, StateStore
from handover.run.manifest import build_recall_manifest
from handover.run.seal import drop_files, new_drop_id, remove_files

Sealer = Callable[[pd.DataFrame, Config, Agency, dt.date, KeyDirectory, str, Head], envelope.Drop]


def seal_messages(
    messages: pd.DataFrame,
    config: Config,
    agency: Agency,
    as_of: dt.date,
    keys: KeyDirectory,
    drop_id: str,
    audit_head: Head,
) -> envelope.Drop:
    """Encrypt `messages` to the agency and the archive, with a signed manifest."""
    manifest = build_recall_manifest(
        messages,
        drop_id=drop_id,
        agency=agency.name,
        as_of=as_of,
        shop_name=config.shop_name,
        support_contact=config.support_contact,
        policy_version=config.policy_version,
        policy_hash=config.policy_hash(agency),
    )
    manifest["audit_head"] = audit_head.as_manifest()
    return envelope.seal(
        recall_contract.to_csv_bytes(messages[list(recall_contract.COLUMNS)]),
        recipients=agency.recipients,
        archive_recipient=keys.archive_recipient(),
        signer=Signer.from_key_file(keys.signing_key()),
        out_dir=config.outbox / agency.name,
        manifest=manifest,
        drop_id=drop_id,
    )


def prepare(
    store: StateStore,
    *,
    run_id: str,
    config: Config,
    agency: Agency,
    as_of: dt.date,
    keys: KeyDirectory,
    messages: pd.DataFrame,
    cases: pd.DataFrame,
    seal: Sealer = seal_messages,
) -> PreparedDrop:
    """Record, seal and record as sealed one recall/update drop of `messages` for `agency`.

    `messages` and `cases` are one agency's share of `handover.run.changes.Changes`. `seal` is
    `seal_messages` or a wrapper of it (the flow passes its Prefect task).
    """
    drop_id = new_drop_id(agency, as_of)
    directory = config.outbox / agency.name / drop_id
    drop = PreparedDrop(
        drop_id=drop_id,
        run_id=run_id,
        agency=agency.name,
        directory=directory,
        files=drop_files(directory, drop_id),
        case_count=len(cases),
        kind="recall",
    )
    kinds = (messages["message_type"] + "." + messages["reason_code"]).value_counts()
    facts = {
        "drop_id": drop_id,
        "agency": agency.name,
        "kind": "recall",
        "as_of": as_of.isoformat(),
        "case_count": len(cases),
        "message_count": len(messages),
        "messages": {str(k): int(n) for k, n in kinds.sort_index().items()},
        "schema_version": recall_contract.SCHEMA_VERSION,
        "policy_version": config.policy_version,
        "policy_sha256": config.policy_hash(agency),
    }
    head = store.prepare_recall_drop(drop, cases, messages, facts)
    crash_point("drop_prepared")
    try:
        sealed = seal(messages, config, agency, as_of, keys, drop_id, head)
    except BaseException as exc:
        # Nothing of it left the shop: its cases are compared again by the next run.
        store.abandon_drop(run_id, drop_id, f"sealing failed ({type(exc).__name__})")
        remove_files(drop)
        raise
    crash_point("drop_sealed")
    store.mark_sealed(run_id, drop_id, {**facts, "payload_sha256": sealed.payload_sha256})
    crash_point("drop_recorded")
    return PreparedDrop(**{**vars(drop), "status": "sealed"})
