"""One SSE request's worth of a follow: ``Last-Event-ID`` from the cursor, then events.

The reconnect loop lives in ``Client.follow``; this only moves lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from runstream.client.cursor import FollowCursor, SSEParser
from runstream.client.errors import ConnectionLost
from runstream.client.event import Event
from runstream.client.http import raise_for_error

__all__ = ["sse_events"]


async def sse_events(http: httpx.AsyncClient, path: str, cursor: FollowCursor) -> AsyncIterator[Event]:
    """The events after ``cursor.last`` from ``GET path``; ``ConnectionLost`` if it ends early."""
    headers = {"Accept": "text/event-stream"}
    if cursor.last >= 0:
        headers["Last-Event-ID"] = str(cursor.last)
    async with http.stream("GET", path, headers=headers, timeout=httpx.Timeout(10, read=None)) as response:
        if response.status_code == 204:  # a finished run with nothing after cursor.last
            cursor.done = True
            return
        await raise_for_error(response)
        parser = SSEParser()
        async for line in response.aiter_lines():
            event = parser.feed_line(line)
            if event is not None and cursor.accept(event):
                yield event
                if cursor.done:
                    return
    raise ConnectionLost("the SSE stream ended before the run ended")
