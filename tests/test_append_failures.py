"""A run whose events cannot be written stops and is left to recovery; other runs lose nothing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from runstream import LocalHub, LogWriteFailed, RunRecord, Server, SQLiteLog, StoredEvent
from runstream.runs import Appender
from tests.conftest import serve_in_thread
from tests.runkit import Valve, valve_workflow
from tests.wsclient import indices, read_run, recv, send

pytestmark = pytest.mark.anyio


async def test_an_index_taken_by_another_writer_stops_only_that_run_which_then_resumes(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    valve_a, valve_b = Valve(), Valve()
    workflows = [valve_workflow(valve_a, after=200, id="a"), valve_workflow(valve_b, after=200, id="b")]
    with serve_in_thread(Server(workflows=workflows, database_url=f"sqlite:///{db}", lease_ttl=1.5)) as srv:
        async with connect(srv.ws_url) as ws_a, connect(srv.ws_url) as ws_b:
            await recv(ws_a)
            await recv(ws_b)
            await send(ws_a, action="start-workflow", workflow_id="a", message="x")
            await send(ws_b, action="start-workflow", workflow_id="b", message="x")
            _, seen_a = await read_run(ws_a, limit=7)  # WorkflowStarted, StepStarted, 5 chunks: at the valve
            _, seen_b = await read_run(ws_b, limit=7)
            run_a = seen_a[0]["run_id"]
            foreign = {"event": "Foreign", "run_id": run_a, "event_index": 7}
            with closing(sqlite3.connect(db)) as conn, conn:  # another writer takes the index run A writes next
                conn.execute("INSERT INTO events VALUES (?, 7, 'Foreign', ?)", (run_a, json.dumps(foreign)))
            valve_a.open()
            valve_b.open()
            _, rest_b = await read_run(ws_b)
            _, rest_a = await read_run(ws_a)
    assert indices(seen_b + rest_b) == list(range(len(seen_b) + len(rest_b)))
    assert rest_b[-1]["event"] == "WorkflowCompleted"
    names_a = [e["event"] for e in rest_a]
    assert indices(seen_a + rest_a) == list(range(len(seen_a) + len(rest_a)))
    assert names_a[0] == "Foreign" and "WorkflowResumed" in names_a and names_a[-1] == "WorkflowCompleted"


async def test_a_run_whose_write_failed_gets_nothing_more_written_even_once_forgotten(tmp_path: Path) -> None:
    """After a gap nothing more of that run may reach the log: neither what it emitted while its
    failing write was in flight, nor what it emitted before it noticed, even once the manager
    forgets the failure (``failed`` is cleared when the run's task ends, so that recovery may
    resume it here). Under load this once left a hole: index 48 written after a failed 7..47."""
    log = SQLiteLog(tmp_path / "runs.db")
    await log.open()
    for run_id in ("r", "s"):
        await log.create_run(RunRecord(run_id=run_id, workflow_id="w"))
    await log.append({"r": ([StoredEvent(0, "Foreign", "{}")], None)})  # another writer took index 0
    appender = Appender(log, LocalHub())
    appender.start()
    appender.add("r", StoredEvent(0, "WorkflowStarted", "{}"))
    appender.add("s", StoredEvent(0, "WorkflowStarted", "{}"))
    await asyncio.sleep(0)  # the appender takes that batch; what follows waits for the next one
    appender.add("r", StoredEvent(1, "RunContent", "{}"))
    with pytest.raises(LogWriteFailed):
        await appender.durable("r")
    appender.add("r", StoredEvent(2, "RunContent", "{}"))  # emitted before the run noticed
    appender.failed.pop("r")  # the run's task ends at once: the manager forgets it
    appender.add("s", StoredEvent(1, "RunContent", "{}"))
    await appender.durable("s")
    await appender.close()
    assert [(e.index, e.name) for e in await log.read("r", 0, 10)] == [(0, "Foreign")]
    assert [e.index for e in await log.read("s", 0, 10)] == [0, 1]
    await log.close()
