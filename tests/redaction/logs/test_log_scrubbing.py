"""Log and exception scrubbing (redaction/logs/log_scrubbing.py), also in a real flow run."""

from __future__ import annotations

import contextlib
import io
import logging
import time
import uuid

import pandas as pd
import pytest

from handover.errors import TransientDeliveryError, UnexpectedError
from redaction.logs.log_scrubbing import ScrubbingFilter, scrub_logs
from redaction.logs.safe_errors import scrubbed
from redaction.logs.scrub import GENERIC, Scrubber, current_scrubber

FIRST, LAST = "Kanarienvogel", "Zwitscherling"
EMAIL = "zwitscher.ling@canary-mail.example"
IBAN = "DE02120300000000202051"
PHONE = "0151 98765432"  # as the shop stored it
STREET = "Kanarienweg 77"
CANARIES = (FIRST, LAST, EMAIL, IBAN, PHONE, STREET, "98765432")


def canary_customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "first_name": [FIRST, "Erika"],
            "last_name": [LAST, "Mustermann"],
            "company_name": [None, None],
            "street": [STREET, "Musterstraße 1"],
            "city": ["Canaryhausen", "Dresden"],
            "email": [EMAIL, None],
            "phone": [PHONE, None],
        }
    )


def assert_clean(text: str) -> None:
    leaked = [c for c in CANARIES if c in text]
    assert leaked == [], f"canaries leaked: {leaked}"


@pytest.fixture
def captured() -> io.StringIO:
    """A handler on a logger of its own, as Prefect's handlers are on theirs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("handover.test.scrub")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)


def test_message_arguments_and_traceback_are_scrubbed(captured: io.StringIO) -> None:
    logger = logging.getLogger("handover.test.scrub")
    scrubber = Scrubber.from_frames({"customers": canary_customers()})
    with scrub_logs(scrubber):
        logger.info("customer %s %s <%s>", FIRST, LAST, EMAIL)
        logger.info("%(who)s pays from %(iban)s", {"who": LAST, "iban": IBAN})
        logger.warning(f"phone {PHONE}, street {STREET}")
        logger.info("bad format %s %s", LAST)  # arguments that do not fit the format
        try:
            raise ValueError(f"row: {LAST}, {EMAIL}")
        except ValueError:
            logger.exception("failed for %s", FIRST)
        logger.info("with stack", stack_info=True)
    text = captured.getvalue()
    assert_clean(text)
    assert "customer <name> <name> <<email>>" in text
    assert "<name> pays from <iban>" in text
    assert "phone <phone>, street <address>" in text
    assert "ValueError: row: <name>, <email>" in text  # the traceback is kept, scrubbed
    assert "with stack\nStack (most recent call last)" in text


def test_filter_is_removed_after_the_block(captured: io.StringIO) -> None:
    logger = logging.getLogger("handover.test.scrub")
    with scrub_logs(Scrubber.from_frames({"customers": canary_customers()})):
        assert current_scrubber() is not GENERIC
    assert current_scrubber() is GENERIC
    logger.info("after %s", LAST)  # no batch known any more: not scrubbed
    assert LAST in captured.getvalue()
    assert not [f for h in logging.getLogger("handover.test.scrub").handlers for f in h.filters]


def test_a_record_passing_two_handlers_is_scrubbed_once() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", (EMAIL,), None)
    log_filter = ScrubbingFilter(GENERIC)
    assert log_filter.filter(record) and log_filter.filter(record)
    assert record.getMessage() == "to <email>"


def test_an_escaping_exception_is_replaced() -> None:
    with pytest.raises(UnexpectedError) as caught, scrub_logs(GENERIC, stage="flow 'demo'"):
        raise KeyError(EMAIL)
    assert str(caught.value).startswith("flow 'demo' failed with KeyError raised at ")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(TransientDeliveryError, match="<email> unreachable"), scrub_logs(GENERIC):
        raise TransientDeliveryError(f"{EMAIL} unreachable")


# --- a real Prefect flow run ---------------------------------------------------------------------


def _leaky_flow(scrub: bool = True):
    """A flow whose task logs the canaries and then fails on a pandas error that quotes one.

    With `scrub=False` it runs without the decorator and the log filter: the control that shows
    the read-back would see a leak.
    """
    from prefect import flow, get_run_logger, task
    from prefect.cache_policies import NO_CACHE

    guard = scrubbed if scrub else (lambda fn: fn)

    @task(name="leaky", persist_result=False, cache_policy=NO_CACHE)
    @guard
    def leaky(customers: pd.DataFrame) -> None:
        logger = get_run_logger()
        row = customers.iloc[0]
        logger.info("Processing %s %s <%s>", row.first_name, row.last_name, row.email)
        logger.warning(f"IBAN {IBAN}, phone {row.phone}, street {row.street}")
        customers["last_name"].astype("int64")  # ValueError: ... 'Zwitscherling'

    @flow(name="leaky-flow", persist_result=False)
    def leaky_flow() -> None:
        customers = canary_customers()  # made inside: flow parameters carry no data
        scrubber = Scrubber.from_frames({"customers": customers})
        with scrub_logs(scrubber, stage="flow 'leaky'") if scrub else contextlib.nullcontext():
            get_run_logger().info("Extracted %s", LAST)
            leaky(customers)

    return leaky_flow


def _read_back(flow_run_id: uuid.UUID) -> dict[str, str]:
    """Logs, states and events of one flow run, as the Prefect API holds them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.events.filters import EventFilter, EventRelatedFilter
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs go to the API in batches, in the background
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        related = EventFilter(
            related=EventRelatedFilter(
                resources_in_roles=[(f"prefect.flow-run.{flow_run_id}", "flow-run")]
            )
        )
        events: list = []
        for _ in range(50):  # events arrive through the server's messaging, a moment later
            events = client.read_events(related, limit=50).events
            if any(e.event == "prefect.task-run.Failed" for e in events):
                break
            time.sleep(0.1)
    return {
        "logs": "\n".join(log.message for log in logs),
        "flow_state": f"{flow_run.state.name}: {flow_run.state.message}",
        "task_states": "\n".join(f"{t.state.name}: {t.state.message}" for t in task_runs),
        "events": "\n".join(e.model_dump_json() for e in events),
    }


def test_a_failing_task_leaks_nothing_to_prefect(prefect) -> None:
    state = _leaky_flow()(return_state=True)
    assert state.is_failed()
    stored = _read_back(state.state_details.flow_run_id)

    for place, text in stored.items():
        assert text, f"nothing read back from {place}"
        leaked = [c for c in CANARIES if c in text]
        assert leaked == [], f"{place} leaks {leaked}"
    logs = stored["logs"]
    assert "Processing <name> <name> <<email>>" in logs
    assert "IBAN <iban>, phone <phone>, street <address>" in logs
    assert "Extracted <name>" in logs
    # The task failed on pandas' error, named by type and place; the flow failed on the task's.
    assert (
        "Failed: Task run encountered an exception UnexpectedError: task 'leaky' failed "
        in (stored["task_states"])
    )
    assert "with ValueError raised at " in stored["task_states"]
    assert "UnexpectedError" in stored["flow_state"]
    assert "prefect.task-run.Failed" in stored["events"]


def test_the_read_back_would_see_a_leak(prefect) -> None:
    state = _leaky_flow(scrub=False)(return_state=True)
    stored = _read_back(state.state_details.flow_run_id)
    for place, text in stored.items():
        assert LAST in text, f"{place}: an unscrubbed run does not show there"
