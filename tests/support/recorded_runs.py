"""Runs recorded as the flow records them, without Prefect and SFTP, for the compliance tests.

Each `Workspace.run` goes through the real stages on a real SQLite shop (extract, decide,
minimise, consent log, `drop_prepared` + audit head into the manifest, age seal, record,
commit, checkpoint), so the state and audit a compliance command reads are the genuine article.
Delivery is the one thing skipped: `commit_drop` gets a receipt as if the SFTP upload succeeded.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyrage

from handover import contract
from handover.config import Config, load_config
from handover.crypto.keys import KeyDirectory
from handover.crypto.sshsig import AUDIT_NAMESPACE, Signer, verifier
from handover.ledger import audit
from handover.ledger.store import StateStore, open_store
from handover.run import decide, extract, seal
from redaction.rows.policy import minimise
from tests.support.shopbuilder import Shop
from tests.support.workspaces import CONFIG_HEAD

PSEUDONYM_KEY = bytes(range(32))
# A second agency for Austria, for tests with two agencies ('nord' then takes Germany).
SUED_TOML = """
[agencies.sued]
recipients = ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"]
[agencies.sued.route]
countries = ["AT"]
[agencies.sued.sftp]
host = "127.0.0.1"
user = "shop"
"""


@dataclass
class Workspace:
    root: Path
    config_path: Path
    shop: Shop
    archive_identity: Path
    agency_identity: str
    keys: KeyDirectory

    @property
    def signer(self) -> Signer:
        return Signer.from_key_file(self.keys.signing_key())

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    @property
    def store(self) -> StateStore:
        return open_store(self.config)

    def run(self, as_of: dt.date, *, agency: str = "nord", dry_run: bool = False) -> str | None:
        """One run for `agency` on `as_of`; returns the drop id, or None if nothing left."""
        config = self.config
        target = config.agency(agency)
        store = self.store
        run_id = f"run-{uuid.uuid4().hex[:8]}"
        store.start_run(run_id, as_of=as_of, agency=agency, dry_run=dry_run, data={})
        frames = extract.extract(config.source_url, as_of)
        decision = decide.decide(
            frames,
            as_of=as_of,
            rules=config.rules,
            agencies=[target],
            handed_over=store.in_drops(),
        )
        counts = decision.reason_counts()
        store.record_decisions(run_id, decision.reasons(), decision.cases["agency"], counts)
        eligible = decision.eligible_for(agency)
        rows = minimise(eligible, frames["consents"], target, PSEUDONYM_KEY)
        drop_id = None
        if not dry_run and not rows.empty:
            drop_id = seal.prepare(
                store,
                run_id=run_id,
                config=config,
                agency=target,
                as_of=as_of,
                keys=self.keys,
                rows=rows,
                customer_ids=eligible["customer_id"],
                consents=frames["consents"],
                pseudonym_key_id="test-key",
            ).drop_id
            counts[f"handed_over.{agency}"] = store.commit_drop(
                run_id, drop_id, {"host": "127.0.0.1"}
            )
        store.finish_run(run_id, status="succeeded", counts=counts, event="run_finished")
        store.engine.dispose()
        return drop_id

    def verify_signature(self, message: bytes, signature: bytes) -> None:
        verifier(self.keys.signing_public_key(), AUDIT_NAMESPACE)(message, signature)

    def verify(self, **kwargs: object) -> audit.ChainStatus:
        return self.store.verify(verify_signature=self.verify_signature, **kwargs)


def workspace(root: Path, *, extra_toml: str = "", nord_toml: str = "") -> Workspace:
    """An empty shop, an agency 'nord' allowed every column, and the shop's archive key."""
    root.mkdir(parents=True, exist_ok=True)
    shop = Shop(root / "shop.db")
    agency = pyrage.x25519.Identity.generate()
    keys = KeyDirectory(root / "keys")
    keys.init()
    columns = ", ".join(f'"{c}"' for c in contract.COLUMNS)
    config = root / "handover.toml"
    config.write_text(
        CONFIG_HEAD
        + f"""
{extra_toml}
[agencies.nord]
recipients = ["{agency.to_public()}"]
columns = [{columns}]
{nord_toml}
[agencies.nord.sftp]
host = "127.0.0.1"
user = "shop"
"""
    )
    return Workspace(
        root,
        config,
        shop,
        keys.archive_identity(),
        str(agency),
        keys,
    )
