"""What a workflow socket needs of a WebSocket connection, and that over ASGI.

``serve()`` uses runstream's own uvicorn protocol (``server/transport.py``), which
writes a batch of frames in one system call; ``AsgiChannel`` serves the same
socket when ``Server.app`` is mounted in any other ASGI server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from runstream.events import StoredEvent, ws_frame

__all__ = ["Channel", "ClientLeft", "AsgiChannel", "received_payload"]


class ClientLeft(Exception):
    """The client is gone: nothing more can be sent to it."""


def received_payload(message: Mapping[str, Any]) -> str | bytes:
    """The text, else the bytes, of an ASGI ``websocket.receive`` message."""
    text = message.get("text")
    if isinstance(text, str):
        return text
    data = message.get("bytes")
    return data if isinstance(data, bytes) else b""


class Channel(Protocol):
    def peer(self) -> str:
        """The client's address (what per-client limits count)."""
        ...

    async def accept(self) -> None: ...

    async def read(self) -> str | bytes | None:
        """The next message from the client; None once it has left."""
        ...

    async def write(self, frames: Iterable[StoredEvent | str]) -> None:
        """Send each of ``frames`` as a text frame, in order (an event in its ``ws_frame``
        text); raise ``ClientLeft`` if the client has gone."""
        ...

    async def close(self, code: int, reason: str) -> None: ...


class AsgiChannel:
    """A ``Channel`` over Starlette's WebSocket: one ASGI message per frame."""

    __slots__ = ("websocket", "_lock")

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._lock = asyncio.Lock()

    def peer(self) -> str:
        client = self.websocket.client
        return client.host if client is not None else "unknown"

    async def accept(self) -> None:
        try:
            await self.websocket.accept()
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            raise ClientLeft from exc

    async def read(self) -> str | bytes | None:
        try:
            message = await self.websocket.receive()
        except WebSocketDisconnect:
            return None
        if message["type"] == "websocket.disconnect":
            return None
        return received_payload(message)

    async def write(self, frames: Iterable[StoredEvent | str]) -> None:
        try:
            async with self._lock:  # a batch stays together, whichever stream sent it
                for frame in frames:
                    await self.websocket.send_text(frame if isinstance(frame, str) else ws_frame(frame))
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            raise ClientLeft from exc

    async def close(self, code: int, reason: str) -> None:
        try:
            await self.websocket.close(code, reason)
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            raise ClientLeft from exc
