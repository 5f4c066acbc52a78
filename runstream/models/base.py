"""What an agent needs of a model: a stream of text chunks, then its usage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Model", "Usage", "Message"]

Message = dict[str, Any]


@dataclass
class Usage:
    """Token counts of one model call; the last item a model stream yields."""

    input_tokens: int = 0
    output_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@runtime_checkable
class Model(Protocol):
    """A chat model that streams: ``str`` chunks as they come, then one ``Usage``."""

    id: str
    provider: str

    def stream(self, messages: list[Message]) -> AsyncIterator[str | Usage]: ...
