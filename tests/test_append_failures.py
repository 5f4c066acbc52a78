"""A run whose events cannot be written stops and is left to recovery; other runs lose nothing."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from runstream import Server
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
