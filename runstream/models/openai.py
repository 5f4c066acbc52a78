"""Any OpenAI-compatible chat server (OpenAI, Ollama, vLLM, llama.cpp, LM Studio).

Uses the official ``openai`` SDK for the HTTP work (auth, retries on 429 and
5xx, timeouts), but reads the raw streamed lines with orjson instead of
building a pydantic model per chunk: about 4 µs a chunk instead of about 100.
The SDK runs on its aiohttp transport: servers send one HTTP chunk per token,
and httpx/h11 spend ~30 µs of CPU on each, aiohttp 5-9.
Tool calls arrive as deltas spread over many chunks; ``ChunkReader`` (no I/O)
assembles them.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from contextlib import AbstractAsyncContextManager
from types import ModuleType
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel

from runstream.errors import ModelError
from runstream.models.base import Message, ToolCall, ToolSpec, Usage
from runstream.models.sdk import SDKChatModel

if TYPE_CHECKING:
    import openai

__all__ = ["ChunkReader", "OpenAIChat"]


class ChunkReader:
    """Folds a chat-completion stream's ``data:`` lines into text, tool calls and usage."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.finished = False
        self._calls: dict[int, _PendingCall] = {}

    def feed(self, line: str) -> str | None:
        """Read one line; return the text it adds, if any."""
        if not line.startswith("data:"):
            return None
        payload = line[5:].strip()
        if payload == "[DONE]":
            self.finished = True
            return None
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise ModelError(f"malformed stream chunk: {payload[:200]!r}") from None
        if not isinstance(chunk, dict):
            raise ModelError(f"malformed stream chunk: {payload[:200]!r}")
        if chunk.get("error"):
            raise ModelError(f"the server reported an error mid-stream: {chunk['error']}")
        if chunk.get("usage"):
            self.usage = Usage(chunk["usage"].get("prompt_tokens") or 0, chunk["usage"].get("completion_tokens") or 0)
        text = None
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                self.finished = True
            delta = choice.get("delta") or {}
            if delta.get("tool_calls"):
                self._add_tool_deltas(delta["tool_calls"])
            if delta.get("content"):
                text = delta["content"] if text is None else text + delta["content"]
        return text

    def _add_tool_deltas(self, deltas: list[dict[str, Any]]) -> None:
        # id and name come whole (in the first delta, though some servers repeat them);
        # only the arguments stream, as pieces joined at the end.
        for position, delta in enumerate(deltas):
            call = self._calls.setdefault(delta.get("index", position), _PendingCall())
            function = delta.get("function") or {}
            call.id = call.id or delta.get("id") or ""
            call.name = call.name or function.get("name") or ""
            if function.get("arguments"):
                call.arguments.append(function["arguments"])

    def tool_calls(self) -> list[ToolCall]:
        """The complete tool calls, in the order the model gave them."""
        return [
            ToolCall(id=c.id or f"call_{i}", name=c.name, arguments="".join(c.arguments) or "{}")
            for i, c in sorted(self._calls.items())
        ]


@dataclass
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAIChat(SDKChatModel):
    """``OpenAIChat(id, base_url=None, api_key=None, timeout=60, max_retries=2, http_client=None)``.

    Unset arguments come from ``OPENAI_MODEL``, ``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY``; extra keyword arguments (``temperature``, ...) go into
    every request. ``http_client`` (e.g. ``openai.DefaultAsyncHttpxClient()``)
    replaces the default aiohttp transport; it stays yours to close.

    An aiohttp session belongs to the event loop that made it, so the SDK client
    is made lazily, one per running loop; ``await aclose()`` in a loop releases
    that loop's session (the server does it at shutdown for its agents' models).
    """

    provider = "openai"
    key_env = "OPENAI_API_KEY"
    model_env = "OPENAI_MODEL"

    def __init__(
        self,
        id: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        http_client: openai.DefaultAsyncHttpxClient | None = None,
        **request_options: Any,
    ) -> None:
        # imported here, not at module top: the SDK costs ~1.5 s of start-up, which only
        # servers that use it should pay, and they should pay it now, not on a first request
        import openai

        self._sdk = openai
        self.id = id or os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        self.request_options = request_options
        self.http_client = http_client
        self._settings: dict[str, Any] = {
            "base_url": base_url or os.environ.get("OPENAI_BASE_URL"),
            "api_key": api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
            "timeout": timeout,
            "max_retries": max_retries,
        }
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client of the running event loop, made on first use there."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._new_client()
        return client

    def _new_client(self) -> openai.AsyncOpenAI:
        http_client = self.http_client or self._sdk.DefaultAioHttpClient()
        return self._sdk.AsyncOpenAI(http_client=http_client, **self._settings)

    async def aclose(self) -> None:
        """Close the running loop's HTTP session; the next request opens a new one.
        A ``http_client`` you passed is left open: its owner closes it."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None and self.http_client is None:
            await client.close()

    def request(
        self, messages: list[Message], tools: list[ToolSpec] | None, output_schema: type[BaseModel] | None
    ) -> dict[str, Any]:
        """The keyword arguments of one streamed chat-completion request."""
        body: dict[str, Any] = {
            "model": self.id,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in tools
            ]
        if output_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": output_schema.__name__, "schema": output_schema.model_json_schema()},
            }
        return {**body, **self.request_options}

    def sdk(self) -> ModuleType:
        return self._sdk

    def reader(self) -> ChunkReader:
        return ChunkReader()

    def open_stream(self, request: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
        return self.client.chat.completions.with_streaming_response.create(**request)

    def base_url(self) -> str:
        return str(self.client.base_url)
