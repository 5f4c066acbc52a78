"""What the SDK-backed providers share: a streamed request's lines read through a
provider's reader, and every failure said as a ``ModelError`` the user can act on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from types import ModuleType
from typing import Any, Protocol

from pydantic import BaseModel

from runstream.errors import ModelError
from runstream.models.base import Message, ToolCall, ToolSpec, Usage, http_error_message

__all__ = ["LineReader", "SDKChatModel", "transport_error"]


class LineReader(Protocol):
    """Folds a provider's streamed ``data:`` lines into text, tool calls and usage (no I/O)."""

    usage: Usage
    finished: bool

    def feed(self, line: str) -> str | None: ...

    def tool_calls(self) -> list[ToolCall]: ...


class SDKChatModel:
    """Base of ``OpenAIChat`` and ``Anthropic``: subclasses say how to open the request."""

    provider: str
    id: str
    key_env: str
    model_env: str

    def sdk(self) -> ModuleType:
        """The SDK module, for its ``APIStatusError`` and ``APIError``."""
        raise NotImplementedError

    def reader(self) -> LineReader:
        raise NotImplementedError

    def open_stream(self, request: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
        """The SDK's ``with_streaming_response`` call for ``request``."""
        raise NotImplementedError

    def base_url(self) -> str:
        raise NotImplementedError

    def request(
        self, messages: list[Message], tools: list[ToolSpec] | None, output_schema: type[BaseModel] | None
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def stream(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        output_schema: type[BaseModel] | None = None,
    ) -> AsyncIterator[str | ToolCall | Usage]:
        sdk, reader = self.sdk(), self.reader()
        where = f"{self.provider} model {self.id!r}"
        try:
            async with self.open_stream(self.request(messages, tools, output_schema)) as response:
                async for line in response.iter_lines():
                    text = reader.feed(line)
                    if text:
                        yield text
        except sdk.APIStatusError as exc:
            at = f"{where} at {self.base_url()}"
            raise ModelError(
                http_error_message(at, exc.status_code, exc.message, self.key_env, self.model_env)
            ) from None
        except sdk.APIError as exc:
            raise ModelError(f"{where}: {exc.message}") from None
        except ModelError as exc:
            raise ModelError(f"{where}: {exc}") from None
        except Exception as exc:  # the HTTP transport raises its own errors mid-body
            raise ModelError(f"{where}: the stream broke: {transport_error(exc)}") from None
        if not reader.finished:
            raise ModelError(f"{where}: the stream ended before the answer was complete")
        for call in reader.tool_calls():
            yield call
        yield reader.usage


def transport_error(exc: Exception) -> str:
    """The transport's own error: the SDK's aiohttp adapter re-raises aiohttp's as httpx's,
    sometimes misnamed (a dropped connection becomes ``ConnectTimeout``)."""
    cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
    return f"{type(cause).__name__}: {cause}"
