"""One WebSocket connection's worth of a follow: ``reconnect`` after the cursor, then frames.

The reconnect loop lives in ``Client.follow``; this only moves frames between
the socket and the cursor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from websockets.asyncio.client import ClientConnection, connect

from runstream.client.cursor import FollowCursor
from runstream.client.errors import ConnectionLost, server_error
from runstream.client.event import Event

__all__ = ["ws_events"]


async def ws_events(url: str, cursor: FollowCursor, token: str | None) -> AsyncIterator[Event]:
    """The events after ``cursor.last`` on one connection; ``ConnectionLost`` if it ends early."""
    async with connect(url, max_size=None, open_timeout=10, close_timeout=2) as socket:
        await socket.recv()  # "connected"
        if token is not None:
            await _authenticate(socket, token)
        await socket.send(cursor.reconnect_action())
        async for frame in socket:
            event = cursor.feed_ws(str(frame))
            if event is not None:
                yield event
                if cursor.done:
                    return
    raise ConnectionLost("the server closed the WebSocket before the run ended")


async def _authenticate(socket: ClientConnection, token: str) -> None:
    await socket.send(orjson.dumps({"action": "authenticate", "token": token}).decode())
    answer = orjson.loads(await socket.recv())
    if answer.get("event") != "authenticated":
        raise server_error(str(answer.get("error", "authentication failed")), str(answer.get("code", "unauthorized")))
