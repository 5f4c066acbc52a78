"""Group commit: events of every run are batched into one log transaction, then published.

An event is handed to the fan-out only after the transaction that holds it
has committed (durable before visible). Batches form by themselves: whatever
is emitted while one commit is in flight goes into the next one, so a slow
trickle gets low latency and a storm gets large batches.
"""

from __future__ import annotations

import asyncio
import logging

from runstream.events import StoredEvent
from runstream.fanout.base import Hub
from runstream.log.base import AppendBatch, EventLog, RunEnd

__all__ = ["Appender"]

logger = logging.getLogger(__name__)


class Appender:
    """``add`` events, ``await durable()`` when the caller must know they are written."""

    def __init__(self, log: EventLog, hub: Hub, high_water: int = 4096) -> None:
        self.log = log
        self.hub = hub
        self.high_water = high_water
        self._pending: dict[str, list[StoredEvent]] = {}
        self._ends: dict[str, RunEnd] = {}
        self._size = 0
        self._wake = asyncio.Event()
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="runstream-appender")

    async def close(self) -> None:
        """Write what is pending, then stop."""
        await self.durable()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def add(self, run_id: str, event: StoredEvent, end: RunEnd | None = None) -> None:
        events = self._pending.get(run_id)
        if events is None:
            events = self._pending[run_id] = []
        events.append(event)
        if end is not None:
            self._ends[run_id] = end
        self._size += 1
        self._wake.set()

    @property
    def congested(self) -> bool:
        """True when producers should wait for the log before adding more."""
        return self._size >= self.high_water

    async def durable(self) -> None:
        """Return once everything added so far is in the log (and published)."""
        if self._size:
            await asyncio.shield(self._done)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._size:
                continue
            batch: AppendBatch = {run_id: (events, self._ends.pop(run_id, None)) for run_id, events in self._pending.items()}
            done = self._done
            self._pending, self._size = {}, 0
            self._done = asyncio.get_running_loop().create_future()
            try:
                await self.log.append(batch)
            except Exception as exc:  # the runs waiting on it learn of it; the appender goes on
                logger.exception("event log append failed")
                done.set_exception(exc)
                done.exception()  # retrieved: waiters see it, the loop does not warn
                continue
            for run_id, (events, _) in batch.items():
                self.hub.publish(run_id, events)
            done.set_result(None)
