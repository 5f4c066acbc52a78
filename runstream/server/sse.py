"""Server-Sent Events: a run's events from ``manager.follow_batches`` with ``id:`` lines and heartbeats.

``plan_resume`` is the pure part (where a resumed stream starts, or that it has
nothing left to send); ``sse_response`` only moves text. The response races
its body against the client's disconnect (Starlette's ``StreamingResponse``),
and leaving stops the stream, never the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi.responses import Response, StreamingResponse

from runstream.errors import InvalidRequest
from runstream.events import StoredEvent, sse_frame
from runstream.log.base import RunRecord
from runstream.runs.manager import RunManager

__all__ = ["HEARTBEAT", "plan_resume", "sse_frames", "sse_response"]

HEARTBEAT = ": ping\n\n"
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def plan_resume(run: RunRecord, last_event_index: int | None, count: int) -> int | None:
    """The index to follow after, or None when a finished run has nothing after ``last_event_index``.

    ``count`` is how many events the log holds; an index the run has not reached is an error.
    """
    last = -1 if last_event_index is None else last_event_index
    if last < -1 or last >= count:
        raise InvalidRequest(
            f"last_event_index {last} is out of range: run {run.run_id} has {count} events "
            f"(use -1 or leave it out for all, or 0..{count - 1})"
        )
    if run.finished and last >= count - 1:
        return None
    return last


async def sse_frames(batches: AsyncIterator[list[StoredEvent]], heartbeat: float) -> AsyncIterator[str]:
    """``batches`` of events as SSE frames, a batch per chunk, with a comment line whenever
    ``heartbeat`` seconds pass in silence."""
    pending: asyncio.Future[list[StoredEvent]] | None = None
    try:
        while True:
            pending = asyncio.ensure_future(anext(batches))
            while not (await asyncio.wait({pending}, timeout=heartbeat))[0]:
                yield HEARTBEAT
            try:
                batch = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield "".join([sse_frame(event) for event in batch])
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            await aclose()


def sse_response(manager: RunManager, run_id: str, after: int | None, heartbeat: float) -> Response:
    """The SSE response for ``run_id`` after index ``after``; 204 (EventSource stops) when None."""
    if after is None:
        return Response(status_code=204, headers=_HEADERS)
    body = sse_frames(manager.follow_batches(run_id, after), heartbeat)
    return StreamingResponse(body, media_type="text/event-stream", headers={**_HEADERS, "X-Run-Id": run_id})
