"""The Anthropic provider against a real HTTP server speaking the Messages streaming format."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from runstream import Agent, ModelError, RunContext, StepInput, ToolCall, ToolSpec, Usage
from runstream.models.anthropic import Anthropic, to_anthropic
from runstream.models.base import Message
from tests.model_server import ModelServer, anthropic_reply, error_reply, raw_reply, serve_model

pytestmark = pytest.mark.anyio


def claude(server: ModelServer, **options: Any) -> Anthropic:
    options = {"max_retries": 0, **options}
    return Anthropic("claude-test", api_key="sk-ant-test", base_url=server.root_url, **options)


async def collect(model: Anthropic, messages: list[Message], **options: Any) -> list[str | ToolCall | Usage]:
    return [item async for item in model.stream(messages, **options)]


async def test_streams_text_and_usage_with_the_system_prompt_apart() -> None:
    messages: list[Message] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    with serve_model([anthropic_reply(["Hel", "lo"], usage=(12, 4))]) as server:
        items = await collect(claude(server), messages)
    assert items == ["Hel", "lo", Usage(12, 4)]
    assert server.paths == ["/v1/messages"]
    sent = server.requests[0]
    assert sent["system"] == "Be brief." and sent["messages"] == [{"role": "user", "content": "hi"}]
    assert sent["model"] == "claude-test" and sent["stream"] is True and sent["max_tokens"] == 4096


async def test_tool_use_blocks_become_tool_calls() -> None:
    spec = ToolSpec("lookup", "Look up.", {"type": "object", "properties": {"q": {"type": "string"}}})
    reply = anthropic_reply(["Checking."], tools=[("toolu_1", "lookup", '{"q": "a"}'), ("toolu_2", "lookup", '{"q": "b"}')])
    with serve_model([reply]) as server:
        items = await collect(claude(server), [{"role": "user", "content": "x"}], tools=[spec])
    assert items == [
        "Checking.",
        ToolCall("toolu_1", "lookup", '{"q": "a"}'),
        ToolCall("toolu_2", "lookup", '{"q": "b"}'),
        Usage(10, 5),
    ]
    assert server.requests[0]["tools"] == [{"name": "lookup", "description": "Look up.", "input_schema": spec.parameters}]


def test_tool_turns_translate_to_tool_use_and_tool_result_blocks() -> None:
    call = ToolCall("toolu_1", "lookup", '{"q": "a"}').as_dict()
    system, turns = to_anthropic(
        [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "A"},
        ]
    )
    assert system == "S"
    assert turns == [
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "a"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "A"}]},
    ]


async def test_an_agent_runs_its_tools_on_claude() -> None:
    def lookup(q: str) -> str:
        """Look something up."""
        return f"found {q}"

    class Found(BaseModel):
        answer: str

    replies = [anthropic_reply(tools=[("toolu_1", "lookup", '{"q": "tides"}')]), anthropic_reply(['{"answer": "moon"}'])]
    events: list[str] = []

    async def emit(name: str, fields: dict[str, Any]) -> None:
        events.append(name)

    ctx = RunContext("r", "wf", "Workflow", emit)
    with serve_model(replies) as server:
        agent = Agent(name="Claude", model=claude(server), tools=[lookup], output_schema=Found)
        assert await agent.run(StepInput(input="tides?"), ctx, ctx.top_scope("S", 0)) == Found(answer="moon")
    assert events == ["RunStarted", "ToolCallStarted", "ToolCallCompleted", "RunContent", "RunCompleted"]
    second = server.requests[1]
    assert second["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "found tides"}]
    assert '"answer"' in second["system"] and ctx.metrics["total_tokens"] == 30


async def test_retries_an_overloaded_server() -> None:
    replies = [error_reply(529, "Overloaded", {"retry-after-ms": "1"}), anthropic_reply(["ok"])]
    with serve_model(replies) as server:
        assert await collect(claude(server, max_retries=1), [{"role": "user", "content": "x"}]) == ["ok", Usage(10, 5)]


@pytest.mark.parametrize(("status", "expected"), [(401, "authentication failed"), (404, "model not found")])
async def test_auth_and_unknown_model_errors(status: int, expected: str) -> None:
    with serve_model([error_reply(status, "nope")]) as server:
        with pytest.raises(ModelError, match=rf"{expected} \(HTTP {status}\).*ANTHROPIC"):
            await collect(claude(server), [{"role": "user", "content": "x"}])


async def test_a_stream_without_message_stop_or_with_an_error_fails() -> None:
    error = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    with serve_model([anthropic_reply(["half"], stop=False), raw_reply([f"event: error\ndata: {error}"])]) as server:
        with pytest.raises(ModelError, match="ended before the answer was complete"):
            await collect(claude(server), [{"role": "user", "content": "x"}])
        with pytest.raises(ModelError, match="overloaded_error"):
            await collect(claude(server), [{"role": "user", "content": "x"}])
