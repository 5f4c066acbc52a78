"""The durable run queue: runs beyond a replica's ``max_concurrent_runs`` wait in the log.

A run that finds every slot of its replica taken is written ``queued`` (no owner)
with one event, ``WorkflowQueued``, which holds its request; clients follow it as
any run. Whichever replica has a free slot claims the oldest queued runs
(``EventLog.claim_queued``: PostgreSQL row claims with ``FOR UPDATE SKIP LOCKED``,
one writer on SQLite), so each run starts exactly once and in order of creation.
A replica claims when one of its runs ends, when a run is queued here or on another
replica (the hub's announcement: Redis across replicas), and every ``poll`` seconds (an
announcement missed, or runs left queued by a restart).

The queue is in the database, not in a process: a restarted server, or any
replica, starts what was queued. ``max_queued_runs`` bounds its depth (across
replicas); past it a run is refused with ``QueueFull`` (HTTP 429, code ``queue_full``).
Runs taken over from a replica that died or was stopped are not held back by the
cap: they had started, and resuming them is what recovery is for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from runstream import events as ev
from runstream.errors import QueueFull
from runstream.events import StoredEvent
from runstream.log.base import RunRecord, RunStatus

if TYPE_CHECKING:
    from runstream.runs.manager import RunManager

__all__ = ["RunQueue", "queued_event"]

logger = logging.getLogger(__name__)


def queued_event(record: RunRecord, additional_data: dict[str, Any] | None) -> StoredEvent:
    """A queued run's first event: what any replica needs to start it later."""
    now = time.time()
    payload: dict[str, Any] = {
        "event": ev.WORKFLOW_QUEUED,
        "run_id": record.run_id,
        "session_id": record.session_id,
        "workflow_id": record.workflow_id,
        "workflow_name": record.workflow_name,
        "created_at": int(now),
        "created_at_ms": int(now * 1000),
        "event_index": 0,
        "input": record.input,
        "message": "Queued: every run slot is taken; the run starts when one is free",
    }
    if additional_data:
        payload["additional_data"] = additional_data
    return StoredEvent(0, ev.WORKFLOW_QUEUED, orjson.dumps(payload, default=str).decode())


class RunQueue:
    """One replica's side of the queue: whether it has room, queuing a run, claiming the next."""

    def __init__(
        self, manager: RunManager, max_concurrent_runs: int | None, max_queued_runs: int | None, poll: float
    ) -> None:
        if max_concurrent_runs is not None and max_concurrent_runs < 1:
            raise ValueError(f"max_concurrent_runs must be at least 1 (or None: no cap), not {max_concurrent_runs}")
        self.manager = manager
        self.max_concurrent_runs = max_concurrent_runs
        self.max_queued_runs = max_queued_runs
        self.poll = poll
        self._reserved = 0
        """Slots taken by starts and claims in flight (not active yet): no one else may take them."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._announcing: set[asyncio.Task[None]] = set()
        self._queued_since = 1  # unknown until ``start`` has looked
        """Runs queued (here, or announced) since the last claim that emptied the queue: while
        any may wait, a new run queues behind them rather than take a slot that frees."""

    def free_slots(self) -> int:
        """Runs this replica may start now (0 once it drains)."""
        if not self.manager.accepting:
            return 0
        if self.max_concurrent_runs is None:
            return 1 << 30
        return self.max_concurrent_runs - self.manager.running_here() - self._reserved

    def reserve(self, slots: int = 1) -> bool:
        """Take ``slots`` free slots until ``release``, if there are as many: a start holds
        its slot from this check until its run is active, across the writes in between."""
        if self.free_slots() < slots:
            return False
        self._reserved += slots
        return True

    def release(self, slots: int = 1) -> None:
        self._reserved -= slots

    async def put(self, record: RunRecord, additional_data: dict[str, Any] | None) -> None:
        """Write ``record`` as a queued run; ``QueueFull`` if the queue holds ``max_queued_runs``."""
        record.status, record.owner = RunStatus.QUEUED, None
        if not await self.manager.log.enqueue_run(record, queued_event(record, additional_data), self.max_queued_runs):
            raise QueueFull(
                f"Every run slot is taken ({self.max_concurrent_runs} on this server) and the queue holds "
                f"{self.max_queued_runs} runs; retry later",
                5.0,
            )
        logger.info("run %s of %s queued", record.run_id, record.workflow_id)
        self._queued_since += 1
        self.wake()  # a slot may have freed while it was written
        announcing = asyncio.create_task(self.manager.hub.announce_queued(self.manager.owner))
        self._announcing.add(announcing)  # not awaited: the start is answered without waiting for Redis
        announcing.add_done_callback(self._announcing.discard)

    async def request_of(self, run_id: str) -> dict[str, Any] | None:
        """The fields of the run's ``WorkflowQueued`` (None: the run was never queued)."""
        first = await self.manager.log.read(run_id, 0, 1)
        if not first or first[0].index != 0 or first[0].name != ev.WORKFLOW_QUEUED:
            return None
        request: dict[str, Any] = orjson.loads(first[0].data)
        return request

    def wake(self) -> None:
        """Claim now rather than at the next poll (a run ended here, or one was queued)."""
        self._wake.set()

    def heard(self, owner: str) -> None:
        """Another replica queued a run (the hub's announcement): claim it if there is room here."""
        if owner != self.manager.owner:
            self._queued_since += 1
            self.wake()

    @property
    def waiting(self) -> bool:
        """Whether queued runs may wait: a start then queues behind them (first come, first
        started), even when a slot has just freed, which the oldest queued run is claiming."""
        return self._queued_since > 0

    async def start(self) -> None:
        """Start claiming: at once (a restart finds what was queued, and whether runs wait),
        then on wake-ups and polls."""
        await self.fill()
        self._task = asyncio.create_task(self._claim_forever(), name="runstream-queue")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, *self._announcing, return_exceptions=True)

    async def fill(self) -> list[str]:
        """Claim and start queued runs while this replica has room; returns their ids."""
        manager, started = self.manager, []
        while (room := min(self.free_slots(), 100)) > 0:
            self.reserve(room)
            queued_before = self._queued_since
            try:
                claimed = await manager.log.claim_queued(manager.owner, room, list(manager.workflows))
            finally:
                self.release(room)
            if len(claimed) < room and self._queued_since == queued_before:
                self._queued_since = 0  # the queue is empty (of runs this replica can start)
            for record in claimed:
                logger.info("run %s of %s taken from the queue", record.run_id, record.workflow_id)
                manager.start_queued(record)
                started.append(record.run_id)
            if len(claimed) < room:
                break
        return started

    async def _claim_forever(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.poll):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.fill()
            except Exception:  # a database hiccup: the next wake-up or poll tries again
                logger.exception("claiming queued runs failed")
