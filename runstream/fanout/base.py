"""Live fan-out: who is subscribed to a run, and handing them its new events.

Publishing never waits on a subscriber. Each subscriber buffers at most
``limit`` events; one that falls further behind drops its buffer and reads
the gap back from the log, so a slow client costs bounded memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from runstream.events import StoredEvent
from runstream.metrics import FANOUT_LAG_SECONDS, SUBSCRIBER_OVERFLOWS

__all__ = ["Hub", "Subscriber"]


class Subscriber:
    """One reader's live inbox for one run.

    The hub ``push``es events in and ``mark_gap``s it; its reader (``runs/follow.py``)
    only ``take``s the next events, ``wait``s for more and ``clear_overflow``s: the
    inbox's state (``buffer``, ``overflowed``, ``wakeup``) is there to look at, not to edit.
    """

    __slots__ = ("run_id", "buffer", "limit", "overflowed", "wakeup", "pushed_at")

    def __init__(self, run_id: str, limit: int = 4096) -> None:
        self.run_id = run_id
        self.buffer: deque[StoredEvent] = deque()
        self.limit = limit
        self.overflowed = False
        """Events may have passed the inbox by: its reader must read the log before going on."""
        self.wakeup = asyncio.Event()
        self.pushed_at = 0.0
        """``time.monotonic()`` when the oldest event in ``buffer`` arrived (the fan-out lag's start)."""

    def push(self, events: Sequence[StoredEvent]) -> None:
        if len(self.buffer) + len(events) > self.limit:
            self.buffer.clear()
            if not self.overflowed:
                SUBSCRIBER_OVERFLOWS.inc()
            self.overflowed = True
        else:
            if not self.buffer:
                self.pushed_at = time.monotonic()
            self.buffer.extend(events)
        self.wakeup.set()

    def mark_gap(self) -> None:
        """Events may have passed this inbox by (e.g. before a remote subscription took
        effect): its reader goes back to the log."""
        self.overflowed = True
        self.wakeup.set()

    def take(self, next_index: int, limit: int) -> list[StoredEvent]:
        """The inbox's events from ``next_index`` on, in order and without a hole, at most
        ``limit``. Those before ``next_index`` are dropped (the reader has them from the
        log). Empty when the inbox is, or when it starts past ``next_index``: then the
        events between are not here, which counts as an overflow."""
        buffer = self.buffer
        while buffer and buffer[0].index < next_index:
            buffer.popleft()
        if not buffer:
            return []
        if buffer[0].index > next_index:
            self.overflowed = True
            return []
        FANOUT_LAG_SECONDS.observe(time.monotonic() - self.pushed_at)
        batch: list[StoredEvent] = []
        while buffer and buffer[0].index == next_index and len(batch) < limit:
            batch.append(buffer.popleft())
            next_index += 1
        return batch

    def clear_overflow(self) -> bool:
        """Whether events passed the inbox by since the last call (its reader must read the
        log), forgetting it. The reader asks before each wait: an overflow may have come
        while it was busy."""
        overflowed, self.overflowed = self.overflowed, False
        return overflowed

    async def wait(self, timeout: float) -> bool:
        """Wait until something is pushed or a gap is marked, for at most ``timeout`` seconds;
        False if nothing came. Call it with nothing to ``take`` and no overflow to clear."""
        self.wakeup.clear()
        try:
            async with asyncio.timeout(timeout):
                await self.wakeup.wait()
        except TimeoutError:
            return False
        return True


class Hub(Protocol):
    """Delivers each run's durable events to its subscribers (in this process or all replicas)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def subscribe(self, run_id: str) -> Subscriber: ...

    def unsubscribe(self, subscriber: Subscriber) -> None: ...

    def publish(self, run_id: str, events: Sequence[StoredEvent]) -> None:
        """Hand ``events`` (already in the log) to every subscriber of ``run_id``."""
        ...

    async def ping(self) -> None:
        """Return once the hub's broker answers (``/ready``); raise if it cannot."""
        ...

    async def serve_cancels(self, owner: str, cancel: Callable[[str], object]) -> None:
        """From now on, call ``cancel(run_id)`` when anyone asks ``owner`` to cancel a run."""
        ...

    async def request_cancel(self, owner: str, run_id: str) -> bool:
        """Ask ``owner`` (the replica running ``run_id``) to cancel it; False if no such owner listens."""
        ...

    async def serve_handovers(self, handed_over: Callable[[str], None]) -> None:
        """From now on, call ``handed_over(owner)`` when any replica announces it gave its runs up."""
        ...

    async def announce_handover(self, owner: str) -> None:
        """Tell every replica that ``owner`` has given up its runs (they may claim them now);
        best effort: a replica that misses it finds them at its next scan."""
        ...

    async def serve_queue(self, queued: Callable[[str], None]) -> None:
        """From now on, call ``queued(owner)`` when any replica announces it queued a run."""
        ...

    async def announce_queued(self, owner: str) -> None:
        """Tell every replica that ``owner`` queued a run (one with a free slot may claim it
        now); best effort: a replica that misses it finds the run at its next poll."""
        ...
