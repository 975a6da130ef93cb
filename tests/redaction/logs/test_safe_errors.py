"""Exceptions leaving a task (redaction/logs/safe_errors.py): scrubbed, typed, causeless."""

from __future__ import annotations

import asyncio
import traceback

import pandas as pd
import pytest

from handover.errors import (
    AgeFileError,
    HandoverError,
    SourceError,
    TransientDeliveryError,
    UnexpectedError,
)
from redaction.logs.safe_errors import safe_error, scrubbed
from redaction.logs.scrub import Scrubber, using

NAME = "Zwitscherling"
BATCH = Scrubber.from_columns({"last_name": [NAME]})


@scrubbed
def pandas_echoes_a_row(frame: pd.DataFrame) -> None:
    frame["last_name"].astype("int64")


def test_a_library_error_keeps_its_type_and_place_not_its_message() -> None:
    with pytest.raises(UnexpectedError) as caught, using(BATCH):
        pandas_echoes_a_row(pd.DataFrame({"last_name": [NAME]}))
    error = caught.value
    message = str(error)
    assert message.startswith("task 'pandas_echoes_a_row' failed with ValueError raised at ")
    assert "called from logs/test_safe_errors.py:" in message  # the project frame it passed
    assert "in pandas_echoes_a_row" in message
    assert "withheld" in message and NAME not in message
    # Nothing of the original travels along: not as cause, context or in the traceback.
    assert error.__cause__ is None and error.__context__ is None
    assert NAME not in "".join(traceback.format_exception(error))


def test_a_handover_error_keeps_class_and_transient_with_a_scrubbed_message() -> None:
    @scrubbed
    def deliver() -> None:
        raise TransientDeliveryError(f"host of {NAME} <z@canary.example> unreachable")

    with pytest.raises(TransientDeliveryError) as caught, using(BATCH):
        deliver()
    assert str(caught.value) == "host of <name> <<email>> unreachable"
    assert caught.value.transient is True


def test_instance_attributes_are_kept_scrubbed_and_objects_dropped() -> None:
    original = AgeFileError("header", f"{NAME}: no age file")
    original.transient = True  # set on the instance, not the class
    original.rows = pd.DataFrame({"last_name": [NAME]})  # an object: dropped
    copy = safe_error(original, "task 'open'", BATCH)
    assert type(copy) is AgeFileError
    assert (str(copy), copy.failure, copy.transient) == ("<name>: no age file", "header", True)
    assert not hasattr(copy, "rows")


def test_the_cause_of_a_handover_error_is_dropped() -> None:
    @scrubbed
    def extract() -> None:
        try:
            int(NAME)
        except ValueError as exc:
            raise SourceError("customers.phone is not text") from exc

    with pytest.raises(SourceError) as caught:
        extract()
    assert caught.value.__cause__ is None
    assert NAME not in "".join(traceback.format_exception(caught.value))


def test_without_a_batch_the_patterns_still_apply() -> None:
    error = safe_error(HandoverError("write to x@y.example failed"), "task 't'")
    assert str(error) == "write to <email> failed"


def test_async_task_bodies_and_return_values() -> None:
    @scrubbed
    async def fails() -> None:
        raise KeyError(NAME)

    @scrubbed
    async def works() -> int:
        return 7

    with pytest.raises(UnexpectedError, match="task 'fails' failed with KeyError"):
        asyncio.run(fails())
    assert asyncio.run(works()) == 7
    assert scrubbed(lambda x: x + 1)(1) == 2


def test_prefect_keys_the_task_by_its_body_not_the_wrapper() -> None:
    from prefect import task

    def extract() -> int:
        return 1

    def decide() -> int:
        return 2

    assert task(scrubbed(extract)).task_key == task(extract).task_key
    assert task(scrubbed(extract)).task_key != task(scrubbed(decide)).task_key
