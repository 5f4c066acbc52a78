"""Anthropic's Messages API (Claude), through the official ``anthropic`` SDK.

An optional extra: ``pip install 'runstream[anthropic]'``. As with
``OpenAIChat``, the SDK does the HTTP work (auth, retries on 429, 5xx and 529,
timeouts) and the streamed lines are read with orjson. Agents speak the OpenAI
message format; ``to_anthropic`` translates it (system prompt apart, tool calls
as ``tool_use`` blocks, tool results as ``tool_result`` blocks of a user turn).
"""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager
from types import ModuleType
from typing import Any

import anthropic
import orjson
from pydantic import BaseModel

from runstream.errors import ModelError
from runstream.models.base import Message, ToolCall, ToolSpec, Usage
from runstream.models.sdk import SDKChatModel

__all__ = ["Anthropic", "EventReader", "to_anthropic"]


class EventReader:
    """Folds a Messages stream's ``data:`` lines into text, tool calls and usage."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.finished = False
        self._tools: dict[int, tuple[str, str, list[str]]] = {}
        """Per block index: a tool call's id, name and its input JSON, as the pieces received."""

    def feed(self, line: str) -> str | None:
        """Read one line; return the text it adds, if any."""
        if not line.startswith("data:"):
            return None
        try:
            event = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            raise ModelError(f"malformed stream event: {line[5:205]!r}") from None
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = event.get("index", len(self._tools))
                self._tools[index] = (block["id"], block["name"], [])
        elif kind == "message_start":
            usage = (event.get("message") or {}).get("usage") or {}
            self.usage = Usage(usage.get("input_tokens") or 0, usage.get("output_tokens") or 0)
        elif kind == "message_delta":
            output = (event.get("usage") or {}).get("output_tokens")
            if output is not None:
                self.usage = Usage(self.usage.input_tokens, output)
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            raise ModelError(f"the server reported an error mid-stream: {event.get('error')}")
        return None

    def _delta(self, event: dict[str, Any]) -> str | None:
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            return delta.get("text") or None
        if delta.get("type") == "input_json_delta" and event.get("index") in self._tools:
            self._tools[event["index"]][2].append(delta.get("partial_json") or "")
        return None

    def tool_calls(self) -> list[ToolCall]:
        return [ToolCall(id, name, "".join(parts) or "{}") for _, (id, name, parts) in sorted(self._tools.items())]


def to_anthropic(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI-format messages as Anthropic's ``system`` text and ``messages`` list."""
    system = "\n\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": message["content"] or ""}
            if turns and turns[-1]["role"] == "user" and isinstance(turns[-1]["content"], list):
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
        elif role == "assistant" and message.get("tool_calls"):
            text = [{"type": "text", "text": message["content"]}] if message.get("content") else []
            uses = [_tool_use(call) for call in message["tool_calls"]]
            turns.append({"role": "assistant", "content": text + uses})
        elif role in ("user", "assistant"):
            turns.append({"role": role, "content": message.get("content") or ""})
    return system, turns


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    arguments = orjson.loads(function["arguments"] or "{}")
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}


class Anthropic(SDKChatModel):
    """``Anthropic(id, api_key=None, base_url=None, max_tokens=4096, timeout=60, max_retries=2)``.

    Unset arguments come from ``ANTHROPIC_MODEL``, ``ANTHROPIC_API_KEY`` and
    ``ANTHROPIC_BASE_URL``; extra keyword arguments (``temperature``, ...) go
    into every request. ``output_schema`` is asked for in the system prompt and
    validated by the agent.
    """

    provider = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    model_env = "ANTHROPIC_MODEL"

    def __init__(
        self,
        id: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 4096,
        timeout: float = 60.0,
        max_retries: int = 2,
        **request_options: Any,
    ) -> None:
        self.id = id or os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5")
        self.max_tokens = max_tokens
        self.request_options = request_options
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key or os.environ.get("ANTHROPIC_API_KEY") or "not-set",
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL"),
            timeout=timeout,
            max_retries=max_retries,
        )

    async def aclose(self) -> None:
        """Nothing to release per loop: the SDK's httpx client is not bound to a loop,
        and closing it would break the next server that shares this model."""

    def request(
        self, messages: list[Message], tools: list[ToolSpec] | None, output_schema: type[BaseModel] | None
    ) -> dict[str, Any]:
        """The keyword arguments of one streamed Messages request."""
        system, turns = to_anthropic(messages)
        if output_schema is not None:
            schema = orjson.dumps(output_schema.model_json_schema()).decode()
            system = f"{system}\n\nAnswer with one JSON object only, matching this JSON schema:\n{schema}".strip()
        body: dict[str, Any] = {"model": self.id, "max_tokens": self.max_tokens, "messages": turns, "stream": True}
        if system:
            body["system"] = system
        if tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
            ]
        return {**body, **self.request_options}

    def sdk(self) -> ModuleType:
        return anthropic

    def reader(self) -> EventReader:
        return EventReader()

    def open_stream(self, request: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
        return self.client.messages.with_streaming_response.create(**request)

    def base_url(self) -> str:
        return str(self.client.base_url)