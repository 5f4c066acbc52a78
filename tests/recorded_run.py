"""A recorded log of one real run of every step kind: the fixture that pins the event format.

``tests/fixtures/every_kind_run.json`` holds every event of one run of ``every_kind()``
exactly as the log stored it (each event's JSON, in order), recorded through a real
``RunManager`` on SQLite, its pauses continued with the answers in ``ANSWERS``. The
recovery fold and the replay tests read it, so a change to what an event carries shows there. After a deliberate change to the event format,
record it again and review the diff:

    .venv/bin/python -m tests.recorded_run

The run's ids and times differ at each recording; the steps, their order and the
content do not (the model is ``DemoModel``; the parallel branches do not await).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson

from runstream import (
    Agent,
    Condition,
    DemoModel,
    HumanReview,
    LocalHub,
    Loop,
    Parallel,
    Router,
    RunManager,
    SQLiteLog,
    Step,
    StepInput,
    StepOutput,
    Steps,
    RunStatus,
    Workflow,
    tool,
)
from runstream.events import StoredEvent

__all__ = ["ANSWERS", "FIXTURE", "MESSAGE", "answer_to", "every_kind", "load", "record", "stored"]

FIXTURE = Path(__file__).parent / "fixtures" / "every_kind_run.json"
MESSAGE = "tide pools"


@tool
def lookup(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: what to look up
    """
    return f"three facts about {topic}"


@tool(requires_confirmation=True)
def publish(text: str) -> str:
    """Publish a text.

    Args:
        text: what to publish
    """
    return "published"


ANSWERS = {
    "StepPaused": {"confirmed": True},
    "StepOutputReview": {"confirmed": True, "edited_output": "reviewed by a person"},
    "StepExecutorPaused": {"confirmed": True},
    "RouterPaused": {"selected_choices": ["pick-a"]},
}
"""The answer ``record`` gives each kind of pause, by the event that asked (see ``answer_to``)."""
REROUTE = {"confirmed": False, "rejection_feedback": "only pick-a"}
"""The answer to the router's first output review: rejected, so a route is asked for again."""


def answer_to(asked: str, requirement: dict[str, Any]) -> dict[str, Any]:
    """The answer to the pause the event ``asked`` announced, waiting on ``requirement``."""
    if requirement.get("step_type") == "Router" and requirement.get("is_post_execution") and not requirement.get("retry_count"):
        return REROUTE
    return ANSWERS[asked]


def every_kind() -> Workflow:
    """Each step kind once, nested: functions (sync, async, and sync and async generators),
    an agent calling a tool, a retried step, ``Steps``, ``Parallel``, ``Condition``, ``Loop``
    and ``Router``; and pauses for a person: the router's output review (rejected, then a
    route picked again, and approved), a confirmation before a step, a review of its output
    and an agent's tool call to confirm."""

    def intake(step_input: StepInput) -> str:
        return f"brief: {step_input.input}"

    async def outline(step_input: StepInput) -> AsyncIterator[str]:
        for part in ("intro ", "body ", "end"):
            yield part

    def notes(step_input: StepInput) -> Iterator[str]:
        yield "note one, "
        yield "note two"
        return "notes taken"

    def word(label: str) -> Step:
        async def make(step_input: StepInput) -> str:
            return f"{label}:{str(step_input.previous_step_content)[:16]}"

        return Step(label, make)

    tries: list[int] = []

    def flaky(step_input: StepInput) -> str:
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionError("the first try fails")
        return "second try"

    def done(step_input: StepInput) -> StepOutput:
        return StepOutput(content={"done": True, "last": step_input.previous_step_content})

    writer = Agent(
        name="Writer",
        model=DemoModel(pace=0, tokens=12),
        instructions="Use lookup before you write.",
        tools=[lookup],
    )
    publisher = Agent(
        name="Publisher",
        model=DemoModel(pace=0, tokens=6),
        instructions="Call publish with the text.",
        tools=[publish],
    )
    return Workflow(
        name="Every Kind",
        id="every-kind",
        steps=[
            Step("Intake", intake),
            Step("Outline", outline),
            Step("Notes", notes),
            Step("Write", agent=writer),
            Steps("Prepare", [word("first"), Parallel(word("left"), word("right"), name="Fan")]),
            Condition(lambda si: True, [Loop([word("draft"), word("review")], max_iterations=2)], else_steps=[word("skip")]),
            Router(lambda si: ["pick-b", "pick-a"], [word("pick-a"), word("pick-b")], name="Pick",
                   human_review=HumanReview(requires_output_review=True, on_reject="retry")),
            Step("Flaky", flaky, max_retries=1),
            Step("Approve", intake, human_review=HumanReview(requires_confirmation=True, confirmation_message="Go on?")),
            Step("Checked", notes, human_review=HumanReview(requires_output_review=True)),
            Step("Publish", agent=publisher),
            Step("Done", done),
        ],
    )


async def record(db: Path) -> list[dict[str, Any]]:
    """Run ``every_kind()`` once through a ``RunManager`` on SQLite, continuing each pause
    with its answer in ``ANSWERS``; every event as logged."""
    manager = RunManager(SQLiteLog(db), LocalHub(), [every_kind()])
    await manager.start()
    try:
        run = await manager.start_run("every-kind", MESSAGE)
        await manager.wait(run.run_id)
        while (await manager.get_run(run.run_id)).status == RunStatus.PAUSED:
            events = await manager.log.read(run.run_id, 0, 100_000)
            asked = orjson.loads(events[-2].data)  # the kind's event, then WorkflowPaused
            requirement = orjson.loads(events[-1].data)["step_requirements"][-1]
            answer = answer_to(asked["event"], requirement)
            await manager.continue_run(run.run_id, [{"requirement_id": requirement["requirement_id"], **answer}])
            await manager.wait(run.run_id)
        events = await manager.log.read(run.run_id, 0, 100_000)
    finally:
        await manager.close()
    return [orjson.loads(event.data) for event in events]


def load() -> list[dict[str, Any]]:
    """The recorded events, each as the JSON object the log holds."""
    recorded: list[dict[str, Any]] = orjson.loads(FIXTURE.read_bytes())["events"]
    return recorded


def stored(events: list[dict[str, Any]]) -> list[StoredEvent]:
    """The events as the log returns them (their JSON text is the log's, byte for byte)."""
    return [StoredEvent(e["event_index"], e["event"], orjson.dumps(e).decode()) for e in events]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        events = asyncio.run(record(Path(tmp) / "record.db"))
    FIXTURE.parent.mkdir(exist_ok=True)
    body = {"workflow": "every-kind", "message": MESSAGE, "recorded_with": "python -m tests.recorded_run", "events": events}
    FIXTURE.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"{len(events)} events -> {FIXTURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
