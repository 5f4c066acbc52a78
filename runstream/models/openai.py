"""Any OpenAI-compatible chat server (OpenAI, Ollama, vLLM, llama.cpp, LM Studio).

Uses the official ``openai`` SDK for the HTTP work (auth, retries, timeouts),
but reads the raw streamed lines instead of building a pydantic model per
chunk: that costs about 4 µs a chunk instead of about 100 µs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson

from runstream.errors import ModelError
from runstream.models.base import Message, Usage

__all__ = ["OpenAIChat"]


class OpenAIChat:
    """``OpenAIChat(id, base_url=None, api_key=None)``; unset arguments come from
    ``OPENAI_MODEL``, ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``."""

    provider = "openai"

    def __init__(
        self,
        id: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        **request_options: Any,
    ) -> None:
        self.id = id or os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        self.request_options = request_options
        self.client = openai.AsyncOpenAI(
            base_url=base_url or os.environ.get("OPENAI_BASE_URL"),
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
            timeout=timeout,
            max_retries=max_retries,
        )

    async def stream(self, messages: list[Message]) -> AsyncIterator[str | Usage]:
        usage = Usage()
        try:
            async with self.client.chat.completions.with_streaming_response.create(
                model=self.id,
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
                **self.request_options,
            ) as response:
                async for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    chunk = orjson.loads(payload)
                    if chunk.get("usage"):
                        usage = Usage(chunk["usage"].get("prompt_tokens", 0), chunk["usage"].get("completion_tokens", 0))
                    for choice in chunk.get("choices") or ():
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            yield content
        except openai.APIStatusError as exc:
            raise ModelError(f"{self.provider} model {self.id!r}: HTTP {exc.status_code}: {exc.message}") from None
        except openai.APIError as exc:
            raise ModelError(f"{self.provider} model {self.id!r}: {exc.message}") from None
        yield usage
