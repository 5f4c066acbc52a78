"""A workflow with a tools agent, through a real runstream server and a real model server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from runstream import Agent, DemoModel, OpenAIChat, Server, Step, ToolCall, Usage, Workflow
from runstream.models.base import Message
from tests.conftest import serve_in_thread
from tests.model_server import ModelServer, error_reply, serve_model, text_reply, tool_reply
from tests.wsclient import read_run, recv, send

pytestmark = pytest.mark.anyio


def lookup(topic: str) -> str:
    """Look a topic up in the notes.

    Args:
        topic: The topic to look up.
    """
    return f"notes on {topic}"


def tools_workflow(model_server: ModelServer, max_tool_calls: int = 5) -> Workflow:
    model = OpenAIChat("test-model", base_url=model_server.base_url, api_key="sk-test", max_retries=0)
    return Workflow(
        name="Tools",
        id="tools",
        steps=[
            Step(name="Research", agent=Agent(name="Researcher", model=model, tools=[lookup], max_tool_calls=max_tool_calls)),
            Step(name="Write", agent=Agent(name="Writer", model=model, add_history=True)),
        ],
    )


async def run_over_ws(ws_url: str, message: str, session_id: str = "s1") -> list[dict]:
    async with connect(ws_url) as ws:
        assert (await recv(ws))["event"] == "connected"
        await send(ws, action="start-workflow", workflow_id="tools", message=message, session_id=session_id)
        controls, events = await read_run(ws)
    assert not controls, controls
    return events


async def test_tool_events_usage_and_metrics_over_websocket(tmp_path: Path) -> None:
    replies = [
        tool_reply([("call_1", "lookup", '{"topic": "tides"}')], usage=(11, 2)),
        text_reply(["Tides ", "rise."], usage=(13, 2)),
        text_reply(["Draft."], usage=(17, 1)),
    ]
    with serve_model(replies) as model_server:
        server = Server(workflows=[tools_workflow(model_server)], database_url=f"sqlite:///{tmp_path}/runs.db")
        with serve_in_thread(server) as running:
            events = await run_over_ws(running.ws_url, "tides")
    names = [e["event"] for e in events]
    assert names == [
        "WorkflowStarted",
        "StepStarted", "RunStarted", "ToolCallStarted", "ToolCallCompleted", "RunContent", "RunContent", "RunCompleted",
        "StepOutput", "StepCompleted",
        "StepStarted", "RunStarted", "RunContent", "RunCompleted", "StepOutput", "StepCompleted",
        "WorkflowCompleted",
    ]
    assert [e["event_index"] for e in events] == list(range(len(events)))
    started, completed = events[3], events[4]
    assert started["tool"]["tool_args"] == {"topic": "tides"} and started["agent_name"] == "Researcher"
    assert completed["tool"]["result"] == "notes on tides" and completed["run_id"] == events[0]["run_id"]
    runs_completed = [e for e in events if e["event"] == "RunCompleted"]
    assert [e["metrics"]["input_tokens"] for e in runs_completed] == [24, 17]
    metrics = events[-1]["metrics"]
    assert {k: metrics[k] for k in ("input_tokens", "output_tokens", "total_tokens")} == {
        "input_tokens": 41, "output_tokens": 5, "total_tokens": 46}
    assert set(metrics["steps"]) == {"Research", "Write"} and metrics["duration"] > 0
    research = metrics["steps"]["Research"]
    assert (research["step_name"], research["executor_type"], research["executor_name"]) == ("Research", "agent", "Researcher")
    assert research["metrics"] == {**runs_completed[0]["metrics"]}
    assert (research["metrics"]["input_tokens"], research["metrics"]["total_tokens"]) == (24, 28)
    assert events[-1]["content"] == "Draft."
    assert model_server.requests[2]["messages"][-1]["content"] == "tides\n\nPrevious step output:\nTides rise."


async def test_history_of_the_session_reaches_the_model(tmp_path: Path) -> None:
    replies = [text_reply([f"{who}{i}"]) for i in (1, 2, 3) for who in ("R", "W")]
    with serve_model(replies) as model_server:
        server = Server(workflows=[tools_workflow(model_server)], database_url=f"sqlite:///{tmp_path}/runs.db")
        with serve_in_thread(server) as running:
            await run_over_ws(running.ws_url, "first question")
            await run_over_ws(running.ws_url, "second question")
            await run_over_ws(running.ws_url, "other session", session_id="s2")
    second_writer = model_server.requests[3]["messages"]
    assert second_writer[:2] == [{"role": "user", "content": "first question"}, {"role": "assistant", "content": "W1"}]
    assert model_server.requests[2]["messages"][0] == {"role": "user", "content": "second question"}
    other_writer = model_server.requests[5]["messages"]
    assert other_writer[0]["content"].startswith("other session")


async def test_runaway_agent_and_model_errors_end_the_run_with_workflow_error(tmp_path: Path) -> None:
    runaway = [tool_reply([(f"c{i}", "lookup", '{"topic": "x"}')]) for i in range(2)]
    with serve_model([*runaway, error_reply(404, "no such model")]) as model_server:
        server = Server(workflows=[tools_workflow(model_server, max_tool_calls=1)], database_url=f"sqlite:///{tmp_path}/runs.db")
        with serve_in_thread(server) as running:
            first = await run_over_ws(running.ws_url, "loop")
            second = await run_over_ws(running.ws_url, "missing model")
    assert first[-1]["event"] == "WorkflowError"
    assert "'Researcher' exceeded max_tool_calls=1" in first[-1]["error"]
    assert second[-1]["event"] == "WorkflowError"
    assert "model not found (HTTP 404)" in second[-1]["error"]


class ClosingModel(DemoModel):
    """A DemoModel that records the event loops it was closed in."""

    def __init__(self) -> None:
        super().__init__(pace=0, tokens=3)
        self.used_in: list[asyncio.AbstractEventLoop] = []
        self.closed_in: list[asyncio.AbstractEventLoop] = []

    async def stream(self, messages: list[Message], **options: Any) -> AsyncIterator[str | ToolCall | Usage]:
        self.used_in.append(asyncio.get_running_loop())
        async for item in super().stream(messages, **options):
            yield item

    async def aclose(self) -> None:
        self.closed_in.append(asyncio.get_running_loop())


async def test_the_server_closes_its_agents_models_at_shutdown(tmp_path: Path) -> None:
    model, unused = ClosingModel(), ClosingModel()
    steps = [Step(name="Research", agent=Agent(name="Researcher", model=model))]
    workflows = [Workflow(name="Tools", id="tools", steps=steps)]
    workflows.append(Workflow(name="Idle", id="idle", steps=[Step(name="Idle", agent=Agent(name="Idle", model=unused))]))
    for _ in range(2):  # two servers, one after the other, each in a loop of its own
        server = Server(workflows=workflows, database_url=f"sqlite:///{tmp_path}/runs.db")
        with serve_in_thread(server) as running:
            assert (await run_over_ws(running.ws_url, "tides"))[-1]["event"] == "WorkflowCompleted"
            assert model.closed_in == model.used_in[:-1]
    assert model.closed_in == model.used_in and model.used_in[0] is not model.used_in[1]
    assert unused.closed_in == []
