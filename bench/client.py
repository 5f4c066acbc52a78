"""The one client: speaks the wire protocol (docs/protocol.md) to runstream, AgentOS and the floor alike, and checks every stream.

A ``Tally`` follows one run's events on one socket: gapless and in order from
the first index it expects, exactly one terminal event, last; latency from
the model server's stamp in each token to the moment the frame was received.

A ``Socket`` is an ``asyncio.Protocol`` driving websockets' sans-I/O
``ClientProtocol`` (the library's own handshake and frame parser) and feeds
each frame to its tally right in ``data_received``: no future, queue or task
wake-up per frame, which made the websockets asyncio client the bottleneck of
the fan-out and the storm.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN
from websockets.uri import WebSocketURI, parse_uri

__all__ = ["Tally", "Socket", "open_socket", "start_run", "follow_run", "read_run"]

TERMINAL = frozenset({"WorkflowCompleted", "WorkflowError", "WorkflowCancelled"})
_CONTROL = (Opcode.PING, Opcode.PONG, Opcode.CLOSE)  # answered by ClientProtocol itself


@dataclass(slots=True)
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

    def feed(self, frame: bytes | str, now_ns: int) -> bool:
        """Take one frame, JSON or ``event: X\\ndata: {json}\\n\\n``; True once the run's terminal event is in."""
        raw = frame.encode() if isinstance(frame, str) else frame
        data: dict[str, Any] = orjson.loads(raw[raw.index(b"data: ") + 6 :] if raw[:6] == b"event:" else raw)
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
        self.bytes += len(raw)
        if index != self.expect and len(self.errors) < 10:
            self.errors.append(f"expected event_index {self.expect}, got {index}")
        self.expect = index + 1
        if self.terminal is not None and len(self.errors) < 10:
            self.errors.append(f"event {index} after the terminal event")
        if name == "RunContent":
            content = data.get("content")
            if isinstance(content, str) and content[:1].isdigit():  # the model server's send time
                self.last_token_ns = sent = int(content.split(" ", 1)[0])
                self.latencies_ns.append(now_ns - sent)
        elif name in TERMINAL:
            self.terminal = name
            return True
        return False


class Socket(asyncio.Protocol):
    """One connection, no compression, no size limit: its first message is the greeting, the rest go to a tally."""

    def __init__(self, uri: WebSocketURI) -> None:
        self.protocol = ClientProtocol(uri, max_size=None)  # no extensions offered: no compression
        loop = asyncio.get_running_loop()
        self.greeting: asyncio.Future[bytes] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._tally: Tally | None = None
        self._done: asyncio.Future[None] | None = None
        self._early: list[tuple[bytes, int]] = []  # frames in before a tally follows
        self._parts: list[bytes] = []  # a fragmented message so far

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def send(self, message: str) -> None:
        """Send one text frame (an action)."""
        self.protocol.send_text(message.encode())
        self._flush()

    async def follow(self, tally: Tally) -> None:
        """Feed ``tally`` every frame, those in already first, to its terminal event, a server error or the end."""
        self._tally, self._done = tally, asyncio.get_running_loop().create_future()
        try:
            early, self._early = self._early, []
            for data, now_ns in early:
                self._deliver(data, now_ns)
            if self.closed.done():
                self._lost()
            await self._done
        finally:
            self._tally = None

    async def close(self, timeout: float = 10) -> None:
        """The closing handshake: our close frame, then the server ends the TCP connection (or we abort it)."""
        if self.protocol.state is OPEN:
            self.protocol.send_close(1000)
            self._flush()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.closed)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now_ns = time.monotonic_ns()  # one receipt time for the frames that arrived together
        self.protocol.receive_data(data)
        self._flush()  # pongs, the close reply, EOF
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode not in _CONTROL:
                if not event.fin:
                    self._parts.append(event.data)
                    continue
                message = b"".join([*self._parts, event.data]) if self._parts else event.data
                self._parts.clear()
                self._deliver(message, now_ns)
        if self.protocol.handshake_exc is not None and not self.greeting.done():
            self.greeting.set_exception(self.protocol.handshake_exc)

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()  # idempotent; the state is CLOSED from here on
        if not self.greeting.done():
            error = self.protocol.handshake_exc or ConnectionError(f"closed before the greeting: {exc}")
            self.greeting.set_exception(error)
        self.closed.set_result(None)
        self._lost()

    def _deliver(self, message: bytes, now_ns: int) -> None:
        tally = self._tally
        if tally is None:
            if self.greeting.done():
                self._early.append((message, now_ns))
            else:
                self.greeting.set_result(message)
        elif tally.feed(message, now_ns) or tally.errors and tally.errors[-1].startswith("server error"):
            self._finish()

    def _lost(self) -> None:
        if self._tally is not None:
            code, reason = self.protocol.close_code, self.protocol.close_reason
            self._tally.errors.append(f"connection closed after {self._tally.events} events ({code} {reason!r})")
            self._finish()

    def _finish(self) -> None:
        self._tally = None  # frames after the end are not the run's: the old client stopped reading here too
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if self.transport.is_closing():
                return
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
            else:
                self.transport.close()


async def open_socket(url: str) -> Socket:
    """A connection with no compression and no size limit, past the ``connected`` greeting."""
    uri = parse_uri(url)
    async with asyncio.timeout(60):
        loop = asyncio.get_running_loop()
        _, ws = await loop.create_connection(lambda: Socket(uri), uri.host, uri.port, ssl=uri.secure or None)
        try:
            await ws.greeting
        except BaseException:
            if ws.transport is not None:
                ws.transport.abort()
            raise
    return ws


async def read_run(ws: Socket, tally: Tally, timeout: float) -> Tally:
    """Read frames into ``tally`` until the terminal event, an error, the connection's end or ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            await ws.follow(tally)
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
