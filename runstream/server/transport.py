"""runstream's WebSocket transport on uvicorn: ``/workflows/ws`` without the ASGI round trip.

uvicorn's sans-I/O protocol (on the ``websockets`` library) still does the
handshake, keepalive, limits and closing; this subclass hands ``/workflows/ws``
connections to the workflow socket as a ``Channel`` and writes a batch of
events as one ``transport.write``. A token storm or a replay then costs one
system call per batch instead of an ASGI message and a system call per event.
A server's frames are the same bytes for every client (unmasked, and uncompressed
unless a client asked for compression), so an event is framed once, by the first
connection that sends it, and a thousand subscribers to a run share that frame.
Every other WebSocket path goes through the ASGI app as usual, and so does
``/workflows/ws`` when ``direct(app)`` says that middleware would see it.

It relies on these parts of uvicorn's ``WebSocketsSansIOProtocol``, pinned by
``tests/test_uvicorn_contract.py`` (and the uvicorn range in pyproject.toml):
its constructor's arguments; ``handle_connect`` setting ``request``,
``response`` and ``scope`` and starting ``run_asgi``, which awaits ``self.app``
(read after ``handle_connect``); and ``conn``, ``writable``, ``close_sent``,
``transport``, ``send`` and ``receive``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

from runstream.events import StoredEvent, ws_frame
from runstream.server.channel import Channel, ClientLeft, received_payload
from runstream.tracing import traced_request

__all__ = ["DirectWebSocketProtocol", "shared_frame"]

Handler = Callable[[Channel], Awaitable[None]]

FLUSH_BYTES = 256 * 1024
"""A batch of events is written in pieces of about this size: one system call for many
small frames, and never the whole batch framed in memory at once."""

SHARED_FRAME_BYTES = 64 * 1024
"""Larger events are framed for each connection and not kept: a run's last events can
each carry its whole answer, and a page of them should not be held twice."""


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """One client connection; a ``Channel`` for the handler when it asked for ``path``."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        path: str,
        handler: Handler,
        direct: Callable[[Any], bool] = lambda app: True,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.direct_path = path
        self.handler = handler
        self.direct = direct

    def handle_connect(self, event: Request) -> None:
        if event.path.partition("?")[0] == self.direct_path and self.direct(self.app):
            self.app = self._serve_direct  # uvicorn runs it as it would the app, with its error handling
        super().handle_connect(event)

    async def _serve_direct(self, scope: Scope, receive: Receive, send: Send) -> None:
        with traced_request(scope.get("headers", [])):  # runs started here are children of its trace
            await self.handler(self)

    def peer(self) -> str:
        return self.client[0] if self.client else "unknown"

    async def accept(self) -> None:
        await self._send_control({"type": "websocket.accept"})
        # the handshake's request, response and ASGI scope are done with: an idle connection
        # should hold only what it still needs
        del self.request, self.response, self.scope

    async def read(self) -> str | bytes | None:
        while True:
            message = await self.receive()
            kind = message["type"]
            if kind == "websocket.receive":
                return received_payload(message)
            if kind == "websocket.disconnect":
                return None

    async def write(self, frames: Iterable[StoredEvent | str]) -> None:
        # frames leave in writes of about FLUSH_BYTES, each framed just before: a run's
        # last events can each carry its whole answer, and only one of them is copied at a time
        conn = self.conn
        if conn.state is not State.OPEN:
            raise ClientLeft
        shared = not conn.extensions  # a compressed frame is this connection's own
        pending: list[bytes] = []
        size = 0
        for frame in frames:
            if shared and isinstance(frame, StoredEvent):
                data = frame.wire or shared_frame(frame)
                pending.append(data)
                size += len(data)
            else:
                try:
                    conn.send_text((frame if isinstance(frame, str) else ws_frame(frame)).encode())
                except InvalidState as exc:
                    raise ClientLeft from exc
                for data in conn.data_to_send():
                    pending.append(data)
                    size += len(data)
            if size >= FLUSH_BYTES:
                await self._flush(pending)
                pending, size = [], 0
        if pending:
            await self._flush(pending)

    async def _flush(self, pending: list[bytes]) -> None:
        if not self.writable.is_set():  # the client reads slower than we write: wait for the buffer to drain
            await self.writable.wait()
        if self.close_sent or self.transport.is_closing():
            raise ClientLeft
        # write(), not writelines(): on Python 3.12.0-3.12.8 and 3.13.0-3.13.1 the selector
        # transport's writelines() never pauses the protocol (CPython gh-127655), so `writable`
        # stayed set and a reader that stopped reading had the whole run buffered in the server.
        # Python 3.11's writelines() is this same join and write.
        self.transport.write(b"".join(pending))

    async def close(self, code: int, reason: str) -> None:
        await self._send_control({"type": "websocket.close", "code": code, "reason": reason})

    async def _send_control(self, message: Any) -> None:
        try:
            await self.send(message)
        except (ClientDisconnected, RuntimeError) as exc:
            raise ClientLeft from exc


def shared_frame(event: StoredEvent) -> bytes:
    """The event's unmasked, uncompressed text frame, kept on the event unless it is large."""
    payload = ws_frame(event).encode()
    data = Frame(Opcode.TEXT, payload).serialize(mask=False)
    if len(payload) <= SHARED_FRAME_BYTES:
        event.wire = data
    return data
