"""A server for the console's browser tests, run as a real process: ``python -m tests.apps.console_app``.

Environment: ``CONSOLE_DB`` (the SQLite file), ``CONSOLE_PORT``, ``CONSOLE_DIR`` (a folder
of gate files), ``CONSOLE_KEY`` (optional security key).

The ``story`` workflow is research (an agent with a tool), a parallel pair of drafts, then
writing (an agent). Its ``Examples`` branch streams half its text, then waits until the
file ``CONSOLE_DIR/open`` exists (any number of runs, any number of restarts), then streams
the rest: a test holds a run mid-text, reloads, kills the server, and lets it go on. The
``long`` workflow streams ``N`` chunks for an input ``N`` (a 5,000-event run); ``trip``
takes a typed input (``Trip``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import BaseModel, Field

from runstream import Agent, DemoModel, Parallel, Server, Step, StepInput, Workflow

__all__ = ["EXAMPLES", "OUTLINE", "server", "workflows"]

GATES = Path(os.environ.get("CONSOLE_DIR", "."))
PACE = 0.01
OUTLINE = [f"Outline point {i}. " for i in range(1, 6)]
EXAMPLES = [f"Example {i} shows it. " for i in range(1, 11)]


def search_notes(query: str) -> list[str]:
    """Search the research notes.

    Args:
        query: The topic to search for.
    """
    return [f"A note on {query}", "Every figure needs a source."]


async def outline(step_input: StepInput) -> AsyncIterator[str]:
    for chunk in OUTLINE:
        await asyncio.sleep(PACE)
        yield chunk


async def examples(step_input: StepInput) -> AsyncIterator[str]:
    for i, chunk in enumerate(EXAMPLES):
        if i == len(EXAMPLES) // 2:
            while not (GATES / "open").exists():
                await asyncio.sleep(0.02)
        await asyncio.sleep(PACE)
        yield chunk


async def long_text(step_input: StepInput) -> AsyncIterator[str]:
    for i in range(int(str(step_input.input))):
        yield f"w{i} "
        if i % 100 == 0:
            await asyncio.sleep(0)


class Trip(BaseModel):
    """The ``trip`` workflow's input: the console draws a field for each."""

    city: str
    days: int = Field(ge=1, le=14)
    by_train: bool = False


def plan(step_input: StepInput) -> str:
    trip = step_input.input
    assert isinstance(trip, Trip)
    return f"{trip.days} days in {trip.city}{' by train' if trip.by_train else ''}"


def workflows() -> list[Workflow]:
    model = DemoModel(pace=PACE, tokens=40)
    story = Workflow(
        id="story",
        name="Story",
        description="Research, two drafts side by side, then the writing.",
        steps=[
            Step(
                name="Research",
                agent=Agent(
                    name="Researcher", model=model, tools=[search_notes],
                    instructions="Call search_notes first, then research the topic.",
                ),
            ),
            Parallel(Step(name="Outline", executor=outline), Step(name="Examples", executor=examples), name="Drafts"),
            Step(name="Write", agent=Agent(name="Writer", model=model)),
        ],
    )
    long = Workflow(id="long", name="Long", description="Streams N chunks.", steps=[Step(name="Stream", executor=long_text)])
    trip = Workflow(id="trip", name="Trip", description="A typed trip request.", steps=[plan], input_schema=Trip)
    return [story, long, trip]


def server() -> Server:
    return Server(
        workflows=workflows(),
        database_url=f"sqlite:///{os.environ['CONSOLE_DB']}",
        security_key=os.environ.get("CONSOLE_KEY") or None,
        lease_ttl=2.0,
    )


if __name__ == "__main__":
    server().serve(host="127.0.0.1", port=int(os.environ["CONSOLE_PORT"]), log_level="warning")
