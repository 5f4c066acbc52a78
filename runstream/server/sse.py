"""Server-Sent Events: a run's events from ``manager.follow_batches`` with ``id:`` lines and heartbeats.

``follow_after`` is the pure part (where a resumed stream starts, or that it has
nothing left to send); ``sse_response`` only moves text. The response races
its body against the client's disconnect (Starlette's ``StreamingResponse``),
and leaving stops the stream, never the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from runstream.errors import InvalidRequest
from runstream.events import StoredEvent, sse_frame
from runstream.log.base import RunRecord
from runstream.metrics import SSE_STREAMS
from runstream.runs.manager import RunManager

__all__ = ["EXPIRED", "HEARTBEAT", "follow_after", "sse_frames", "sse_response", "until_leg_end"]

HEARTBEAT = ": ping\n\n"
EXPIRED = ": token expired; resume with Last-Event-ID and a fresh token\n\n"
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def follow_after(run: RunRecord, last_event_index: int | None, count: int) -> int | None:
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


async def sse_frames(
    batches: AsyncIterator[list[StoredEvent]], heartbeat: float, until: float | None = None
) -> AsyncIterator[str]:
    """``batches`` of events as SSE frames, a batch per chunk, with a comment line whenever
    ``heartbeat`` seconds pass in silence; at wall-clock time ``until`` (the caller's token
    expires) the stream ends, and the client resumes with ``Last-Event-ID`` and a new token."""
    pending: asyncio.Future[list[StoredEvent]] | None = None
    SSE_STREAMS.inc()
    try:
        while True:
            pending = asyncio.ensure_future(anext(batches))
            while True:
                wait = heartbeat if until is None else min(heartbeat, until - time.time())
                if wait <= 0:
                    yield EXPIRED
                    return
                if (await asyncio.wait({pending}, timeout=wait))[0]:
                    break
                if until is None or time.time() < until:
                    yield HEARTBEAT
            try:
                batch = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield "".join([sse_frame(event) for event in batch])
    finally:
        SSE_STREAMS.dec()
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            await aclose()


async def until_leg_end(batches: AsyncIterator[list[StoredEvent]]) -> AsyncIterator[list[StoredEvent]]:
    """``batches`` through the end of the run's current leg: its terminal event, or the
    ``WorkflowPaused`` it waits at (what a start or continue request streams)."""
    try:
        async for batch in batches:
            end = next((i for i, event in enumerate(batch) if event.ends_leg), None)
            if end is not None:
                yield batch[: end + 1]
                return
            yield batch
    finally:
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            await aclose()


def sse_response(
    manager: RunManager, run_id: str, after: int | None, heartbeat: float, until: float | None = None,
    on_end: Callable[[], None] | None = None, leg: bool = False,
) -> Response:
    """The SSE response for ``run_id`` after index ``after``; 204 (EventSource stops) when None.
    ``on_end`` is called once the stream is over (it releases the client's connection count).
    With ``leg``, it ends where the run pauses, as well as where it ends."""
    if after is None:
        if on_end is not None:
            on_end()
        return Response(status_code=204, headers=_HEADERS)
    batches = manager.follow_batches(run_id, after)
    body = sse_frames(until_leg_end(batches) if leg else batches, heartbeat, until)
    response = _Stream(body, media_type="text/event-stream", headers={**_HEADERS, "X-Run-Id": run_id})
    response.on_end = on_end
    return response



class _Stream(StreamingResponse):
    """A streaming response that calls ``on_end`` however it ends, even before its first byte."""

    on_end: Callable[[], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.on_end is not None:
                self.on_end()
