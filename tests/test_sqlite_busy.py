"""A small SQLite append never waits for the write lock on the event loop's thread.

While another transaction holds the lock (a long retention prune, or another
process), the append goes to the writer thread and waits there: the event
loop keeps serving, and the events are written once the lock is free.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from runstream import RunRecord, SQLiteLog, StoredEvent
from tests.waiting import until

pytestmark = pytest.mark.anyio


def event(index: int) -> StoredEvent:
    return StoredEvent(index, "RunContent", f'{{"event":"RunContent","event_index":{index}}}')


async def test_an_append_behind_another_writer_waits_off_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    log = SQLiteLog(path)
    await log.open()
    try:
        await log.create_run(RunRecord(run_id="r", workflow_id="wf"))
        await log.append({"r": ([event(0)], None)})  # an ordinary inline commit
        assert log.inline_fallbacks == 0

        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock, as a long prune would
        append = asyncio.create_task(log.append({"r": ([event(1), event(2)], None)}))
        await until(lambda: log.inline_fallbacks == 1, what="the append to leave the event loop's thread")
        await asyncio.sleep(0)  # the event loop runs on while the append waits for the lock
        assert not append.done()

        released = threading.Event()
        threading.Thread(target=lambda: (other.execute("COMMIT"), released.set())).start()
        await asyncio.wait_for(append, 30)
        assert released.is_set()
        other.close()
        assert [e.index for e in await log.read("r", 0, 10)] == [0, 1, 2]

        await log.append({"r": ([event(3)], None)})  # the lock is free: inline again
        assert log.inline_fallbacks == 1
        assert await log.next_index("r") == 4
    finally:
        await log.close()


async def test_an_append_that_fails_for_another_reason_still_raises(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "runs.db")
    await log.open()
    try:
        await log.create_run(RunRecord(run_id="r", workflow_id="wf"))
        await log.append({"r": ([event(0)], None)})
        with pytest.raises(sqlite3.IntegrityError):
            await log.append({"r": ([event(0)], None)})  # the index is taken
        assert log.inline_fallbacks == 0
        assert [e.index for e in await log.read("r", 0, 10)] == [0]
    finally:
        await log.close()
