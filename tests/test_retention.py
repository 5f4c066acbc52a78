"""Retention (docs/protocol.md, "What runstream promises beyond AgentOS", 5): kept for ever by default, else pruned by policy; a pruned run
replays as such instead of hanging."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from runstream import RetentionPolicy, RunManager, Server, StepInput, Workflow, apply_retention, open_log
from runstream.cli.main import main as cli
from runstream.fanout.local import LocalHub
from runstream.log.base import EventLog
from runstream.runs.follow import follow
from tests.conftest import serve_in_thread
from tests.runkit import Valve
from tests.waiting import until
from tests.wsclient import recv, send

pytestmark = pytest.mark.anyio

LATER = time.time() + 3 * 86400  # "now", three days on


def echo(step_input: StepInput) -> str:
    return f"echo {step_input.input}"


def workflows(valve: Valve) -> list[Workflow]:
    async def hold(step_input: StepInput) -> None:
        await valve.wait()

    return [Workflow(name="Echo", id="echo", steps=[echo]), Workflow(name="Held", id="held", steps=[hold])]


@pytest.fixture
async def manager(log_url: str) -> AsyncIterator[RunManager]:
    """A started manager, once per log backend; its log is ``manager.log``."""
    manager = RunManager(open_log(log_url), LocalHub(), workflows(Valve()))
    await manager.start()
    yield manager
    await manager.close()


async def finished_runs(manager: RunManager, count: int) -> list[str]:
    """Ids of ``count`` runs of ``echo``, each completed."""
    done = []
    for i in range(count):
        record = await manager.start_run("echo", f"m{i}")
        await manager.wait(record.run_id)
        done.append(record.run_id)
    return done


async def finished_runs_in(url: str, count: int) -> list[str]:
    log = open_log(url)
    manager = RunManager(log, LocalHub(), workflows(Valve()))
    await manager.start()
    try:
        return await finished_runs(manager, count)
    finally:
        await manager.close()


async def test_the_default_policy_keeps_everything(manager: RunManager) -> None:
    event_log = manager.log
    done = await finished_runs(manager, 2)
    assert await apply_retention(event_log, RetentionPolicy(), now=LATER) == 0
    assert all([await event_log.next_index(run_id) for run_id in done])


async def test_keep_days_deletes_old_finished_runs_and_never_a_running_one(
    manager: RunManager,
) -> None:
    event_log = manager.log
    done = await finished_runs(manager, 3)
    running = (await manager.start_run("held", "x")).run_id
    await until(lambda: _logged(event_log, running), what="the held run's first events")
    assert await apply_retention(event_log, RetentionPolicy(keep_days=7), now=LATER) == 0  # not old enough
    assert await apply_retention(event_log, RetentionPolicy(keep_days=1), now=LATER) == 3
    assert [await event_log.get_run(run_id) for run_id in done] == [None, None, None]
    assert [await event_log.next_index(run_id) for run_id in done] == [0, 0, 0]
    assert (await event_log.get_run(running)).status == "running"  # type: ignore[union-attr]
    assert await event_log.next_index(running) > 0


async def _logged(log: EventLog, run_id: str) -> bool:
    return await log.next_index(run_id) > 0


async def test_outputs_only_keeps_each_run_row_and_its_output(manager: RunManager) -> None:
    event_log = manager.log
    done = await finished_runs(manager, 2)
    policy = RetentionPolicy(keep_days=1, outputs_only=True)
    assert await apply_retention(event_log, policy, now=LATER) == 2
    assert await apply_retention(event_log, policy, now=LATER) == 0
    for i, run_id in enumerate(done):
        run = await event_log.get_run(run_id)
        assert run is not None and run.status == "completed" and run.output == f"echo m{i}"
        assert await event_log.next_index(run_id) == 0


async def test_a_replay_of_a_pruned_run_says_so_and_ends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    (run_id,) = await finished_runs_in(url, 1)
    log = open_log(url)
    await log.open()
    try:
        await apply_retention(log, RetentionPolicy(keep_days=1, outputs_only=True), now=LATER)
        async with asyncio.timeout(20):  # the one read path ends too (SSE and others use it)
            assert [e async for e in follow(log, LocalHub(), run_id)] == []
    finally:
        await log.close()

    server = Server(workflows=[Workflow(name="Echo", id="echo", steps=[echo])], database_url=url)
    with serve_in_thread(server) as running:
        async with connect(running.ws_url) as ws:
            await recv(ws)
            await send(ws, action="reconnect", run_id=run_id, last_event_index=None)
            notice = await recv(ws)
            assert notice["event"] == "replay" and notice["total_events"] == 0
            assert "retention" in notice["message"]
            await send(ws, action="ping")
            assert await recv(ws) == {"event": "pong"}  # nothing else came: no event, no hang


async def test_the_server_applies_its_policy_and_the_cli_applies_one_now(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    first, second = await finished_runs_in(url, 2)
    await asyncio.to_thread(cli, ["retention", "--database-url", url, "--keep-days", "0", "--outputs-only"])

    log = open_log(url)
    await log.open()
    try:
        assert [await log.next_index(run_id) for run_id in (first, second)] == [0, 0]
        assert (await log.get_run(first)).output == "echo m0"  # type: ignore[union-attr]
    finally:
        await log.close()

    policy = RetentionPolicy(keep_days=0)
    server = Server(workflows=[Workflow(name="Echo", id="echo", steps=[echo])], database_url=url, retention=policy)
    log = open_log(url)
    await log.open()
    try:
        with serve_in_thread(server):
            await until(lambda: _gone(log, first), what="the server's retention task")
            assert await log.get_run(second) is None
    finally:
        await log.close()


async def _gone(log: EventLog, run_id: str) -> bool:
    return await log.get_run(run_id) is None
