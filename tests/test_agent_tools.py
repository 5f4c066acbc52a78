"""Tools from plain functions, and the agent loop against a real model server."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from runstream import Agent, CallbackSink, DemoModel, ModelError, OpenAIChat, RunContext, StepFailed, StepInput, Tool, tool
from runstream.models.base import Usage, close_model
from tests.model_server import ModelServer, error_reply, serve_model, text_reply, tool_reply

pytestmark = pytest.mark.anyio


def search_notes(query: str, limit: int = 2, kind: Literal["fact", "trend"] = "fact") -> list[str]:
    """Search the research notes.

    Only the first paragraph is the description.

    Args:
        query: What to look for,
            in a few words.
        limit (int): How many notes to return.
    """
    return [f"{kind} about {query} #{i}" for i in range(limit)]


async def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def broken(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"cannot do {reason}")


class Recorder:
    """A RunContext whose events land in a list."""

    def __init__(self, history: list[dict[str, Any]] | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.ctx = RunContext("run-1", "wf", "Workflow", self.emit, history=history or [])
        self.scope = self.ctx.top_scope("Step", 0)

    async def emit(self, name: str, fields: dict[str, Any]) -> None:
        self.events.append((name, fields))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [fields for n, fields in self.events if n == name]


async def run_agent(agent: Agent, recorder: Recorder, message: str = "tell me about tides") -> Any:
    """Run the agent, then close its model's HTTP session, as a server does at shutdown."""
    try:
        return await agent.run(StepInput(input=message), recorder.ctx, recorder.scope)
    finally:
        await close_model(agent.model)


def agent_on(server: ModelServer, **options: Any) -> Agent:
    model = OpenAIChat("test-model", base_url=server.base_url, api_key="sk-test", max_retries=0)
    return Agent(name="Helper", model=model, **options)


def test_schema_from_signature_and_docstring() -> None:
    spec = Tool(search_notes).spec
    assert spec.name == "search_notes"
    assert spec.description == "Search the research notes."
    assert spec.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for, in a few words."},
            "limit": {"type": "integer", "default": 2, "description": "How many notes to return."},
            "kind": {"type": "string", "enum": ["fact", "trend"], "default": "fact"},
        },
        "required": ["query"],
    }


def test_tool_decorator_overrides_name_and_description() -> None:
    renamed = tool(name="sum", description="Sum two integers.")(add)
    assert (renamed.spec.name, renamed.spec.description) == ("sum", "Sum two integers.")
    assert tool(add).spec.parameters["required"] == ["a", "b"]


def test_tool_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="two tools share a name"):
        Agent(name="A", model=DemoModel(), tools=[add, tool(name="add")(search_notes)])


async def test_tool_call_validates_and_coerces_arguments() -> None:
    assert await Tool(search_notes).call({"query": "tides", "limit": "1"}) == ["fact about tides #0"]
    assert await Tool(add).call({"a": 2, "b": 3}) == 5
    with pytest.raises(ValueError, match="invalid arguments for add: b: Field required"):
        await Tool(add).call({"a": 2})


async def test_one_tool_call_then_answer() -> None:
    replies = [
        tool_reply([("call_1", "search_notes", '{"query": "tides", "limit": 1}')], usage=(30, 6)),
        text_reply(["Tides ", "follow ", "the moon."], usage=(50, 3)),
    ]
    recorder = Recorder()
    with serve_model(replies) as server:
        result = await run_agent(agent_on(server, tools=[search_notes]), recorder)
    assert result == "Tides follow the moon."
    assert recorder.names() == [
        "RunStarted", "ToolCallStarted", "ToolCallCompleted", "RunContent", "RunContent", "RunContent", "RunCompleted",
    ]
    started, completed = recorder.of("ToolCallStarted")[0], recorder.of("ToolCallCompleted")[0]
    assert started["tool"] == {"tool_call_id": "call_1", "tool_name": "search_notes", "tool_args": {"query": "tides", "limit": 1}}
    assert completed["tool"]["result"] == ["fact about tides #0"] and completed["tool"]["tool_call_error"] is False
    assert completed["tool"]["metrics"]["duration"] >= 0 and completed["agent_name"] == "Helper"
    metrics = recorder.of("RunCompleted")[0]["metrics"]
    assert (metrics["input_tokens"], metrics["output_tokens"], metrics["total_tokens"]) == (80, 9, 89)
    assert recorder.ctx.metrics == {"input_tokens": 80, "output_tokens": 9, "total_tokens": 89}
    sent = server.requests[1]["messages"]
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "search_notes"
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_1", "content": '["fact about tides #0"]'}
    assert server.requests[0]["tools"][0]["function"]["name"] == "search_notes"


async def test_several_tool_calls_in_one_turn_run_concurrently() -> None:
    first_running, second_running = asyncio.Event(), asyncio.Event()

    async def first(x: str) -> str:
        """Needs the second call running at the same time."""
        first_running.set()
        await asyncio.wait_for(second_running.wait(), 10)
        return f"first {x}"

    async def second(x: str) -> str:
        """Needs the first call running at the same time."""
        second_running.set()
        await asyncio.wait_for(first_running.wait(), 10)
        return f"second {x}"

    calls = [("c1", "first", '{"x": "a"}'), ("c2", "second", '{"x": "b"}')]
    recorder = Recorder()
    with serve_model([tool_reply(calls), text_reply(["done"])]) as server:
        assert await run_agent(agent_on(server, tools=[first, second]), recorder) == "done"
    assert [e["tool"]["tool_call_id"] for e in recorder.of("ToolCallStarted")] == ["c1", "c2"]
    assert sorted(e["tool"]["result"] for e in recorder.of("ToolCallCompleted")) == ["first a", "second b"]
    tool_messages = server.requests[1]["messages"][-2:]
    assert [m["tool_call_id"] for m in tool_messages] == ["c1", "c2"]


async def test_a_failing_tool_is_reported_and_the_run_goes_on() -> None:
    calls = [("c1", "broken", '{"reason": "magic"}'), ("c2", "missing", "{}"), ("c3", "add", '{"a": "x", "b": 1}')]
    recorder = Recorder()
    with serve_model([tool_reply(calls), text_reply(["sorry"])]) as server:
        assert await run_agent(agent_on(server, tools=[broken, add]), recorder) == "sorry"
    done = {e["tool"]["tool_call_id"]: e["tool"] for e in recorder.of("ToolCallCompleted")}
    assert all(t["tool_call_error"] for t in done.values())
    assert done["c1"]["error"] == "RuntimeError: cannot do magic"
    assert "no tool named 'missing'" in done["c2"]["error"]
    assert "invalid arguments for add: a:" in done["c3"]["error"]
    fed_back = {m["tool_call_id"]: m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"}
    assert fed_back["c1"] == "Error: RuntimeError: cannot do magic"


async def test_max_tool_calls_ends_a_runaway_agent() -> None:
    replies = [tool_reply([(f"c{i}", "add", '{"a": 1, "b": 1}')]) for i in range(3)]
    recorder = Recorder()
    with serve_model(replies) as server:
        with pytest.raises(StepFailed, match=r"'Helper' exceeded max_tool_calls=2"):
            await run_agent(agent_on(server, tools=[add], max_tool_calls=2), recorder)
    assert len(recorder.of("ToolCallCompleted")) == 2 and len(server.requests) == 3


class Brief(BaseModel):
    title: str
    points: list[str]


async def test_output_schema_parses_the_answer() -> None:
    answer = json.dumps({"title": "Tides", "points": ["moon", "sun"]})
    recorder = Recorder()
    with serve_model([text_reply(["```json\n", answer[:10], answer[10:], "\n```"])]) as server:
        result = await run_agent(agent_on(server, output_schema=Brief), recorder)
    assert result == Brief(title="Tides", points=["moon", "sun"])
    assert recorder.of("RunCompleted")[0]["content"] == {"title": "Tides", "points": ["moon", "sun"]}
    assert server.requests[0]["response_format"]["json_schema"]["name"] == "Brief"


async def test_output_schema_mismatch_fails_the_step() -> None:
    with serve_model([text_reply(['{"title": 3}'])]) as server:
        with pytest.raises(StepFailed, match=r"does not match Brief: title: .*points: Field required"):
            await run_agent(agent_on(server, output_schema=Brief), Recorder())


async def test_model_errors_propagate_as_model_error() -> None:
    with serve_model([error_reply(401, "bad key")]) as server:
        with pytest.raises(ModelError, match="HTTP 401"):
            await run_agent(agent_on(server), Recorder())


def test_history_and_task_build_the_messages() -> None:
    agent = Agent(name="A", model=DemoModel(), instructions=["Be brief.", "Be kind."], add_history=True, num_history_runs=1)
    history = [{"input": "old", "output": "older answer"}, {"input": "q1", "output": "a1"}]
    step_input = StepInput(input="q2", previous_step_content="notes so far")
    assert agent.messages(step_input, history) == [
        {"role": "system", "content": "Be brief.\nBe kind."},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2\n\nPrevious step output:\nnotes so far"},
    ]
    assert Agent(name="B", model=DemoModel()).messages(StepInput(input="q2"), history) == [{"role": "user", "content": "q2"}]


async def test_history_is_loaded_once_and_only_for_agents_that_show_it() -> None:
    loads: list[int] = []

    async def load() -> list[dict[str, Any]]:
        loads.append(1)
        return [{"input": "earlier question", "output": "earlier answer"}]

    recorder = Recorder()
    recorder.ctx = RunContext("run-1", "wf", "Workflow", CallbackSink(recorder.emit, load))
    await run_agent(Agent(name="Plain", model=DemoModel(pace=0, tokens=3)), recorder)
    assert loads == []
    for _ in range(2):
        await run_agent(Agent(name="Chat", model=DemoModel(pace=0, tokens=3), add_history=True), recorder)
    assert loads == [1] and recorder.ctx.history == [{"input": "earlier question", "output": "earlier answer"}]


async def test_the_answer_is_every_chunk_streamed_whatever_its_characters() -> None:
    chunks = ["plain\r\n", "é", "", "漢字", "😀", *(f"{i} " for i in range(10_000))]

    class Chunks:
        id, provider = "chunks", "test"

        async def stream(self, messages: Any, **_: Any) -> Any:
            for chunk in chunks:
                yield chunk
            yield Usage(1, len(chunks))

    recorder = Recorder()
    result = await run_agent(Agent(name="Echo", model=Chunks()), recorder)
    assert result == recorder.of("RunCompleted")[0]["content"] == "".join(chunks)
    assert [e["content"] for e in recorder.of("RunContent")] == chunks


async def test_demo_model_calls_a_tool_the_instructions_name() -> None:
    agent = Agent(
        name="Researcher",
        model=DemoModel(pace=0, tokens=40),
        instructions="Use search_notes before answering.",
        tools=[search_notes, add],
    )
    recorder = Recorder()
    result = await run_agent(agent, recorder, "ocean tides")
    assert [e["tool"]["tool_name"] for e in recorder.of("ToolCallStarted")] == ["search_notes"]
    assert recorder.of("ToolCallStarted")[0]["tool"]["tool_args"] == {"query": "ocean tides"}
    assert "fact about ocean tides #0" in result
    assert recorder.names()[-1] == "RunCompleted" and recorder.ctx.metrics["output_tokens"] > 0
