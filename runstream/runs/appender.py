"""Group commit: events of every run are batched into one log transaction, then published.

An event is handed to the fan-out only after the transaction that holds it
has committed (durable before visible). Batches form by themselves: whatever
is emitted while one commit is in flight goes into the next one, so a slow
trickle gets low latency and a storm gets large batches.
"""

from __future__ import annotations

import asyncio
import logging
import time

from runstream.errors import LogWriteFailed
from runstream.events import StoredEvent
from runstream.fanout.base import Hub
from runstream.log.base import AppendBatch, EventLog, RunEnd
from runstream.metrics import APPEND_SECONDS, EVENTS_APPENDED

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
        self._writing: asyncio.Future[None] | None = None
        self.failed: dict[str, Exception] = {}
        """Runs whose events could not be written: they must stop, and leave the run to recovery."""
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
        if run_id in self.failed:
            return  # after a gap nothing more of that run may be written; recovery resumes it from the log
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

    async def durable(self, run_id: str | None = None) -> None:
        """Return once everything added so far is in the log (and published).

        With ``run_id``, raise ``LogWriteFailed`` if that run's events could not be written."""
        if self._size:
            await asyncio.shield(self._done)
        elif self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)
        if run_id is not None and run_id in self.failed:
            raise LogWriteFailed(f"Run {run_id}: its events could not be logged: {self.failed[run_id]}")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._size:
                await self._write_pending()

    async def _write_pending(self) -> None:
        """One group commit. A method of its own so that the batch is not kept while the
        appender waits (a run's last events can hold its whole answer)."""
        batch: AppendBatch = {
            run_id: (events, self._ends.pop(run_id, None))
            for run_id, events in self._pending.items()
        }
        self._writing, self._done = self._done, asyncio.get_running_loop().create_future()
        self._pending, self._size = {}, 0
        if batch:
            await self._write(batch)
        self._writing.set_result(None)

    async def _write(self, batch: AppendBatch) -> None:
        started = time.perf_counter()
        try:
            await self.log.append(batch)
        except Exception:
            logger.exception("event log append of %d runs failed; writing them one by one", len(batch))
            await self._write_each(batch)
            return
        APPEND_SECONDS.observe(time.perf_counter() - started)
        count = 0
        for run_id, (events, _) in batch.items():
            self.hub.publish(run_id, events)
            count += len(events)
        EVENTS_APPENDED.inc(count)

    def _drop_pending(self, run_id: str) -> None:
        """Drop a failed run's events added while its write was failing. They must go now, not
        at the next commit: once the run's task ends it is forgotten (``failed`` cleared, so that
        recovery may resume it here), and a later event written after the gap would leave a hole."""
        dropped = self._pending.pop(run_id, None)
        self._ends.pop(run_id, None)
        if dropped:
            self._size -= len(dropped)
            if not self._size:  # nothing else pending: whoever waits for the log has it all
                self._done.set_result(None)
                self._done = asyncio.get_running_loop().create_future()

    async def _write_each(self, batch: AppendBatch) -> None:
        """One run's failed write (say, an index another writer took) must not cost the others theirs."""
        for run_id, item in batch.items():
            try:
                await self.log.append({run_id: item})
            except Exception as exc:
                logger.error("run %s: %d events could not be logged: %s", run_id, len(item[0]), exc)
                self.failed[run_id] = exc
                self._drop_pending(run_id)
            else:
                self.hub.publish(run_id, item[0])
                EVENTS_APPENDED.inc(len(item[0]))
