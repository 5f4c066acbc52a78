"""The one read path over a real SQLite log: catch-up, live, the seam, and slow readers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runstream import LocalHub, RunRecord, SQLiteLog, StoredEvent
from runstream.log.base import RunEnd
from runstream.runs import Appender, follow, follow_batches
from runstream.runs.follow import PAGE
from tests.waiting import until

pytestmark = pytest.mark.anyio


def event(i: int, last: int) -> StoredEvent:
    return StoredEvent(i, "WorkflowCompleted" if i == last else "RunContent", f'{{"event_index": {i}}}')


async def open_log(tmp_path: Path) -> SQLiteLog:
    log = SQLiteLog(tmp_path / "log.db")
    await log.open()
    await log.create_run(RunRecord(run_id="r", workflow_id="w"))
    return log


async def produce(appender: Appender, total: int, chunk: int) -> None:
    for i in range(total):
        end = RunEnd("completed") if i == total - 1 else None
        appender.add("r", event(i, total - 1), end)
        if i % chunk == chunk - 1:
            await appender.durable()
            await asyncio.sleep(0)
    await appender.durable()


async def test_readers_joining_at_any_moment_get_every_event_once(tmp_path: Path) -> None:
    log, hub = await open_log(tmp_path), LocalHub()
    appender = Appender(log, hub)
    appender.start()
    total = 3000

    async def reader(after: int, delay_batches: int) -> list[int]:
        for _ in range(delay_batches):
            await asyncio.sleep(0)
        return [e.index async for e in follow(log, hub, "r", after)]

    readers = [asyncio.create_task(reader(after, d)) for after, d in [(-1, 0), (-1, 40), (99, 5), (1500, 0), (-1, 400)]]
    await produce(appender, total, chunk=37)
    results = await asyncio.gather(*readers)
    await appender.close()
    await log.close()
    for (after, _), got in zip([(-1, 0), (-1, 40), (99, 5), (1500, 0), (-1, 400)], results):
        assert got == list(range(after + 1, total))


async def test_slow_reader_overflows_its_buffer_and_reads_the_gap_from_the_log(tmp_path: Path) -> None:
    log, hub = await open_log(tmp_path), LocalHub(buffer_limit=50)
    appender = Appender(log, hub)
    appender.start()
    total, seen, overflows, largest = 2000, [], 0, 0
    # batches of 200 events, four times the subscriber's buffer
    producer = asyncio.create_task(produce(appender, total, chunk=200))
    async for e in follow(log, hub, "r", -1):
        (subscriber,) = hub.subscribers("r")
        overflows += subscriber.overflowed
        largest = max(largest, len(subscriber.buffer))
        seen.append(e.index)
        if len(seen) % 100 == 0:
            await asyncio.sleep(0.002)  # a reader slower than the producer
    await producer
    await appender.close()
    await log.close()
    assert seen == list(range(total))
    assert overflows > 0 and largest <= 50


async def test_batches_are_gapless_pages_and_live_runs_ending_at_the_terminal_event(tmp_path: Path) -> None:
    log, hub = await open_log(tmp_path), LocalHub()
    appender = Appender(log, hub)
    appender.start()
    total = 1000
    for i in range(600):  # already in the log: read back in pages
        appender.add("r", event(i, total - 1))
    await appender.durable()

    async def read() -> list[list[int]]:
        return [[e.index for e in batch] async for batch in follow_batches(log, hub, "r", 99)]

    reader = asyncio.create_task(read())
    await until(lambda: hub.subscriber_count("r") == 1, what="the reader to subscribe")
    for i in range(600, total):  # then live: 300 events in one commit, then a few per commit
        appender.add("r", event(i, total - 1), RunEnd("completed") if i == total - 1 else None)
        if i >= 900 and i % 7 == 0:
            await appender.durable()
    await appender.close()
    batches = await reader
    await log.close()
    assert [i for batch in batches for i in batch] == list(range(100, total))
    assert all(batch and batch == list(range(batch[0], batch[0] + len(batch))) for batch in batches)
    assert max(len(batch) for batch in batches) <= PAGE
    assert batches[0] == list(range(100, 100 + PAGE))  # a full page from the log
    assert any(1 < len(batch) < PAGE for batch in batches[3:])  # live batches of one commit each
