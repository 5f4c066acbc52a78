"""``SyncClient``: the async ``Client`` behind a blocking API, for scripts and notebooks.

It owns a private event loop (``asyncio.Runner``) and runs each call on it, so
it must not be used from inside a running event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

from runstream.client.client import Client
from runstream.client.event import Event
from runstream.client.run import Run

__all__ = ["SyncClient"]


class SyncClient:
    """``with SyncClient(url) as client: for event in client.follow(client.start("wf", "hi")): ...``

    Takes the same arguments as ``Client``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._runner = asyncio.Runner()
        self.client: Client = self._runner.run(self._make(*args, **kwargs))

    @staticmethod
    async def _make(*args: Any, **kwargs: Any) -> Client:
        return Client(*args, **kwargs)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._runner.run(self.client.close())
        finally:
            self._runner.close()

    def start(self, workflow_id: str, message: Any, session_id: str | None = None, user_id: str | None = None) -> str:
        return self._runner.run(self.client.start(workflow_id, message, session_id, user_id))

    def get_run(self, run_id: str) -> Run:
        return self._runner.run(self.client.get_run(run_id))

    def runs(self, **filters: Any) -> list[Run]:
        return self._runner.run(self.client.runs(**filters))

    def workflows(self) -> list[dict[str, Any]]:
        """Every workflow the server serves, with its steps and input schema."""
        return self._runner.run(self.client.workflows())

    def resolve(self, run_id: str) -> str:
        return self._runner.run(self.client.resolve(run_id))

    def cancel(self, run_id: str) -> None:
        self._runner.run(self.client.cancel(run_id))

    def pending(self, run_id: str) -> dict[str, Any] | None:
        return self._runner.run(self.client.pending(run_id))

    def continue_run(self, run_id: str, **answer: Any) -> None:
        """``Client.continue_run``: ``client.continue_run(run_id, confirmed=True)``."""
        self._runner.run(self.client.continue_run(run_id, **answer))

    def follow(self, run_id: str, after: int | None = None) -> Iterator[Event]:
        """``Client.follow``, one blocking step per event."""
        events = self.client.follow(run_id, after)
        try:
            while True:
                try:
                    yield self._runner.run(_next(events))
                except StopAsyncIteration:
                    return
        finally:
            self._runner.run(events.aclose())

    def replay(self, run_id: str) -> Iterator[Event]:
        return self.follow(run_id)


async def _next(events: AsyncIterator[Event]) -> Event:
    return await anext(events)
