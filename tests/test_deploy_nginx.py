"""docs/deploy.md, as a new user follows it: two demo replicas on PostgreSQL + Redis behind
nginx with ``deploy/nginx/runstream.conf``; the reference test, SSE and a cross-replica
reconnect through it, and a replica stopped mid-run whose run goes on on the other."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from runstream import PostgresLog
from tests.conftest import IN_CI
from tests.processes import Replica, nginx_front
from tests.test_reference import SEED
from tests.wsclient import TERMINAL, messages, read_run, recv, send

WORKFLOW = "content-creation-workflow"


@pytest.fixture
def deployment(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[list[Replica], str]]:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        if IN_CI:
            pytest.fail("nginx is not installed, and CI requires it (.ci/run installs it)")
        pytest.skip("nginx is not installed")
    replicas = [Replica(postgres_url, redis_url, tmp_path / f"replica{i}.log", pace="0.02") for i in range(2)]
    try:
        for replica in replicas:
            replica.start()
        with nginx_front([r.port for r in replicas], tmp_path / "nginx") as port:
            yield replicas, f"127.0.0.1:{port}"
    finally:
        for replica in replicas:
            replica.kill()


def test_the_reference_test_passes_through_nginx(deployment: tuple[list[Replica], str]) -> None:
    _, front = deployment
    if not SEED.exists():
        pytest.fail(f"the reference test is missing: {SEED}")
    source = SEED.read_text()
    assert source.count("ws://localhost:7777/workflows/ws") == 1
    script = source.replace("ws://localhost:7777/workflows/ws", f"ws://{front}/workflows/ws")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    verdicts = [line for line in output.splitlines() if line.startswith("[")]
    assert "[ERROR]" not in output, output
    assert "[OK] No gaps in event sequence" in output, output
    assert "[OK] Replay started from event 0 (correct)" in output, output
    assert verdicts and all(line.startswith("[OK]") for line in verdicts), output


def test_sse_through_nginx_is_not_buffered_and_ready_answers(deployment: tuple[list[Replica], str]) -> None:
    _, front = deployment
    with httpx.Client(base_url=f"http://{front}", timeout=60) as http:
        assert http.get("/ready").json()["status"] == "ready"
        run = http.post(f"/workflows/{WORKFLOW}/runs", data={"message": "SSE", "stream": "false", "background": "true"})
        run_id = run.json()["run_id"]
        with http.stream("GET", f"/workflows/{WORKFLOW}/runs/{run_id}/events") as sse:
            assert sse.headers["content-type"].startswith("text/event-stream")
            lines = sse.iter_lines()
            while not next(lines).startswith("data: "):
                pass
            # the first event came through while the run still streams: nginx did not hold it back
            assert http.get(f"/runs/{run_id}").json()["status"] == "running"
            assert any("WorkflowCompleted" in line for line in lines)


async def _owner_port(database_url: str, run_id: str, replicas: list[Replica]) -> Replica:
    log = PostgresLog(database_url)
    await log.open()
    try:
        record = await log.get_run(run_id)
    finally:
        await log.close()
    assert record is not None and record.owner is not None
    pid = int(record.owner.split(":")[1])
    return next(r for r in replicas if r.pid == pid)


async def _reconnect(front: str, run_id: str, last: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async with connect(f"ws://{front}/workflows/ws") as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="reconnect", run_id=run_id, last_event_index=last, workflow_id=WORKFLOW)
        controls: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        async for message in messages(ws, timeout=60):
            if "event_index" not in message:
                controls.append(message)
                continue
            events.append(message)
            if message["event"] in TERMINAL:
                return controls, events
    raise AssertionError("unreachable")


def test_a_replica_stopped_mid_run_its_run_goes_on_and_a_reconnect_through_nginx_gets_the_rest(
    deployment: tuple[list[Replica], str], postgres_url: str
) -> None:
    replicas, front = deployment

    async def scenario() -> None:
        async with connect(f"ws://{front}/workflows/ws") as ws:
            assert (await recv(ws))["event"] == "connected"
            await send(ws, action="start-workflow", workflow_id=WORKFLOW, message="Deploys", session_id="deploy")
            _, first = await read_run(ws, limit=20)
        run_id = first[0]["run_id"]
        owner = await _owner_port(postgres_url, run_id, replicas)
        # SIGTERM, as a deploy does; uvicorn ends a graceful shutdown by re-raising the signal
        assert await asyncio.to_thread(owner.stop) == -signal.SIGTERM
        controls, rest = await _reconnect(front, run_id, first[-1]["event_index"])
        survivor = next(r for r in replicas if r is not owner)
        assert (await _owner_port(postgres_url, run_id, replicas)) is survivor
        seen = [e["event_index"] for e in first + rest]
        assert seen == list(range(len(seen))), "every event once, in order"
        assert rest[-1]["event"] == "WorkflowCompleted"
        assert [e["event"] for e in rest].count("WorkflowResumed") == 1
        assert controls and controls[0]["event"] in {"catch_up", "subscribed"}, controls
        async with httpx.AsyncClient(base_url=f"http://{front}") as http:
            metrics = (await http.get("/metrics")).text
        takeovers = [line for line in metrics.splitlines() if line.startswith("runstream_lease_takeovers_total")]
        assert takeovers and float(takeovers[0].split()[-1]) >= 1, takeovers

    asyncio.run(scenario())
