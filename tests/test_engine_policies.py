"""Step policies (timeout, retries, cancellation) and structured input and output, on the engine alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from runstream import InvalidInput, Parallel, Step, StepInput, StepOutput, Workflow
from tests.enginekit import Event, context, first, names, run
from tests.waiting import until

pytestmark = pytest.mark.anyio


async def test_a_step_that_outlives_its_timeout_fails_the_run() -> None:
    async def slow(step_input: StepInput) -> str:
        await asyncio.Event().wait()
        return "never"

    events = await asyncio.wait_for(run(Workflow(name="T", steps=[Step("Slow", slow, timeout=0.05)])), 10)
    assert events[-1] == ("WorkflowError", {"error": "Step 'Slow' timed out after 0.05 s", "error_type": "StepFailed"})
    assert "StepRetry" not in names(events)


async def test_a_timed_out_sync_step_is_abandoned_in_its_thread() -> None:
    release = threading.Event()

    def blocking(step_input: StepInput) -> str:
        release.wait(10)
        return "late"

    try:
        events = await asyncio.wait_for(run(Workflow(name="T", steps=[Step("Block", blocking, timeout=0.05)])), 5)
    finally:
        release.set()
    assert events[-1][0] == "WorkflowError" and "timed out" in events[-1][1]["error"]


async def test_a_sync_generator_step_runs_all_its_chunks_in_one_thread_off_the_loop() -> None:
    threads: list[threading.Thread] = []

    def chunks(step_input: StepInput) -> Iterator[str]:
        for i in range(6):
            threads.append(threading.current_thread())
            yield f"{i} "

    events = await run(Workflow(name="G", steps=[Step("Chunks", chunks)]))
    assert [f["content"] for n, f in events if n == "RunContent"] == [f"{i} " for i in range(6)]
    assert first(events, "StepCompleted")["content"] == "0 1 2 3 4 5 "
    assert len(set(threads)) == 1 and threads[0] is not threading.current_thread()
    threads[0].join(5)  # the step closed its worker: the thread ends
    assert not threads[0].is_alive()


async def test_each_retry_is_an_event_and_a_later_success_completes_the_step() -> None:
    attempts: list[int] = []

    def flaky(step_input: StepInput) -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionError(f"refused #{len(attempts)}")
        return "fetched"

    events = await run(Workflow(name="R", steps=[Step("Fetch", flaky, max_retries=3)]))
    retries = [f for n, f in events if n == "StepRetry"]
    assert [(r["attempt"], r["max_retries"], r["error"], r["error_type"]) for r in retries] == [
        (2, 3, "refused #1", "ConnectionError"),
        (3, 3, "refused #2", "ConnectionError"),
    ]
    assert {r["step_path"] for r in retries} == {"0"} and {r["step_name"] for r in retries} == {"Fetch"}
    assert names(events) == [
        "WorkflowStarted", "StepStarted", "StepRetry", "StepRetry", "StepOutput", "StepCompleted", "WorkflowCompleted"
    ]  # fmt: skip
    assert events[-1][1]["content"] == "fetched"


async def test_a_timeout_is_retried_and_fails_the_run_once_retries_are_exhausted() -> None:
    async def slow(step_input: StepInput) -> str:
        await asyncio.Event().wait()
        return "never"

    events = await asyncio.wait_for(run(Workflow(name="T", steps=[Step("Slow", slow, timeout=0.02, max_retries=2)])), 10)
    assert [f["attempt"] for n, f in events if n == "StepRetry"] == [2, 3]
    assert events[-1] == (
        "WorkflowError",
        {"error": "Step 'Slow' failed 3 times: Step 'Slow' timed out after 0.02 s", "error_type": "StepFailed"},
    )


async def test_a_step_without_retries_fails_with_its_own_error() -> None:
    def broken(step_input: StepInput) -> str:
        raise KeyError("missing")

    events = await run(Workflow(name="E", steps=[broken]))
    assert events[-1] == ("WorkflowError", {"error": "'missing'", "error_type": "KeyError"})


def test_policies_are_checked_when_the_step_is_defined() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Step("x", lambda si: None, timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        Step("x", lambda si: None, max_retries=-1)


async def cancel_when_started(workflow: Workflow, step_name: str) -> list[Event]:
    """Run ``workflow``; cancel it as soon as ``step_name`` has started; return the events."""
    events: list[Event] = []
    task = asyncio.create_task(workflow.run(context(events), "go"))

    def started_or_done() -> bool:
        return task.done() or any(n == "StepStarted" and f["step_name"] == step_name for n, f in events)

    await until(started_or_done, 10, what=f"step {step_name!r} to start")
    assert not task.done(), names(events)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    return events


async def test_cancelling_a_run_reaches_into_a_running_async_step() -> None:
    cleaned_up = asyncio.Event()

    async def long(step_input: StepInput) -> str:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.set()
        return "never"

    events = await cancel_when_started(Workflow(name="C", steps=[Parallel(Step("Long", long), Step("Other", long))]), "Long")
    assert cleaned_up.is_set()
    assert "StepCompleted" not in names(events)


async def test_cancelling_a_run_abandons_a_running_sync_step() -> None:
    release = threading.Event()
    finished = threading.Event()

    def long(step_input: StepInput) -> str:
        release.wait(10)
        finished.set()
        return "late"

    try:
        events = await cancel_when_started(Workflow(name="C", steps=[Step("Long", long)]), "Long")
        assert not finished.is_set()  # the run ended while the thread still ran
    finally:
        release.set()
    assert "StepCompleted" not in names(events)


def test_an_abandoned_sync_step_does_not_hold_up_the_event_loop_shutdown() -> None:
    release = threading.Event()

    def long(step_input: StepInput) -> str:
        release.wait(60)
        return "late"

    def main() -> None:  # asyncio.run returns only once its loop has shut down
        asyncio.run(cancel_when_started(Workflow(name="C", steps=[Step("Long", long)]), "Long"))

    loop_thread = threading.Thread(target=main)
    loop_thread.start()
    try:
        loop_thread.join(20)
        assert not loop_thread.is_alive(), "the loop waited for the abandoned step's thread"
    finally:
        release.set()
        loop_thread.join()


class Topic(BaseModel):
    topic: str
    depth: int = 1


class Brief(BaseModel):
    title: str
    points: list[str]


async def test_input_schema_validates_and_steps_may_return_models() -> None:
    seen: list[Any] = []

    def plan(step_input: StepInput) -> Brief:
        seen.append(step_input.input)
        return Brief(title=step_input.input.topic.title(), points=["a"] * step_input.input.depth)

    def count(step_input: StepInput) -> StepOutput:
        seen.append(step_input.previous_step_content)
        return StepOutput(content=step_input.previous_step_content)

    workflow = Workflow(name="IO", steps=[plan, count], input_schema=Topic)
    message = workflow.validate_input('{"topic": "tide pools", "depth": 2}')
    assert workflow.validate_input({"topic": "tide pools", "depth": 2}) == message
    events = await run(workflow, message)
    assert seen == [Topic(topic="tide pools", depth=2), Brief(title="Tide Pools", points=["a", "a"])]
    assert first(events, "StepCompleted", "plan")["content"] == {"title": "Tide Pools", "points": ["a", "a"]}
    assert events[-1][1]["content"] == {"title": "Tide Pools", "points": ["a", "a"]}
    assert events[0][1]["input"] == {"topic": "tide pools", "depth": 2}


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ('{"depth": 2}', "topic: Field required"),
        ({"topic": "x", "depth": "deep"}, "depth: Input should be a valid integer"),
        ("not json", "Invalid JSON"),
    ],
)
def test_input_that_does_not_match_the_schema_is_refused(message: Any, problem: str) -> None:
    with pytest.raises(InvalidInput, match="Input does not match Topic") as refused:
        Workflow(name="IO", steps=[lambda si: None], input_schema=Topic).validate_input(message)
    assert problem in str(refused.value)
