"""Two runstream replicas sharing one PostgreSQL log and one Redis (docs/protocol.md, "What runstream promises beyond AgentOS", 2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from runstream import Agent, DemoModel, LocalHub, PostgresLog, RedisHub, Server, SQLiteLog, Step, StepInput, Workflow
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import Valve
from tests.wsclient import TERMINAL, indices, messages, read_run, recv, send

pytestmark = pytest.mark.anyio

FOLLOWERS = 20


def story(valve: Valve) -> Workflow:
    """A burst of chunks, a wait at the valve, a burst more, then a paced agent."""

    async def draft(step_input: StepInput) -> AsyncIterator[str]:
        for i in range(30):
            yield f"a{i} "
        await valve.wait()
        for i in range(200):
            yield f"b{i} "

    writer = Agent(name="Writer", model=DemoModel(pace=0.002, tokens=80))
    return Workflow(name="Story", id="story", steps=[Step(name="Draft", executor=draft), Step(name="Write", agent=writer)])




@pytest.fixture
def replicas(postgres_url: str, redis_url: str, valve: Valve) -> Iterator[tuple[RunningServer, RunningServer]]:
    def replica() -> Server:
        return Server(workflows=[story(valve)], database_url=postgres_url, redis_url=redis_url)

    with serve_in_thread(replica()) as a, serve_in_thread(replica()) as b:
        yield a, b


async def start_run(server: RunningServer) -> tuple[Any, str]:
    """Start a story on ``server``; returns the open socket and the run id."""
    ws = await connect(server.ws_url)
    assert (await recv(ws))["event"] == "connected"
    await send(ws, action="start-workflow", workflow_id="story", message="Replicas", session_id="s1")
    _, first = await read_run(ws, limit=1)
    return ws, first[0]["run_id"]


async def follow_on(server: RunningServer, run_id: str, last: int | None, live: asyncio.Semaphore) -> list[dict[str, Any]]:
    """Reconnect to ``run_id`` on ``server``; release ``live`` once subscribed; every event through the end."""
    events: list[dict[str, Any]] = []
    async with connect(server.ws_url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="reconnect", run_id=run_id, last_event_index=last, workflow_id="story")
        async for message in messages(ws):
            if "event_index" in message:
                events.append(message)
                if message["event"] in TERMINAL:
                    return events
            elif message["event"] == "subscribed":
                live.release()
            else:
                assert message["event"] == "catch_up", message


async def test_clients_on_replica_b_follow_a_run_of_replica_a_gapless(
    replicas: tuple[RunningServer, RunningServer], valve: Valve
) -> None:
    a, b = replicas
    ws, run_id = await start_run(a)
    _, seen = await read_run(ws, limit=10)  # the run now waits at the valve, mid-run
    lasts = [[None, -1, 0, 5, 9, seen[-1]["event_index"]][k % 6] for k in range(FOLLOWERS)]
    live = asyncio.Semaphore(0)
    followers = [asyncio.create_task(follow_on(b, run_id, last, live)) for last in lasts]
    for _ in range(FOLLOWERS):
        async with asyncio.timeout(30):
            await live.acquire()
    valve.open()
    _, rest = await read_run(ws)
    await ws.close()
    on_a = {e["event_index"]: e for e in rest}
    assert rest[-1]["event"] == "WorkflowCompleted" and len(rest) > 300
    for last, events in zip(lasts, await asyncio.gather(*followers)):
        start = -1 if last is None else last
        assert indices(events) == list(range(start + 1, rest[-1]["event_index"] + 1))
        assert all(e == on_a[e["event_index"]] for e in events if e["event_index"] in on_a)
        assert events[-1]["event"] == "WorkflowCompleted"


async def test_cancel_sent_to_replica_b_ends_the_run_on_replica_a(replicas: tuple[RunningServer, RunningServer]) -> None:
    a, b = replicas
    ws_a, run_id = await start_run(a)
    async with connect(b.ws_url) as ws_b:
        assert (await recv(ws_b))["event"] == "connected"
        await send(ws_b, action="reconnect", run_id=run_id, last_event_index=None, workflow_id="story")
        await send(ws_b, action="cancel-workflow", run_id=run_id)
        controls, on_b = await read_run(ws_b)
        assert [c["event"] for c in controls if c["event"] == "error"] == []
        assert on_b[-1]["event"] == "WorkflowCancelled"
        assert indices(on_b) == list(range(len(on_b)))
        await send(ws_b, action="cancel-workflow", run_id=run_id)  # it has ended: nothing to cancel
        assert (await recv(ws_b))["event"] == "error"
    _, on_a = await read_run(ws_a)
    await ws_a.close()
    assert on_a[-1] == on_b[-1]


def test_server_picks_its_backends_from_urls_or_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNSTREAM_REDIS_URL", raising=False)
    sqlite = f"sqlite:///{tmp_path / 'runs.db'}"
    default = Server(workflows=[], database_url=sqlite).manager
    assert (type(default.log), type(default.hub)) == (SQLiteLog, LocalHub)
    replica = Server(workflows=[], database_url="postgresql://db/runs", redis_url="redis://cache:6379/0").manager
    assert (type(replica.log), type(replica.hub)) == (PostgresLog, RedisHub)
    monkeypatch.setenv("RUNSTREAM_REDIS_URL", "redis://cache:6379/1")
    from_env = Server(workflows=[], database_url=sqlite).manager.hub
    assert isinstance(from_env, RedisHub) and from_env.url == "redis://cache:6379/1"
