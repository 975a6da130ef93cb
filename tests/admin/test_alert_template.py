"""The alert's templates, rendered by Prefect's own sandboxed renderer on Prefect's own models.

The end-to-end test (test_alerts.py) proves a real server renders and sends them; these cover
the cases a test run cannot cheaply produce (a crash, a retention flow, a deployment) and prove
that a value outside the named fields cannot reach the message.
"""

from __future__ import annotations

import ast
import uuid

import pytest

from handover.admin.alerts import BODY, FLOWS, SUBJECT, definition
from tests.flows.test_canary import CUSTOMER, find_canaries
from tests.support.paths import PROJECT

RUN_ID = uuid.UUID("0b9c1a52-6d4e-4f3a-9a57-1c2d3e4f5a6b")
CANARY = CUSTOMER["first_name"]


def render(
    message: str,
    *,
    state: str = "Failed",
    flow: str = "handover",
    parameters: dict | None = None,
    deployment: str | None = None,
) -> tuple[str, str]:
    from prefect.server.schemas.core import Deployment, Flow, FlowRun
    from prefect.server.schemas.states import State, StateType
    from prefect.server.utilities.user_templates import render_user_template_sync

    flow_id = uuid.uuid4()
    run = FlowRun(
        id=RUN_ID,
        flow_id=flow_id,
        # Where a careless template could find data: none of these may appear.
        name=f"run-{CANARY}",
        tags=[CANARY],
        parameters=parameters
        if parameters is not None
        else {"config_path": f"/home/{CANARY}/handover.toml", "as_of": None, "agency": None},
        state=State(type=StateType[state.upper()], name=state, message=message),
    )
    context = {
        "flow_run": run,
        "flow": Flow(id=flow_id, name=flow, tags=[CANARY]),
        "deployment": Deployment(name=deployment, flow_id=flow_id, description=CANARY)
        if deployment
        else None,
    }
    return (
        render_user_template_sync(SUBJECT, context),
        render_user_template_sync(BODY, context),
    )


def test_a_threshold_stop_keeps_counts_and_codes_and_drops_the_invoice_list():
    message = (
        "Flow run encountered an exception: ValidationFailed: suite 'source': 40 of 100 cases "
        "(40.0%) failed row-level checks, more than the 5.0% allowed (max_quarantine_share). "
        "Reasons: invalid_email 30, missing_address 10. Invoices: INV-1, INV-2, …. Check the "
        "extraction."
    )
    subject, body = render(message, deployment="nightly")
    assert subject == f"handover alert: handover run Failed (run {RUN_ID})"
    assert body.splitlines()[0].startswith("Stopped by validation before anything was sent")
    assert "flow:     handover (deployment nightly)" in body
    assert "as_of:    today (Europe/Berlin)" in body and "agency:   all" in body
    assert "error:    ValidationFailed" in body
    assert "details:  suite 'source': 40 of 100 cases" in body
    assert "Reasons: invalid_email 30, missing_address 10." in body
    assert "INV-" not in body and "Check the extraction" not in body


@pytest.mark.parametrize("error", ["DeliveryError", "HostKeyMismatch", "TransientDeliveryError"])
def test_a_delivery_failure_says_the_cases_wait(error):
    message = f"Flow run encountered an exception: {error}: agency nord: timed out"
    _, body = render(message, parameters={"as_of": "2026-06-15", "agency": "nord"})
    assert body.startswith("Delivery failed: the named agencies' cases wait for the next run")
    assert f"error:    {error}" in body and "details:  agency nord: timed out" in body
    assert "as_of:    2026-06-15" in body and "agency:   nord" in body


def test_a_crashed_retention_run_names_neither_date_nor_agency():
    subject, body = render(
        "Execution was aborted by an interrupt signal.",
        state="Crashed",
        flow="archive-retention",
        parameters={"config_path": "/srv/h.toml", "dry_run": True},
    )
    assert subject.endswith(f"archive-retention run Crashed (run {RUN_ID})")
    assert body.startswith("The run's process ended abnormally")
    assert "as_of" not in body and "agency" not in body and "error:" not in body
    assert "dry run:  yes" in body
    assert "details:  Execution was aborted by an interrupt signal." in body


def test_any_other_failure_is_named_by_its_type():
    message = (
        "Flow run encountered an exception: UnexpectedError: task 'extract' failed with "
        "UnicodeDecodeError raised at x.py:1 in f; its message is withheld"
    )
    _, body = render(message)
    assert body.startswith("The run failed.")
    assert "error:    UnexpectedError" in body


def test_only_the_named_fields_reach_the_message():
    """Canaries in the run's name, tags, config path and deployment: none is rendered."""
    subject, body = render("Flow run encountered an exception: SourceError: x", deployment="n")
    assert find_canaries(f"{subject}\n{body}".encode()) == set()
    # …while the same canary in the state message does arrive: the search can fail.
    _, leaky = render(f"Flow run encountered an exception: SourceError: {CANARY}")
    assert CANARY in find_canaries(leaky.encode())


def test_the_automation_watches_every_flow_of_the_project():
    names = set()
    for path in (PROJECT / "flows").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "flow":
                names |= {k.value.value for k in node.keywords if k.arg == "name"}
    assert "handover" in names
    assert names <= set(FLOWS), f"flows without alerts: {sorted(names - set(FLOWS))}"
    trigger = definition_for_test()["trigger"]
    assert trigger["match_related"]["prefect.resource.name"] == list(FLOWS)
    assert trigger["match"]["prefect.state-type"] == ["FAILED", "CRASHED"]


def definition_for_test() -> dict:
    from handover.admin.alerts import NotificationBlock

    return definition(NotificationBlock(str(uuid.uuid4()), "team", "custom-webhook"))


def test_a_refused_return_file_says_the_handovers_went_ahead():
    message = (
        "Flow run encountered an exception: ReturnRefused: return file R-1 of agency nord: "
        "R-1.csv.age does not match the signed manifest"
    )
    _, body = render(message, flow="returns", parameters={"config_path": "x", "agency": None})
    assert body.startswith("Return file refused: nothing of it was ingested")
    assert "error:    ReturnRefused" in body and "return file R-1 of agency nord" in body
