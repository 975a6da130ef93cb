"""Return files for tests: cases delivered to an agency in the ledger, and an agency that writes
return files with its tool (`handover.agency.returns`) or with stock `age` and `ssh-keygen`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from handover.agency.returns import BuiltReturn, build_return
from handover.ledger import consent_log
from handover.ledger.store import PreparedDrop, StateStore
from handover.returns import contract
from handover.returns.contract import ReturnEvent
from tests.conftest import require_tool, ssh_keygen

HEADER = ",".join(contract.COLUMNS)


def deliver_cases(
    store: StateStore,
    run_id: str,
    agency: str,
    cases: dict[str, str],
    folder: Path,
    *,
    as_of: dt.date,
    drop_id: str | None = None,
) -> str:
    """Record a drop with `cases` (invoice id → case_ref) as delivered to `agency`."""
    drop_id = drop_id or f"{as_of.isoformat()}-{agency}-{len(cases):04d}{sorted(cases)[0]}"
    drop = PreparedDrop(drop_id, run_id, agency, folder / drop_id, (), len(cases))
    frame = pd.DataFrame(
        {
            "customer_id": [f"C-{i}" for i in cases],
            "case_ref": list(cases.values()),
            "columns": ["case_ref"] * len(cases),
        },
        index=pd.Index(list(cases), name="invoice_id"),
    )
    records: list[consent_log.ConsentLogRecord] = []
    store.prepare_drop(
        drop,
        frame,
        records,
        {"drop_id": drop_id, "as_of": as_of.isoformat(), "agency": agency},
    )
    store.mark_sealed(run_id, drop_id, {"drop_id": drop_id})
    store.commit_drop(run_id, drop_id, {"host": "test"})
    return drop_id


def csv_text(*rows: str, header: str = HEADER) -> bytes:
    """A return CSV: the header and `rows` (each 'event_id,case_ref,event,date,amount,currency')."""
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


@dataclass(frozen=True)
class Agency:
    """An agency with its own SSH signing key, writing return files for one shop."""

    name: str
    key: Path  # private key (OpenSSH, Ed25519); the .pub beside it

    @classmethod
    def make(cls, name: str, folder: Path) -> Agency:
        folder.mkdir(parents=True, exist_ok=True)
        return cls(name, ssh_keygen(folder / f"{name}_ed25519"))

    @property
    def public_key(self) -> str:
        return self.key.with_name(self.key.name + ".pub").read_text().strip()

    def config(self, folder: str) -> str:
        """The `[agencies.NAME.returns]` table pinning this agency's key."""
        return (
            f'\n[agencies.{self.name}.returns]\nsigning_key = "{self.public_key}"\n'
            f'folder = "{folder}"\n'
        )

    def write(self, csv: bytes, out: Path, recipient: str, work: Path) -> BuiltReturn:
        """A return file made with the agency's tool (`handover agency return`)."""
        work.mkdir(parents=True, exist_ok=True)
        source = work / f"events-{hashlib.sha256(csv).hexdigest()[:8]}.csv"
        source.write_bytes(csv)
        return build_return(
            source,
            agency=self.name,
            shop_recipients=[recipient],
            signing_key=self.key,
            out_dir=out,
        )

    def write_by_hand(
        self,
        csv: bytes,
        out: Path,
        recipient: str,
        return_id: str,
        *,
        event_count: int | None = None,
        agency: str | None = None,
    ) -> tuple[Path, Path, Path]:
        """A return file made with stock tools only, as the README shows: `age -r`, a manifest
        written by hand, `ssh-keygen -Y sign -n handover-return`. The CSV goes to age on stdin,
        so its plaintext never lands on disk."""
        age = require_tool("age", "age")
        keygen = require_tool("ssh-keygen", "openssh-client")
        payload, manifest, signature = (out / n for n in contract.file_names(return_id))
        subprocess.run(
            [age, "-r", recipient, "-o", str(payload)], input=csv, check=True, capture_output=True
        )
        data = payload.read_bytes()
        rows = csv.decode().strip().count("\n") if event_count is None else event_count
        document = {
            "return_id": return_id,
            "agency": agency or self.name,
            "schema": contract.SCHEMA_VERSION,
            "event_count": rows,
            "payload": {
                "file": payload.name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            },
        }
        manifest.write_text(json.dumps(document) + "\n")
        subprocess.run(
            [keygen, "-Y", "sign", "-f", str(self.key), "-n", contract.NAMESPACE, str(manifest)],
            check=True,
            capture_output=True,
        )
        assert signature.exists()
        return payload, manifest, signature


def event(
    event_id: str,
    case_ref: str,
    kind: str,
    date: str,
    amount: int | None = None,
    currency: str | None = None,
) -> str:
    """One CSV row; an amount is in EUR unless `currency` says otherwise."""
    currency = currency or ("EUR" if amount is not None else None)
    row = ReturnEvent(event_id, case_ref, kind, date, amount, currency)
    return ",".join(row.row())


def case_refs_of(store: StateStore) -> dict[str, str]:
    """invoice id → case_ref of every case a drop took."""
    from handover.ledger.store import handovers

    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(handovers.c.invoice_id, handovers.c.case_ref)).all())


def record_returns(
    store: StateStore, agency: str, return_id: str, events: list[dict[str, object]]
) -> None:
    """Ingest `events` (ledger rows: event_id, invoice_id, case_ref, event, event_date,
    amount_cents, currency) as one return file of `agency`, in a run of their own, as the
    returns flow records a file it has checked."""
    run_id = f"returns-{return_id}"
    store.start_run(run_id, as_of=dt.date.today(), agency=agency, dry_run=False, data={})
    sha = hashlib.sha256(return_id.encode()).hexdigest()
    store.ingest_return(
        run_id, agency=agency, return_id=return_id, manifest_sha256=sha, events=events
    )
    store.finish_run(run_id, status="succeeded", counts={}, event="run_finished")
