"""Assemble one agency's drop: record it, seal it, and record it as sealed.

The order is what makes a crash harmless and the audit log witnessed by the agencies: the drop,
its cases, its consent log and `drop_prepared` are recorded first, in one transaction, and the
audit head after `drop_prepared` goes into the manifest. Then the payload is sealed; only a drop
whose files are complete is recorded as `sealed`, and only a sealed drop is ever delivered. A
seal that fails abandons the drop (audited) and removes its files. Delivery is the caller's
next step.

The plaintext (the CSV and the manifest's figures) is written in a thread while the drop is
recorded, where the database mostly waits for the disk: sealing then costs what encryption
costs. It exists in memory only, as before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from handover import contract
from handover.config import Agency, Config
from handover.crypto import envelope
from handover.crypto.keys import KeyDirectory, PseudonymKey
from handover.crypto.sshsig import Signer
from handover.faults import crash_point
from handover.ledger import consent_log
from handover.ledger.audit import Head
from handover.ledger.store import PreparedDrop, StateStore
from handover.run.changes import baseline
from handover.run.manifest import build_manifest


@dataclass(frozen=True)
class Plaintext:
    """A drop's contents before sealing: its CSV and its manifest, the audit head still to add."""

    csv: bytes
    manifest: dict[str, Any]


Sealer = Callable[
    [pd.DataFrame, Config, Agency, dt.date, KeyDirectory, str, Head, "Future[Plaintext] | None"],
    envelope.Drop,
]


def new_drop_id(agency: Agency, as_of: dt.date) -> str:
    """A drop id that sorts by date and names its agency, unique per run."""
    return f"{as_of.isoformat()}-{agency.name}-{uuid.uuid4().hex[:8]}"


def drop_files(directory: Path, drop_id: str) -> tuple[Path, ...]:
    """The files of a drop, in delivery order (the envelope's names: signature last)."""
    return tuple(
        directory / f"{drop_id}{suffix}"
        for suffix in (envelope.PAYLOAD_SUFFIX, envelope.MANIFEST_SUFFIX, envelope.SIGNATURE_SUFFIX)
    )


def plaintext(
    rows: pd.DataFrame, config: Config, agency: Agency, as_of: dt.date, drop_id: str
) -> Plaintext:
    """The CSV of `rows` and the manifest of the drop, without its audit head."""
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
    return Plaintext(contract.to_csv_bytes(rows[list(contract.columns_of(rows))]), manifest)


def seal_rows(
    rows: pd.DataFrame,
    config: Config,
    agency: Agency,
    as_of: dt.date,
    keys: KeyDirectory,
    drop_id: str,
    audit_head: Head,
    written: Future[Plaintext] | None = None,
) -> envelope.Drop:
    """Encrypt `rows` to the agency and the archive, with a signed manifest.

    `written` is the plaintext of `rows` being written in the background (`prepare`), if any.
    """
    text = written.result() if written else plaintext(rows, config, agency, as_of, drop_id)
    # The audit head after `drop_prepared`: every agency's archive of manifests witnesses the log.
    manifest = {**text.manifest, "audit_head": audit_head.as_manifest()}
    return envelope.seal(
        text.csv,
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
    digest_key: PseudonymKey | None = None,
) -> PreparedDrop:
    """Record, seal and record as sealed one drop of `rows` (agency rows indexed by invoice_id).

    `seal` is `seal_rows` or a wrapper of it (the flow passes its Prefect task). With
    `digest_key`, the drop's cases keep what they tell the agency (amounts, digests of name,
    address and contacts), which later runs compare the shop's facts with (recalls and updates).
    """
    drop_id = new_drop_id(agency, as_of)
    directory = config.outbox / agency.name / drop_id
    drop = PreparedDrop(
        drop_id=drop_id,
        run_id=run_id,
        agency=agency.name,
        directory=directory,
        files=drop_files(directory, drop_id),
        case_count=len(rows),
    )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="plaintext") as background:
        # A shallow copy of its own: pandas may reorganise a frame's blocks while it is read.
        written = background.submit(
            plaintext, rows.copy(deep=False), config, agency, as_of, drop_id
        )
        consent_records = consent_log.frame(
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
        cases = rows.assign(customer_id=customer_ids, columns=contract.columns_sent(rows))
        if digest_key is not None:
            known = baseline(rows, digest_key)
            cases[list(known.columns)] = known
        head = store.prepare_drop(
            drop,
            cases,
            consent_records,
            {**facts, "consent_log_sha256": consent_log.digest(consent_records)},
        )
        crash_point("drop_prepared")
        try:
            sealed = seal(rows, config, agency, as_of, keys, drop_id, head, written)
        except BaseException as exc:
            # Nothing of it left the shop: the cases are free again for the next drop.
            store.abandon_drop(run_id, drop_id, f"sealing failed ({type(exc).__name__})")
            remove_files(drop)
            raise
    crash_point("drop_sealed")
    store.mark_sealed(run_id, drop_id, {**facts, "payload_sha256": sealed.payload_sha256})
    crash_point("drop_recorded")
    return PreparedDrop(**{**vars(drop), "status": "sealed"})


def abandon_unsealed(store: StateStore, run_id: str) -> list[str]:
    """Abandon the drops whose sealing never finished (a killed run) and remove their files."""
    abandoned = []
    for drop in store.unsealed_drops():
        if store.abandon_drop(run_id, drop.drop_id, "sealing did not finish (its run was killed)"):
            remove_files(drop)
            abandoned.append(drop.drop_id)
    return abandoned


def remove_files(drop: PreparedDrop) -> None:
    """Delete a drop's files (and its directory, once empty): it will never be delivered."""
    for path in (*drop.files, *drop.directory.glob(".*.tmp")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    with contextlib.suppress(OSError):
        drop.directory.rmdir()
