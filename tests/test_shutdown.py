"""Graceful shutdown (SIGTERM) and takeover by another replica, with real server processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from runstream.events import TERMINAL_EVENTS
from tests.apps.process import CrashableServer
from tests.apps.scenario import Follower, read_log
from tests.waiting import until
from tests.wsclient import recv, send

pytestmark = pytest.mark.anyio

ESSAY = "essay on facts about tides with left(facts about tides) and right(facts about tides)"


def _started(follower: Follower, step: str) -> bool:
    return any(e["event"] == "StepStarted" and e["step_name"] == step for e in follower.seen)


async def _reconnect_to_end(server: CrashableServer, follower: Follower) -> None:
    async with connect(server.ws_url) as ws:
        await recv(ws)
        await send(ws, action="reconnect", run_id=follower.seen[0]["run_id"], last_event_index=follower.last)
        await asyncio.wait_for(follower.listen(ws), 60)


async def test_sigterm_tells_clients_and_leaves_the_run_to_resume_at_restart(tmp_path: Path) -> None:
    server = CrashableServer(tmp_path, crash_at="step:write").start()
    follower = Follower()
    async with connect(server.ws_url) as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="essay", message="tides")
        listener = asyncio.create_task(follower.listen(ws))
        await until(lambda: server.reached() and _started(follower, "write"), what="the run to reach 'write'")
        await asyncio.to_thread(server.terminate)  # it exits by itself, with a client still connected
        await asyncio.wait_for(listener, 10)
        assert ws.close_code == 1012
    assert follower.notices[-1]["event"] == "server_shutdown" and follower.notices[-1]["reconnect"] is True

    record, log = await read_log(server.database)
    assert record.status == "running"
    assert not any(e["event"] in TERMINAL_EVENTS for e in log)
    assert follower.seen == log[: len(follower.seen)]

    restarted = CrashableServer(tmp_path).start()
    try:
        await _reconnect_to_end(restarted, follower)
    finally:
        restarted.kill()
    record, log = await read_log(server.database)
    assert follower.seen == log and record.status == "completed" and record.output == ESSAY
    (resumed,) = [e for e in log if e["event"] == "WorkflowResumed"]
    assert resumed["resumed_from_step"] == "write"
    assert restarted.executions("tides") == {"research": 1, "left": 1, "right": 1, "write": 2}


async def test_a_replica_takes_over_the_run_of_a_dead_one_and_its_subscribers_see_it_go_on(
    tmp_path: Path,
) -> None:
    owner = CrashableServer(tmp_path, crash_at="step:write").start()
    replica = None
    try:
        first = Follower()
        async with connect(owner.ws_url) as ws:
            await recv(ws)
            await send(ws, action="start-workflow", workflow_id="essay", message="tides")
            listener = asyncio.create_task(first.listen(ws))
            await until(lambda: owner.reached() and _started(first, "write"), what="the run to reach 'write'")
            listener.cancel()
        record, _ = await read_log(owner.database)
        assert record.owner is not None and f":{owner.process.pid}:" in record.owner  # type: ignore[union-attr]
        # one server per SQLite file (runstream.log.lock): the next one starts once the owner is dead;
        # two live replicas on one log are PostgreSQL's case (test_replicas.py)
        owner.kill()
        replica = CrashableServer(tmp_path, lease_ttl=1.5).start()  # scans for orphans as it starts

        second = Follower()
        for event in first.seen:
            second.take(event)
        async with connect(replica.ws_url) as ws:
            await recv(ws)
            await send(ws, action="reconnect", run_id=record.run_id, last_event_index=second.last)
            listener = asyncio.create_task(second.listen(ws))
            await asyncio.wait_for(listener, 60)
    finally:
        if owner.process is not None and owner.process.poll() is None:
            owner.kill()
        if replica is not None:
            replica.kill()
    record, log = await read_log(owner.database)
    assert second.seen == log and record.status == "completed" and record.output == ESSAY
    assert f":{replica.process.pid}:" in (record.owner or "")  # type: ignore[union-attr]
    assert [e["resumed_from_step"] for e in log if e["event"] == "WorkflowResumed"] == ["write"]
