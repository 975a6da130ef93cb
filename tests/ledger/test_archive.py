"""Archive retention: sealed drops leave the outbox after `[archive] retention_days`, audited."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from flows.retention import archive_retention
from handover.cli.main import main
from handover.config import DEFAULT_ARCHIVE_RETENTION_DAYS, load_config, load_key_settings
from handover.crypto.envelope import seal
from handover.crypto.keys import KeyDirectory
from handover.crypto.sshsig import Signer
from handover.ledger import audit
from handover.ledger.archive import archived_drops, delete_expired
from handover.ledger.store import PreparedDrop, StateStore
from tests.conftest import AgeIdentity
from tests.support.paths import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG
NOW = dt.datetime(2033, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "handover.toml"
    text = EXAMPLE.read_text()
    assert text.count("retention_days = 2557\n") == 1
    path.write_text(text.replace("retention_days = 2557\n", "retention_days = 100\n"))
    KeyDirectory(tmp_path / "keys").init()
    return path


def _seal(config: Path, agency: str, drop_id: str, created_at: dt.datetime, recipient: str):
    keys = KeyDirectory(config.parent / "keys")
    return seal(
        b"case_ref\r\n" + b"0" * 32 + b"\r\n",
        recipients=[recipient],
        archive_recipient=keys.archive_recipient(),
        signer=Signer.from_key_file(keys.signing_key()),
        out_dir=load_config(config).outbox / agency,
        manifest={"drop_id": drop_id, "case_count": 1, "created_at": created_at.isoformat()},
        drop_id=drop_id,
    )


def test_default_is_seven_years_and_configurable(config: Path, tmp_path: Path):
    assert DEFAULT_ARCHIVE_RETENTION_DAYS == 7 * 365 + 2
    assert load_key_settings(config).archive_retention_days == 100
    plain = tmp_path / "plain.toml"
    plain.write_text(  # the whole file is checked: the example, without the two settings
        EXAMPLE.read_text()
        .replace('name = "Beispiel Shop GmbH"', 'name = "Müller & Söhne KG"')
        .replace("retention_days = 2557\n", "")
    )
    settings = load_key_settings(plain)
    assert settings.archive_retention_days == DEFAULT_ARCHIVE_RETENTION_DAYS
    assert settings.signer_identity == "muller-sohne-kg"
    assert settings.pseudonym_secret_block is None


def test_deletes_only_drops_past_retention_and_audits_it(config: Path, age_identity: AgeIdentity):
    old = _seal(config, "nord", "old", NOW - dt.timedelta(days=101), age_identity.recipient)
    edge = _seal(config, "sued", "edge", NOW - dt.timedelta(days=99), age_identity.recipient)
    outbox = load_config(config).outbox
    stray = outbox / "nord" / "not-a-drop"
    stray.mkdir()
    (stray / "notes.txt").write_text("kept: no manifest, cannot be dated")

    assert [d.drop_id for d in archived_drops(outbox)] == ["old", "edge"]
    assert delete_expired(str(config), now=NOW, dry_run=True) == ["old"]
    assert old.directory.exists()

    assert delete_expired(str(config), now=NOW) == ["old"]
    assert not old.directory.exists()
    assert edge.directory.exists() and stray.exists()
    engine = sa.create_engine(load_config(config).state_url)
    with engine.connect() as conn:
        (entry,) = [e for e in audit.entries(conn) if e["event"] == "archive_expired"]
        assert audit.verify(conn).entries >= 1
    data = entry["data"] if isinstance(entry["data"], dict) else json.loads(entry["data"])
    assert data["drop_ids"] == ["old"] and data["retention_days"] == 100
    assert delete_expired(str(config), now=NOW) == []


def test_a_drop_without_created_at_is_dated_by_its_manifest_file(
    config: Path, age_identity: AgeIdentity
):
    drop = _seal(config, "nord", "undated", NOW, age_identity.recipient)
    document = json.loads(drop.manifest.read_text())
    del document["created_at"]
    drop.manifest.write_text(json.dumps(document))
    (found,) = archived_drops(load_config(config).outbox)
    assert abs(found.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_cli_and_flow_return_the_deleted_drop_ids(
    prefect, config: Path, age_identity: AgeIdentity, capsys
):
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=500)
    first = _seal(config, "nord", "first", long_ago, age_identity.recipient)
    assert main(["retention", "drops", "--dry-run", "--config", str(config)]) == 0
    assert "would delete 1\n  first\n" in capsys.readouterr().out
    assert first.directory.exists()
    assert archive_retention(config_path=str(config)) == ["first"]
    assert not first.directory.exists()


def test_a_drop_waiting_for_delivery_is_never_deleted(config: Path, age_identity: AgeIdentity):
    waiting = _seal(config, "nord", "waiting", NOW - dt.timedelta(days=500), age_identity.recipient)
    store = StateStore(load_config(config).state_url)
    store.start_run("run-1", as_of=dt.date(2031, 1, 1), agency="nord", dry_run=False, data={})
    store.prepare_drop(
        PreparedDrop("waiting", "run-1", "nord", waiting.directory, waiting.files, 1),
        pd.DataFrame(
            {"customer_id": ["C1"], "case_ref": ["0" * 32], "columns": ["case_ref"]},
            index=pd.Index(["I1"], name="invoice_id"),
        ),
        [],
        {"as_of": "2031-01-01"},
    )
    store.mark_sealed("run-1", "waiting", {"drop_id": "waiting"})
    assert delete_expired(str(config), now=NOW) == []
    assert waiting.directory.exists()
