"""prefect.yaml declares the flow that `handover run` runs, on a weekday Berlin schedule."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_deployment_points_at_the_flow_with_a_weekday_berlin_schedule():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = spec["deployments"]
    module, name = deployment["entrypoint"].split(":")
    flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), name)
    assert flow.name == "handover"
    # Parameters are stored by Prefect: only a path, a date, a name and a flag.
    assert list(inspect.signature(flow.fn).parameters) == [
        "config_path",
        "as_of",
        "agency",
        "dry_run",
    ]
    assert set(deployment["parameters"]) <= {"config_path", "as_of", "agency", "dry_run"}
    (schedule,) = deployment["schedules"]
    assert schedule["timezone"] == "Europe/Berlin"
    assert schedule["cron"].split()[4] == "1-5"
