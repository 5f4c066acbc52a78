"""Every interleaving of cancels, double cancels, disconnects, step errors and completion ends a
run with exactly one terminal event, logged once, over both transports (a real server).

A run streams chunks; at chosen points of a follower's stream (its n-th event, possibly past
the end) the test cancels it once or twice, over HTTP, the WebSocket or both at once, drops
and re-opens the follower, or sends a cancel and hangs up at once. Whatever happens, the log
holds one gapless run ending in one terminal event, the follower saw exactly that log, every
cancel got an answer that says what became of it, and the server logged the end once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect

from runstream import Server, Step, StepInput, Workflow
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import parse_sse
from tests.waiting import until
from tests.wsclient import TERMINAL, recv, send

END_STATUS = {"WorkflowCompleted": "completed", "WorkflowError": "error", "WorkflowCancelled": "cancelled"}
ACTIONS = ("cancel_http", "cancel_ws", "double_cancel_http", "double_cancel_ws", "cancel_both", "disconnect",
           "cancel_and_hang_up")


def race_workflow() -> Workflow:
    """Streams ``chunks`` chunks, raising at chunk ``fail_at`` (if it is reached)."""

    async def produce(step_input: StepInput) -> AsyncIterator[str]:
        plan = json.loads(str(step_input.input))
        for i in range(plan["chunks"]):
            if i == plan["fail_at"]:
                raise RuntimeError(f"chunk {i} broke")
            yield f"c{i} "
            await asyncio.sleep(0.002)

    return Workflow(id="race", name="Race", steps=[Step(name="Produce", executor=produce), Step(name="Echo", executor=echo)])


def echo(step_input: StepInput) -> str:
    return f"echo {str(step_input.previous_step_content)[:10]}"


class Ends(logging.Handler):
    """The lifecycle's log lines about runs ending, by run id."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def of(self, run_id: str) -> list[str]:
        ends = (f"run {run_id} completed", f"run {run_id} cancelled", f"run {run_id} failed")
        return [line for line in self.lines if line.startswith(ends)]


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Ends]]:
    folder: Path = tmp_path_factory.mktemp("race")
    ends = Ends()
    logger = logging.getLogger("runstream.runs.lifecycle")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(ends)
    try:
        with serve_in_thread(Server(workflows=[race_workflow()], database_url=f"sqlite:///{folder}/runs.db")) as srv:
            yield srv, ends
    finally:
        logger.removeHandler(ends)
        logger.setLevel(level)


@dataclass
class Trial:
    srv: RunningServer
    http: httpx.AsyncClient
    control: ClientConnection
    run_id: str = ""
    answers: list[dict[str, Any]] = field(default_factory=list)
    """What each cancel was answered: ``{"accepted", "already"}`` or ``{"refused"}``."""
    unanswered: int = 0
    """Cancels whose sender hung up before the answer."""
    pending: list[asyncio.Task[None]] = field(default_factory=list)

    async def cancel_http(self) -> None:
        response = await self.http.post(f"/workflows/race/runs/{self.run_id}/cancel")
        if response.status_code == 200:
            body = response.json()
            assert body["cancelled"] is True and body["status"] == "cancelling"
            self.answers.append({"accepted": True, "already": body["already_requested"]})
        else:
            assert (response.status_code, response.json()["code"]) == (409, "run_not_active"), response.text
            self.answers.append({"accepted": False})

    async def send_ws_cancel(self) -> None:
        await send(self.control, action="cancel-workflow", run_id=self.run_id)

    async def read_ws_answer(self) -> None:
        reply = await recv(self.control)
        if reply["event"] == "cancel_requested":
            assert reply["run_id"] == self.run_id and reply["status"] == "cancelling"
            self.answers.append({"accepted": True, "already": reply["already_requested"]})
        else:
            assert reply["event"] == "error" and "is not running" in reply["error"], reply
            self.answers.append({"accepted": False})

    async def act(self, action: str) -> None:
        if action == "cancel_http":
            await self.cancel_http()
        elif action == "double_cancel_http":
            await asyncio.gather(self.cancel_http(), self.cancel_http())
        elif action in ("cancel_ws", "double_cancel_ws"):
            for _ in range(2 if action == "double_cancel_ws" else 1):
                await self.send_ws_cancel()
            for _ in range(2 if action == "double_cancel_ws" else 1):
                await self.read_ws_answer()
        elif action == "cancel_both":
            await self.send_ws_cancel()
            await asyncio.gather(self.cancel_http(), self.read_ws_answer())
        elif action == "cancel_and_hang_up":
            async with connect(self.srv.ws_url) as ws:
                await recv(ws)
                await send(ws, action="cancel-workflow", run_id=self.run_id)
            self.unanswered += 1


async def follow(trial: Trial, plan: dict[str, int], start_over_ws: bool, actions: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Start the run, follow it (re-opening after each ``disconnect``), acting at each action's event."""
    seen: list[dict[str, Any]] = []
    todo = sorted(actions)
    replay = False
    ws = await connect(trial.srv.ws_url)
    try:
        await recv(ws)
        if start_over_ws:
            await send(ws, action="start-workflow", workflow_id="race", message=json.dumps(plan))
        else:
            response = await trial.http.post("/workflows/race/runs", data={"message": json.dumps(plan), "background": "true"})
            trial.run_id = response.json()["run_id"]
            await send(ws, action="reconnect", run_id=trial.run_id, last_event_index=None)
        while not seen or seen[-1]["event"] not in TERMINAL:
            message = await recv(ws)
            if "event_index" not in message:
                assert message["event"] in ("catch_up", "subscribed", "replay"), message
                replay = message["event"] == "replay"  # a finished run is replayed from 0
                continue
            if replay and message["event_index"] < len(seen):
                assert message == seen[message["event_index"]]
                continue
            seen.append(message)
            trial.run_id = message["run_id"]
            while todo and todo[0][0] <= len(seen):
                _, action = todo.pop(0)
                if action == "disconnect":
                    await ws.close()
                    ws = await connect(trial.srv.ws_url)
                    await recv(ws)
                    await send(ws, action="reconnect", run_id=trial.run_id, last_event_index=seen[-1]["event_index"])
                else:
                    await trial.act(action)
        for _, action in todo:  # past the end: nothing left to cancel
            if action != "disconnect":
                await trial.act(action)
    finally:
        await ws.close()
    return seen


async def trial_run(srv: RunningServer, plan: dict[str, int], start_over_ws: bool, actions: list[tuple[int, str]]) -> tuple[Trial, list[dict[str, Any]], list[dict[str, Any]], str]:
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=20) as http, connect(srv.ws_url) as control:
        await recv(control)
        trial = Trial(srv, http, control)
        seen = await follow(trial, plan, start_over_ws, actions)
        status = ""

        async def finished() -> bool:
            nonlocal status
            status = (await http.get(f"/runs/{trial.run_id}")).json()["status"]
            return status in ("completed", "error", "cancelled")

        await until(finished, what="the run to end")
        logged = [e["data"] for e in parse_sse((await http.get(f"/workflows/race/runs/{trial.run_id}/events")).text)]
    return trial, seen, logged, status


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    chunks=st.integers(min_value=1, max_value=12),
    fail_at=st.integers(min_value=0, max_value=16),
    start_over_ws=st.booleans(),
    actions=st.lists(st.tuples(st.integers(min_value=1, max_value=20), st.sampled_from(ACTIONS)), max_size=3),
)
def test_every_interleaving_ends_with_one_terminal_event_logged_once(
    race: tuple[RunningServer, Ends], chunks: int, fail_at: int, start_over_ws: bool, actions: list[tuple[int, str]]
) -> None:
    srv, ends = race
    plan = {"chunks": chunks, "fail_at": fail_at}
    trial, seen, logged, status = asyncio.run(trial_run(srv, plan, start_over_ws, actions))

    assert [e["event_index"] for e in logged] == list(range(len(logged)))
    assert logged[0]["event"] == "WorkflowStarted"
    terminals = [e["event"] for e in logged if e["event"] in TERMINAL]
    assert len(terminals) == 1 and logged[-1]["event"] == terminals[0]
    assert status == END_STATUS[terminals[0]]
    assert seen == logged  # across its reconnects, the follower saw the log, once each

    accepted = [a for a in trial.answers if a["accepted"]]
    if accepted:  # an accepted cancel always wins: nothing but WorkflowCancelled is logged after it
        assert terminals == ["WorkflowCancelled"]
    first = [a for a in accepted if not a["already"]]
    assert len(first) <= 1
    if accepted and not trial.unanswered:
        assert len(first) == 1
    if not accepted and not trial.unanswered:
        assert terminals == ["WorkflowError" if fail_at < chunks else "WorkflowCompleted"]

    async def logged_once() -> bool:
        return len(ends.of(trial.run_id)) >= 1

    asyncio.run(until(logged_once, what="the end's log line"))
    assert len(ends.of(trial.run_id)) == 1, ends.of(trial.run_id)
