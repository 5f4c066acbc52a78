"""A small test client for ``/workflows/ws``: parse both frame kinds, collect runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection

from runstream import Step, StepInput, Workflow
from tests.runkit import Valve

TERMINAL = {"WorkflowCompleted", "WorkflowError", "WorkflowCancelled"}


def parse(frame: str | bytes) -> dict[str, Any]:
    """A control message (plain JSON) or a run event (SSE text) as a dict."""
    text = frame.decode() if isinstance(frame, bytes) else frame
    for line in text.strip().split("\n"):
        if line.startswith("data: "):
            return json.loads(line[6:])
    return json.loads(text)


async def recv(ws: ClientConnection, timeout: float = 20) -> dict[str, Any]:
    return parse(await asyncio.wait_for(ws.recv(), timeout))


async def messages(ws: ClientConnection, timeout: float = 20) -> AsyncIterator[dict[str, Any]]:
    while True:
        yield await recv(ws, timeout)


async def send(ws: ClientConnection, **action: Any) -> None:
    await ws.send(json.dumps(action))


async def read_run(ws: ClientConnection, limit: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Controls and run events until the terminal event (or ``limit`` run events)."""
    controls: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    async for message in messages(ws):
        if "event_index" not in message:
            controls.append(message)
            if message.get("event") == "error":
                return controls, events
            continue
        events.append(message)
        if message["event"] in TERMINAL or (limit is not None and len(events) >= limit):
            return controls, events
    raise AssertionError("unreachable")


def indices(events: list[dict[str, Any]]) -> list[int]:
    return [e["event_index"] for e in events]




def gated_workflow(valve: Valve, before: int = 30, after: int = 170, id: str = "gated") -> Workflow:
    """Streams ``before`` chunks, waits at the gate, streams ``after`` more, then a second step."""

    async def produce(step_input: StepInput) -> AsyncIterator[str]:
        for i in range(before):
            yield f"a{i} "
        await valve.wait()
        for i in range(after):
            yield f"b{i} "
            if i % 20 == 0:
                await asyncio.sleep(0)

    def finish(step_input: StepInput) -> str:
        return f"done after {len(str(step_input.previous_step_content))} chars"

    return Workflow(name="Gated", id=id, steps=[Step(name="produce", executor=produce), Step(name="finish", executor=finish)])
