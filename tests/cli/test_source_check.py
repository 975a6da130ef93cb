"""`handover source check` and `handover run` on a shop whose views break the contract, run as
the data engineer runs them: the console script, as a subprocess."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from handover.crypto.keys import KeyDirectory
from handover.demo import data
from tests.conftest import free_port, ssh_keygen
from tests.support.paths import EXAMPLE_CONFIG, PROJECT
from tests.support.sourceviews import SourceDb

HANDOVER = str(Path(sys.executable).parent / "handover")
TABLES = (
    "invoices",
    "customers",
    "payments",
    "dunning_events",
    "disputes",
    "installment_plans",
    "customer_flags",
    "consents",
    "holds",
)


@dataclass(frozen=True)
class Workspace:
    config: Path
    shop: SourceDb
    today: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("demo-shop") / "shop.db"
    return path, data.generate(path, customers=1000, seed=3).today.isoformat()


@pytest.fixture
def workspace(tmp_path, demo) -> Workspace:
    """The example configuration next to a copy of the demo shop (`sqlite:///shop.db`)."""
    shutil.copyfile(demo[0], tmp_path / "shop.db")
    config = tmp_path / "handover.toml"
    shutil.copyfile(EXAMPLE_CONFIG, config)
    return Workspace(config, SourceDb(f"sqlite:///{tmp_path / 'shop.db'}", "sqlite"), demo[1])


def handover(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HANDOVER, *args], capture_output=True, text=True, timeout=600, env=env, check=False
    )


def test_the_demo_shop_is_ok_and_exits_0(workspace):
    started = time.monotonic()
    done = handover(
        "source", "check", "--config", str(workspace.config), "--as-of", workspace.today
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for table in TABLES:
        assert any(line.split()[:2] == [table, "OK"] for line in lines), (table, done.stdout)
    assert lines[-1] == "All tables meet the contract (schemas/shop_source.sql)."
    assert done.stderr == "" and elapsed < 10


def test_a_mapping_that_looks_wrong_is_warned_about_without_failing(workspace):
    check = ("source", "check", "--config", str(workspace.config), "--as-of", workspace.today)
    done = handover(*check)
    assert "warn:" not in done.stdout  # the demo shop looks right
    # The dunning run's time instead of when the letter left; no birth dates delivered.
    workspace.shop.view("dunning_events", sent_at="substr(sent_at, 1, 10) || ' 03:00:00'")
    workspace.shop.view("customers", date_of_birth="NULL")
    done = handover(*check)
    assert done.returncode == 0, done.stdout + done.stderr
    warnings = [line.strip() for line in done.stdout.splitlines() if "warn:" in line]
    assert len(warnings) == 2, done.stdout
    assert "every event has the same time: is sent_at the dunning run's time" in warnings[1]
    assert "consumers has a date_of_birth, so rule 8" in warnings[0]
    assert "set [source] keeps_birth_dates = false if it keeps none" in warnings[0]
    # A shop that keeps no birth dates says so, and the warning is gone; the other stays.
    text = workspace.config.read_text()
    assert "\nkeeps_birth_dates = true\n" in text  # the example's documented default
    workspace.config.write_text(text.replace("birth_dates = true", "birth_dates = false"))
    done = handover(*check)
    warnings = [line.strip() for line in done.stdout.splitlines() if "warn:" in line]
    assert len(warnings) == 1 and "every event has the same time" in warnings[0], done.stdout


def test_an_optional_table_may_be_absent_a_required_one_not(workspace):
    check = ("source", "check", "--config", str(workspace.config), "--as-of", workspace.today)
    workspace.shop.execute("DROP TABLE unallocated_payments")
    done = handover(*check)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unallocated_payments  ABSENT (optional: a run reads it as empty)" in done.stdout
    # A view that leaves an optional column out: read as NULL, and said so.
    workspace.shop.execute(
        "ALTER TABLE holds RENAME TO raw_holds",
        "CREATE VIEW holds AS SELECT hold_id, invoice_id, customer_id, reason, set_by, set_at "
        "FROM raw_holds",
    )
    done = handover(*check)
    assert done.returncode == 0, done.stdout + done.stderr
    for column in ("expires_at", "held_until"):
        assert f"read: {column}: not delivered, read as NULL (optional)" in done.stdout
    workspace.shop.execute("DROP VIEW holds")
    done = handover(*check)
    assert done.returncode == 1
    assert "the shop database has no table or view 'holds'" in done.stdout


def test_a_broken_copy_names_what_to_fix_and_exits_1(workspace):
    shop = workspace.shop
    shop.view(
        "invoices",
        due_date="CASE WHEN invoice_id IN (SELECT min(invoice_id) FROM raw_invoices WHERE "
        f"status = 'open' AND due_date < '{workspace.today}') THEN NULL ELSE due_date END",
        issued_at="issued_at || ' 10:00:00'",
    )
    shop.view("payments", amount_cents="amount_cents / 100.0")
    shop.view("consents", granted="CASE WHEN granted THEN 'yes' ELSE 'no' END")
    done = handover(
        "source", "check", "--config", str(workspace.config), "--as-of", workspace.today
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    invoices = _count(workspace, "invoices")
    for expected in (
        f"invoices              FIX ({invoices} rows)",
        f"fix: view 'invoices', column 'issued_at': {invoices} of {invoices} values carry a time "
        "of day without a zone, which is ambiguous; deliver the calendar date: ",
        "fix (a run holds these cases back): view 'invoices', column 'due_date': 1 of "
        f"{invoices} values are NULL; a run holds their cases back (invalid_date)",
        "fix: view 'payments', column 'amount_cents': ",
        " values are real (floating-point) numbers; amounts are integer minor units (cents)",
        "fix: view 'consents', column 'granted': ",
        " values are text; flags are 0 or 1",
        "customers             OK (",
        "3 problem(s) stop a run, 1 hold cases back: fix them in the shop database or its views",
    ):
        assert expected in out, (expected, out)
    assert "10:00:00" not in out and "yes" not in out  # counts, never values


def test_values_a_run_would_hold_back_are_counted_before_a_run(workspace):
    """A kind, a language or a dunning kind the contract does not know: named now, by count,
    with what is allowed, instead of as reason codes after a run."""
    shop = workspace.shop
    shop.view("customers", kind="'person'", language="language || '-AT'")
    shop.view("dunning_events", kind="CASE kind WHEN 'reminder' THEN '1' ELSE kind END")
    check = ("source", "check", "--config", str(workspace.config), "--as-of", workspace.today)
    done = handover(*check)
    assert done.returncode == 1, done.stdout + done.stderr
    held = r"fix \(a run holds these cases back\): view "
    for expected in (
        held + r"'customers', column 'kind': (\d+) of \1 values are not one of 'consumer', "
        r"'business'; a run holds their cases back \(invalid_debtor_kind\)",
        held + r"'customers', column 'language': (\d+) of \1 values are not ISO 639-1 codes",
        held + r"'dunning_events', column 'kind': [1-9]\d* of \d+ values are not one of "
        r"'reminder', 'dunning', 'final_notice'; a run holds their cases back "
        r"\(invalid_dunning_event\)",
        r"0 problem\(s\) stop a run, 3 hold cases back",
    ):
        assert re.search(expected, done.stdout), (expected, done.stdout)
    assert "person" not in done.stdout and "de-AT" not in done.stdout  # counts, never values
    # With the shop's levels configured, the levels are what dunning kinds may be.
    with workspace.config.open("a") as config:
        config.write(
            '\n[source.dunning_levels]\n"1" = { kind = "reminder" }\n'
            '"dunning" = { kind = "dunning" }\n"final_notice" = { kind = "final_notice" }\n'
        )
    shop.execute("DROP VIEW customers", "ALTER TABLE raw_customers RENAME TO customers")
    done = handover(*check)
    assert done.returncode == 0, done.stdout + done.stderr
    shop.execute(
        "DROP VIEW dunning_events", "ALTER TABLE raw_dunning_events RENAME TO dunning_events"
    )
    done = handover(*check)
    assert done.returncode == 1
    assert "values are not one of '1', 'dunning', 'final_notice'" in done.stdout, done.stdout


def test_amounts_in_euros_are_refused_until_the_configuration_confirms_cents(workspace):
    workspace.shop.view("invoices", amount_cents="amount_cents / 100")
    check = ("source", "check", "--config", str(workspace.config), "--as-of", workspace.today)
    done = handover(*check)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "they look like euros, not cents" in done.stdout
    assert "set source.confirm_minor_units = true in the configuration" in done.stdout
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(
        text.replace("confirm_minor_units = false", "confirm_minor_units = true", 1),
        encoding="utf-8",
    )
    done = handover(*check)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "amounts look like major units, accepted (source.confirm_minor_units)" in done.stdout


def _count(workspace: Workspace, table: str) -> int:
    """The rows of `table` a run on the workspace's day reads, counted independently."""
    path = workspace.shop.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        (n,) = db.execute(
            f"SELECT count(*) FROM raw_{table} WHERE status = 'open' AND due_date < ?",
            (workspace.today,),
        ).fetchone()
    return n


def test_neither_prefect_nor_great_expectations_is_imported(workspace):
    probe = (
        "import sys\n"
        "from handover.cli.main import main\n"
        f"code = main(['source', 'check', '--config', {str(workspace.config)!r}])\n"
        "print(code, sorted(m for m in ('prefect', 'great_expectations') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT, check=True
    )
    assert done.stdout.splitlines()[-1] == "0 []"


def test_an_unreachable_database_is_one_line_exit_1(workspace):
    text = workspace.config.read_text().replace(
        'url = "sqlite:///shop.db"',
        f'url = "postgresql+psycopg://shop@127.0.0.1:{free_port()}/shop"',
    )
    workspace.config.write_text(text)
    done = handover("source", "check", "--config", str(workspace.config))
    assert done.returncode == 1
    assert done.stderr.startswith("handover: error: cannot read the shop database: ")
    assert done.stderr.count("\n") == 1


def test_handover_run_stops_on_a_broken_view_naming_view_and_column(workspace, prefect):
    """End to end: the run checks the contract before it reads, with the same message."""
    from prefect.settings import PREFECT_API_URL

    root = workspace.config.parent
    KeyDirectory(root / "keys").init()
    host_key = ssh_keygen(root / "agency_host_ed25519")
    key_type, key_data = host_key.with_suffix(".pub").read_text().split()[:2]
    (root / "known_hosts").write_text(f"sftp.inkasso-nord.example {key_type} {key_data}\n")
    workspace.shop.view("invoices", due_date="due_date || 'T09:30:00'")
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_HOME": str(root / "prefect-home"),
    }
    done = handover(
        "run", "--config", str(workspace.config), "--as-of", workspace.today, "--dry-run", env=env
    )
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("handover: error: ")]
    assert len(errors) == 1, done.stderr
    assert (
        errors[0].startswith("handover: error: view 'invoices', column 'due_date': ")
        and "values carry a time of day without a zone" in errors[0]
    )
    assert "T09:30:00" not in done.stdout + done.stderr


def test_a_view_without_the_fact_times_recalls_read_is_named(workspace):
    """Recalls read when a payment was made (paid_at): a view that leaves it out is named by
    `source check`, as the comparison of the cases at an agency would stop on it."""
    shop = workspace.shop
    shop.execute(
        "ALTER TABLE payments RENAME TO raw_payments",
        "CREATE VIEW payments AS SELECT payment_id, invoice_id, amount_cents, method, iban "
        "FROM raw_payments",
    )
    done = handover(
        "source", "check", "--config", str(workspace.config), "--as-of", workspace.today
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "fix: view 'payments' lacks column(s) paid_at required by schemas/shop_source.sql"
        in done.stdout
    ), done.stdout
