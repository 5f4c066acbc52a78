"""The workflow language through a real server: session state, input schemas,
cancellation of long steps, and live runs of every step kind replaying exactly."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from websockets.asyncio.client import connect

from runstream import Condition, Loop, Parallel, Router, Server, Step, StepInput, StepOutput, Steps, Workflow
from tests.conftest import RunningServer, serve_in_thread
from tests.runkit import Valve
from tests.wsclient import read_run, recv, send

pytestmark = pytest.mark.anyio


def count_runs(step_input: StepInput) -> int:
    state = step_input.session_state
    state["runs"] = state.get("runs", 0) + 1
    state.setdefault("inputs", []).append(step_input.input)
    return state["runs"]


class Order(BaseModel):
    item: str
    quantity: int


class Receipt(BaseModel):
    line: str
    total: int


def bill(step_input: StepInput) -> Receipt:
    order = step_input.input
    assert isinstance(order, Order)
    return Receipt(line=f"{order.quantity} x {order.item}", total=3 * order.quantity)


async def long_async(step_input: StepInput) -> str:
    await asyncio.Event().wait()
    return "never"


def long_sync(release: threading.Event) -> Step:
    def wait(step_input: StepInput) -> str:
        release.wait(10)
        return "late"

    return Step("Long", wait)


def every_kind(valve: Valve) -> Workflow:
    """Each step kind, nested; one parallel branch waits at ``valve``."""

    async def held(step_input: StepInput) -> str:
        await valve.wait()
        return "released"

    def word(label: str) -> Step:
        def make(step_input: StepInput) -> str:
            return f"{label}:{str(step_input.message_text())[:20]}"

        return Step(label, make)

    def halt(step_input: StepInput) -> StepOutput:
        return StepOutput(content="halted", stop=True)

    return Workflow(
        name="Every Kind",
        id="every-kind",
        steps=[
            Steps("Prepare", [word("outline"), Parallel(word("left"), Step("held", held), name="Fan")]),
            Condition(lambda si: True, [Loop([word("draft"), word("review")], max_iterations=2)], else_steps=[word("skip")]),
            Router(lambda si: ["pick-b", "pick-a"], [word("pick-a"), word("pick-b")]),
            halt,
            word("unreached"),
        ],
    )




@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Lets a blocked sync step's thread finish once the test is over."""
    event = threading.Event()
    yield event
    event.set()


def make_server(db: Path, valve: Valve, release: threading.Event | None = None) -> Server:
    workflows = [
        Workflow(name="Counter", id="counter", steps=[count_runs]),
        Workflow(name="Billing", id="billing", steps=[bill], input_schema=Order),
        Workflow(name="Long Async", id="long-async", steps=[Step("Long", long_async)]),
        Workflow(name="Long Sync", id="long-sync", steps=[long_sync(release or threading.Event())]),
        every_kind(valve),
    ]
    return Server(workflows=workflows, database_url=f"sqlite:///{db}")


@pytest.fixture
def srv(tmp_path: Path, valve: Valve, release: threading.Event) -> Iterator[RunningServer]:
    with serve_in_thread(make_server(tmp_path / "db.sqlite", valve, release)) as running:
        yield running


async def run_once(ws_url: str, workflow_id: str, message: Any, session_id: str | None = None) -> list[dict[str, Any]]:
    async with connect(ws_url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="start-workflow", workflow_id=workflow_id, message=message, session_id=session_id)
        controls, events = await read_run(ws)
    assert controls == [], controls
    return events


async def test_session_state_persists_across_runs_of_one_session(tmp_path: Path, valve: Valve) -> None:
    with serve_in_thread(make_server(tmp_path / "db.sqlite", valve)) as srv:
        first = await run_once(srv.ws_url, "counter", "one", session_id="s1")
        second = await run_once(srv.ws_url, "counter", "two", session_id="s1")
        other = await run_once(srv.ws_url, "counter", "other", session_id="s2")
    assert [r[-1]["content"] for r in (first, second, other)] == [1, 2, 1]
    with serve_in_thread(make_server(tmp_path / "db.sqlite", valve)) as srv:  # a restarted server reads it back
        third = await run_once(srv.ws_url, "counter", "three", session_id="s1")
        session = await srv.server.manager.log.get_session("s1")
    assert third[-1]["content"] == 3
    assert session is not None and session.state == {"runs": 3, "inputs": ["one", "two", "three"]}


async def test_input_not_matching_the_schema_gets_an_error_frame_and_the_socket_goes_on(srv: RunningServer) -> None:
    async with connect(srv.ws_url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="start-workflow", workflow_id="billing", message={"item": "tea", "quantity": "lots"})
        refused = await recv(ws)
        assert refused["event"] == "error"
        assert "Input does not match Order" in refused["error"] and "quantity" in refused["error"]
        await send(ws, action="ping")
        assert await recv(ws) == {"event": "pong"}
        await send(ws, action="start-workflow", workflow_id="billing", message='{"item": "tea", "quantity": 2}')
        controls, events = await read_run(ws)
    assert controls == []
    assert events[-1]["event"] == "WorkflowCompleted"
    assert events[-1]["content"] == {"line": "2 x tea", "total": 6}
    assert next(e for e in events if e["event"] == "StepCompleted")["content"] == {"line": "2 x tea", "total": 6}


@pytest.mark.parametrize("workflow_id", ["long-async", "long-sync"])
async def test_cancel_reaches_a_run_stuck_in_a_long_step(srv: RunningServer, workflow_id: str) -> None:
    async with connect(srv.ws_url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="start-workflow", workflow_id=workflow_id, message="go")
        _, started = await read_run(ws, limit=2)
        assert [e["event"] for e in started] == ["WorkflowStarted", "StepStarted"]
        await send(ws, action="cancel-workflow", run_id=started[0]["run_id"])
        controls, rest = await read_run(ws)
    assert [c["event"] for c in controls] == ["cancel_requested"]
    assert [e["event"] for e in rest] == ["WorkflowCancelled"]
    assert rest[-1]["event_index"] == 2


async def test_a_run_of_every_kind_replays_exactly_as_it_streamed_live(srv: RunningServer, valve: Valve) -> None:
    async with connect(srv.ws_url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="start-workflow", workflow_id="every-kind", message="tide pools")
        _, head = await read_run(ws, limit=6)  # leave mid-run: the held branch keeps it running
    run_id = head[0]["run_id"]
    async with connect(srv.ws_url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="reconnect", run_id=run_id, last_event_index=head[-1]["event_index"])
        notice = await recv(ws)
        assert notice["event"] in ("catch_up", "subscribed")
        valve.open()
        controls, tail = await read_run(ws)
    live = head + tail
    assert [e["event_index"] for e in live] == list(range(len(live)))
    async with connect(srv.ws_url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="reconnect", run_id=run_id, last_event_index=None)
        replay_notice = await recv(ws)
        _, replayed = await read_run(ws)
    assert replay_notice["event"] == "replay" and replay_notice["total_events"] == len(live)
    assert replayed == live
    kinds = {e["event"] for e in live}
    assert {
        "StepsExecutionStarted", "StepsExecutionCompleted", "ParallelExecutionStarted", "ParallelExecutionCompleted",
        "ConditionExecutionStarted", "ConditionExecutionCompleted", "LoopExecutionStarted", "LoopIterationStarted",
        "LoopIterationCompleted", "LoopExecutionCompleted", "RouterExecutionStarted", "RouterExecutionCompleted",
    } <= kinds  # fmt: skip
    assert live[-1]["event"] == "WorkflowCompleted" and live[-1]["stopped_early"] is True
    assert "unreached" not in {e.get("step_name") for e in live}
    router = next(e for e in live if e["event"] == "RouterExecutionStarted")
    assert router["selected_steps"] == ["pick-b", "pick-a"]
