"""A rolling deploy without a gap: three demo replicas on PostgreSQL + Redis, a load of 50 runs,
every replica stopped (SIGTERM) and started again in turn. Each client reconnects anywhere on
``server_shutdown`` and gets every event once; no completed step runs again (docs/deploy.md)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from runstream import PostgresLog
from tests.processes import Replica
from tests.wsclient import TERMINAL, parse, recv, send

WORKFLOW = "content-creation-workflow"
RUNS = 50
REPLICAS = 3


class Follower:
    """One client of one run: starts it on one replica, and on ``server_shutdown`` (or a
    dropped connection) reconnects with its last ``event_index`` to the next replica up."""

    def __init__(self, replicas: list[Replica], first: int, number: int) -> None:
        self.replicas = replicas
        self.turn = first
        self.number = number
        self.run_id: str | None = None
        self.events: list[dict[str, Any]] = []
        self.shutdowns = 0
        self.started = asyncio.Event()

    async def run(self) -> None:
        while True:
            replica = self.replicas[self.turn % len(self.replicas)]
            self.turn += 1
            try:
                async with connect(f"ws://127.0.0.1:{replica.port}/workflows/ws", open_timeout=5) as ws:
                    if await self._session(ws):
                        return
            except (OSError, ConnectionClosed, TimeoutError):
                await asyncio.sleep(0.05)  # that replica is restarting: try the next one

    async def _session(self, ws: Any) -> bool:
        """True once the run's terminal event arrived."""
        assert (await recv(ws))["event"] == "connected"
        if self.run_id is None:
            await send(ws, action="start-workflow", workflow_id=WORKFLOW, message=f"load {self.number}")
        else:
            last = self.events[-1]["event_index"] if self.events else -1
            await send(ws, action="reconnect", run_id=self.run_id, last_event_index=last, workflow_id=WORKFLOW)
        async for frame in ws:
            message = parse(frame)
            if message.get("event") == "server_shutdown":
                self.shutdowns += 1
                return False
            if "event_index" not in message:
                assert message.get("event") != "error", message
                continue
            self.run_id = message["run_id"]
            self.started.set()
            self.events.append(message)
            if message["event"] in TERMINAL:
                return True
        return False


def test_every_replica_deployed_in_turn_under_50_runs(postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    replicas = [Replica(postgres_url, redis_url, tmp_path / f"r{i}.log", pace="0.04").start() for i in range(REPLICAS)]
    try:
        followers, deploy = asyncio.run(_load_and_deploy(replicas))
        runs = asyncio.run(_logged(postgres_url, [f.run_id for f in followers if f.run_id]))
    finally:
        for replica in replicas:
            replica.kill()
    assert len(runs) == RUNS
    rerun = handed = 0
    for follower in followers:
        indices = [e["event_index"] for e in follower.events]
        assert indices == list(range(len(indices))), f"run {follower.run_id}: every event once, in order"
        logged = runs[follower.run_id]  # type: ignore[index]
        assert [e["event_index"] for e in logged] == indices, "the client saw exactly the log"
        assert logged[-1]["event"] == "WorkflowCompleted", logged[-1]
        completed = Counter(e["step_path"] for e in logged if e["event"] == "StepCompleted")
        started = Counter(e["step_path"] for e in logged if e["event"] == "StepStarted")
        assert all(n == 1 for n in completed.values()), f"a completed step ran again: {completed}"
        rerun += sum(started.values()) - len(started)
        handed += sum(1 for e in logged if e["event"] == "WorkflowResumed")
    assert handed >= 1, "the deploy handed no run over: it did not happen under load"
    print(f"\nrolling deploy: {RUNS} runs, {REPLICAS} replicas restarted in turn in {deploy:.1f} s; "
          f"{handed} handovers; 0 events lost or repeated; steps re-run: {rerun}; "
          f"clients told to reconnect: {sum(f.shutdowns for f in followers)}")


async def _load_and_deploy(replicas: list[Replica]) -> tuple[list[Follower], float]:
    followers = [Follower(replicas, i, i) for i in range(RUNS)]
    tasks = [asyncio.create_task(f.run()) for f in followers]
    await asyncio.wait_for(asyncio.gather(*(f.started.wait() for f in followers)), 60)
    began = time.monotonic()
    for replica in replicas:  # a rolling deploy: one replica at a time
        await asyncio.to_thread(replica.stop)
        await asyncio.to_thread(replica.start)
    deploy = time.monotonic() - began
    await asyncio.wait_for(asyncio.gather(*tasks), 180)
    return followers, deploy


async def _logged(url: str, ids: list[str | None]) -> dict[str, list[dict[str, Any]]]:
    log = PostgresLog(url)
    await log.open()
    try:
        return {run_id: [orjson.loads(e.data) for e in await log.read(run_id, 0, 100_000)] for run_id in ids if run_id}
    finally:
        await log.close()


pytestmark = pytest.mark.timeout(300)
