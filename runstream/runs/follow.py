"""The one read path: a run's events from an index on, from the log, then live.

Replay, catch-up, live streaming and a slow reader are all the same loop:
read the log from the next index until it is exhausted, then take live events
from the subscription, going back to the log whenever the live inbox has a
gap (the reader fell behind, or it subscribed mid-batch). The subscription is
opened before the first read, so no event can fall between the two.

Events come in batches (a log page, or what the live inbox holds, up to a page), so
a transport can write a batch at once: one wake-up and one write for many events.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from runstream.events import StoredEvent
from runstream.fanout.base import Hub
from runstream.log.base import EventLog

__all__ = ["follow", "follow_batches"]

PAGE = 256
"""Events a reader holds while it catches up from the log: with a thousand readers
behind at once, this, not the live buffers (shared events), is what their memory is."""


async def follow(
    log: EventLog, hub: Hub, run_id: str, after: int = -1, poll_interval: float = 2.0
) -> AsyncIterator[StoredEvent]:
    """``follow_batches``, one event at a time."""
    batches = follow_batches(log, hub, run_id, after, poll_interval)
    try:
        async for batch in batches:
            for event in batch:
                yield event
    finally:
        await batches.aclose()


async def follow_batches(
    log: EventLog, hub: Hub, run_id: str, after: int = -1, poll_interval: float = 2.0
) -> AsyncGenerator[list[StoredEvent], None]:
    """Yield every event of ``run_id`` with index > ``after``, in order, once each,
    through the terminal event (the last of the last batch), in non-empty batches of at
    most ``PAGE`` events.
    ``poll_interval`` bounds how long a lost notification can delay a reader (it
    re-reads the log that often while idle). A run that has ended with nothing left
    to read (its events were pruned, or ``after`` is past its end) ends the
    iteration instead of waiting for ever."""
    subscriber = hub.subscribe(run_id)
    next_index = after + 1
    need_log = True
    last_read = False
    try:
        while True:
            if need_log:
                page = await log.read(run_id, next_index, PAGE)
                if page:
                    yield page
                    if page[-1].terminal:  # nothing is logged after a run's terminal event
                        return
                    next_index = page[-1].index + 1
                if len(page) == PAGE:
                    continue
                if not page and last_read:
                    return
                if not page and await _ended(log, run_id):
                    last_read = True  # its terminal event may have committed since the read: read once more
                    continue
                need_log = False
            batch = subscriber.take(next_index, PAGE)
            if batch:
                yield batch
                if batch[-1].terminal:
                    return
                next_index = batch[-1].index + 1
                continue
            if subscriber.clear_overflow():  # before waiting: it may have come while we yielded
                need_log = True
            elif not await subscriber.wait(poll_interval):
                need_log = True
    finally:
        hub.unsubscribe(subscriber)


async def _ended(log: EventLog, run_id: str) -> bool:
    run = await log.get_run(run_id)
    return run is None or run.finished
