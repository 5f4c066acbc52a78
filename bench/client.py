"""The one client: speaks PROTOCOL.md to runstream, AgentOS and the floor alike, and checks every stream.

A ``Tally`` follows one run's events on one socket: gapless and in order from
the first index it expects, exactly one terminal event, last; latency from
the model server's stamp in each token to the moment the frame was received.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

__all__ = ["Tally", "open_socket", "start_run", "follow_run", "read_run"]

TERMINAL = frozenset({"WorkflowCompleted", "WorkflowError", "WorkflowCancelled"})


@dataclass
class Tally:
    """What one socket saw of one run."""

    expect: int = 0
    events: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    run_id: str | None = None
    terminal: str | None = None
    first_ns: int = 0
    last_ns: int = 0
    last_token_ns: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and self.terminal is not None

    def feed(self, text: str, now_ns: int) -> bool:
        """Take one frame; True once the run's terminal event is in."""
        data: dict[str, Any] = orjson.loads(text[text.index("data: ") + 6 :] if text[:6] == "event:" else text)
        index = data.get("event_index")
        name = data.get("event")
        if index is None:
            if name == "error":
                self.errors.append(f"server error: {data.get('error')}")
            self.controls.append(str(name))
            self.run_id = self.run_id or data.get("run_id")
            return False
        if not self.events:
            self.first_ns = now_ns
            self.run_id = data.get("run_id")
        self.last_ns = now_ns
        self.events += 1
        self.bytes += len(text)
        if index != self.expect and len(self.errors) < 10:
            self.errors.append(f"expected event_index {self.expect}, got {index}")
        self.expect = index + 1
        if self.terminal is not None and len(self.errors) < 10:
            self.errors.append(f"event {index} after the terminal event")
        if name == "RunContent":
            self._stamp(data.get("content"), now_ns)
        if name in TERMINAL:
            self.terminal = name
            return True
        return False

    def _stamp(self, content: Any, now_ns: int) -> None:
        if isinstance(content, str) and content[:1].isdigit():
            sent = int(content.split(" ", 1)[0])
            self.last_token_ns = sent
            self.latencies_ns.append(now_ns - sent)


async def open_socket(url: str) -> ClientConnection:
    """A connection with no compression and no size limit, past the ``connected`` greeting."""
    ws = await connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=60)
    await ws.recv()
    return ws


async def read_run(ws: ClientConnection, tally: Tally, timeout: float) -> Tally:
    """Read frames into ``tally`` until the terminal event, an error or ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                text = await ws.recv()
                if tally.feed(text if isinstance(text, str) else text.decode(), time.monotonic_ns()):
                    return tally
                if tally.errors and tally.errors[-1].startswith("server error"):
                    return tally
    except TimeoutError:
        tally.errors.append(f"no terminal event within {timeout} s ({tally.events} events)")
    return tally


async def start_run(
    url: str, workflow_id: str, message: str, session_id: str, timeout: float, tally: Tally | None = None
) -> Tally:
    """Start a run and read it to its end on the same socket (into ``tally``, which a caller may watch)."""
    async with await open_socket(url) as ws:
        start = {"action": "start-workflow", "workflow_id": workflow_id, "message": message, "session_id": session_id}
        await ws.send(orjson.dumps(start).decode())
        return await read_run(ws, tally or Tally(), timeout)


async def follow_run(url: str, run_id: str, workflow_id: str, session_id: str, timeout: float) -> Tally:
    """Reconnect to a run from its start (``last_event_index`` null): replay, or catch up then live."""
    async with await open_socket(url) as ws:
        ask = {
            "action": "reconnect",
            "run_id": run_id,
            "last_event_index": None,
            "workflow_id": workflow_id,
            "session_id": session_id,
        }
        await ws.send(orjson.dumps(ask).decode())
        return await read_run(ws, Tally(), timeout)
