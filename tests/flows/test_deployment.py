"""prefect.yaml declares the flows that `handover run` and `retention drops` run, on schedules."""

from __future__ import annotations

import importlib
import inspect

import yaml

from tests.support.paths import PROJECT

# Parameters are stored by Prefect: only paths, dates, names and flags, never personal data.
SAFE_PARAMETERS = {"config_path", "as_of", "agency", "dry_run"}


def deployments() -> dict:
    spec = yaml.safe_load((PROJECT / "prefect.yaml").read_text())
    return {d["name"]: d for d in spec["deployments"]}


def flow_of(deployment: dict):
    module, name = deployment["entrypoint"].split(":")
    return getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), name)


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


def test_every_deployment_has_a_flow_safe_parameters_and_a_berlin_schedule():
    for name, deployment in deployments().items():
        flow = flow_of(deployment)
        assert set(inspect.signature(flow.fn).parameters) <= SAFE_PARAMETERS, name
        assert set(deployment["parameters"]) <= SAFE_PARAMETERS, name
        assert all(s["timezone"] == "Europe/Berlin" for s in deployment["schedules"]), name
    assert flow_of(deployments()["archive-retention"]).name == "archive-retention"
