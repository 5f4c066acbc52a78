"""The client's reconnect protocol, without I/O: what to resume from, what to skip.

A follower keeps the index of the last event it yielded. Every (re)connection
asks for the events after it; whatever arrives at or below it (a finished run
replays from 0 over WebSocket, a catch-up may overlap) is skipped, so the
caller sees each event once, in order, through the terminal event.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from runstream.client.errors import ConnectionLost, server_error
from runstream.client.event import Event
from runstream.errors import ProtocolError

__all__ = ["Backoff", "FollowCursor", "SSEParser"]

_RECONNECT_NOW = frozenset({"server_shutdown"})


class FollowCursor:
    """Where a follower of ``run_id`` stands: ``last`` yielded index, ``done`` after the terminal event."""

    def __init__(self, run_id: str, after: int = -1) -> None:
        self.run_id = run_id
        self.last = after
        self.done = False

    def accept(self, event: Event) -> bool:
        """True if ``event`` is the next one (yield it), False if already seen; a gap is an error."""
        if event.index <= self.last:
            return False
        if event.index != self.last + 1:
            raise ProtocolError(f"run {self.run_id}: expected event {self.last + 1}, got {event.index}")
        self.last = event.index
        self.done = event.terminal
        return True

    def reconnect_action(self) -> str:
        """The WebSocket ``reconnect`` frame: resume after ``last`` (null: from the start)."""
        last = self.last if self.last >= 0 else None
        return orjson.dumps({"action": "reconnect", "run_id": self.run_id, "last_event_index": last}).decode()

    def feed_ws(self, text: str) -> Event | None:
        """A server WebSocket frame: the next event, or None (a control message or a repeat).

        An ``error`` control raises the ``ServerError`` of its code; ``server_shutdown`` raises ``ConnectionLost``.
        """
        if text.startswith("{"):
            self._control(orjson.loads(text))
            return None
        data = next((line[6:] for line in text.split("\n") if line.startswith("data: ")), None)
        if data is None:
            raise ProtocolError(f"frame is neither a control message nor an event: {text[:80]!r}")
        event = Event.from_json(data)
        return event if self.accept(event) else None

    def _control(self, message: dict[str, Any]) -> None:
        name = message.get("event")
        if name == "error":
            raise server_error(str(message.get("error")), str(message.get("code", "server_error")))
        if name in _RECONNECT_NOW:
            raise ConnectionLost(f"server said {name}")


class SSEParser:
    """SSE text lines in, ``Event`` out at each blank line; comments (``: ping``) are ignored."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed_line(self, line: str) -> Event | None:
        if line == "":
            data, self._data = self._data, []
            return Event.from_json("\n".join(data)) if data else None
        if line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        return None


class Backoff:
    """Reconnect delays: ``initial`` doubling up to ``maximum``, jittered; ``reset`` after progress."""

    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * 2.0**self.failures)
        self.failures += 1
        return base * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0
