"""The durable run queue (docs/deploy.md#the-run-queue): past ``max_concurrent_runs`` a run is
queued in the log, started in order by a replica with room, exactly once; a full queue answers
``queue_full``; a queued run can be cancelled, survives a restart, and is followed as any run.

Real servers on real ports over real SQLite files and PostgreSQL (+ Redis for two replicas).
How many runs execute at once is counted by the steps themselves and written into the log
(each step's output says how many were in a step with it), never inferred from timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from runstream import Client, Limits, QueueFull, Server, Step, StepInput, Workflow
from runstream import events as ev
from tests.conftest import RunningServer, serve_in_thread
from tests.processes import Replica
from tests.runkit import Valve
from tests.waiting import until
from tests.wsclient import recv, send

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]


class Tracker:
    """What the steps of one server saw: the messages in the order they entered, and how many
    were in a step at once (thread-safe: the server runs in a thread of its own)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entered: list[str] = []
        self.inside = 0
        self.most = 0

    def enter(self, message: str) -> int:
        with self.lock:
            self.entered.append(message)
            self.inside += 1
            self.most = max(self.most, self.inside)
            return self.inside

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1


def held(valve: Valve, tracker: Tracker) -> Workflow:
    """One step that waits at ``valve``; its output says how many steps ran beside it."""

    async def hold(step_input: StepInput) -> str:
        beside = tracker.enter(str(step_input.input))
        try:
            await valve.wait()
        finally:
            tracker.leave()
        extra = step_input.additional_data.get("tag", "")
        return f"{step_input.input} ran with {beside} running{extra}"

    return Workflow(id="held", name="Held", steps=[Step(name="Hold", executor=hold)])


def limits(cap: int, depth: int | None = 100) -> Limits:
    return Limits(max_concurrent_runs=cap, max_queued_runs=depth, runs_per_minute=None, max_runs_per_user=None)


@pytest.fixture
def tracker() -> Tracker:
    return Tracker()


def serve(database_url: str, valve: Valve, tracker: Tracker, cap: int, depth: int | None = 100,
          **options: Any) -> Any:
    server = Server(workflows=[held(valve, tracker)], database_url=database_url, limits=limits(cap, depth), **options)
    return serve_in_thread(server)


async def start(client: Client, message: str) -> str:
    return await client.start("held", message)


async def events_of(client: Client, run_id: str) -> list[Any]:
    return [event async for event in client.follow(run_id)]


async def statuses(client: Client, run_ids: list[str]) -> list[str]:
    return [(await client.get_run(run_id)).status for run_id in run_ids]


async def test_past_the_cap_runs_are_queued_and_all_complete_never_more_than_the_cap_at_once(
    log_url: str, valve: Valve, tracker: Tracker
) -> None:
    with serve(log_url, valve, tracker, cap=2) as srv:
        async with Client(srv.http_url) as client:
            run_ids = list(await asyncio.gather(*(start(client, f"m{i}") for i in range(5))))  # all at once
            await until(lambda: len(tracker.entered) == 2, what="two runs in their step")
            assert sorted(await statuses(client, run_ids)) == ["queued"] * 3 + ["running"] * 2
            metrics = httpx.get(f"{srv.http_url}/metrics").text
            assert "runstream_queue_depth 3.0" in metrics and "runstream_runs_executing 2.0" in metrics
            valve.open()
            transcripts = [await events_of(client, run_id) for run_id in run_ids]
            assert await statuses(client, run_ids) == ["completed"] * 5
    assert [e[0].name for e in transcripts].count(ev.WORKFLOW_QUEUED) == 3
    for i, events in enumerate(transcripts):
        names = [e.name for e in events]
        queued = [ev.WORKFLOW_QUEUED] if names[0] == ev.WORKFLOW_QUEUED else []
        assert names[: len(queued) + 1] == [*queued, ev.WORKFLOW_STARTED] and names[-1] == ev.WORKFLOW_COMPLETED
        assert names.count(ev.WORKFLOW_STARTED) == 1 and [e.index for e in events] == list(range(len(events)))
        output = events[-1].data["content"]
        assert output.startswith(f"m{i} ran with ") and int(output.split()[3]) <= 2, output
    assert sorted(tracker.entered) == [f"m{i}" for i in range(5)] and tracker.most == 2


async def test_queued_runs_start_in_the_order_they_were_created(log_url: str, valve: Valve, tracker: Tracker) -> None:
    with serve(log_url, valve, tracker, cap=1) as srv:
        async with Client(srv.http_url) as client:
            run_ids = [await start(client, f"m{i}") for i in range(4)]
            await until(lambda: tracker.entered == ["m0"], what="the first run in its step")
            valve.open()
            for run_id in run_ids:
                await events_of(client, run_id)
    assert tracker.entered == ["m0", "m1", "m2", "m3"] and tracker.most == 1


async def test_a_full_queue_answers_queue_full_over_http_and_websocket(
    log_url: str, valve: Valve, tracker: Tracker
) -> None:
    with serve(log_url, valve, tracker, cap=1, depth=1) as srv:
        async with Client(srv.http_url) as client:
            running = await start(client, "m0")
            accepted = httpx.post(f"{srv.http_url}/workflows/held/runs", data={"message": "m1", "background": "true"})
            assert accepted.status_code == 202 and accepted.json()["status"] == "queued", accepted.text
            queued = accepted.json()["run_id"]
            refused = httpx.post(f"{srv.http_url}/workflows/held/runs", data={"message": "m2", "background": "true"})
            assert refused.status_code == 429 and refused.json()["code"] == "queue_full", refused.text
            assert refused.headers["retry-after"]
            async with connect(srv.ws_url) as ws:
                await recv(ws)
                await send(ws, action="start-workflow", workflow_id="held", message="m3")
                frame = await recv(ws)
            assert frame["event"] == "error" and frame["code"] == "queue_full" and frame["retry_after"], frame
            assert "queue" in frame["error"]
            with pytest.raises(QueueFull) as full:  # the Python client raises the class of the code
                await start(client, "m4")
            assert full.value.status == 429
            assert [r.run_id for r in await client.runs()] == [queued, running]  # the refused started nothing
            valve.open()
            await events_of(client, queued)


async def test_a_queued_run_is_cancelled_and_never_starts(log_url: str, valve: Valve, tracker: Tracker) -> None:
    with serve(log_url, valve, tracker, cap=1) as srv:
        async with Client(srv.http_url) as client:
            running, queued = await start(client, "m0"), await start(client, "m1")
            await until(lambda: tracker.entered == ["m0"], what="the first run in its step")
            await client.cancel(queued)
            events = await events_of(client, queued)
            assert [e.name for e in events] == [ev.WORKFLOW_QUEUED, ev.WORKFLOW_CANCELLED]
            assert (await client.get_run(queued)).status == "cancelled"
            valve.open()
            await events_of(client, running)
    assert tracker.entered == ["m0"]


async def test_a_reconnect_to_a_queued_run_answers_as_for_a_running_one(
    log_url: str, valve: Valve, tracker: Tracker
) -> None:
    with serve(log_url, valve, tracker, cap=1) as srv:
        async with Client(srv.http_url) as client:
            await start(client, "m0")
            queued = await start(client, "m1")
            async with connect(srv.ws_url) as ws:
                await recv(ws)
                await send(ws, action="reconnect", run_id=queued, last_event_index=None, workflow_id="held")
                catch_up, first, subscribed = await recv(ws), await recv(ws), await recv(ws)
                assert catch_up["event"] == "catch_up" and catch_up["status"] == "queued", catch_up
                assert catch_up["missed_events"] == 1 and first["event"] == ev.WORKFLOW_QUEUED
                assert first["event_index"] == 0 and first["input"] == "m1"
                assert subscribed["event"] == "subscribed" and subscribed["status"] == "queued"
                await send(ws, action="reconnect", run_id=queued, last_event_index=0, workflow_id="held")
                again = await recv(ws)
                assert again["event"] == "subscribed" and again["status"] == "queued", again
                valve.open()
                names = []
                while not names or names[-1] != ev.WORKFLOW_COMPLETED:
                    message = await recv(ws)
                    if message.get("run_id") == queued and "event_index" in message and message["event_index"] > 0:
                        names.append(message["event"])
            assert names[0] == ev.WORKFLOW_STARTED


async def test_additional_data_of_a_queued_run_reaches_its_steps(tmp_path: Path, valve: Valve, tracker: Tracker) -> None:
    with serve(f"sqlite:///{tmp_path}/runs.db", valve, tracker, cap=1) as srv:
        async with Client(srv.http_url) as client, connect(srv.ws_url) as ws:
            await start(client, "m0")
            await recv(ws)
            await send(ws, action="start-workflow", workflow_id="held", message="m1", additional_data={"tag": " (tagged)"})
            first = await recv(ws)
            assert first["event"] == ev.WORKFLOW_QUEUED and first["additional_data"] == {"tag": " (tagged)"}
            valve.open()
            events = await events_of(client, first["run_id"])
    assert events[-1].data["content"] == "m1 ran with 1 running (tagged)"


# -- a restart, and two replicas on one queue -----------------------------------------


async def test_queued_runs_survive_a_restart(tmp_path: Path) -> None:
    """The demo server as a real process, capped from the environment: killed (SIGKILL) with one
    run running and two queued, started again: every run completes, each started once."""
    env = {"RUNSTREAM_MAX_CONCURRENT_RUNS": "1", "RUNSTREAM_MAX_QUEUED_RUNS": "10"}
    replica = Replica(f"sqlite:///{tmp_path}/demo.db", "", tmp_path / "server.log", pace="0.02", **env).start()
    url = f"http://127.0.0.1:{replica.port}"
    try:
        async with Client(url) as client:
            run_ids = [await client.start("content-creation-workflow", f"topic {i}") for i in range(3)]
            assert await statuses(client, run_ids) == ["running", "queued", "queued"]
        replica.kill()
        replica.start()
        async with Client(url) as client:
            transcripts = [await events_of(client, run_id) for run_id in run_ids]
            assert await statuses(client, run_ids) == ["completed"] * 3
    finally:
        replica.kill()
    for i, events in enumerate(transcripts):
        names = [e.name for e in events]
        assert names.count(ev.WORKFLOW_STARTED) == 1 and names[-1] == ev.WORKFLOW_COMPLETED
        assert (names[0] == ev.WORKFLOW_QUEUED) == (i > 0)
        assert [e.index for e in events] == list(range(len(events)))
        assert ev.WORKFLOW_RESUMED not in names[1:] or i == 0  # only the running one had anything to resume


@pytest.fixture
def two_replicas(postgres_url: str, redis_url: str, valve: Valve) -> Iterator[tuple[list[RunningServer], list[Tracker]]]:
    trackers = [Tracker(), Tracker()]
    servers = [
        Server(workflows=[held(valve, t)], database_url=postgres_url, redis_url=redis_url, limits=limits(2))
        for t in trackers
    ]
    with serve_in_thread(servers[0]) as first, serve_in_thread(servers[1]) as second:
        yield [first, second], trackers


async def test_two_replicas_on_postgres_take_each_queued_run_exactly_once(
    two_replicas: tuple[list[RunningServer], list[Tracker]], valve: Valve
) -> None:
    replicas, trackers = two_replicas
    clients = [Client(r.http_url) for r in replicas]
    try:
        run_ids = [await start(clients[i % 2], f"m{i}") for i in range(12)]
        await until(lambda: sum(len(t.entered) for t in trackers) == 4, what="two runs on each replica")
        assert sorted(await statuses(clients[0], run_ids)) == ["queued"] * 8 + ["running"] * 4
        valve.open()
        transcripts = await asyncio.gather(*(events_of(clients[i % 2], run_id) for i, run_id in enumerate(run_ids)))
        assert await statuses(clients[1], run_ids) == ["completed"] * 12
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    entered = trackers[0].entered + trackers[1].entered
    assert sorted(entered) == sorted(f"m{i}" for i in range(12))  # each run started once, on one replica
    assert trackers[0].most <= 2 and trackers[1].most <= 2
    for events in transcripts:
        assert [e.name for e in events].count(ev.WORKFLOW_STARTED) == 1
        assert [e.index for e in events] == list(range(len(events)))


async def test_a_run_queued_on_a_full_replica_starts_at_once_on_one_with_room(
    postgres_url: str, redis_url: str, valve: Valve
) -> None:
    """The full replica announces the queued run over Redis: the idle one claims it without
    waiting for its poll (``lease_ttl / 3``, here 200 s: longer than the test may wait)."""
    full, idle = Tracker(), Tracker()
    servers = [
        Server(workflows=[held(valve, t)], database_url=postgres_url, redis_url=redis_url, limits=limits(1),
               lease_ttl=600)
        for t in (full, idle)
    ]
    with serve_in_thread(servers[0]) as first, serve_in_thread(servers[1]):
        async with Client(first.http_url) as client:
            await start(client, "m0")
            await until(lambda: full.entered == ["m0"], what="the first replica's one slot taken")
            queued = await start(client, "m1")
            await until(lambda: idle.entered == ["m1"], what="the idle replica to start the queued run")
            valve.open()
            events = await events_of(client, queued)
    assert [e.name for e in events][:2] == [ev.WORKFLOW_QUEUED, ev.WORKFLOW_STARTED]


def test_the_queue_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What the demo server and ``runstream serve`` take: ``0`` queues nothing (the cap refuses),
    ``off`` lifts either bound; ``Server(max_concurrent_runs=...)`` overrides the variable."""
    monkeypatch.setenv("RUNSTREAM_MAX_CONCURRENT_RUNS", "3")
    monkeypatch.setenv("RUNSTREAM_MAX_QUEUED_RUNS", "0")
    assert (Limits.from_env().max_concurrent_runs, Limits.from_env().max_queued_runs) == (3, 0)
    monkeypatch.setenv("RUNSTREAM_MAX_CONCURRENT_RUNS", "off")
    monkeypatch.setenv("RUNSTREAM_MAX_QUEUED_RUNS", "off")
    assert (Limits.from_env().max_concurrent_runs, Limits.from_env().max_queued_runs) == (None, None)
    monkeypatch.setenv("RUNSTREAM_MAX_CONCURRENT_RUNS", "3")
    server = Server(workflows=[held(Valve(), Tracker())], database_url=f"sqlite:///{tmp_path}/runs.db",
                    max_concurrent_runs=5, max_queued_runs=7)
    assert (server.manager.queue.max_concurrent_runs, server.manager.queue.max_queued_runs) == (5, 7)
