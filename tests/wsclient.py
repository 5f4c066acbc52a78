"""A small test client for ``/workflows/ws``: parse both frame kinds, collect runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection


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


