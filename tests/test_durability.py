"""Durable before visible: what a client saw survives SIGKILL and replays after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.conftest import free_port
from tests.demo_process import demo_server
from tests.wsclient import read_run, recv, send

pytestmark = pytest.mark.anyio


async def run_to_end(port: int) -> list[dict]:
    async with connect(f"ws://127.0.0.1:{port}/workflows/ws") as ws:
        await recv(ws)
        await send(ws, action="start-workflow", workflow_id="content-creation-workflow", message="Wind farms")
        _, events = await read_run(ws)
    return events


async def replay(port: int, run_id: str) -> tuple[dict, list[dict]]:
    async with connect(f"ws://127.0.0.1:{port}/workflows/ws") as ws:
        await recv(ws)
        await send(ws, action="reconnect", run_id=run_id, last_event_index=5)
        notice = await recv(ws)
        _, events = await read_run(ws)
    return notice, events


async def test_finished_run_replays_after_sigkill_and_restart(tmp_path: Path) -> None:
    db, port = tmp_path / "runs.db", free_port()
    with demo_server(port, db, pace="0.0005"):
        live = await run_to_end(port)
    assert live[-1]["event"] == "WorkflowCompleted"
    with demo_server(port, db, pace="0.0005"):
        notice, replayed = await replay(port, live[0]["run_id"])
    assert notice["event"] == "replay" and notice["status"] == "completed"
    assert notice["total_events"] == len(live)
    assert replayed == live


async def test_every_event_a_client_saw_is_in_the_log_after_sigkill(tmp_path: Path) -> None:
    db, port = tmp_path / "runs.db", free_port()
    with demo_server(port, db, pace="0.01") as proc:
        async with connect(f"ws://127.0.0.1:{port}/workflows/ws") as ws:
            await recv(ws)
            await send(ws, action="start-workflow", workflow_id="content-creation-workflow", message="Kites")
            _, seen = await read_run(ws, limit=40)
            proc.kill()
            await asyncio.to_thread(proc.wait)
    with demo_server(port, db, pace="0.0005"):
        async with connect(f"ws://127.0.0.1:{port}/workflows/ws") as ws:
            await recv(ws)
            await send(ws, action="reconnect", run_id=seen[0]["run_id"], last_event_index=None)
            await recv(ws)
            _, logged = await read_run(ws, limit=len(seen))
    assert logged[: len(seen)] == seen
