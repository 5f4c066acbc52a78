"""What an agent needs of a model: a stream of text chunks and tool calls, then its usage.

Messages use the OpenAI chat format (``role``, ``content``, ``tool_calls``,
``tool_call_id``): every OpenAI-compatible server speaks it, and a provider
with another format translates at its edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

__all__ = ["Message", "Model", "ToolCall", "ToolSpec", "Usage", "close_model", "http_error_message"]

Message = dict[str, Any]


@dataclass
class Usage:
    """Token counts of one model call; the last item a model stream yields."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass(frozen=True)
class ToolSpec:
    """What a model is told about a tool: its name, what it is for, its JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model asked for; ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str

    def as_dict(self) -> dict[str, Any]:
        """The OpenAI-format entry of an assistant message's ``tool_calls``."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@runtime_checkable
class Model(Protocol):
    """A chat model that streams: ``str`` chunks as they come, the ``ToolCall``s
    it asks for once complete, then one ``Usage``.

    ``tools`` and ``output_schema`` are passed only when an agent has them, so a
    model that supports neither may leave them out of its signature.

    Optional: ``async aclose()``, which releases what the model holds in the
    running event loop (HTTP sessions); the server awaits it at shutdown for every
    model its runs used (``close_model``).
    """

    id: str
    provider: str

    def stream(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        output_schema: type[BaseModel] | None = None,
    ) -> AsyncIterator[str | ToolCall | Usage]: ...


async def close_model(model: object) -> None:
    """Await ``model.aclose()`` if the model has one (it is optional)."""
    aclose = getattr(model, "aclose", None)
    if aclose is not None:
        await aclose()


def http_error_message(where: str, status: int, message: str, key_env: str, model_env: str) -> str:
    """A refused request, said so that the user knows what to fix (401 and 404 name the setting)."""
    if status == 401:
        return f"{where}: authentication failed (HTTP 401): check the API key ({key_env}): {message}"
    if status == 404:
        return f"{where}: model not found (HTTP 404): check the model id ({model_env}): {message}"
    return f"{where}: HTTP {status}: {message}"
