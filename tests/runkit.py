"""Fast workflows and small helpers shared by the HTTP, SSE, client and CLI tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import BaseModel

from runstream import Agent, DemoModel, Step, StepInput, Workflow

__all__ = ["Topic", "Valve", "demo_workflow", "parse_sse", "schema_workflow", "valve_workflow"]


class Valve:
    """Holds a test workflow at a point until the test opens it (thread-safe)."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self.reached = threading.Event()

    def open(self) -> None:
        self._open.set()

    async def wait(self) -> None:
        self.reached.set()
        while not self._open.is_set():
            await asyncio.sleep(0.005)


def demo_workflow(tokens: int = 20) -> Workflow:
    model = DemoModel(pace=0.002, tokens=tokens)
    return Workflow(
        id="demo",
        name="Demo",
        steps=[
            Step(name="Research", agent=Agent(name="Researcher", model=model)),
            Step(name="Write", agent=Agent(name="Writer", model=model)),
        ],
    )


def valve_workflow(valve: Valve, before: int = 5, after: int = 5, id: str = "valve") -> Workflow:
    """Streams ``before`` chunks, waits at ``valve``, streams ``after`` more."""

    async def produce(step_input: StepInput) -> AsyncIterator[str]:
        for i in range(before):
            yield f"a{i} "
        await valve.wait()
        for i in range(after):
            yield f"b{i} "
            if i % 20 == 0:
                await asyncio.sleep(0)

    return Workflow(id=id, name="Valve", steps=[Step(name="Produce", executor=produce)])


class Topic(BaseModel):
    topic: str
    depth: int = 1


def schema_workflow() -> Workflow:
    def echo(step_input: StepInput) -> str:
        return f"echo {step_input.input}"

    return Workflow(id="typed", name="Typed", steps=[echo], input_schema=Topic)


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Every event of an SSE body: ``{"id", "event", "data"}``; comments are dropped."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            if key in ("id", "event", "data"):
                fields[key] = value
        if "data" in fields:
            fields["data"] = orjson.loads(fields["data"])
            events.append(fields)
    return events
