"""Assemble one agency's drop: audit it, seal it, and record it as prepared.

The order is what makes the audit log witnessed by the agencies: `drop_prepared` is written
first, and the head hash after it goes into the manifest; then the payload is sealed and the drop
and its cases are recorded as prepared, with the consent log of every case in it. Delivery is the
caller's (the flow's) next step.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pandas as pd

from handover import contract
from handover.config import Agency, Config
from handover.crypto import envelope
from handover.crypto.keys import KeyDirectory
from handover.crypto.sshsig import Signer
from handover.ledger import consent_log
from handover.ledger.audit import Head
from handover.ledger.store import PreparedDrop, StateStore
from handover.run.manifest import build_manifest

Sealer = Callable[[pd.DataFrame, Config, Agency, dt.date, KeyDirectory, str, Head], envelope.Drop]


def new_drop_id(agency: Agency, as_of: dt.date) -> str:
    """A drop id that sorts by date and names its agency, unique per run."""
    return f"{as_of.isoformat()}-{agency.name}-{uuid.uuid4().hex[:8]}"


def seal_rows(
    rows: pd.DataFrame,
    config: Config,
    agency: Agency,
    as_of: dt.date,
    keys: KeyDirectory,
    drop_id: str,
    audit_head: Head,
) -> envelope.Drop:
    """Encrypt `rows` to the agency and the archive, with a signed manifest."""
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
    # The audit head after `drop_prepared`: every agency's archive of manifests witnesses the log.
    manifest["audit_head"] = audit_head.as_manifest()
    return envelope.seal(
        contract.to_csv_bytes(rows[list(contract.COLUMNS)]),
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
    rows: pd.DataFrame,
    customer_ids: pd.Series,
    consents: pd.DataFrame,
    pseudonym_key_id: str,
    seal: Sealer = seal_rows,
) -> PreparedDrop:
    """Audit, seal and record one drop of `rows` (agency rows indexed by invoice_id).

    `seal` is `seal_rows` or a wrapper of it (the flow passes its Prefect task).
    """
    drop_id = new_drop_id(agency, as_of)
    consent_records = consent_log.records(
        rows,
        customer_ids,
        consents,
        agency,
        drop_id=drop_id,
        lawful_basis=config.compliance.lawful_basis,
    )
    facts = {
        "drop_id": drop_id,
        "agency": agency.name,
        "as_of": as_of.isoformat(),
        "case_count": len(rows),
        "policy_version": config.policy_version,
        "policy_sha256": config.policy_hash(agency),
        "pseudonym_key_id": pseudonym_key_id,
    }
    head = store.announce_drop(
        run_id, {**facts, "consent_log_sha256": consent_log.digest(consent_records)}
    )
    drop = seal(rows, config, agency, as_of, keys, drop_id, head)
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
        rows.assign(customer_id=customer_ids, columns=contract.columns_sent(rows)),
        {**facts, "payload_sha256": drop.payload_sha256},
    )
    with store.transaction() as conn:
        consent_log.store(conn, consent_records)
    return prepared
