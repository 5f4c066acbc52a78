"""OpenAIChat against a real OpenAI-compatible HTTP server (tests/model_server.py)."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings

import openai
import pytest
from pydantic import BaseModel

from runstream import ModelError, OpenAIChat, ToolCall, ToolSpec, Usage
from runstream.models.base import Message
from tests.model_server import ModelServer, cut_reply, error_reply, raw_reply, serve_model, text_reply, tool_reply

pytestmark = pytest.mark.anyio

HELLO: list[Message] = [{"role": "user", "content": "hello"}]


async def collect(model: OpenAIChat, **options: object) -> list[str | ToolCall | Usage]:
    """The model's whole stream; then its HTTP session is closed, as a server does at shutdown."""
    try:
        return [item async for item in model.stream(HELLO, **options)]  # type: ignore[arg-type]
    finally:
        await model.aclose()


def chat(server: ModelServer, **options: object) -> OpenAIChat:
    return OpenAIChat("test-model", base_url=server.base_url, api_key="sk-test", **options)  # type: ignore[arg-type]


async def test_streams_text_then_usage() -> None:
    with serve_model([text_reply(["Hel", "lo", "!"], usage=(7, 3))]) as server:
        items = await collect(chat(server))
    assert items == ["Hel", "lo", "!", Usage(7, 3)]
    sent = server.requests[0]
    assert sent["model"] == "test-model" and sent["stream"] is True and sent["messages"] == HELLO
    assert "tools" not in sent and "response_format" not in sent


async def test_assembles_tool_calls_from_deltas_and_sends_tool_specs() -> None:
    spec = ToolSpec("lookup", "Look a word up.", {"type": "object", "properties": {"word": {"type": "string"}}})
    calls = [("call_a", "lookup", '{"word": "alpha"}'), ("call_b", "lookup", '{"word": "beta"}')]
    with serve_model([tool_reply(calls, usage=(20, 4))]) as server:
        items = await collect(chat(server), tools=[spec])
    assert items == [
        ToolCall("call_a", "lookup", '{"word": "alpha"}'),
        ToolCall("call_b", "lookup", '{"word": "beta"}'),
        Usage(20, 4),
    ]
    assert server.requests[0]["tools"] == [
        {"type": "function", "function": {"name": "lookup", "description": "Look a word up.", "parameters": spec.parameters}}
    ]


async def test_asks_for_json_schema_output() -> None:
    class Answer(BaseModel):
        title: str

    with serve_model([text_reply(['{"title": "x"}'])]) as server:
        await collect(chat(server), output_schema=Answer)
    response_format = server.requests[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Answer"
    assert response_format["json_schema"]["schema"]["required"] == ["title"]


async def test_tolerates_comments_empty_choices_and_null_deltas() -> None:
    lines = [
        ": keep-alive",
        'data: {"choices": []}',
        'data: {"choices": [{"index": 0, "delta": null}]}',
        'data: {"choices": [{"index": 0, "delta": {"content": "ok"}, "extra": 1}]}',
        'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}',
        "data: [DONE]",
    ]
    with serve_model([raw_reply(lines)]) as server:
        items = await collect(chat(server))
    assert items == ["ok", Usage()]


async def test_malformed_chunk_is_a_clear_error() -> None:
    lines = ['data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}', "data: {not json", "data: [DONE]"]
    with serve_model([raw_reply(lines)]) as server:
        with pytest.raises(ModelError, match="malformed stream chunk"):
            await collect(chat(server))


async def test_retries_a_429_then_succeeds() -> None:
    replies = [error_reply(429, "slow down", {"retry-after-ms": "1"}), text_reply(["fine"])]
    with serve_model(replies) as server:
        items = await collect(chat(server, max_retries=2))
    assert items == ["fine", Usage(10, 5)]
    assert len(server.requests) == 2


async def test_gives_up_after_max_retries() -> None:
    replies = [error_reply(503, "overloaded", {"retry-after-ms": "1"}) for _ in range(2)]
    with serve_model(replies) as server:
        with pytest.raises(ModelError, match="HTTP 503"):
            await collect(chat(server, max_retries=1))
    assert len(server.requests) == 2


async def test_401_is_an_authentication_error() -> None:
    with serve_model([error_reply(401, "Incorrect API key provided")]) as server:
        with pytest.raises(ModelError, match=r"authentication failed \(HTTP 401\).*Incorrect API key") as caught:
            await collect(chat(server))
    assert "sk-test" not in str(caught.value)
    assert len(server.requests) == 1


async def test_404_is_a_model_not_found_error() -> None:
    with serve_model([error_reply(404, "The model `test-model` does not exist")]) as server:
        with pytest.raises(ModelError, match=r"'test-model'.*model not found \(HTTP 404\)"):
            await collect(chat(server))


async def test_stream_cut_mid_answer_is_an_error() -> None:
    with serve_model([cut_reply(["The ", "answer ", "is"])]) as server:
        with pytest.raises(ModelError, match="test-model"):
            await collect(chat(server, max_retries=0))


async def test_stream_ending_without_finish_is_an_error() -> None:
    lines = ['data: {"choices": [{"index": 0, "delta": {"content": "half"}}]}']
    with serve_model([raw_reply(lines)]) as server:
        with pytest.raises(ModelError, match="ended before the answer was complete"):
            await collect(chat(server))


async def test_error_object_mid_stream_is_reported() -> None:
    lines = ['data: {"error": {"message": "context length exceeded"}}']
    with serve_model([raw_reply(lines)]) as server:
        with pytest.raises(ModelError, match="context length exceeded"):
            await collect(chat(server))


def test_request_options_reach_the_request() -> None:
    model = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", temperature=0.2)
    assert json.loads(json.dumps(model.request(HELLO, None, None)))["temperature"] == 0.2


def leaked_sessions() -> list[str]:
    """The unclosed-session warnings garbage collection gives now (aiohttp warns in ``__del__``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_one_model_serves_two_event_loops_and_closes_each_session() -> None:
    async def use(model: OpenAIChat) -> object:
        assert [item async for item in model.stream(HELLO)] == ["hi", Usage(10, 5)]
        client = model.client
        await model.aclose()
        assert client.is_closed()
        return client

    with serve_model([text_reply(["hi"]), text_reply(["hi"])]) as server:
        model = chat(server)  # outside any loop, as at import time
        first, second = asyncio.run(use(model)), asyncio.run(use(model))
    assert first is not second
    assert leaked_sessions() == []


def test_an_unclosed_session_would_be_seen() -> None:
    """The check above can fail: a loop that ends without ``aclose`` leaks its session."""

    async def use_without_closing(server: ModelServer) -> None:
        model = chat(server)
        assert [item async for item in model.stream(HELLO)] == ["hi", Usage(10, 5)]

    with serve_model([text_reply(["hi"])]) as server:
        asyncio.run(use_without_closing(server))
    assert any("nclosed" in message for message in leaked_sessions())


async def test_a_client_of_your_own_is_used_and_left_open() -> None:
    http_client = openai.DefaultAsyncHttpxClient()
    with serve_model([text_reply(["own"])]) as server:
        model = OpenAIChat("test-model", base_url=server.base_url, api_key="sk-test", http_client=http_client)
        assert await collect(model) == ["own", Usage(10, 5)]
    assert not http_client.is_closed
    await http_client.aclose()
