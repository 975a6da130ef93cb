"""The real flow with the shop source and the state store on PostgreSQL (Prefect, sshd, age), and
the compliance commands and retention on the state it leaves."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from handover.cli.main import main
from handover.config import load_config
from handover.contract import read_csv_rows
from handover.ledger import audit, guards, retention
from handover.ledger.store import StateStore, open_store
from tests.flows.test_nightly import Setup, build, decrypt
from tests.support.pgserver import PostgresServer
from tests.support.pgshop import postgres_shop
from tests.support.shopbuilder import AS_OF


@dataclass(frozen=True)
class Workspace:
    """test_flow's workspace with its shop and its state in two PostgreSQL databases."""

    setup: Setup
    source_url: str
    state_url: str


def postgres_workspace(root: Path, sshd, server: PostgresServer) -> Workspace:
    """test_flow's shop (3 eligible, 3 held back) copied into PostgreSQL, state there too."""
    setup = build(root, sshd)
    source_url, state_url = server.create_database(), server.create_database()
    postgres_shop(setup.shop.path, source_url)
    setup.shop.path.unlink()  # so the flow can only have read PostgreSQL
    text = setup.config.read_text()
    assert 'url = "sqlite:///shop.db"' in text
    setup.config.write_text(
        text.replace('url = "sqlite:///shop.db"', f'url = "{source_url}"')
        + f'\n[state]\nurl = "{state_url}"\n'
    )
    return Workspace(setup, source_url, state_url)


def run(setup: Setup) -> dict[str, int]:
    from flows.nightly import handover

    return handover(config_path=str(setup.config), as_of=AS_OF.isoformat())


@dataclass(frozen=True)
class FirstRun:
    workspace: Workspace
    counts: dict[str, int]


@pytest.fixture(scope="module")
def first_run(prefect, sshd, postgres_server, tmp_path_factory) -> FirstRun:
    """One flow run, shared by the tests that only read what it left (or fail to change it)."""
    workspace = postgres_workspace(tmp_path_factory.mktemp("pg-flow"), sshd, postgres_server)
    return FirstRun(workspace, run(workspace.setup))


def cli(capsys, *argv: str, config: Path) -> str:
    capsys.readouterr()
    assert main([*argv, "--config", str(config)]) == 0
    return capsys.readouterr().out


def test_flow_on_postgresql_delivers_once_and_the_audit_log_verifies(first_run, capsys):
    setup, counts = first_run.workspace.setup, first_run.counts
    assert (counts["eligible"], counts["handed_over.test"]) == (3, 3)
    held = (counts["installment_plan"], counts["protected_customer"], counts["on_hold"])
    assert held == (1, 1, 1)
    payloads = list(setup.inbox.glob("*.csv.age"))
    assert len(payloads) == 1
    rows = read_csv_rows(decrypt(setup, payloads[0]))
    assert sorted(r["invoice_number"] for r in rows) == ["RE-I1", "RE-I2", "RE-I3"]
    assert {r["open_cents"] for r in rows} == {"4000", "5000"}

    store = StateStore(first_run.workspace.state_url)
    assert not (setup.root / "state.db").exists()
    assert store.handed_over() == {"I1", "I2", "I3"}

    counts = run(setup)
    assert (counts["already_handed_over"], counts["eligible"]) == (3, 0)
    assert "handed_over.test" not in counts
    assert len(list(setup.inbox.glob("*.csv.age"))) == 1

    out = cli(
        capsys, "audit", "verify", "--manifests", str(setup.root / "outbox"), config=setup.config
    )
    assert "signatures valid" in out and "consent log intact for 1 drops" in out
    assert "witnessed heads match the log" in out
    with store.engine.connect() as conn:
        events = [e["event"] for e in audit.entries(conn)]
        consent_rows = conn.execute(sa.text("SELECT count(*) FROM consent_log")).scalar_one()
        dry_runs = conn.execute(sa.text("SELECT DISTINCT dry_run FROM runs")).scalars().all()
    assert events.count("case_handed_over") == 3 and events[-2:] == [
        "run_finished",
        "audit_checkpoint",
    ]
    assert consent_rows == 9 and dry_runs == [False]  # 3 cases x 3 channels; a native boolean
    store.engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET data = '{}' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 1",
        "UPDATE audit_log SET data = '{}' WHERE event = 'audit_checkpoint'",
        "DELETE FROM audit_log WHERE event = 'audit_checkpoint'",
        "UPDATE audit_identifiers SET customer_id = 'C9'",
        "DELETE FROM audit_identifiers",
        "UPDATE consent_log SET sent = NOT sent",
        "DELETE FROM consent_log",
        "TRUNCATE audit_log",
    ],
)
def test_the_flows_audit_tables_on_postgresql_refuse_changes(statement, first_run):
    store = StateStore(first_run.workspace.state_url)
    with store.engine.connect() as conn:
        assert len(guards.installed(conn)) == 8
        before = audit.verify(conn).entries
    with (
        pytest.raises(sa.exc.DBAPIError, match=r"(is append-only|refuses)"),
        store.engine.begin() as conn,
    ):
        conn.execute(sa.text(statement))
    with store.engine.connect() as conn:
        assert audit.verify(conn).entries == before
    store.engine.dispose()


def test_compliance_commands_read_the_postgresql_state(first_run, capsys, tmp_path):
    config = first_run.workspace.setup.config
    assert "FAIL  6. no active installment plan" in cli(capsys, "explain", "I4", config=config)
    subject = cli(capsys, "subject", "C1", config=config)
    assert "1 case(s) left the shop" in subject and "email: sent, consent" in subject
    shown = cli(capsys, "audit", "show", "--event", "case_handed_over", config=config)
    assert "3 entries" in shown
    assert cli(capsys, "quarantine", "list", config=config).strip() == "no quarantined cases"
    report = tmp_path / "report.html"
    written = cli(
        capsys,
        "report",
        "--from",
        "2020-01-01",
        "--to",
        "2099-12-31",
        "-o",
        str(report),
        config=config,
    )
    assert "3 cases handed over" in written and report.stat().st_size > 0

    # A withdrawal recorded in the PostgreSQL shop after delivery is found.
    source = sa.create_engine(first_run.workspace.source_url)
    withdrawal = {"at": dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=1)}
    with source.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO consents VALUES ('C2', 'contact_email', false, :at, 'account')"),
            withdrawal,
        )
    try:
        changes = cli(capsys, "consent", "changes", config=config)
    finally:
        with source.begin() as conn:
            conn.execute(sa.text("DELETE FROM consents WHERE recorded_at = :at"), withdrawal)
        source.dispose()
    assert "C2  contact_email" in changes and "1 withdrawal(s) after handover" in changes


def test_retention_erases_on_postgresql_and_the_chain_still_verifies(
    prefect, sshd, postgres_server, tmp_path, capsys
):
    workspace = postgres_workspace(tmp_path, sshd, postgres_server)
    run(workspace.setup)
    store = open_store(load_config(workspace.setup.config))
    # Ten years on, every record of today's run is past retention.
    later = dt.date.today() + dt.timedelta(days=3653)
    result = retention.run(store, today=later, years=3)
    assert (result.identifiers_erased, result.consent_rows_erased) == (3, 9)
    assert (result.handovers_removed, result.decisions_removed) == (3, 6)
    with store.engine.connect() as conn:
        ids = conn.execute(
            sa.text("SELECT count(*) FROM consent_log WHERE customer_id IS NOT NULL")
        )
        assert ids.scalar_one() == 0
    store.engine.dispose()
    out = cli(capsys, "audit", "verify", config=workspace.setup.config)
    assert "3 entries with identifiers, 3 of them erased" in out
    assert "consent log intact for 1 drops" in out
