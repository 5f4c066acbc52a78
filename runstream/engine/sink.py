"""Where a run's events go: the one interface between the engine and whoever runs it.

The engine hands every event (a name and a dict of fields) to its run's
``EventSink`` and knows nothing of storage or sockets. The run manager's sink
(``runstream.runs.sink.LogSink``) numbers, serializes and logs them;
``CallbackSink`` wraps a plain function, to run the engine alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["CallbackSink", "Emit", "EmitContent", "EventSink", "HistoryLoader"]

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
EmitContent = Callable[[Any], Awaitable[None]]
HistoryLoader = Callable[[], Awaitable[list[dict[str, Any]]]]


@runtime_checkable
class EventSink(Protocol):
    """One run's sink: emit an event, stream content chunks, load the session's history."""

    async def emit(self, name: str, fields: dict[str, Any]) -> None:
        """Log one event of the run (in order; the sink adds the run's identity and index)."""
        ...

    def content_emitter(self, name: str, fields: dict[str, Any]) -> EmitContent:
        """An emitter of ``name`` events that carry ``fields`` and differ only in ``content``
        (an agent's tokens, a generator step's chunks): the sink may serialize the constant
        part once, so that a chunk costs little more than its own text."""
        ...

    async def history(self) -> list[dict[str, Any]]:
        """The session's earlier completed runs, oldest first, as ``{"input", "output"}``."""
        ...


class CallbackSink:
    """An ``EventSink`` over one ``emit`` function (and, optionally, a history loader)."""

    __slots__ = ("_emit", "_history")

    def __init__(self, emit: Emit, history: HistoryLoader | None = None) -> None:
        self._emit = emit
        self._history = history

    async def emit(self, name: str, fields: dict[str, Any]) -> None:
        await self._emit(name, fields)

    def content_emitter(self, name: str, fields: dict[str, Any]) -> EmitContent:
        emit = self._emit

        async def emit_content(content: Any) -> None:
            await emit(name, {**fields, "content": content})

        return emit_content

    async def history(self) -> list[dict[str, Any]]:
        return await self._history() if self._history is not None else []
