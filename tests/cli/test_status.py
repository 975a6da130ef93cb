"""`handover status` as an operator runs it: after a real night in which one agency's delivery
failed, its drop waits and shows with its age; the JSON says the same; `--check` exits 4; the
next scheduled runs come from a real Prefect server, and a missing or silent one is one line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest
import sqlalchemy as sa

from tests.conftest import Sshd, free_port
from tests.support.cli import SCRIPT, handover
from tests.support.paths import PROJECT
from tests.support.shopbuilder import AS_OF, Shop
from tests.support.workspaces import CONFIG_HEAD, sftp_agency, shop_keys

# The personal data of the test shop's customers: none of it may appear in any status output.
PERSONAL = ("Jürgen", "Müller", "Hauptstraße", "j.mueller@example.de", "1234567", "1980-05-17")
# How long the waiting drop has waited, as the test sets it (see `night`).
WAITED = dt.timedelta(days=2, hours=3, minutes=10)


@dataclass(frozen=True)
class Night:
    root: Path
    config: Path
    run_output: str
    run_code: int


def env_without_prefect(**extra: str) -> dict[str, str]:
    """The environment of a shell with no Prefect API configured (and an empty Prefect home)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("HANDOVER_CONFIG", None)
    return {**env, **extra}


def status(night_or_config: Night | Path, *args: str, env: dict[str, str] | None = None):
    config = night_or_config.config if isinstance(night_or_config, Night) else night_or_config
    return subprocess.run(
        [str(SCRIPT), "status", "--config", str(config), *args],
        cwd=config.parent,
        env=env or env_without_prefect(PREFECT_HOME=str(config.parent / "no-prefect-home")),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def night(tmp_path_factory, sshd: Sshd, prefect) -> Night:
    """One real `handover run`: nord's drop is delivered, sued's inbox does not exist, so its
    sealed drop waits. The drop's recorded times are then moved back by WAITED, as if the
    night had been two days ago (nothing else in the store depends on them)."""
    from prefect.settings import PREFECT_API_URL

    root = tmp_path_factory.mktemp("status-night")
    shop = Shop(root / "shop.db")
    for n in (1, 2, 3):
        shop.customer(f"C{n}").invoice(f"I{n}", f"C{n}")
    for n in (4, 5):
        shop.customer(f"C{n}", country="AT", postal_code="1010", city="Wien")
        shop.invoice(f"I{n}", f"C{n}")
    shop_keys(root / "keys", sshd)
    sshd.write_known_hosts(root / "known_hosts")
    nord_inbox = sshd.new_inbox()
    sued_inbox = sshd.new_inbox()
    sued_inbox.rmdir()  # the agency's inbox is gone: delivery to sued fails, its drop waits
    tables = sftp_agency(
        "nord", _recipient(), sshd, nord_inbox, extra='countries = ["DE"]\n'
    ) + sftp_agency("sued", _recipient(), sshd, sued_inbox, extra='countries = ["AT"]\n')
    config = root / "handover.toml"
    config.write_text(
        CONFIG_HEAD + "[delivery]\nretry_delay_seconds = [0]\ntimeout_seconds = 10\n" + tables
    )
    env = {
        **env_without_prefect(),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_HOME": str(root / "prefect-home"),
        "PYTHONPATH": str(PROJECT),
    }
    done = subprocess.run(
        [str(SCRIPT), "run", "--config", str(config), "--as-of", AS_OF.isoformat()],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    engine = sa.create_engine(f"sqlite:///{root / 'state.db'}")
    with engine.begin() as conn:
        for row in conn.execute(sa.text("SELECT drop_id, prepared_at, sealed_at FROM drops")):
            conn.execute(
                sa.text("UPDATE drops SET prepared_at = :p, sealed_at = :s WHERE drop_id = :d"),
                {"p": _earlier(row.prepared_at), "s": _earlier(row.sealed_at), "d": row.drop_id},
            )
    engine.dispose()
    return Night(root, config, done.stdout + done.stderr, done.returncode)


def _recipient() -> str:
    return str(pyrage.x25519.Identity.generate().to_public())


def _earlier(iso: str | None) -> str | None:
    if iso is None:
        return None
    return (dt.datetime.fromisoformat(iso) - WAITED).isoformat(timespec="seconds")


def test_a_waiting_drop_shows_per_agency_with_its_age(night: Night):
    assert night.run_code == 1, night.run_output  # sued's delivery failed; nord's went through
    done = status(night)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Drops waiting for delivery: 1" in out
    assert "  nord: none" in out
    assert "  sued: 1 drop(s), 2 cases, oldest waiting 2 d 3 h" in out
    (line,) = [ln for ln in out.splitlines() if ln.startswith(f"    {AS_OF.isoformat()}-sued-")]
    assert " sealed since " in line and "waiting 2 d 3 h, 2 cases, run " in line
    assert line.endswith(": sealed, the next run delivers it")
    # The run that left it: as_of, status, counts, and where it ran (it held the lease).
    assert f"  {AS_OF.isoformat()}  failed     run " in out
    assert f"on {socket.gethostname()} pid " in out
    assert "      failed with DeliveryError (`handover run` printed it" in out
    assert "Lease: free (no run is working on the state store)." in out
    assert "Next scheduled runs unknown: no Prefect API configured" in out
    assert not [word for word in PERSONAL if word in out + done.stderr]


def test_status_json_has_the_same_content_with_stable_keys(night: Night):
    done = status(night, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert list(report) == ["now", "runs", "lease", "drops_waiting", "agencies", "schedule"]
    (run,) = report["runs"]
    assert run["status"] == "failed" and run["as_of"] == AS_OF.isoformat()
    assert run["agency"] is None and run["dry_run"] is False and run["held_lease"] is True
    assert run["host"] == socket.gethostname() and isinstance(run["pid"], int)
    assert run["counts"] == {"error": "DeliveryError"}  # a failed run records only that
    assert report["lease"] == {
        "held": False,
        "run_id": None,
        "since": None,
        "host": None,
        "pid": None,
        "alive": None,
        "why_dead": None,
    }
    assert report["drops_waiting"] == 1
    assert report["agencies"]["nord"] == {
        "drops_waiting": 0,
        "cases_waiting": 0,
        "oldest_prepared_at": None,
        "drops": [],
    }
    sued = report["agencies"]["sued"]
    (drop,) = sued["drops"]
    assert sued["drops_waiting"] == 1 and sued["cases_waiting"] == 2
    assert sued["oldest_prepared_at"] == drop["prepared_at"]
    assert list(drop) == [
        "agency",
        "drop_id",
        "run_id",
        "kind",
        "status",
        "case_count",
        "prepared_at",
        "sealed_at",
        "status_since",
        "age_seconds",
    ]
    assert drop["status"] == "sealed" and drop["status_since"] == drop["sealed_at"]
    assert drop["run_id"] == run["run_id"] and drop["agency"] == "sued"
    assert drop["kind"] == "handover"
    waited = WAITED.total_seconds()
    assert waited <= drop["age_seconds"] < waited + 600
    assert report["schedule"]["api_url"] is None and report["schedule"]["reachable"] is False
    assert report["schedule"]["deployments"] == []
    assert not [word for word in PERSONAL if word in done.stdout]


def test_check_exits_4_while_a_drop_waits(night: Night, tmp_path: Path):
    assert status(night, "--check").returncode == 4
    assert status(night, "--check", "--json").returncode == 4
    # A shop whose store has no waiting drop: 0 with --check as without.
    fresh = _fresh_config(tmp_path)
    assert status(fresh, "--check").returncode == 0


def test_status_before_the_first_run_creates_nothing(tmp_path: Path):
    config = _fresh_config(tmp_path)
    done = status(config, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["runs"] == [] and report["drops_waiting"] == 0
    assert report["lease"]["held"] is False
    assert not (tmp_path / "state.db").exists()  # status only reads
    text = status(config)
    assert text.stdout.startswith("No run yet: the state store has recorded none.\n")


def test_a_bad_runs_count_is_a_usage_error(tmp_path: Path):
    done = status(_fresh_config(tmp_path), "--runs", "0")
    assert done.returncode == 2
    assert "'0' is not a whole number of 1 or more" in done.stderr


def test_an_unreachable_prefect_api_is_one_line_not_an_error(tmp_path: Path):
    config = _fresh_config(tmp_path)
    url = f"http://127.0.0.1:{free_port()}/api"
    started = time.monotonic()
    done = status(config, env=env_without_prefect(PREFECT_API_URL=url))
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("Next scheduled runs")]
    assert line.startswith(f"Next scheduled runs unknown: Prefect API {url} does not answer (")
    assert line.endswith(
        "start the server there (`prefect server start`) or correct PREFECT_API_URL."
    )
    report = json.loads(
        status(config, "--json", env=env_without_prefect(PREFECT_API_URL=url)).stdout
    )
    assert report["schedule"]["reachable"] is False and report["schedule"]["api_url"] == url


def test_the_api_url_of_the_active_prefect_profile_is_used(tmp_path: Path):
    """`prefect config set PREFECT_API_URL=…` writes the profile, not the environment."""
    config = _fresh_config(tmp_path)
    home = tmp_path / "prefect-home"
    home.mkdir()
    url = f"http://127.0.0.1:{free_port()}/api"
    (home / "profiles.toml").write_text(
        f'active = "ops"\n\n[profiles.ops]\nPREFECT_API_URL = "{url}"\n\n[profiles.local]\n'
    )
    done = status(config, "--json", env=env_without_prefect(PREFECT_HOME=str(home)))
    assert json.loads(done.stdout)["schedule"]["api_url"] == url
    # PREFECT_PROFILE picks another profile, here one without an API.
    other = env_without_prefect(PREFECT_HOME=str(home), PREFECT_PROFILE="local")
    assert json.loads(status(config, "--json", env=other).stdout)["schedule"]["api_url"] is None


def test_next_scheduled_runs_come_from_the_prefect_server(prefect_server, tmp_path: Path):
    """Deployments of this project's flows (by flow name) with their next run; others not."""
    script = textwrap.dedent(
        """
        import datetime as dt
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import DeploymentScheduleCreate
        from prefect.client.schemas.schedules import CronSchedule
        from prefect.states import Scheduled

        with get_client(sync_client=True) as client:
            nightly = client.create_flow_from_name("handover")
            client.create_deployment(
                flow_id=nightly,
                name="nightly",
                entrypoint="flows/nightly.py:handover",
                schedules=[
                    DeploymentScheduleCreate(
                        schedule=CronSchedule(cron="30 1 * * 1-5", timezone="Europe/Berlin"),
                        active=True,
                    )
                ],
            )
            archive = client.create_flow_from_name("archive-retention")
            client.create_deployment(
                flow_id=archive, name="archive-retention", entrypoint="flows/retention.py:x",
                paused=True,
            )
            foreign = client.create_flow_from_name("someone-elses-flow")
            other = client.create_deployment(flow_id=foreign, name="x", entrypoint="x.py:x")
            soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
            client.create_flow_run_from_deployment(other, state=Scheduled(scheduled_time=soon))
        """
    )
    made = subprocess.run(
        [sys.executable, "-c", script], env=prefect_server.env(), capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    config = _fresh_config(tmp_path)
    env = prefect_server.env()
    env.pop("HANDOVER_CONFIG", None)
    deadline = time.monotonic() + 60
    while True:  # the server schedules the cron's runs when the deployment is created
        report = json.loads(status(config, "--json", env=env).stdout)
        found = {d["deployment"]: d for d in report["schedule"]["deployments"]}
        if found.get("handover/nightly", {}).get("next_run") or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert report["schedule"]["reachable"] is True and report["schedule"]["note"] is None
    assert set(found) == {"handover/nightly", "archive-retention/archive-retention"}
    nightly = found["handover/nightly"]
    next_run = dt.datetime.fromisoformat(nightly["next_run"])
    assert dt.datetime.now(dt.UTC) < next_run < dt.datetime.now(dt.UTC) + dt.timedelta(days=4)
    assert next_run.astimezone(dt.timezone(dt.timedelta(hours=1))).strftime("%H:%M") in (
        "01:30",
        "02:30",  # Berlin in summer time, seen from UTC+1
    )
    assert nightly["late"] is False and nightly["paused"] is False
    archive = found["archive-retention/archive-retention"]
    assert archive["paused"] is True and archive["next_run"] is None
    text = status(config, env=env).stdout
    assert f"Next scheduled runs (Prefect API {prefect_server.api_url}):" in text
    assert f"  handover/nightly: {nightly['next_run']} (in " in text
    assert "  archive-retention/archive-retention: nothing scheduled (paused)" in text
    assert "someone-elses-flow" not in text


def _fresh_config(root: Path) -> Path:
    """A configuration whose state store was never opened."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "handover.toml"
    config.write_text(
        CONFIG_HEAD
        + f"""
[agencies.nord]
recipients = ["{_recipient()}"]
[agencies.nord.sftp]
host = "127.0.0.1"
user = "shop"
"""
    )
    return config


def test_status_via_the_shared_helper_names_a_missing_config(tmp_path: Path):
    done = handover("status", "--config", tmp_path / "nope.toml")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("handover: error: ") and "nope.toml" in done.stderr
