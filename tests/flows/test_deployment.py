"""prefect.yaml: the four deployments, their entrypoints, schedules and the pull step.

The worker test (test_worker.py) deploys this file and runs it; these are the quick checks.
"""

from __future__ import annotations

import importlib
import inspect

import yaml
from prefect import Flow

from tests.support.paths import PROJECT

# Parameters are stored by Prefect: only paths, dates, names and flags, never personal data.
SAFE_PARAMETERS = {"config_path", "as_of", "agency", "dry_run", "recalls_only"}


def spec() -> dict:
    return yaml.safe_load((PROJECT / "prefect.yaml").read_text())


def deployments() -> dict:
    return {d["name"]: d for d in spec()["deployments"]}


def flow_of(deployment: dict) -> Flow:
    module, name = deployment["entrypoint"].split(":")
    return getattr(importlib.import_module(module), name)


def test_nightly_handover_on_weekdays_in_berlin():
    nightly = deployments()["nightly"]
    flow = flow_of(nightly)
    assert flow.name == "handover"
    assert list(inspect.signature(flow.fn).parameters) == [
        "config_path",
        "as_of",
        "agency",
        "dry_run",
        "recalls_only",
    ]
    assert nightly["concurrency_limit"] == 1  # the lease refuses a second run; Prefect queues it
    (schedule,) = nightly["schedules"]
    assert schedule["timezone"] == "Europe/Berlin"
    assert schedule["cron"].split()[4] == "1-5"


def hours_of(field: str) -> set[int]:
    """The hours a cron hour field names (`*`, `7`, `8-20`, `8-20/2`, comma lists)."""
    hours: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        first, _, last = span.partition("-")
        low, high = (0, 23) if span == "*" else (int(first), int(last or first))
        hours |= set(range(low, high + 1, int(step or 1)))
    return hours


def test_hours_of_a_cron_field():
    assert hours_of("8-20/2") == {8, 10, 12, 14, 16, 18, 20}
    assert hours_of("1,3-4") == {1, 3, 4} and len(hours_of("*")) == 24


def test_returns_are_taken_every_day_in_the_daytime_one_run_at_a_time():
    returns = deployments()["returns"]
    flow = flow_of(returns)
    assert flow.name == "returns"
    assert list(inspect.signature(flow.fn).parameters) == ["config_path", "agency"]
    assert returns["parameters"] == {"config_path": "handover.toml"}  # every agency
    assert returns["concurrency_limit"] == 1  # it holds the lease, like a run
    (schedule,) = returns["schedules"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert (day, month, weekday) == ("*", "*", "*")  # agencies report on weekends too
    # Several times a day, and never in the night, when the nightly run and retention hold
    # the state store's lease.
    assert len(hours_of(hour)) >= 4 and hours_of(hour) <= set(range(6, 23))
    assert minute.isdigit()


def test_both_retentions_run_monthly():
    for name, flow_name in [
        ("archive-retention", "archive-retention"),
        ("identifier-retention", "identifier-retention"),
    ]:
        deployment = deployments()[name]
        assert flow_of(deployment).name == flow_name
        (schedule,) = deployment["schedules"]
        day, month, weekday = schedule["cron"].split()[2:]
        assert (day, month, weekday) == ("1", "*", "*"), name


def test_every_deployment_has_a_flow_safe_parameters_and_a_berlin_schedule():
    assert set(deployments()) == {
        "nightly",
        "returns",
        "archive-retention",
        "identifier-retention",
    }
    for name, deployment in deployments().items():
        flow = flow_of(deployment)
        assert set(inspect.signature(flow.fn).parameters) <= SAFE_PARAMETERS, name
        assert set(deployment["parameters"]) <= SAFE_PARAMETERS, name
        assert deployment["parameters"]["config_path"] == "handover.toml", name
        assert all(s["timezone"] == "Europe/Berlin" for s in deployment["schedules"]), name
        assert deployment["work_pool"] == {"name": "handover"}, name


def test_entrypoints_are_module_paths_of_the_installed_flows_package():
    # A file path (flows/nightly.py:handover) makes Prefect put flows/ first on sys.path, where a
    # flow file named like a package (handover.py) shadows it in the worker.
    for name, deployment in deployments().items():
        module, _ = deployment["entrypoint"].split(":")
        assert module.startswith("flows.") and "/" not in module, name
        assert not module.endswith(".py"), name


def test_prefect_yaml_builds_pushes_and_creates_nothing():
    config = spec()
    assert config["build"] is None and config["push"] is None
    # The one pull step checks HANDOVER_HOME and enters it; no clone, no pip install.
    assert config["pull"] == [{"flows.home.enter_handover_home": {}}]
    step = config["pull"][0]
    module, function = next(iter(step)).rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), function))
    for deployment in config["deployments"]:
        assert set(deployment) <= {
            "name",
            "description",
            "entrypoint",
            "concurrency_limit",
            "parameters",
            "schedules",
            "work_pool",
        }, deployment["name"]
