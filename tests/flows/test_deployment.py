"""prefect.yaml: the three deployments, their entrypoints, schedules and the pull step.

The worker test (test_worker.py) deploys this file and runs it; these are the quick checks.
"""

from __future__ import annotations

import importlib
import inspect

import yaml
from prefect import Flow

from tests.support.paths import PROJECT

# Parameters are stored by Prefect: only paths, dates, names and flags, never personal data.
SAFE_PARAMETERS = {"config_path", "as_of", "agency", "dry_run"}


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
    ]
    assert nightly["concurrency_limit"] == 1  # the lease refuses a second run; Prefect queues it
    (schedule,) = nightly["schedules"]
    assert schedule["timezone"] == "Europe/Berlin"
    assert schedule["cron"].split()[4] == "1-5"


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
    assert set(deployments()) == {"nightly", "archive-retention", "identifier-retention"}
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
