"""Faults of the engines runstream depends on, with the real engines: Redis stopped mid-run and
started again, a replica SIGKILLed under load. Each test prints its figures (time until service
is back, events lost, steps re-run): docs/deploy.md#faults quotes them."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from runstream import PostgresLog, Server, Step, StepInput, Workflow
from tests.conftest import IN_CI, RunningServer, serve_in_thread
from tests.processes import RedisServer, Replica
from tests.runkit import Valve
from tests.waiting import until, wait_until
from tests.wsclient import TERMINAL, messages, recv, send

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]  # each test runs real replicas through faults

TOKENS = 400


def paced(valve: Valve) -> list[Workflow]:
    """``paced``: 400 chunks, 10 ms apart (4 s); ``held``: waits at ``valve`` (to be cancelled)."""

    async def stream(step_input: StepInput) -> AsyncIterator[str]:
        for i in range(TOKENS):
            yield f"t{i} "
            await asyncio.sleep(0.01)

    async def hold(step_input: StepInput) -> str:
        await valve.wait()
        return "released"

    return [
        Workflow(id="paced", name="Paced", steps=[Step(name="Stream", executor=stream)]),
        Workflow(id="held", name="Held", steps=[Step(name="Hold", executor=hold)]),
    ]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is not installed, and CI requires it")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()


async def follow_run(url: str, run_id: str, received: list[tuple[float, dict[str, Any]]], workflow: str) -> None:
    """Follow ``run_id`` from the start on ``url``, recording when each event arrived."""
    async with connect(url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="reconnect", run_id=run_id, last_event_index=-1, workflow_id=workflow)
        async for message in messages(ws, timeout=60):
            if "event_index" in message:
                received.append((time.monotonic(), message))
                if message["event"] in TERMINAL:
                    return


async def test_redis_stopped_mid_run_and_started_again(
    postgres_url: str, own_redis: RedisServer, valve: Valve
) -> None:
    def replica() -> Server:
        return Server(workflows=paced(valve), database_url=postgres_url, redis_url=own_redis.url)

    with serve_in_thread(replica()) as a, serve_in_thread(replica()) as b:
        async with httpx.AsyncClient(timeout=30) as http:
            run = (await http.post(f"{a.http_url}/workflows/paced/runs",
                                   data={"message": "x", "stream": "false", "background": "true"})).json()
            run_id = run["run_id"]
            received: list[tuple[float, dict[str, Any]]] = []
            follower = asyncio.create_task(follow_run(b.ws_url, run_id, received, "paced"))
            await until(lambda: len(received) >= 50, what="the follower on B to get live events")

            own_redis.kill()  # mid-run
            down_at = time.monotonic()
            logged = await _event_count(http, a, run_id)
            await until(lambda: _event_count(http, a, run_id, more_than=logged + 100), what="the run to go on")
            refused = await http.post(f"{b.http_url}/workflows/paced/runs/{run_id}/cancel")
            assert refused.status_code == 409  # A cannot be asked while Redis is down (docs/backends.md)

            own_redis.start()  # the same port
            up_at = time.monotonic()
            await asyncio.wait_for(follower, 60)

            events = [message for _, message in received]
            assert [e["event_index"] for e in events] == list(range(len(events))), "every event once, in order"
            assert events[-1]["event"] == "WorkflowCompleted"
            outage = [t for t, _ in received if down_at <= t]
            pause = max((later - earlier for earlier, later in zip(outage, outage[1:])), default=0.0)

            held = (await http.post(f"{a.http_url}/workflows/held/runs",
                                    data={"message": "x", "stream": "false", "background": "true"})).json()
            cancelled_at = None
            deadline = time.monotonic() + 30
            while cancelled_at is None:  # cross-replica cancel works again once A is subscribed again
                answer = await http.post(f"{b.http_url}/workflows/held/runs/{held['run_id']}/cancel")
                if answer.status_code == 200:
                    cancelled_at = time.monotonic()
                else:
                    assert answer.status_code == 409 and time.monotonic() < deadline, answer.text
                    await asyncio.sleep(0.1)
            await until(lambda: _status(http, a, held["run_id"], "cancelled"), what="the held run to be cancelled")
            print(
                f"\nredis outage: {len(events)} events, 0 lost, 0 duplicated; longest pause on B during the outage "
                f"{pause:.2f} s; cross-replica cancel back {cancelled_at - up_at:.2f} s after Redis restarted"
            )


async def _event_count(http: httpx.AsyncClient, server: RunningServer, run_id: str, more_than: int = -1) -> Any:
    count = (await http.get(f"{server.http_url}/runs/{run_id}")).json()["event_count"]
    return count if more_than < 0 else count > more_than


async def _status(http: httpx.AsyncClient, server: RunningServer, run_id: str, status: str) -> bool:
    return bool((await http.get(f"{server.http_url}/runs/{run_id}")).json()["status"] == status)


RUNS = 10


def test_a_replica_sigkilled_under_load_its_runs_resume_elsewhere(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    a = Replica(postgres_url, redis_url, tmp_path / "a.log", pace="0.02").start()
    b = Replica(postgres_url, redis_url, tmp_path / "b.log", pace="0.02").start()
    try:
        with httpx.Client(timeout=30) as http:
            ids = [
                http.post(f"http://127.0.0.1:{a.port}/workflows/content-creation-workflow/runs",
                          data={"message": f"load {i}", "stream": "false", "background": "true"}).json()["run_id"]
                for i in range(RUNS)
            ]
            wait_until(lambda: all(_count(http, a.port, r) > 40 for r in ids), timeout=60, what="every run under way")
            a.kill()
            killed_at = time.monotonic()
            wait_until(lambda: all(_finished(http, b.port, r) for r in ids), timeout=120, what="B to finish every run")
            back = time.monotonic() - killed_at
        events = asyncio.run(_events(postgres_url, ids))
        interrupted = 0
        for run_id in ids:
            run = events[run_id]
            assert [e["event_index"] for e in run] == list(range(len(run))), "no event lost or repeated"
            names = [e["event"] for e in run]
            assert names[-1] == "WorkflowCompleted" and names.count("WorkflowResumed") == 1, names
            resumed = names.index("WorkflowResumed")
            done_before = {e["step_path"] for e in run[:resumed] if e["event"] == "StepCompleted"}
            started_after = [e["step_path"] for e in run[resumed:] if e["event"] == "StepStarted"]
            assert not done_before & set(started_after), "a completed step ran again"
            assert all(n == 1 for n in Counter(e["step_path"] for e in run if e["event"] == "StepCompleted").values())
            interrupted += len(set(started_after) & {e["step_path"] for e in run[:resumed] if e["event"] == "StepStarted"})
        print(f"\nSIGKILL under load: {RUNS} runs finished on B {back:.1f} s after the kill; 0 events lost; "
              f"completed steps re-run: 0; interrupted steps re-run from their start: {interrupted}")
    finally:
        a.kill()
        b.kill()


def _count(http: httpx.Client, port: int, run_id: str) -> int:
    return int(http.get(f"http://127.0.0.1:{port}/runs/{run_id}").json()["event_count"])


def _finished(http: httpx.Client, port: int, run_id: str) -> bool:
    return bool(http.get(f"http://127.0.0.1:{port}/runs/{run_id}").json()["status"] == "completed")


async def _events(url: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    log = PostgresLog(url)
    await log.open()
    try:
        return {run_id: [orjson.loads(e.data) for e in await log.read(run_id, 0, 100_000)] for run_id in ids}
    finally:
        await log.close()
